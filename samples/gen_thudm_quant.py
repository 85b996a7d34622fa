#!/usr/bin/python3
"""
gen_thudm_quant.py - fixtures for THUDM's own quantized releases (chatglm-6b-int4/-int8,
chatglm2-6b-int4, the -int4-qe variant with quantized embeddings).

glmq never runs Python; this script writes committed fixtures under tests/data/thudm_quant/ from
the committed tiny samples (samples/glm2-tiny/st, samples/glm1-tiny/st). It quantizes them the
way THUDM's `quantization.py` (shipped in those Hugging Face repositories) does, written here
independently from these facts:

  * which layers: in every transformer layer the four linear weights (query_key_value, dense,
    dense_h_to_4h, dense_4h_to_h); biases, norms, the embedding and the output layer stay fp16,
    except that `quantization_embeddings` (the -qe release) also quantizes the word embedding
    and the output layer (lm_head, which shares the embedding's codes and scales);
  * scale: per output row, weight_scale = (max|w| over the row / (2^(bit-1) - 1)).half(), where
    the weights are the fp16 model's (torch fp16 arithmetic), stored as an fp16 tensor
    `<name>_scale` of shape [rows];
  * codes: torch.round(w / weight_scale[:, None]).to(torch.int8) (round half to even, no clamp);
    the quotient is an fp16 tensor op (torch computes it in fp32 and rounds it to fp16), which
    this script reproduces on the CPU as (w.float() / scale.float()).half();
  * storage: int8 tensors; int8 [rows, cols], int4 [rows, cols/2] with two signed nibbles per
    byte, the even element in the high nibble (compress_int4_weight: out = (q[2j] << 4) |
    (q[2j+1] & 15));
  * dequantization (their CPU kernels, extract_*_weight_to_float): w = (float)scale * code,
    fp32, exact.
  * config.json: "quantization_bit": 4 or 8, "quantization_embeddings": true for -qe.

Written per fixture directory: config.json, tokenizer files, pytorch_model.bin (torch.save of
the state dict with int8 tensors), and golden/*.npy:
  deq_<short>.npy    THUDM's dequantized fp32 values of a few quantized tensors [rows, cols]
  codes_<short>.npy  their signed codes, unpacked, int8 [rows, cols]
  logits_<seq>.npy   fp32 logits of the samples' PyTorch forward (gen_samples.py's modules) on
                     the dequantized weights, for one golden id sequence of the sample
  manifest.json      what each file is
plus tiny hostile checkpoints (bad_*/) whose refusal the tests check.

Usage: /usr/bin/python3 samples/gen_thudm_quant.py   (a few seconds; deterministic)
"""
import collections
import json
import os
import shutil
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_samples as G  # noqa: E402  (the samples' PyTorch modules and readers)

OUT = os.path.join(os.path.dirname(HERE), "tests", "data", "thudm_quant")

LAYER_WEIGHTS = ("query_key_value.weight", "dense.weight", "dense_h_to_4h.weight",
                 "dense_4h_to_h.weight")


def is_quantized_layer_weight(name):
    return ".layers." in name and name.endswith(LAYER_WEIGHTS)


def thudm_quantize(w16, bits):
    """THUDM's QuantizedLinear on an fp16 weight: (int8 storage, fp16 scale [rows])."""
    assert w16.dtype == torch.float16 and w16.dim() == 2
    qmax = 2 ** (bits - 1) - 1
    # fp16 tensor ops (upstream runs them on CUDA): each computed in fp32, rounded to fp16
    scale = (w16.abs().max(dim=-1).values.float() / qmax).half()
    assert (scale > 0).all(), "a zero row would divide by zero upstream too"
    x = (w16.float() / scale.float()[:, None]).half()
    q = torch.round(x.float()).to(torch.int8)
    assert int(q.abs().max()) <= qmax
    if bits == 4:
        assert q.shape[1] % 2 == 0
        u = q.numpy().astype(np.uint8)
        packed = ((u[:, 0::2] << 4) | (u[:, 1::2] & 15)).astype(np.uint8)
        stored = torch.from_numpy(packed.view(np.int8).copy())
    else:
        stored = q.clone()
    return stored, scale, q


def unpack(stored, bits):
    """Signed codes from the storage (the CPU kernel's reading: high nibble first)."""
    s = stored.numpy()
    if bits == 8:
        return s.astype(np.int8)
    hi = s.astype(np.int8) >> 4
    lo = (s.astype(np.int8) << 4).astype(np.int8) >> 4
    out = np.empty((s.shape[0], s.shape[1] * 2), dtype=np.int8)
    out[:, 0::2] = hi
    out[:, 1::2] = lo
    return out


def dequant(stored, scale, bits):
    return torch.from_numpy(unpack(stored, bits).astype(np.float32)) * scale.float()[:, None]


def write_dir(d, files, sd):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for n, data in files.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(data)
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))


def model_of(name):
    if name == "glm1-tiny":
        c = dict(G.GLM1)
        return dict(name=name, arch="v1", cfg=c, vocab=c["vocab_size"]), G.fwd_v1_gen
    c = dict(G.GLM2)
    return dict(name=name, arch="v2", cfg=c, vocab=c["padded_vocab_size"]), G.fwd_v2


def make(sample, fixture, bits, qe, seq_name, shorts):
    mdir = os.path.join(HERE, sample)
    sd16 = G.st_read(os.path.join(mdir, "st", "model.safetensors"))
    cfg = json.load(open(os.path.join(mdir, "st", "config.json")))
    cfg["quantization_bit"] = bits
    if qe:
        cfg["quantization_embeddings"] = True
    files = {"config.json": (json.dumps(cfg, indent=2) + "\n").encode()}
    # glm2-tiny's tokenizer (17 KB) is what numbers its special ids; glm1-tiny's ids come from
    # config.json and tokenizer_config.json, and its 256 KB tokenizer is left out
    for n in ("tokenizer.model", "tokenizer_config.json"):
        if sample == "glm1-tiny" and n == "tokenizer.model":
            continue
        p = os.path.join(mdir, "st", n)
        if os.path.exists(p):
            files[n] = open(p, "rb").read()
    out = collections.OrderedDict()
    deq32 = {}
    codes = {}
    emb = "transformer.word_embeddings.weight" if sample == "glm1-tiny" else \
        "transformer.embedding.word_embeddings.weight"
    outname = "lm_head.weight" if sample == "glm1-tiny" else "transformer.output_layer.weight"
    names = sorted(sd16, key=lambda n: n != emb)  # the embedding first (-qe: lm_head shares it)
    for n in names:
        t = sd16[n]
        if is_quantized_layer_weight(n) or (qe and n == emb):
            stored, scale, q = thudm_quantize(t, bits)
            out[n] = stored
            out[n + "_scale"] = scale
            deq32[n] = dequant(stored, scale, bits)
            assert torch.equal(deq32[n], q.float() * scale.float()[:, None])
            codes[n] = unpack(stored, bits)
        elif qe and n == outname:
            # lm_head = QuantizedLinear(quantized_weight=<the embedding's codes>, ...): the same
            # tensors under the output layer's names
            out[n] = out[emb]
            out[n + "_scale"] = out[emb + "_scale"]
            deq32[n] = deq32[emb]
        elif n == outname and sample == "glm1-tiny" and torch.equal(t, sd16[emb]):
            out[n] = out[emb]  # ChatGLM-6B ties lm_head to the embedding: one shared storage
            deq32[n] = t.float()
        else:
            out[n] = t
            deq32[n] = t.float()
    d = os.path.join(OUT, fixture)
    write_dir(d, files, out)

    gdir = os.path.join(d, "golden")
    os.makedirs(gdir)
    man = collections.OrderedDict(
        fixture=fixture, generator="samples/gen_thudm_quant.py", sample=sample,
        quantization_bit=bits, quantization_embeddings=qe,
        versions={"torch": torch.__version__, "numpy": np.__version__},
        conventions="deq_*: THUDM's CPU dequantization (float)scale * code, fp32, [rows, cols]; "
                    "codes_*: signed codes unpacked (int4: even element = high nibble); logits: "
                    "fp32 PyTorch forward of gen_samples.py's module on the dequantized weights "
                    "(everything else as stored, widened to fp32).",
        tensors=[], logits=None)
    for short, n in shorts:
        np.save(os.path.join(gdir, "deq_%s.npy" % short), deq32[n].numpy().astype("<f4"))
        np.save(os.path.join(gdir, "codes_%s.npy" % short), codes[n])
        man["tensors"].append({"short": short, "tensor": n, "shape": list(deq32[n].shape),
                               "deq": "deq_%s.npy" % short, "codes": "codes_%s.npy" % short})
    m, fwd = model_of(sample)
    ids = np.load(os.path.join(mdir, "golden", "seq_%s_ids.npy" % seq_name)).astype(np.int64)
    torch.set_num_threads(1)
    ref = G.build_reference(m, {k: v for k, v in deq32.items()})
    with torch.no_grad():
        lg = fwd(ref, torch.from_numpy(ids).unsqueeze(0))[0].float().numpy()
    np.save(os.path.join(gdir, "logits_%s.npy" % seq_name), lg.astype("<f4"))
    np.save(os.path.join(gdir, "ids_%s.npy" % seq_name), ids.astype("<i4"))
    man["logits"] = {"seq": seq_name, "ids": "ids_%s.npy" % seq_name,
                     "file": "logits_%s.npy" % seq_name, "shape": list(lg.shape)}
    with open(os.path.join(gdir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print("%s: %d bytes of weights" % (fixture, os.path.getsize(os.path.join(d, "pytorch_model.bin"))))


def hostile_base(F, gen):
    """A tiny ChatGLM2-shaped state dict (h 32, 1 layer, ffn F) and its config."""
    h, V, d, g, n = 32, 64, 16, 1, 2
    cfg = {"model_type": "chatglm", "add_bias_linear": False, "add_qkv_bias": True,
           "ffn_hidden_size": F, "hidden_size": h, "kv_channels": d, "layernorm_epsilon": 1e-5,
           "multi_query_attention": True, "multi_query_group_num": g, "num_attention_heads": n,
           "num_layers": 1, "padded_vocab_size": V, "post_layer_norm": True, "rmsnorm": True,
           "seq_length": 64, "torch_dtype": "float16", "quantization_bit": 4}
    r = lambda *s: (torch.randn(*s, generator=gen) * 0.1).half()
    p = "transformer.encoder.layers.0."
    sd = collections.OrderedDict()
    sd["transformer.embedding.word_embeddings.weight"] = r(V, h)
    sd[p + "input_layernorm.weight"] = r(h)
    sd[p + "self_attention.query_key_value.weight"] = r(n * d + 2 * g * d, h)
    sd[p + "self_attention.query_key_value.bias"] = r(n * d + 2 * g * d)
    sd[p + "self_attention.dense.weight"] = r(h, n * d)
    sd[p + "post_attention_layernorm.weight"] = r(h)
    sd[p + "mlp.dense_h_to_4h.weight"] = r(2 * F, h)
    sd[p + "mlp.dense_4h_to_h.weight"] = r(h, F)
    sd["transformer.encoder.final_layernorm.weight"] = r(h)
    sd["transformer.output_layer.weight"] = r(V, h)
    return cfg, sd


def quantize_sd(base):
    out = collections.OrderedDict()
    for k, t in base.items():
        if is_quantized_layer_weight(k):
            if t.shape[1] % 2:  # what a broken writer might store: one padding column
                t = torch.cat([t, torch.zeros(t.shape[0], 1, dtype=t.dtype)], 1)
            stored, scale, _ = thudm_quantize(t, 4)
            out[k] = stored
            out[k + "_scale"] = scale
        else:
            out[k] = t
    return out


def make_hostile():
    """Tiny ChatGLM2-shaped int4 checkpoints (no tokenizer): one good, the others broken once;
    the name of each says how."""
    gen = torch.Generator().manual_seed(7)
    cfg, base = hostile_base(32, gen)
    good = quantize_sd(base)
    p = "transformer.encoder.layers.0."
    qkv, dense = p + "self_attention.query_key_value.weight", p + "self_attention.dense.weight"
    h4h, f4h = p + "mlp.dense_h_to_4h.weight", p + "mlp.dense_4h_to_h.weight"
    cases = collections.OrderedDict()

    def variant(name, edit, c=None, sd0=None):
        sd = collections.OrderedDict((k, v.clone()) for k, v in (sd0 or good).items())
        edit(sd)
        cases[name] = (dict(c or cfg), sd)

    def set_(k, f):
        return lambda sd: sd.__setitem__(k, f(sd[k]))

    variant("good", lambda sd: None)
    variant("scale_shape", set_(dense + "_scale", lambda t: t[:-1].clone()))
    variant("scale_dtype", set_(dense + "_scale", lambda t: t.float()))
    variant("scale_missing", lambda sd: sd.pop(f4h + "_scale"))
    variant("weight_dtype", set_(h4h, lambda t: t.to(torch.int16)))
    variant("weight_float", lambda sd: sd.__setitem__(qkv, base[qkv].clone()))
    variant("weight_shape", set_(qkv, lambda t: t[:, :-1].clone()))

    def minus8(t):  # a -8 nibble (THUDM's rounding never writes one): row 3, column 6
        s = t.numpy().view(np.uint8).copy()
        s[3, 3] = (8 << 4) | (s[3, 3] & 15)
        return torch.from_numpy(s.view(np.int8))
    variant("code_minus8", set_(dense, minus8))

    def inf5(t):
        t = t.clone()
        t[5] = float("inf")
        return t
    variant("scale_inf", set_(dense + "_scale", inf5))
    c3 = dict(cfg)
    c3["quantization_bit"] = 3
    variant("bits_3", lambda sd: None, c3)
    # ffn_hidden_size 31: dense_4h_to_h has 31 columns, which int4 pairs cannot hold
    codd, bodd = hostile_base(31, gen)
    variant("odd_cols", lambda sd: None, codd, quantize_sd(bodd))
    for name, (c, sd) in cases.items():
        d = os.path.join(OUT, "tiny_good" if name == "good" else "bad_" + name)
        write_dir(d, {"config.json": (json.dumps(c, indent=2) + "\n").encode()}, sd)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    torch.manual_seed(0)
    L2 = "transformer.encoder.layers.%d."
    L1 = "transformer.layers.%d."
    make("glm2-tiny", "glm2-int4", 4, False, "en",
         [("l1_dense", L2 % 1 + "self_attention.dense.weight")])
    make("glm1-tiny", "glm1-int8", 8, False, "gen",
         [("l1_dense", L1 % 1 + "attention.dense.weight")])
    make("glm1-tiny", "glm1-int4-qe", 4, True, "gen",
         [("l1_dense", L1 % 1 + "attention.dense.weight")])
    make_hostile()


if __name__ == "__main__":
    main()
