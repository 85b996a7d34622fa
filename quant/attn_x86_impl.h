/*
 * attn_x86_impl.h - the one body of the x86 attention kernel (quant/attn.h), instantiated once
 * per ISA (libdeflate lib/x86/<name>_impl.h style). Never included by anything but
 * quant/attn_avx2.c and quant/attn_avx512.c, each of which first defines the small vector
 * abstraction below for its ISA and is compiled with that ISA's flags. The abstraction maps
 * each operation onto the intrinsic the per-ISA kernels used before they were merged, so every
 * level computes exactly what it computed before (same operations, same order, same bits).
 *
 * Scores: AT_W keys at a time. Each key gets its own accumulator vector over the d columns
 * (AT_W per FMA, the last vector masked), then a shuffle/add tree (at_tree) turns the AT_W
 * accumulators into one vector whose lane j is the score of key j: one store and one max per
 * AT_W keys instead of AT_W horizontal sums. A partial last block repeats key n-1 in its unused
 * slots and stores under a mask. NaN scores never enter the running max (as in _ref: their exp
 * is then 0). Softmax: the Cephes polynomial of attn.h AT_W lanes at a time. Context: up to 8
 * vectors (8*AT_W columns) of output accumulate in registers over all keys, two keys per step
 * with separate accumulator sets, so the FMA chains are half as deep.
 *
 * ---- the per-ISA abstraction (defined before the include) ----------------------------------
 *   AT_ISA      suffix of the entry point (avx2, avx512);  AT_W: fp32 lanes per vector
 *   AT_GV       column vectors per value pass of the group kernel (what the registers hold)
 *   at_f        AT_W x fp32
 *   at_m        a lane predicate: at_lanes(n) = the first n lanes (n clamped to 0..AT_W),
 *               at_full(), at_none(); at_load_m zeroes the other lanes and never touches their
 *               memory, at_store_m leaves it alone
 *   at_loadu at_storeu   full-width unaligned load / store (the group kernel's work space)
 *   at_load_m at_store_m at_set1 at_zero at_add at_sub at_mul at_min at_fmadd (a*b+c)
 *   at_fnmadd (c-a*b)
 *   at_tree(acc)          lane j = the sum of the AT_W lanes of acc[j]
 *   at_hmax at_hsum       horizontal max / sum to a float
 *   at_max_where(m, valid, sc)  lanes of m where valid and sc is not NaN -> max(m, sc)
 *   at_keep(valid, e)     e in the valid lanes, +0 elsewhere
 *   at_ge(x, c)           predicate x >= c (ordered); at_maskz_mul(ok, a, b): a*b where ok, else 0
 *   at_rint(x)            round to nearest even;  at_pow2i(m): 2^m for integral m in [-126, 0]
 *   at_tree4(acc) at_tree_u(u)   at_tree in two steps: 4 keys' accumulators -> u, the AT_W/4
 *                         u of a block -> the result (at_tree = at_tree_u of the at_tree4s)
 *   AT_GV2      column vectors per value pass of the group kernel's two-head loop
 *   AT_GH       heads per pass of the group kernel's score loop (AVX2: 2, so 8 accumulators,
 *               2 queries and a key fit the 16 ymm; AVX-512: 4, 16 + 4 + 1 of the 32 zmm)
 *   AT_REG(x)   keep the vector x in a register (an empty asm): a key or value vector feeds two
 *               heads' FMAs, and without it the compiler folds the load into both FMAs, two
 *               loads of one vector where the load ports are the limit (a no-op when emulated)
 */
#ifndef AT_ISA
#error "attn_x86_impl.h: include from attn_<isa>.c after defining the vector abstraction"
#endif

#define AT_CAT2(a, b) a##b
#define AT_CAT(a, b) AT_CAT2(a, b)
#define AT_STR2(x) #x
#define AT_STR(x) AT_STR2(x)
#define AT_UNROLL(n) _Pragma(AT_STR(GCC unroll n))

/* glmq_att_exp of attn.h, AT_W lanes: FMA where _ref rounds twice. */
AI at_f at_exp(at_f x)
{
    const at_m ok = at_ge(x, at_set1(GLMQ_ATT_EXP_MIN));
    x = at_min(x, at_zero());
    const at_f m = at_rint(at_mul(x, at_set1(GLMQ_ATT_LOG2E)));
    at_f r = at_fnmadd(m, at_set1(GLMQ_ATT_C1), x);
    r = at_fnmadd(m, at_set1(GLMQ_ATT_C2), r);
    at_f p = at_set1(GLMQ_ATT_P0);
    p = at_fmadd(p, r, at_set1(GLMQ_ATT_P1));
    p = at_fmadd(p, r, at_set1(GLMQ_ATT_P2));
    p = at_fmadd(p, r, at_set1(GLMQ_ATT_P3));
    p = at_fmadd(p, r, at_set1(GLMQ_ATT_P4));
    p = at_fmadd(p, r, at_set1(GLMQ_ATT_P5));
    p = at_fmadd(at_mul(p, r), r, at_add(r, at_set1(1.0f)));
    return at_maskz_mul(ok, p, at_pow2i(m));
}

/*
 * Scores of the AT_W keys u0 .. u0+AT_W-1 (key n-1 in the slots past n) for the query q:
 * stores the valid lanes to s + u0 and returns vmax updated with them. Full column vectors load
 * plainly, the last one under dlast (the same values a masked load of a full vector gives).
 */
AI at_f at_score_block(const float *q, const float *k, int64_t ld, int64_t dv, at_m dlast,
                       int64_t n, int64_t u0, float scale, float *s, at_f vmax)
{
    const float *kr[AT_W];
    for (int j = 0; j < AT_W; j++) kr[j] = k + (u0 + j < n ? u0 + j : n - 1) * ld;
    at_f acc[AT_W];
    for (int j = 0; j < AT_W; j++) acc[j] = at_zero();
    int64_t i = 0;
    for (; i < dv - 1; i++) {
        const at_f qv = at_loadu(q + AT_W * i);
        AT_UNROLL(AT_W)
        for (int j = 0; j < AT_W; j++) acc[j] = at_fmadd(qv, at_loadu(kr[j] + AT_W * i), acc[j]);
    }
    const at_f qv = at_load_m(q + AT_W * i, dlast);
    AT_UNROLL(AT_W)
    for (int j = 0; j < AT_W; j++)
        acc[j] = at_fmadd(qv, at_load_m(kr[j] + AT_W * i, dlast), acc[j]);
    const at_m valid = at_lanes(n - u0);
    const at_f sc = at_mul(at_tree(acc), at_set1(scale));
    at_store_m(s + u0, valid, sc);
    return at_max_where(vmax, valid, sc);
}

/*
 * at_score_block for NH heads (NH a constant, 1 .. AT_GH; queries q[h], scores to s[h],
 * running maxima m[h]) that share every key load: the block's keys 4 at a time, NH x 4
 * accumulators, each key vector loaded once for all NH heads; each group of 4 keys reduced by
 * at_tree4 as soon as it is done and the block by at_tree_u. Every accumulator runs the
 * per-head block's FMAs in the same order and the tree is the same, so every head's scores
 * are at_score_block's bits.
 */
AI void at_score_blockn(const int NH, const float *const *q, const float *k, int64_t ld,
                        int64_t dv, at_m dlast, int64_t n, int64_t u0, float scale,
                        float *const *s, at_f *m)
{
    at_f uh[AT_GH][AT_W / 4];
    AT_UNROLL(4)
    for (int g = 0; g < AT_W / 4; g++) {
        const float *kr[4];
        for (int j = 0; j < 4; j++) {
            const int64_t u = u0 + 4 * g + j;
            kr[j] = k + (u < n ? u : n - 1) * ld;
        }
        at_f a[AT_GH][4];
        AT_UNROLL(4)
        for (int h = 0; h < NH; h++)
            for (int j = 0; j < 4; j++) a[h][j] = at_zero();
        int64_t i = 0;
        for (; i < dv - 1; i++) {
            at_f qv[AT_GH];
            AT_UNROLL(4)
            for (int h = 0; h < NH; h++) qv[h] = at_loadu(q[h] + AT_W * i);
            AT_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                at_f kv = at_loadu(kr[j] + AT_W * i);
                AT_REG(kv);
                AT_UNROLL(4)
                for (int h = 0; h < NH; h++) a[h][j] = at_fmadd(qv[h], kv, a[h][j]);
            }
        }
        at_f qv[AT_GH];
        AT_UNROLL(4)
        for (int h = 0; h < NH; h++) qv[h] = at_load_m(q[h] + AT_W * i, dlast);
        AT_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            const at_f kv = at_load_m(kr[j] + AT_W * i, dlast);
            AT_UNROLL(4)
            for (int h = 0; h < NH; h++) a[h][j] = at_fmadd(qv[h], kv, a[h][j]);
        }
        AT_UNROLL(4)
        for (int h = 0; h < NH; h++) uh[h][g] = at_tree4(a[h]);
    }
    const at_m valid = at_lanes(n - u0);
    AT_UNROLL(4)
    for (int h = 0; h < NH; h++) {
        const at_f sc = at_mul(at_tree_u(uh[h]), at_set1(scale));
        at_store_m(s[h] + u0, valid, sc);
        m[h] = at_max_where(m[h], valid, sc);
    }
}

/* Requests keys [a, b) (d floats each, key u at k + u * ld) into L1, one prefetch per 64-byte
 * line. */
AI void at_prefetch_keys(const float *k, int64_t ld, int64_t d, int64_t a, int64_t b)
{
    for (int64_t u = a; u < b; u++)
        for (int64_t c = 0; c < d; c += 16) __builtin_prefetch(k + u * ld + c, 0, 3);
}

/* The score blocks of keys [t0, t1) for the NH heads from h (at_score_blockn; one head:
 * at_score_block, whose AT_W accumulators give it the chains a lone head lacks), their running
 * maxima kept in the work space (head h's at x + h * W); keys [pa, pb) (of the next tile) are
 * requested a few before each block. */
AI void at_score_tile(const int NH, const float *q, int64_t ldq, int64_t h, const float *k,
                      int64_t ld, int64_t d, int64_t dv, at_m dlast, int64_t n, int64_t t0,
                      int64_t t1, float scale, float *s, float *x, int64_t W, int64_t pa,
                      int64_t pb)
{
    const int64_t nb = (t1 - t0 + AT_W - 1) / AT_W, per = (pb - pa + nb - 1) / nb;
    const float *qs[AT_GH];
    float *ss[AT_GH];
    at_f m[AT_GH];
    AT_UNROLL(4)
    for (int e = 0; e < NH; e++) {
        qs[e] = q + (h + e) * ldq;
        ss[e] = s + (h + e) * n;
        m[e] = at_loadu(x + (h + e) * W);
    }
    for (int64_t u0 = t0, a = pa; u0 < t1; u0 += AT_W, a += per) {
        at_prefetch_keys(k, ld, d, a, a + per < pb ? a + per : pb);
        if (NH == 1) m[0] = at_score_block(qs[0], k, ld, dv, dlast, n, u0, scale, ss[0], m[0]);
        else at_score_blockn(NH, qs, k, ld, dv, dlast, n, u0, scale, ss, m);
    }
    AT_UNROLL(4)
    for (int e = 0; e < NH; e++) at_storeu(x + (h + e) * W, m[e]);
}

/*
 * Context accumulation over keys [ua, ub) (ua even) for the nvec <= NV column vectors from c0
 * (NV a constant: 8, or AT_GV in the group kernel): key pairs (u, u+1) into a0 / a1, an odd last
 * key into a0. `full`: all NV vectors are whole (plain loads); otherwise loads under mk. Every
 * accumulator a0[i] / a1[i] sees the same FMAs in the same key order whatever NV is: the
 * column blocking never changes a result.
 */
AI void at_value_span(const float *s, const float *v, int64_t ld, int64_t c0, int NV, int nvec,
                      const at_m *mk, int full, int64_t ua, int64_t ub, at_f *a0, at_f *a1)
{
    const float *vc = v + AT_W * c0;
    int64_t u = ua;
    if (full) {
        for (; u + 2 <= ub; u += 2) {
            const at_f p0 = at_set1(s[u]), p1 = at_set1(s[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
            AT_UNROLL(8)
            for (int i = 0; i < NV; i++) {
                a0[i] = at_fmadd(p0, at_loadu(v0 + AT_W * i), a0[i]);
                a1[i] = at_fmadd(p1, at_loadu(v1 + AT_W * i), a1[i]);
            }
        }
    } else {
        for (; u + 2 <= ub; u += 2) {
            const at_f p0 = at_set1(s[u]), p1 = at_set1(s[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
            AT_UNROLL(8)
            for (int i = 0; i < NV; i++) {
                if (i >= nvec) break;
                a0[i] = at_fmadd(p0, at_load_m(v0 + AT_W * i, mk[i]), a0[i]);
                a1[i] = at_fmadd(p1, at_load_m(v1 + AT_W * i, mk[i]), a1[i]);
            }
        }
    }
    if (u < ub) {
        const at_f p0 = at_set1(s[u]);
        const float *v0 = vc + u * ld;
        for (int i = 0; i < nvec; i++)
            a0[i] = at_fmadd(p0, at_load_m(v0 + AT_W * i, mk[i]), a0[i]);
    }
}

/*
 * at_value_span for two heads (weights sa, sb; accumulators a0a/a1a, a0b/a1b) over the AT_GV2
 * column vectors from c0, all whole or the last under mk: each value vector is loaded once for
 * both heads. Every accumulator sees at_value_span's FMAs in the same key order.
 */
AI void at_value_span2(const float *sa, const float *sb, const float *v, int64_t ld,
                       int64_t c0, int nvec, const at_m *mk, int full, int64_t ua, int64_t ub,
                       at_f *a0a, at_f *a1a, at_f *a0b, at_f *a1b)
{
    const float *vc = v + AT_W * c0;
    int64_t u = ua;
    if (full) {
        for (; u + 2 <= ub; u += 2) {
            const at_f pa0 = at_set1(sa[u]), pa1 = at_set1(sa[u + 1]);
            const at_f pb0 = at_set1(sb[u]), pb1 = at_set1(sb[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
            AT_UNROLL(4)
            for (int i = 0; i < AT_GV2; i++) {
                at_f x0 = at_loadu(v0 + AT_W * i), x1 = at_loadu(v1 + AT_W * i);
                AT_REG(x0);
                AT_REG(x1);
                a0a[i] = at_fmadd(pa0, x0, a0a[i]);
                a0b[i] = at_fmadd(pb0, x0, a0b[i]);
                a1a[i] = at_fmadd(pa1, x1, a1a[i]);
                a1b[i] = at_fmadd(pb1, x1, a1b[i]);
            }
        }
    } else {
        for (; u + 2 <= ub; u += 2) {
            const at_f pa0 = at_set1(sa[u]), pa1 = at_set1(sa[u + 1]);
            const at_f pb0 = at_set1(sb[u]), pb1 = at_set1(sb[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
            AT_UNROLL(4)
            for (int i = 0; i < AT_GV2; i++) {
                if (i >= nvec) break;
                const at_f x0 = at_load_m(v0 + AT_W * i, mk[i]);
                const at_f x1 = at_load_m(v1 + AT_W * i, mk[i]);
                a0a[i] = at_fmadd(pa0, x0, a0a[i]);
                a0b[i] = at_fmadd(pb0, x0, a0b[i]);
                a1a[i] = at_fmadd(pa1, x1, a1a[i]);
                a1b[i] = at_fmadd(pb1, x1, a1b[i]);
            }
        }
    }
    if (u < ub) {
        const at_f pa0 = at_set1(sa[u]), pb0 = at_set1(sb[u]);
        const float *v0 = vc + u * ld;
        for (int i = 0; i < nvec; i++) {
            const at_f x0 = at_load_m(v0 + AT_W * i, mk[i]);
            a0a[i] = at_fmadd(pa0, x0, a0a[i]);
            a0b[i] = at_fmadd(pb0, x0, a0b[i]);
        }
    }
}

/* e_u = exp(s_u - mx) in place for u in [0, n); returns the lane sums of e (Z = their hsum). */
AI at_f exp_pass(float *s, int64_t n, at_f mx)
{
    at_f vz = at_zero();
    for (int64_t u0 = 0; u0 < n; u0 += AT_W) {
        const at_m valid = at_lanes(n - u0);
        const at_f e = at_exp(at_sub(at_load_m(s + u0, valid), mx));
        at_store_m(s + u0, valid, e);
        vz = at_add(vz, at_keep(valid, e));
    }
    return vz;
}

void AT_CAT(glmq_att_head_, AT_ISA)(const float *q, const float *k, const float *v, int64_t ld,
                                    int64_t d, int64_t n, float scale, float *s, float *out)
{
    const int64_t dv = (d + AT_W - 1) / AT_W;
    const at_m full = at_full(), dlast = at_lanes(d - AT_W * (dv - 1));

    /* 1. scores and their max */
    at_f vmax = at_set1(-INFINITY);
    for (int64_t u0 = 0; u0 < n; u0 += AT_W)
        vmax = at_score_block(q, k, ld, dv, dlast, n, u0, scale, s, vmax);
    const at_f mx = at_set1(at_hmax(vmax));

    /* 2. e_u = exp(s_u - max), Z */
    const at_f iz = at_set1(1.0f / at_hsum(exp_pass(s, n, mx)));

    /* 3. out = (sum_u e_u v_u) / Z, 8 vectors of columns per pass */
    for (int64_t c0 = 0; c0 < dv; c0 += 8) {
        const int nvec = dv - c0 < 8 ? (int)(dv - c0) : 8;
        at_f a0[8], a1[8];
        at_m mk[8];
        for (int i = 0; i < 8; i++) {
            a0[i] = a1[i] = at_zero();
            mk[i] = i >= nvec ? at_none() : c0 + i == dv - 1 ? dlast : full;
        }
        const int whole = nvec == 8 && (c0 + 8 < dv || d % AT_W == 0);
        at_value_span(s, v, ld, c0, 8, nvec, mk, whole, 0, n, a0, a1);
        for (int i = 0; i < nvec; i++)
            at_store_m(out + AT_W * (c0 + i), mk[i], at_mul(at_add(a0[i], a1[i]), iz));
    }
}

/* The value pass's running sums of one head between tiles: nvec column vectors from c0 of the
 * even-key (a0s) and odd-key (a1s) accumulators in the work space, reloaded, stored, or after
 * the last tile combined into the output, (a0 + a1) * (1/Z), under the column masks. */
AI void at_acc_reload(const float *a0s, const float *a1s, int64_t c0, int nvec, at_f *a0,
                      at_f *a1)
{
    for (int i = 0; i < nvec; i++) {
        a0[i] = at_loadu(a0s + AT_W * (c0 + i));
        a1[i] = at_loadu(a1s + AT_W * (c0 + i));
    }
}

AI void at_acc_save(float *a0s, float *a1s, int64_t c0, int nvec, const at_f *a0, const at_f *a1)
{
    for (int i = 0; i < nvec; i++) {
        at_storeu(a0s + AT_W * (c0 + i), a0[i]);
        at_storeu(a1s + AT_W * (c0 + i), a1[i]);
    }
}

AI void at_acc_out(float *oh, const at_m *mk, int64_t c0, int nvec, const at_f *a0,
                   const at_f *a1, float iz)
{
    const at_f vz = at_set1(iz);
    for (int i = 0; i < nvec; i++)
        at_store_m(oh + AT_W * (c0 + i), mk[i], at_mul(at_add(a0[i], a1[i]), vz));
}

/*
 * The group kernel (attn.h): hq heads, each running exactly the operations of the per-head
 * kernel above in the same order, with the key loop cut into tiles of T = glmq_att_tile(d) keys
 * (a multiple of 16, so of AT_W and even) shared by all heads.
 *
 * Work space after the hq*n scores, per head (unaligned floats, W = 2*dpad + 16 apart):
 *   a0[dpad] a1[dpad]   the even-key / odd-key context accumulators of the value pass, stored
 *                       after each tile and reloaded for the next (exact)
 *   x[16]               pass 1: the running max vector (vmax); after pass 2: x[0] = 1/Z
 * 1. For each key tile, for each group of AT_GH heads (then a pair, then an odd last head
 *    alone): the score blocks of the tile (at_score_blockn: each key vector loaded once for the
 *    group, 4 keys at a time; the same u0 = multiples of AT_W, the same clamp to key n-1 in the
 *    last block), vmax updated block by block in key order: so s and the max are the per-head
 *    kernel's. Four heads (AVX-512) need a third fewer loads per FMA than two (4 queries and
 *    4 keys per 16 FMAs against 2 and 4 per 8) and give 16 independent chains; a tile is read
 *    4 times instead of 8 for GLM's 16 heads per group.
 * 2. For each head: e_u and Z over its whole row, as the per-head pass 2.
 * 3. For each value tile, for each pair of heads, for each pass of AT_GV2 column vectors
 *    (AVX2: 2, so the 2 heads x 2 x 2 accumulators, 4 weights and the loaded vectors fit the 16
 *    ymm registers; AVX-512: 4): reload a0/a1 (zero on the first tile), key pairs (u, u+1)
 *    with u even as in the per-head loop, each value vector loaded once for both heads, the
 *    odd last key into a0, store back; after the last tile out = (a0 + a1) * (1/Z). An odd
 *    last head runs the one-head loop with AT_GV column vectors (AVX2: 4, AVX-512: 8).
 * The head pairing only shares loads: the loads, not the FMAs, were the limit (2 loads per FMA
 * issue slot at best), and per (head, key) the operations and their order are unchanged.
 * The forward pass's KV cache is group-major (ld == d), so a tile is one contiguous run that
 * spreads over all L1 sets. (With rows further apart, GLM-4's 1 KiB when both groups of a
 * token were side by side, a 64-key tile fell onto half of the sets and was re-read from L2 by
 * every head pair.) In decode the cache streams from memory, and only the first head group of
 * a tile misses: the hardware prefetchers stall while the other groups re-read the tile. So
 * each head group of the score pass requests its share of the next tile's keys into L1, one
 * prefetch per line, spread over its blocks (a tile is 32 KiB, L1 48 KiB on Zen 5). The value
 * pass has no such requests: measured the same way (bench/bench_attn.c) they ran at 0.83-1.03x
 * the speed without them with the values streaming from memory, 0.89-0.92x in cache.
 */
void AT_CAT(glmq_att_group_, AT_ISA)(const float *q, int64_t ldq, int64_t hq, const float *k,
                                     const float *v, int64_t ld, int64_t d, int64_t n,
                                     float scale, float *s, float *out, int64_t ldo)
{
    const int64_t dv = (d + AT_W - 1) / AT_W, dp = glmq_att_dpad(d), W = 2 * dp + 16;
    const int64_t T = glmq_att_tile(d);
    const at_m full = at_full(), dlast = at_lanes(d - AT_W * (dv - 1));
    float *work = s + hq * n;

    /* 1. scores and their max, tile by tile */
    for (int64_t h = 0; h < hq; h++) at_storeu(work + h * W + 2 * dp, at_set1(-INFINITY));
    for (int64_t t0 = 0; t0 < n; t0 += T) {
        const int64_t t1 = n - t0 < T ? n : t0 + T;
        float *x = work + 2 * dp;
        /* head groups of AT_GH, then a pair, then a single head; each requests its share of
         * the next tile's keys */
        const int64_t nx = (t1 + T < n ? t1 + T : n) - t1;
        const int64_t ng = hq / AT_GH + hq % AT_GH / 2 + hq % 2;
        for (int64_t h = 0, gi = 0; h < hq; gi++) {
            const int64_t pa = t1 + nx * gi / ng, pb = t1 + nx * (gi + 1) / ng;
            if (hq - h >= AT_GH) {
                at_score_tile(AT_GH, q, ldq, h, k, ld, d, dv, dlast, n, t0, t1, scale, s, x, W,
                              pa, pb);
                h += AT_GH;
            } else if (hq - h >= 2) {
                at_score_tile(2, q, ldq, h, k, ld, d, dv, dlast, n, t0, t1, scale, s, x, W, pa,
                              pb);
                h += 2;
            } else {
                at_score_tile(1, q, ldq, h, k, ld, d, dv, dlast, n, t0, t1, scale, s, x, W, pa,
                              pb);
                h++;
            }
        }
    }

    /* 2. per head: e_u = exp(s_u - max), 1/Z */
    for (int64_t h = 0; h < hq; h++) {
        float *sh = s + h * n, *xh = work + h * W + 2 * dp;
        const at_f mx = at_set1(at_hmax(at_loadu(xh)));
        xh[0] = 1.0f / at_hsum(exp_pass(sh, n, mx));
    }

    /* 3. context, value tile by value tile: head pairs, then an odd last head */
    for (int64_t t0 = 0; t0 < n; t0 += T) {
        const int64_t t1 = n - t0 < T ? n : t0 + T;
        int64_t h = 0;
        for (; h + 2 <= hq; h += 2) {
            const float *sa = s + h * n, *sb = sa + n;
            float *a0sa = work + h * W, *a1sa = a0sa + dp, *a0sb = a0sa + W, *a1sb = a0sb + dp;
            for (int64_t c0 = 0; c0 < dv; c0 += AT_GV2) {
                const int nvec = dv - c0 < AT_GV2 ? (int)(dv - c0) : AT_GV2;
                at_f a0a[AT_GV2], a1a[AT_GV2], a0b[AT_GV2], a1b[AT_GV2];
                at_m mk[AT_GV2];
                for (int i = 0; i < AT_GV2; i++) {
                    a0a[i] = a1a[i] = a0b[i] = a1b[i] = at_zero();
                    mk[i] = i >= nvec ? at_none() : c0 + i == dv - 1 ? dlast : full;
                }
                const int whole = nvec == AT_GV2 && (c0 + AT_GV2 < dv || d % AT_W == 0);
                if (t0 > 0) {
                    at_acc_reload(a0sa, a1sa, c0, nvec, a0a, a1a);
                    at_acc_reload(a0sb, a1sb, c0, nvec, a0b, a1b);
                }
                at_value_span2(sa, sb, v, ld, c0, nvec, mk, whole, t0, t1, a0a, a1a, a0b, a1b);
                if (t1 < n) {
                    at_acc_save(a0sa, a1sa, c0, nvec, a0a, a1a);
                    at_acc_save(a0sb, a1sb, c0, nvec, a0b, a1b);
                } else {
                    at_acc_out(out + h * ldo, mk, c0, nvec, a0a, a1a, work[h * W + 2 * dp]);
                    at_acc_out(out + (h + 1) * ldo, mk, c0, nvec, a0b, a1b,
                               work[(h + 1) * W + 2 * dp]);
                }
            }
        }
        for (; h < hq; h++) {
            const float *sh = s + h * n;
            float *a0s = work + h * W, *a1s = a0s + dp;
            for (int64_t c0 = 0; c0 < dv; c0 += AT_GV) {
                const int nvec = dv - c0 < AT_GV ? (int)(dv - c0) : AT_GV;
                at_f a0[AT_GV], a1[AT_GV];
                at_m mk[AT_GV];
                for (int i = 0; i < AT_GV; i++) {
                    a0[i] = a1[i] = at_zero();
                    mk[i] = i >= nvec ? at_none() : c0 + i == dv - 1 ? dlast : full;
                }
                const int whole = nvec == AT_GV && (c0 + AT_GV < dv || d % AT_W == 0);
                if (t0 > 0) at_acc_reload(a0s, a1s, c0, nvec, a0, a1);
                /* an odd last key only in the last tile (tiles are even) */
                at_value_span(sh, v, ld, c0, AT_GV, nvec, mk, whole, t0, t1, a0, a1);
                if (t1 < n) at_acc_save(a0s, a1s, c0, nvec, a0, a1);
                else at_acc_out(out + h * ldo, mk, c0, nvec, a0, a1, work[h * W + 2 * dp]);
            }
        }
    }
}

#undef AT_UNROLL
#undef AT_STR
#undef AT_STR2
#undef AT_CAT
#undef AT_CAT2
