#!/usr/bin/python3
"""gen_glm130b.py - a tiny GLM-130B-shaped SAT checkpoint split 8 ways, and PyTorch goldens.

Writes samples/glm130b-tiny/ (see samples/README.md, section "glm130b-tiny"):

  sat/latest                                  the iteration tag, as SAT's save_checkpoint writes it
  sat/model_config.json                       SAT's argument names (+ glmq's special-token ids)
  sat/1000/mp_rank_0N_model_states.pt         N = 0..7: torch.save({'module': state_dict}) of
                                              rank N's partition (tools/convert_tp.py's layout)
  golden/manifest.json                        shapes and CRC-32 of every merged (1-way) tensor's
                                              fp16 bytes, the sequences, tolerances
  golden/ids_<case>.npy, golden/logits_<case>.npy   int32 ids, float32 logits [n][vocab]

The architecture is written from formats/GLM130B.md (the facts of THUDM/GLM-130B and
SwissArmyTransformer), not from glmq. Two implementations compute the logits: `forward_merged`
on the 1-way weights (the golden) and `forward_tp`, which runs the eight partitions as SAT's
model-parallel layers do (each rank its own heads and GeGLU slice, partial sums of the
row-parallel layers added as the all-reduce would, the row-parallel bias added once). The
script stops if they differ by more than 1e-4 relative.

Python is for generating fixtures only; nothing in the build or the tests runs it.
"""
import json
import math
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "glm130b-tiny")

# tiny hyper-parameters: every split of the 8-way layout is exercised (1 head per rank)
MP = 8
H = 64
L = 2
NH = 8
FFN = 128          # inner_hidden_size; dense_h_to_4h has 2 * FFN rows (GeGLU)
VOCAB = 1024       # >= 1000, so SAT uses VocabParallelEmbedding (rows split across ranks)
MAXSEQ = 64
EPS = 1e-5
ITER = 1000
# special tokens laid out as icetk's (150000 + 0..5 in the real model), here after 1000 pieces
MASK, GMASK, SMASK, EOD, SOP, EOP = 1000, 1001, 1002, 1003, 1004, 1005

D = H // NH
ALPHA = math.sqrt(2.0 * L)


def make_weights(seed=130):
    """The merged (1-way) state dict, fp16 as the release stores it."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.02, mean=0.0):
        return (torch.randn(*shape, generator=g) * std + mean).half()

    sd = {"transformer.word_embeddings.weight": rnd(VOCAB, H, std=0.5)}
    for l in range(L):
        p = "transformer.layers.%d." % l
        sd[p + "input_layernorm.weight"] = rnd(H, std=0.1, mean=1.0)
        sd[p + "input_layernorm.bias"] = rnd(H, std=0.1)
        sd[p + "attention.query_key_value.weight"] = rnd(3 * H, H, std=0.08)
        sd[p + "attention.query_key_value.bias"] = rnd(3 * H, std=0.1)
        sd[p + "attention.dense.weight"] = rnd(H, H, std=0.15)
        sd[p + "attention.dense.bias"] = rnd(H, std=0.1)
        sd[p + "post_attention_layernorm.weight"] = rnd(H, std=0.1, mean=1.0)
        sd[p + "post_attention_layernorm.bias"] = rnd(H, std=0.1)
        sd[p + "mlp.dense_h_to_4h.weight"] = rnd(2 * FFN, H, std=0.15)
        sd[p + "mlp.dense_h_to_4h.bias"] = rnd(2 * FFN, std=0.1)
        sd[p + "mlp.dense_4h_to_h.weight"] = rnd(H, FFN, std=0.15)
        sd[p + "mlp.dense_4h_to_h.bias"] = rnd(H, std=0.1)
    sd["transformer.final_layernorm.weight"] = rnd(H, std=0.1, mean=1.0)
    sd["transformer.final_layernorm.bias"] = rnd(H, std=0.1)
    return sd


def split(sd, rank):
    """Rank `rank`'s partition, as SAT's mpu layers hold it (GLM130B.md, "The 8-way split")."""
    out = {}
    for k, v in sd.items():
        name = k.split(".", 3)[-1] if k.startswith("transformer.layers.") else k
        if k == "transformer.word_embeddings.weight":        # VocabParallelEmbedding: rows
            n = VOCAB // MP
            out[k] = v[rank * n:(rank + 1) * n].clone()
        elif name.startswith("attention.query_key_value."):  # ColumnParallelLinear: rows
            n = 3 * H // MP
            out[k] = v[rank * n:(rank + 1) * n].clone()
        elif name.startswith("mlp.dense_h_to_4h."):          # column-parallel, GeGLU halves
            n = FFN // MP
            a = v[rank * n:(rank + 1) * n]
            b = v[FFN + rank * n:FFN + (rank + 1) * n]
            out[k] = torch.cat([a, b], 0).clone()
        elif name in ("attention.dense.weight", "mlp.dense_4h_to_h.weight"):  # RowParallel: cols
            n = v.shape[1] // MP
            out[k] = v[:, rank * n:(rank + 1) * n].clone()
        else:                                                  # norms, row-parallel biases
            out[k] = v.clone()
        if k.endswith(".attention.dense.weight"):
            pass
    # the rotary buffer SAT's RotaryEmbedding registers (recomputed by glmq; skipped)
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
    out["mixins.rotary-embedding.rotary_emb.inv_freq"] = inv
    return out


# ---- the architecture (formats/GLM130B.md), fp32 -----------------------------------------------

def layout(ids):
    """positions, context length and mask as GLM-130B's generate.py builds them."""
    ids = list(ids)
    sop = ids.index(SOP)
    use_gmask = MASK not in ids[:sop]
    mask_pos = ids.index(GMASK if use_gmask else MASK)
    n = len(ids)
    pos = torch.arange(n)
    if not use_gmask:
        pos[sop:] = mask_pos
    vis = torch.ones(n, n).tril()
    vis[:, :sop] = 1            # context_length - 1 == sop index: bidirectional context
    return pos, vis.bool()


def rope_tables(n):
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    t = torch.arange(n, dtype=torch.float32)
    fr = torch.einsum("i,j->ij", t, inv)
    emb = torch.cat((fr, fr), -1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), -1)


def apply_rope(x, cos, sin, pos):      # x [s, heads, d]
    c, s = cos[pos][:, None, :], sin[pos][:, None, :]
    return x * c + rotate_half(x) * s


def attention_heads(x, wqkv, bqkv, nheads, pos, vis, cos, sin):
    """Heads of one partition: x [s, h] -> context [s, nheads*d] (before the dense layer)."""
    s = x.shape[0]
    qkv = (x @ wqkv.t() + bqkv).view(s, nheads, 3 * D)
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    q, k = apply_rope(q, cos, sin, pos), apply_rope(k, cos, sin, pos)
    sc = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(D)
    sc = sc.masked_fill(~vis[None], -10000.0)
    p = torch.softmax(sc, -1)
    ctx = torch.einsum("hij,jhd->ihd", p, v)
    return ctx.reshape(s, nheads * D)


def geglu(u):
    a, b = u.chunk(2, -1)
    return a * F.gelu(b)           # exact (erf) GELU on the second half


def forward_merged(w, ids):
    w = {k: v.float() for k, v in w.items()}
    pos, vis = layout(ids)
    cos, sin = rope_tables(len(ids))
    x = w["transformer.word_embeddings.weight"][torch.tensor(ids)]
    for l in range(L):
        p = "transformer.layers.%d." % l
        a_in = F.layer_norm(x, (H,), w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"], EPS)
        ctx = attention_heads(a_in, w[p + "attention.query_key_value.weight"],
                              w[p + "attention.query_key_value.bias"], NH, pos, vis, cos, sin)
        att = ctx @ w[p + "attention.dense.weight"].t() + w[p + "attention.dense.bias"]
        x = a_in * ALPHA + att
        m_in = F.layer_norm(x, (H,), w[p + "post_attention_layernorm.weight"],
                            w[p + "post_attention_layernorm.bias"], EPS)
        u = m_in @ w[p + "mlp.dense_h_to_4h.weight"].t() + w[p + "mlp.dense_h_to_4h.bias"]
        y = geglu(u) @ w[p + "mlp.dense_4h_to_h.weight"].t() + w[p + "mlp.dense_4h_to_h.bias"]
        x = m_in * ALPHA + y
    x = F.layer_norm(x, (H,), w["transformer.final_layernorm.weight"],
                     w["transformer.final_layernorm.bias"], EPS)
    return x @ w["transformer.word_embeddings.weight"].t()


def forward_tp(ranks, ids):
    """The same model run partition by partition, as the 8 ranks of SAT run it."""
    rk = [{k: v.float() for k, v in r.items()} for r in ranks]
    pos, vis = layout(ids)
    cos, sin = rope_tables(len(ids))
    t = torch.tensor(ids)
    n = VOCAB // MP
    x = torch.zeros(len(ids), H)
    for r in range(MP):   # VocabParallelEmbedding: each rank its rows, all-reduced
        e = rk[r]["transformer.word_embeddings.weight"]
        m = (t >= r * n) & (t < (r + 1) * n)
        x[m] += e[t[m] - r * n]
    hp = NH // MP
    for l in range(L):
        p = "transformer.layers.%d." % l
        r0 = rk[0]
        a_in = F.layer_norm(x, (H,), r0[p + "input_layernorm.weight"], r0[p + "input_layernorm.bias"], EPS)
        att = sum(attention_heads(a_in, rk[r][p + "attention.query_key_value.weight"],
                                  rk[r][p + "attention.query_key_value.bias"], hp, pos, vis, cos, sin)
                  @ rk[r][p + "attention.dense.weight"].t() for r in range(MP))
        att = att + r0[p + "attention.dense.bias"]
        x = a_in * ALPHA + att
        m_in = F.layer_norm(x, (H,), r0[p + "post_attention_layernorm.weight"],
                            r0[p + "post_attention_layernorm.bias"], EPS)
        y = sum(geglu(m_in @ rk[r][p + "mlp.dense_h_to_4h.weight"].t() + rk[r][p + "mlp.dense_h_to_4h.bias"])
                @ rk[r][p + "mlp.dense_4h_to_h.weight"].t() for r in range(MP))
        y = y + r0[p + "mlp.dense_4h_to_h.bias"]
        x = m_in * ALPHA + y
    x = F.layer_norm(x, (H,), rk[0]["transformer.final_layernorm.weight"],
                     rk[0]["transformer.final_layernorm.bias"], EPS)
    return torch.cat([x @ rk[r]["transformer.word_embeddings.weight"].t() for r in range(MP)], -1)


def crc(t):
    return zlib.crc32(t.contiguous().numpy().tobytes()) & 0xFFFFFFFF


def main():
    torch.set_num_threads(1)
    sd = make_weights()
    ranks = [split(sd, r) for r in range(MP)]
    sat = os.path.join(OUT, "sat")
    os.makedirs(os.path.join(sat, str(ITER)), exist_ok=True)
    with open(os.path.join(sat, "latest"), "w") as f:
        f.write(str(ITER))
    cfg = {
        "model_class": "GLM130B", "tokenizer_type": "icetk-glm-130B",
        "num_layers": L, "hidden_size": H, "num_attention_heads": NH, "vocab_size": VOCAB,
        "layernorm_order": "post", "model_parallel_size": MP, "max_sequence_length": MAXSEQ,
        "inner_hidden_size": FFN,
        "mask_token_id": MASK, "gmask_token_id": GMASK, "sop_token_id": SOP, "eop_token_id": EOP,
    }
    with open(os.path.join(sat, "model_config.json"), "w") as f:
        json.dump(cfg, f, indent=4)
        f.write("\n")
    for r in range(MP):
        torch.save({"module": ranks[r]},
                   os.path.join(sat, str(ITER), "mp_rank_%02d_model_states.pt" % r))

    gold = os.path.join(OUT, "golden")
    os.makedirs(gold, exist_ok=True)
    rng = np.random.RandomState(7)
    body = [int(i) for i in rng.randint(0, 1000, size=9)]
    cases = {
        "gmask": body[:6] + [GMASK, SOP] + body[6:9],
        "mask": body[:3] + [MASK] + body[3:6] + [SOP] + body[6:8],
    }
    man = {"tensors": {}, "cases": {}, "alpha": ALPHA, "tp_vs_merged_max_rel": 0.0}
    for k, v in sd.items():
        man["tensors"][k] = {"shape": list(v.shape), "crc32_f16": crc(v)}
    worst = 0.0
    with torch.no_grad():
        for name, ids in cases.items():
            a = forward_merged(sd, ids)
            b = forward_tp(ranks, ids)
            rel = float((a - b).abs().max() / a.abs().max())
            worst = max(worst, rel)
            assert rel < 1e-4, (name, rel)
            np.save(os.path.join(gold, "ids_%s.npy" % name), np.array(ids, dtype=np.int32))
            np.save(os.path.join(gold, "logits_%s.npy" % name), a.numpy().astype(np.float32))
            man["cases"][name] = {"ids": ids, "max_abs_logit": float(a.abs().max())}
    man["tp_vs_merged_max_rel"] = worst
    with open(os.path.join(gold, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", OUT, "tp vs merged max rel %.2e" % worst)


if __name__ == "__main__":
    main()
