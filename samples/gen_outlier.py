#!/usr/bin/python3
"""samples/glm2-outlier: the trained glm2-tiny with activation outliers, and its PyTorch goldens.

For every norm -> linear pair (input_layernorm -> query_key_value, post_attention_layernorm ->
dense_h_to_4h, final_layernorm -> output_layer) the norm weight of a few hidden channels is
multiplied by FACTOR and the same input columns of the linear weight are divided by it. The fp32
function is unchanged up to the fp16 rounding of the stored weights, but the inputs of those
matrices now carry a few channels FACTOR times larger than the rest, as real LLMs do
(LLM.int8(), SmoothQuant, AWQ), and per-row round-to-nearest quantization loses on them.

    /usr/bin/python3 samples/gen_outlier.py        (after gen_samples.py; about 30 s)

Writes samples/glm2-outlier/st (config, tokenizer and tokenizer_config of glm2-tiny, the changed
model.safetensors) and samples/glm2-outlier/golden (the goldens of gen_samples.make_goldens:
logits, per-token NLL and perplexity for the f16 / int8 / int4 policies, checked by its numpy
cross-check). glmq never runs this script.
"""
import collections
import math
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_samples as G  # noqa: E402  (the model code, goldens and file writers)
import torch  # noqa: E402

N_CHANNELS = int(os.environ.get("OUTLIER_N", "8"))  # of the 128 hidden channels
FACTOR = float(os.environ.get("OUTLIER_F", "20"))
PAIRS = [("input_layernorm.weight", "self_attention.query_key_value.weight"),
         ("post_attention_layernorm.weight", "mlp.dense_h_to_4h.weight")]


def norm_linear_pairs():
    pairs = []
    for l in range(G.GLM2["num_layers"]):
        base = "transformer.encoder.layers.%d." % l
        pairs += [(base + n, base + w) for n, w in PAIRS]
    pairs.append(("transformer.encoder.final_layernorm.weight", "transformer.output_layer.weight"))
    return pairs


def important_channels(sd, pairs):
    """The N_CHANNELS hidden channels that matter most to the linear layers after the norms:
    largest sum over the pairs of (norm weight * column norm of the linear weight)^2 (real
    models' outlier channels are important ones)."""
    score = torch.zeros(sd[pairs[0][0]].shape[0], dtype=torch.float64)
    for n, w in pairs[:-1]:
        score += (sd[n].double() * sd[w].double().norm(dim=0)) ** 2
    order = sorted(range(len(score)), key=lambda c: (-float(score[c]), c))
    return sorted(order[:N_CHANNELS])


def outlier_weights(sd):
    """The transformed fp16 state dict (norm * FACTOR, linear columns / FACTOR, in fp32 then
    rounded to fp16 once) and the channels."""
    out = collections.OrderedDict((k, v.clone()) for k, v in sd.items())
    pairs = norm_linear_pairs()
    ch = important_channels(sd, pairs)
    for n, w in pairs:
        nw, ww = out[n].float(), out[w].float()
        nw[ch] *= FACTOR
        ww[:, ch] /= FACTOR
        out[n], out[w] = nw.half(), ww.half()
    return out, ch


def write_calib_text(limit=64 * 1024):
    """samples/text/calib.txt: calibration text for --calib, taken from the training corpus (so
    never from the held-out eval texts): English and Chinese documents alternately, every 7th
    of each, until `limit` bytes."""
    docs_en, docs_zh, _, _ = G.build_corpus()
    out, n = [], 0
    for a, b in zip(docs_en[3::7], docs_zh[3::7]):
        for d in (a, b):
            size = len(d.encode("utf-8"))
            if n + size > limit:
                break
            out.append(d)
            n += size
    with open(os.path.join(HERE, "text", "calib.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("".join(out))
    G.log("calib.txt: %d documents, %d bytes" % (len(out), n))


def main():
    torch.manual_seed(G.SEED)
    write_calib_text()
    src = os.path.join(HERE, "glm2-tiny", "st")
    mdir = os.path.join(HERE, "glm2-outlier")
    sdir = os.path.join(mdir, "st")
    if os.path.isdir(mdir):
        shutil.rmtree(mdir)
    os.makedirs(sdir)
    for fn in ("config.json", "tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(src, fn), os.path.join(sdir, fn))
    sd = G.st_read(os.path.join(src, "model.safetensors"))
    sd16, channels = outlier_weights(sd)
    with open(os.path.join(sdir, "model.safetensors"), "wb") as f:
        f.write(G.st_bytes(sd16))

    tok = open(os.path.join(src, "tokenizer.model"), "rb").read()
    sp = G.load_sp(tok)
    mc = G.GLM2
    cfg, _, special = G.glm2_config(mc, sp.GetPieceSize())
    c = dict(mc)
    m = dict(name="glm2-outlier", arch="v2", cfg=c, vocab=c["padded_vocab_size"],
             special_ids=special)
    prefix = [special["gmask"], special["sop"]]
    texts = []
    for name in ("eval_en", "eval_zh", "tricky"):
        with open(os.path.join(HERE, "text", name + ".txt"), encoding="utf-8", newline="") as f:
            texts.append((name, f.read()))
    enc = sp.EncodeAsIds
    seqs = [dict(name="en", layout="[gMASK] sop + text, positions 0..s-1, causal",
                 ids=prefix + enc("In the beginning God created the heaven and the earth.\n"
                                  "  2 And the earth")[:22]),
            dict(name="zh", layout="[gMASK] sop + text (byte fallback), causal",
                 ids=prefix + enc("床前明月光，疑是地上霜。\t举头望明月")[:22])]
    base = "transformer.encoder.layers.%d."
    qt = [("l0_qkv", (base % 0) + "self_attention.query_key_value.weight"),
          ("l1_h_to_4h", (base % 1) + "mlp.dense_h_to_4h.weight")]
    man = G.make_goldens(m, mdir, sd16, sp, texts, seqs, qt)
    worst, nerr = G.crosscheck(m, mdir, sd16, man)
    G.log("numpy cross-check: logits max rel diff %.3g, window NLL max abs diff %.3g"
          % (worst, nerr))
    man["generator"] = "samples/gen_outlier.py (gen_samples.make_goldens)"
    man["outliers"] = {"channels": channels, "factor": FACTOR,
                       "pairs": [p[0] + " -> " + p[1] for p in PAIRS]
                       + ["final_layernorm -> output_layer"]}
    G.write_json(os.path.join(mdir, "golden", "manifest.json"), man)
    for t, r in man["perplexity"]["results"].items():
        f16 = r["f16"]["ppl"]
        G.log("ppl %s: " % t + "  ".join("%s %.6f (%+.2f%%)" % (p, v["ppl"],
                                          100 * (v["ppl"] / f16 - 1)) for p, v in r.items()))
    # the plain sample under the same policies, for comparison
    plain = G.st_read(os.path.join(src, "model.safetensors"))
    for t, text in texts[:2]:
        ids = enc(text)
        vals = {}
        for pol in ("f16", "int4"):
            mod = G.build_reference(m, G.policy_weights(plain, pol))
            nll, _ = G.nll_windows(lambda inp, mod=mod: mod(inp), ids, prefix, m["vocab"])
            vals[pol] = math.exp(nll.sum() / len(nll))
        G.log("glm2-tiny ppl %s: f16 %.6f int4 %.6f (%+.2f%%)"
              % (t, vals["f16"], vals["int4"], 100 * (vals["int4"] / vals["f16"] - 1)))


if __name__ == "__main__":
    main()
