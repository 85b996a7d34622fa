#!/usr/bin/python3
"""Tiny Hugging Face-native GLM checkpoints and their PyTorch goldens (glmq fixtures).

Writes
  samples/glm-hf-tiny/   model_type "glm"  (GlmForCausalLM): glm2-tiny's trained weights re-laid
                         out with split q/k/v projections and gate_up_proj. Same function as
                         glm2-tiny, so its goldens must (and are checked to) equal glm2-tiny's.
  samples/glm4-hf-tiny/  model_type "glm4" (Glm4ForCausalLM): the same weights plus the two extra
                         norms of every Glm4 layer (post_self_attn_layernorm, post_mlp_layernorm)
                         with seeded non-trivial weights, tied word embeddings (no lm_head.weight)
                         and rope_theta inside `rope_parameters` (newest transformers spelling).

The goldens come from the forward pass below: a plain PyTorch implementation of GlmModel /
Glm4Model as transformers' modeling_glm.py / modular_glm4.py define them (separate q/k/v with
bias, interleaved partial RoPE on the first head_dim * partial_rotary_factor dims, repeat_kv
grouping, gate/up chunk order, sandwich norms for glm4), in fp32, written from those files and
not from glmq. Policies f16 / int8 / int4 as samples/gen_samples.py (decision 6 on every 2-D
weight inside the layers). glmq never runs this script.

Usage: /usr/bin/python3 samples/gen_hf_glm.py
"""
import json
import os
import shutil
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "glm2-tiny")

torch.set_num_threads(1)


# --- safetensors (the format is 8-byte header length + JSON + data; no package needed) ----------

def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"F16": "<f2", "F32": "<f4"}[v["dtype"]]
        b, e = v["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt).reshape(v["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out


def st_write(path, tensors):
    """tensors: list of (name, fp16 tensor), written in that order (8-byte aligned header)."""
    hdr, off, blobs = {}, 0, []
    for name, t in tensors:
        b = t.contiguous().numpy().astype("<f2").tobytes()
        hdr[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hdr["__metadata__"] = {"format": "pt"}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# --- decision 6 quantization (same rule as gen_samples.py) -------------------------------------

def deq_rows(w16, qmax):
    w = w16.float()
    amax = w.abs().amax(dim=1)
    s = (amax / float(qmax)).to(torch.float32).half().float().unsqueeze(1)
    q = torch.where(s == 0, torch.zeros_like(w),
                    torch.clamp(torch.round(w / torch.where(s == 0, torch.ones_like(s), s)),
                                -qmax, qmax))
    return q * s


# --- the HF Glm / Glm4 forward pass ------------------------------------------------------------

def rms(x, w, eps):
    x32 = x.float()
    var = x32.pow(2).mean(-1, keepdim=True)
    return w * (x32 * torch.rsqrt(var + eps))


def rotate_interleaved(x):
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((-b, a), dim=-1).flatten(-2)


def hf_forward(cfg, W, ids, glm4):
    """W: name -> fp32 tensor in the HF layout. Returns logits [s, vocab]."""
    h = cfg["hidden_size"]
    nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    theta = cfg["rope_theta"] if "rope_theta" in cfg else cfg["rope_parameters"]["rope_theta"]
    rot = int(d * cfg["partial_rotary_factor"])
    s = len(ids)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    inv = 1.0 / (theta ** (torch.arange(0, rot, 2, dtype=torch.int64).float() / rot))
    pos = torch.arange(s).float()
    fr = torch.outer(pos, inv)                      # [s, rot/2]
    emb = torch.cat((fr, fr), dim=-1)
    cos = emb.cos()[:, : rot // 2].repeat_interleave(2, dim=-1)   # interleaved pairs
    sin = emb.sin()[:, : rot // 2].repeat_interleave(2, dim=-1)
    mask = torch.full((s, s), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        res = x
        xn = rms(x, W[p + "input_layernorm.weight"], eps)
        q = xn @ W[p + "self_attn.q_proj.weight"].T + W[p + "self_attn.q_proj.bias"]
        k = xn @ W[p + "self_attn.k_proj.weight"].T + W[p + "self_attn.k_proj.bias"]
        v = xn @ W[p + "self_attn.v_proj.weight"].T + W[p + "self_attn.v_proj.bias"]
        q = q.view(s, nh, d).transpose(0, 1)
        k = k.view(s, nkv, d).transpose(0, 1)
        v = v.view(s, nkv, d).transpose(0, 1)

        def rope(t):
            r, keep = t[..., :rot], t[..., rot:]
            return torch.cat((r * cos + rotate_interleaved(r) * sin, keep), dim=-1)

        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) * d ** -0.5 + mask, dim=-1) @ v
        o = a.transpose(0, 1).reshape(s, nh * d) @ W[p + "self_attn.o_proj.weight"].T
        if glm4:
            o = rms(o, W[p + "post_self_attn_layernorm.weight"], eps)
        x = res + o
        res = x
        xn = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        gu = xn @ W[p + "mlp.gate_up_proj.weight"].T
        gate, up = gu.chunk(2, dim=-1)
        y = (up * torch.nn.functional.silu(gate)) @ W[p + "mlp.down_proj.weight"].T
        if glm4:
            y = rms(y, W[p + "post_mlp_layernorm.weight"], eps)
        x = res + y
    x = rms(x, W["model.norm.weight"], eps)
    out = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ out.T


def relayout(sd, cfg):
    """glm2-tiny (THUDM chatglm names) -> HF GlmForCausalLM names, as the HF converter does."""
    nq = cfg["num_attention_heads"] * cfg["head_dim"]
    nk = cfg["num_key_value_heads"] * cfg["head_dim"]
    out = [("model.embed_tokens.weight", sd["transformer.embedding.word_embeddings.weight"])]
    for l in range(cfg["num_hidden_layers"]):
        s = "transformer.encoder.layers.%d." % l
        p = "model.layers.%d." % l
        qkv, qkvb = sd[s + "self_attention.query_key_value.weight"], \
            sd[s + "self_attention.query_key_value.bias"]
        out += [(p + "input_layernorm.weight", sd[s + "input_layernorm.weight"]),
                (p + "self_attn.q_proj.weight", qkv[:nq]),
                (p + "self_attn.k_proj.weight", qkv[nq:nq + nk]),
                (p + "self_attn.v_proj.weight", qkv[nq + nk:]),
                (p + "self_attn.q_proj.bias", qkvb[:nq]),
                (p + "self_attn.k_proj.bias", qkvb[nq:nq + nk]),
                (p + "self_attn.v_proj.bias", qkvb[nq + nk:]),
                (p + "self_attn.o_proj.weight", sd[s + "self_attention.dense.weight"]),
                (p + "post_attention_layernorm.weight", sd[s + "post_attention_layernorm.weight"]),
                (p + "mlp.gate_up_proj.weight", sd[s + "mlp.dense_h_to_4h.weight"]),
                (p + "mlp.down_proj.weight", sd[s + "mlp.dense_4h_to_h.weight"])]
    out += [("model.norm.weight", sd["transformer.encoder.final_layernorm.weight"]),
            ("lm_head.weight", sd["transformer.output_layer.weight"])]
    return out


def base_config(c2):
    return {
        "architectures": ["GlmForCausalLM"],
        "model_type": "glm",
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": c2["eos_token_id"],
        "pad_token_id": c2["pad_token_id"],
        "head_dim": c2["kv_channels"],
        "hidden_act": "silu",
        "hidden_size": c2["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": c2["ffn_hidden_size"],
        "max_position_embeddings": c2["seq_length"],
        "num_attention_heads": c2["num_attention_heads"],
        "num_hidden_layers": c2["num_layers"],
        "num_key_value_heads": c2["multi_query_group_num"],
        "partial_rotary_factor": 0.5,
        "rms_norm_eps": c2["layernorm_epsilon"],
        "rope_theta": 10000.0 * c2["rope_ratio"],
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": c2["padded_vocab_size"],
    }


def is_layer_matrix(name, t):
    return t.dim() == 2 and ".layers." in name


def write_sample(name, cfg, tensors, glm4, seqs, ref_goldens=None):
    out = os.path.join(HERE, name)
    st = os.path.join(out, "st")
    gd = os.path.join(out, "golden")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(st)
    os.makedirs(gd)
    with open(os.path.join(st, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    # the tokenizer of glm2-tiny (its vocabulary is ChatGLM2-style SentencePiece)
    for fn in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(os.path.join(SRC, "st", fn), os.path.join(st, fn))
    st_write(os.path.join(st, "model.safetensors"), tensors)
    files, sequences = {}, []
    for sq in seqs:
        ids = sq["ids"]
        np.save(os.path.join(gd, "seq_%s_ids.npy" % sq["name"]), np.array(ids, dtype=np.int32))
        ent = {"name": sq["name"], "ids": ids, "layout": sq["layout"],
               "ids_file": "seq_%s_ids.npy" % sq["name"], "logits": {}}
        for pol, qmax in (("f16", 0), ("int8", 127), ("int4", 7)):
            W = {}
            for n, t in tensors:
                W[n] = deq_rows(t, qmax) if qmax and is_layer_matrix(n, t) else t.float()
            with torch.no_grad():
                lg = hf_forward(cfg, W, ids, glm4).float().numpy()
            if ref_goldens is not None:
                # same function as glm2-tiny: point at its goldens instead of a second copy
                g = np.load(os.path.join(ref_goldens, sq["logits"][pol]))
                rel = np.abs(g - lg).max() / np.abs(g).max()
                print("%s %s %s vs glm2-tiny golden: rel %.3g" % (name, sq["name"], pol, rel))
                assert rel < 1e-5, "the HF-layout forward pass does not reproduce glm2-tiny"
                ent["logits"][pol] = "../../glm2-tiny/golden/" + sq["logits"][pol]
                continue
            fn = "logits_%s_%s.npy" % (sq["name"], pol)
            np.save(os.path.join(gd, fn), lg)
            ent["logits"][pol] = fn
            files[fn] = {"dtype": "float32", "shape": list(lg.shape)}
        sequences.append(ent)
    man = {"model": name, "generator": "samples/gen_hf_glm.py",
           "versions": {"torch": torch.__version__, "numpy": np.__version__},
           "sequences": sequences, "files": files}
    with open(os.path.join(gd, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")


def main():
    with open(os.path.join(SRC, "st", "config.json")) as f:
        c2 = json.load(f)
    with open(os.path.join(SRC, "golden", "manifest.json")) as f:
        seqs = json.load(f)["sequences"]
    sd = st_read(os.path.join(SRC, "st", "model.safetensors"))
    cfg = base_config(c2)
    tensors = relayout(sd, cfg)
    write_sample("glm-hf-tiny", cfg, tensors, False, seqs, os.path.join(SRC, "golden"))

    # glm4: the extra norms, seeded around 1 with a spread that changes the logits a lot
    g = torch.Generator().manual_seed(410)
    cfg4 = dict(cfg)
    cfg4["architectures"] = ["Glm4ForCausalLM"]
    cfg4["model_type"] = "glm4"
    cfg4["tie_word_embeddings"] = True
    del cfg4["rope_theta"]
    cfg4["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg["rope_theta"],
                               "partial_rotary_factor": 0.5}
    t4 = []
    h = cfg["hidden_size"]
    for n, t in tensors:
        if n == "lm_head.weight":
            continue
        t4.append((n, t))
        if n.endswith("mlp.down_proj.weight"):
            p = n[: -len("mlp.down_proj.weight")]
            for extra in ("post_self_attn_layernorm.weight", "post_mlp_layernorm.weight"):
                w = (1.0 + 0.3 * torch.randn(h, generator=g)).half()
                t4.append((p + extra, w))
    write_sample("glm4-hf-tiny", cfg4, t4, True, seqs)


# --- a tiny GLM-4-style tokenizer.json (tests/data/hf_tokenizer, fuzz corpus) -------------------
#
# The structure transformers' TikTokenConverter writes for GLM-4 (vocab = byte-level strings ->
# tiktoken ranks, merges = every split of every token into two tokens ordered by the rank of the
# result, GLM-4's Split regex + ByteLevel pre-tokenizer, the specials as added tokens after the
# ranks), over a small rank table: the 256 bytes (in GPT-2 byte-to-unicode order, as GLM-4's file
# ranks them) then 40 greedy byte-pair merges of samples/text/eval_en.txt.

GLM4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GLM4_SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
                 "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
                 "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tokenizer_json(ranks, merges_as_pairs):
    """ranks: list of bytes (index = rank) -> the tokenizer.json dict."""
    enc = bytes_to_unicode()
    s = lambda b: "".join(enc[x] for x in b)
    rank = {t: i for i, t in enumerate(ranks)}
    merges = []
    for t in ranks:
        if len(t) == 1:
            continue
        local = [(t[:i], t[i:]) for i in range(1, len(t)) if t[:i] in rank and t[i:] in rank]
        local.sort(key=lambda p: (rank[p[0]], rank[p[1]]))
        merges += local
    n = len(ranks)
    mj = [[s(a), s(b)] if merges_as_pairs else s(a) + " " + s(b) for a, b in merges]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": n + i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, c in enumerate(GLM4_SPECIALS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GLM4_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {s(t): i for i, t in enumerate(ranks)}, "merges": mj},
    }


def tiny_ranks():
    enc = bytes_to_unicode()
    ranks = [bytes([b]) for b in enc]          # GPT-2 order: '!' .. '~', ..., then the rest
    words = open(os.path.join(HERE, "text", "eval_en.txt"), "rb").read().split()
    seqs = [[bytes([c]) for c in w] for w in words]
    for _ in range(40):
        count = {}
        for sq in seqs:
            for a, b in zip(sq, sq[1:]):
                count[(a, b)] = count.get((a, b), 0) + 1
        (a, b), _c = max(count.items(), key=lambda kv: (kv[1], kv[0]))
        ranks.append(a + b)
        for sq in seqs:
            i = 0
            while i < len(sq) - 1:
                if sq[i] == a and sq[i + 1] == b:
                    sq[i:i + 2] = [a + b]
                i += 1
    return ranks


def write_tokenizer_fixtures():
    root = os.path.dirname(HERE)
    ranks = tiny_ranks()
    d = os.path.join(root, "tests", "data", "hf_tokenizer")
    os.makedirs(d, exist_ok=True)
    tj = tokenizer_json(ranks, True)
    with open(os.path.join(d, "tiny.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
    import base64
    with open(os.path.join(d, "tiny.tiktoken"), "wb") as f:
        for i, t in enumerate(ranks):
            f.write(base64.b64encode(t) + b" %d\n" % i)
    # fuzz corpus: the valid file in both merge spellings and a few near misses
    c = os.path.join(root, "tests", "fuzz", "corpus", "hf_tokenizer")
    os.makedirs(c, exist_ok=True)
    variants = {"valid_pairs": tj, "valid_strings": tokenizer_json(ranks, False)}
    bad = json.loads(json.dumps(tj))
    bad["model"]["merges"] = bad["model"]["merges"][1:]
    variants["incomplete_merges"] = bad
    bad = json.loads(json.dumps(tj))
    bad["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\s+"
    variants["other_regex"] = bad
    bad = json.loads(json.dumps(tj))
    bad["added_tokens"][2]["id"] = 5
    variants["special_in_vocab"] = bad
    for k, v in variants.items():
        with open(os.path.join(c, k + ".json"), "w") as f:
            json.dump(v, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(c, "truncated.json"), "w") as f:
        f.write(json.dumps(tj, ensure_ascii=False)[:700])


if __name__ == "__main__":
    main()
    write_tokenizer_fixtures()
