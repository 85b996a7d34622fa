#!/usr/bin/python3
"""Goldens for quant/gptq.c: GPTQ and the activation-weighted scale search, computed in PyTorch
float64 from the algorithms' definitions (Frantar et al. 2022, Algorithm 1, with the per-row
fp16 scale and round-to-nearest conventions of quant/quant.h). Writes tests/data/gptq/*.npy.

    /usr/bin/python3 samples/gen_gptq.py

Deterministic (fixed seed, one thread). glmq never runs this script.
"""
import os

import numpy as np
import torch

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "gptq")
ROWS, COLS, TOKENS = 48, 160, 512
OUTLIERS = (3, 77, 150, 159)  # input channels with 10x activations
DEAD = 50                     # an input channel that is always zero
# A wide case: several of quant/gptq.c's lazy batches (SWEEP_BLOCK = 128 columns), so that the
# batch updates run over several column tiles and an edge. Its inputs are small integers (int8,
# stored), so that H = x^T x is exact in float64 in any summation order.
WROWS, WCOLS, WTOKENS = 20, 520, 384
WOUTLIERS = (5, 200, 401, 519)
WDEAD = 390


def make_inputs():
    g = np.random.default_rng(20261206)
    w = (g.standard_normal((ROWS, COLS)) * 0.02).astype(np.float32)
    w[:, list(OUTLIERS)] *= 4.0  # larger weights on the outlier channels too
    w[5, 7] = 0.3                # one row with a single large weight
    w[9, :] = 0.0                # an all-zero row
    x = g.standard_normal((TOKENS, COLS))
    x[:, list(OUTLIERS)] *= 10.0
    x[:, DEAD] = 0.0
    h = x.T @ x                  # float64, sum over tokens of x x^T
    return w, h


def make_wide_inputs():
    g = np.random.default_rng(20261207)
    w = (g.standard_normal((WROWS, WCOLS)) * 0.02).astype(np.float32)
    w[:, list(WOUTLIERS)] *= 4.0
    x = g.integers(-12, 13, size=(WTOKENS, WCOLS)).astype(np.int8)
    x[:, list(WOUTLIERS)] *= 10
    x[:, WDEAD] = 0
    h = x.astype(np.float64).T @ x.astype(np.float64)
    return w, x, h


def plain_scale(wr, qmax):
    amax = np.float32(np.max(np.abs(wr)))
    return np.float16(amax / np.float32(qmax))


def rtn_codes(wr, s16, qmax):
    s = np.float32(s16)
    if s == 0:
        return np.zeros(wr.shape, np.int8)
    x = np.rint(wr.astype(np.float32) / s)
    return np.clip(x, -qmax, qmax).astype(np.int8)


def weighted_err(wr, d, qmax, s16):
    q = rtn_codes(wr, s16, qmax).astype(np.float64)
    r = wr.astype(np.float64) - q * float(np.float32(s16))
    return float(np.sum(d * r * r))


def weighted_scale(wr, d, qmax):
    """argmin over fp16 candidates of sum d (w - s q(s))^2 (gptq.h)."""
    amax = np.float32(np.max(np.abs(wr)))
    s0 = np.float16(amax / np.float32(qmax))
    if np.float32(s0) == 0:
        return s0
    best, best_e = s0, weighted_err(wr, d, qmax, s0)
    for k in range(-8, 17):
        den32 = np.float32(qmax) * (np.float32(1.0) + np.float32(k) / np.float32(40.0))
        c0 = np.float16(amax / den32)
        q = rtn_codes(wr, c0, qmax).astype(np.float64)
        num, den = float(np.sum(d * wr.astype(np.float64) * q)), float(np.sum(d * q * q))
        c1 = np.float16(np.float32(num / den)) if den > 0 else c0
        for c in (c0, c1):
            cs = np.float32(c)
            if not (cs > 0) or not np.isfinite(cs):
                continue
            e = weighted_err(wr, d, qmax, c)
            if e < best_e:
                best, best_e = c, e
    return best


def sweep(w, h, scol, qmin, qmax, damp, act_order):
    """GPTQ's column sweep with fixed scales scol [rows, n] (each column's scale); raw codes."""
    rows, n = w.shape
    H = torch.tensor(h, dtype=torch.float64).clone()
    W = torch.tensor(w, dtype=torch.float64).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = torch.arange(n)
    if act_order:
        perm = torch.tensor(sorted(range(n), key=lambda c: (-float(H[c, c]), c)))
        W, H = W[:, perm], H[perm][:, perm]
    S = torch.tensor(scol, dtype=torch.float64)[:, perm]
    H += damp * torch.mean(torch.diag(H)) * torch.eye(n, dtype=torch.float64)
    L = torch.linalg.cholesky(H)
    U = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    Q = torch.zeros((rows, n), dtype=torch.float64)
    for j in range(n):
        col, s = W[:, j], S[:, j]
        q = torch.where(s != 0, torch.clamp(torch.round(col / torch.where(s != 0, s, 1.0)),
                                            qmin, qmax), torch.zeros_like(col))
        Q[:, j] = q
        e = (col - q * s) / U[j, j]
        W[:, j:] -= e[:, None] * U[j, j:][None, :]
    raw = np.zeros((rows, n), np.int8)
    raw[:, perm.numpy()] = Q.numpy().astype(np.int8)
    return raw


def keep_better(w, h, raw, rtn, scol):
    """Per row GPTQ's codes unless round-to-nearest's H-weighted error is lower: (codes, errs)."""
    codes = raw.copy()
    errs = np.zeros((w.shape[0], 2))
    for r in range(w.shape[0]):
        dg, dr = w[r] - raw[r] * scol[r], w[r] - rtn[r] * scol[r]
        eg, er = float(dg @ h @ dg), float(dr @ h @ dr)
        if eg > er:
            codes[r] = rtn[r]
        errs[r] = (min(eg, er), er)
    return codes, errs


def gptq(w, h, qmax, damp=0.01, act_order=False, scales=None):
    """Per-row GPTQ with fixed scales; returns (codes, scales, raw GPTQ codes, errors)."""
    rows, n = w.shape
    if scales is None:
        scales = np.array([plain_scale(w[r], qmax) for r in range(rows)], np.float16)
    scol = np.repeat(scales.astype(np.float32).astype(np.float64)[:, None], n, axis=1)
    raw = sweep(w, h, scol, -qmax, qmax, damp, act_order)
    rtn = np.array([rtn_codes(w[r], scales[r], qmax) for r in range(rows)])
    codes, errs = keep_better(w.astype(np.float64), h, raw, rtn, scol)
    return codes, scales, raw, errs


def group_rule(wg, q4):
    """ggml's Q4_0 / Q8_0 rule on one group (quant_ref.c glmq_group_rtn): (codes, fp16 scale)."""
    wg = wg.astype(np.float32)
    i = int(np.argmax(np.abs(wg)))  # the first element of largest |w|
    d = np.float32(wg[i]) / np.float32(-8.0) if q4 else np.float32(np.abs(wg[i])) / np.float32(127.0)
    idv = np.float32(1.0) / d if d != 0 else np.float32(0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        if q4:
            v = wg * idv + np.float32(8.5)
            q = np.where((v >= 0) & (v < 128), np.minimum(np.trunc(v), 15), 0) - 8
        else:
            q = np.round(wg * idv)  # numpy rounds half to even, ggml's roundf half away: fix below
            x = wg * idv
            q = np.where(np.abs(x - np.trunc(x)) == 0.5, np.trunc(x) + np.sign(x), q)
    return q.astype(np.int8), np.float16(d)


def gptq_groups(w, h, q4, group, damp=0.01, act_order=False):
    """GPTQ with static group scales (the group rule's, from the original weights): gptq.h."""
    rows, n = w.shape
    ngs = (n + group - 1) // group
    qmin, qmax = (-8, 7) if q4 else (-127, 127)
    scales = np.zeros((rows, ngs), np.float16)
    rtn = np.zeros((rows, n), np.int8)
    for r in range(rows):
        for g in range(ngs):
            rtn[r, g * group:(g + 1) * group], scales[r, g] = group_rule(w[r, g * group:(g + 1) * group], q4)
    scol = np.repeat(scales.astype(np.float32).astype(np.float64), group, axis=1)[:, :n]
    raw = sweep(w, h, scol, qmin, qmax, damp, act_order)
    codes, errs = keep_better(w.astype(np.float64), h, raw, rtn, scol)
    return codes, scales, raw, errs


def save_case(name, codes, scales, raw, errs, baseline, keep_raw=True):
    """Writes one GPTQ case's goldens (raw: GPTQ's codes before the per-row fallback to RTN)."""
    np.save(os.path.join(OUT, name + "_codes.npy"), codes)
    if keep_raw:
        np.save(os.path.join(OUT, name + "_raw.npy"), raw)
    np.save(os.path.join(OUT, name + "_scales.npy"), scales.view(np.uint16))
    np.save(os.path.join(OUT, name + "_err.npy"), errs)
    print("%-14s H-weighted error: GPTQ %.6g, %s %.6g (ratio %.3f), rows kept RTN %d" % (
        name, errs[:, 0].sum(), baseline, errs[:, 1].sum(), errs[:, 0].sum() / errs[:, 1].sum(),
        int(np.sum(np.any(codes != raw, axis=1)))))


def main():
    os.makedirs(OUT, exist_ok=True)
    w, h = make_inputs()
    np.save(os.path.join(OUT, "w.npy"), w)
    np.save(os.path.join(OUT, "h.npy"), h)
    d = np.diag(h).copy()
    cases = {
        "int4": dict(qmax=7),
        "int4_act": dict(qmax=7, act_order=True),
        "int8": dict(qmax=127),
    }
    for name, kw in cases.items():
        save_case(name, *gptq(w, h, **kw), "RTN")
    for name, q4, group, act in (("int4_g32_act", True, 32, True), ("int8_g64", False, 64, False)):
        save_case(name, *gptq_groups(w, h, q4, group, act_order=act), "group RTN")
    ww, wx, wh = make_wide_inputs()
    np.save(os.path.join(OUT, "wide_w.npy"), ww)
    np.save(os.path.join(OUT, "wide_x.npy"), wx)
    save_case("wide_int4_act", *gptq(ww, wh, qmax=7, act_order=True), "RTN", keep_raw=False)
    save_case("wide_int4_g128", *gptq_groups(ww, wh, True, 128), "group RTN", keep_raw=False)
    for qmax, name in ((7, "search4"), (127, "search8")):
        sc = np.array([weighted_scale(w[r], d, qmax) for r in range(ROWS)], np.float16)
        np.save(os.path.join(OUT, name + "_scales.npy"), sc.view(np.uint16))
        e0 = sum(weighted_err(w[r], d, qmax, plain_scale(w[r], qmax)) for r in range(ROWS))
        e1 = sum(weighted_err(w[r], d, qmax, sc[r]) for r in range(ROWS))
        print("%-9s diag-weighted error: plain %.6g, searched %.6g (ratio %.3f)" % (
            name, e0, e1, e1 / e0))


if __name__ == "__main__":
    main()
