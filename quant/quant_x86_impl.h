/*
 * quant_x86_impl.h - the one body of the x86 quantizers and 16-bit float conversions,
 * instantiated once per ISA (libdeflate lib/x86/<name>_impl.h style). Never included by
 * anything but quant/quant_avx2.c and quant/quant_avx512.c, each of which first defines the
 * small vector abstraction below for its ISA and is compiled with that ISA's flags. The
 * abstraction maps each operation onto the intrinsic the per-ISA kernels used before they were
 * merged, so every level computes exactly what it computed before.
 *
 * Bit-identity with _ref (quant.h semantics, GLM-SPEC decision 6):
 *   - amax: an unsigned max over |w| bit patterns (glmq_q_absbits). Exact and order-independent,
 *     and the same max reveals NaN/Inf (>= 0x7f800000); the scalar front of quant_x86.h then
 *     names the first bad column exactly like _ref.
 *   - scale: the shared scalar glmq_q_row_scale (one fp32 division, RNE to fp16).
 *   - codes: an IEEE vector division (the scalar `w / s`; never a reciprocal), clamp in float
 *     to [-qmax, qmax] (clamp then round == round then clamp, qmax being an integer), then
 *     vcvtps2dq, which rounds in the MXCSR mode = ties-to-even, like rintf in _ref. Saturating
 *     packs never saturate (|q| <= 127).
 *   - scale 0 rows (all codes 0) go to _ref: rare, and it avoids a 0/0 here.
 *   - row tails: the last partial 64/128-element group is copied into a zero-filled stack block
 *     and run through the same vector code; a zero quantizes to code 0, which is exactly the
 *     padding (INT8 byte 0, INT4 nibble 8), so no scalar tail is needed.
 *
 * Statistics (glmq_qstats) are NOT bit-identical to _ref, but fixed per level: e = q*s - w by one
 * vfmsub, e^2 and w^2 accumulated in QX_NCHAIN chains of QX_W fp32 lanes (vector k of a group
 * goes to chain k % QX_NCHAIN, |e| to max chain k % QX_NEMAX) for at most 256 elements, then
 * flushed into double lanes. They can differ from _ref (and between levels) in the last 6-7
 * significant digits; codes and scales never do.
 *
 * Data flow per row (the converter's hot loop): the caller widens a row of f16/bf16 into an fp32
 * buffer (L1/L2 resident), pass 1 reads it for amax, pass 2 reads it again to divide, round,
 * pack and store.
 *
 * ---- the per-ISA abstraction (defined before the include) ----------------------------------
 *   QX_ISA        suffix of the entry points (avx2, avx512)
 *   QX_W          fp32 lanes per vector; a "group" is 4 vectors = QX_GROUP elements, 64 a
 *                 multiple of it
 *   QX_NCHAIN     e^2 / w^2 accumulator chains (1, 2 or 4); QX_NEMAX: max |e| chains (1, 2, 4)
 *   qx_f qx_i qx_d  QX_W x fp32, QX_W x u32/int (also 4*QX_W bytes), QX_W/2 x double
 *   qx_h          QX_W x 16-bit (half the width of qx_f)
 *   qx_m          a "first `left` lanes" predicate from qx_mask_n(left), 1 <= left <= QX_W; the
 *                 _m loads zero the other lanes and never touch their memory, the _m stores
 *                 leave it alone
 *   fp32:   qx_f_load qx_f_load_m qx_f_store qx_f_store_m qx_f_set1 qx_f_zero qx_f_add qx_f_div
 *           qx_f_min qx_f_max qx_f_fmadd (a*b+c) qx_f_fmsub (a*b-c) qx_f_abs qx_f_hmax
 *           qx_f_to_i (vcvtps2dq) qx_i_to_f (vcvtdq2ps)
 *   integer: qx_i_load qx_i_load_m qx_i_store qx_i_store_m qx_i_zero qx_i_set1_32 qx_i_set1_8
 *           qx_i_and qx_i_or qx_i_max_u32 qx_i_hmax_u32 qx_i_add_8 qx_i_shl4_16 (vpsllw 4)
 *           qx_i_shl16_32 (vpslld 16) qx_i_packs_32 qx_i_packs_16 (per-128-bit-lane packs)
 *           qx_i_perm (the dword permutation that undoes the packs' lane order, below)
 *   double: qx_d_zero qx_d_add_widened (d + both halves of a qx_f widened) qx_d_hsum
 *   16-bit: qx_h_load qx_h_load_m qx_h_store qx_h_store_m qx_h_zero qx_h_set1_16 qx_h_and
 *           qx_h_max_u16 qx_h_hmax_u16 qx_h_to_f (vcvtph2ps) qx_f_to_h (vcvtps2ph, RNE)
 *           qx_h_zext_i (vpmovzxwd)
 */
#ifndef QX_ISA
#error "quant_x86_impl.h: include from quant_<isa>.c after defining the vector abstraction"
#endif

#define QX_CAT2(a, b) a##b
#define QX_CAT(a, b) QX_CAT2(a, b)
#define QX_FN(name) QX_CAT(name, QX_ISA)
#define QX_GROUP (4 * QX_W)
#define QX_AI static inline __attribute__((always_inline))

_Static_assert(64 % QX_GROUP == 0, "a 64-element step is a whole number of groups");
_Static_assert(QX_NCHAIN == 1 || QX_NCHAIN == 2 || QX_NCHAIN == 4, "chains divide a group");
_Static_assert(QX_NEMAX == 1 || QX_NEMAX == 2 || QX_NEMAX == 4, "chains divide a group");

/* ---- pass 1: amax bits ----------------------------------------------------------------------- */

/*
 * max_j absbits(w[j]) over w[0..n). Four independent accumulators of QX_W u32 lanes, so the
 * loop is load-bound (2 loads/cycle), not latency-bound on vpmaxud. The tail (< QX_W) is one
 * masked zeroing load: absent lanes read as +0 and cannot raise the max.
 */
static uint32_t amax_bits(const float *w, int64_t n)
{
    const qx_i absmask = qx_i_set1_32(0x7fffffff);
    qx_i m0 = qx_i_zero(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 4 * QX_W <= n; i += 4 * QX_W) {
        m0 = qx_i_max_u32(m0, qx_i_and(qx_i_load(w + i), absmask));
        m1 = qx_i_max_u32(m1, qx_i_and(qx_i_load(w + i + QX_W), absmask));
        m2 = qx_i_max_u32(m2, qx_i_and(qx_i_load(w + i + 2 * QX_W), absmask));
        m3 = qx_i_max_u32(m3, qx_i_and(qx_i_load(w + i + 3 * QX_W), absmask));
    }
    for (; i + QX_W <= n; i += QX_W) m0 = qx_i_max_u32(m0, qx_i_and(qx_i_load(w + i), absmask));
    if (i < n) m1 = qx_i_max_u32(m1, qx_i_and(qx_i_load_m(w + i, qx_mask_n(n - i)), absmask));
    m0 = qx_i_max_u32(qx_i_max_u32(m0, m1), qx_i_max_u32(m2, m3));
    return qx_i_hmax_u32(m0);
}

/* ---- pass 2: one group (4 vectors) of codes at a time ---------------------------------------- */

/*
 * Statistics accumulators: e2[c]/w2[c] are QX_NCHAIN chains of QX_W fp32 lanes, so consecutive
 * vfmadds do not wait on each other's 4-cycle latency (AVX2 keeps two: with 16 ymm registers
 * that is what fits beside the constants and the code vectors). Each lane sums e^2 / w^2 of the
 * elements at its position for at most 256 elements per flush; acc_flush() folds the chains
 * pairwise and widens them into the QX_W/2 x double lanes d_e2 / d_w2.
 */
typedef struct {
    qx_f e2[QX_NCHAIN], w2[QX_NCHAIN], emax[QX_NEMAX];
    qx_d d_e2, d_w2;
} qacc;

QX_AI void acc_init(qacc *a)
{
    for (int c = 0; c < QX_NCHAIN; c++) a->e2[c] = a->w2[c] = qx_f_zero();
    for (int c = 0; c < QX_NEMAX; c++) a->emax[c] = qx_f_zero();
    a->d_e2 = a->d_w2 = qx_d_zero();
}

/* Pairwise fold of the chains: c0, c0 + c1, or (c0 + c1) + (c2 + c3) (max alike). */
#if QX_NCHAIN == 1
#define QX_FOLD_SUM(c) ((c)[0])
#elif QX_NCHAIN == 2
#define QX_FOLD_SUM(c) qx_f_add((c)[0], (c)[1])
#else
#define QX_FOLD_SUM(c) qx_f_add(qx_f_add((c)[0], (c)[1]), qx_f_add((c)[2], (c)[3]))
#endif
#if QX_NEMAX == 1
#define QX_FOLD_MAX(c) ((c)[0])
#elif QX_NEMAX == 2
#define QX_FOLD_MAX(c) qx_f_max((c)[0], (c)[1])
#else
#define QX_FOLD_MAX(c) qx_f_max(qx_f_max((c)[0], (c)[1]), qx_f_max((c)[2], (c)[3]))
#endif

QX_AI void acc_flush(qacc *a)
{
    a->d_e2 = qx_d_add_widened(a->d_e2, QX_FOLD_SUM(a->e2));
    a->d_w2 = qx_d_add_widened(a->d_w2, QX_FOLD_SUM(a->w2));
    for (int c = 0; c < QX_NCHAIN; c++) a->e2[c] = a->w2[c] = qx_f_zero();
}

QX_AI void acc_finish(qacc *a, glmq_qstats *st)
{
    acc_flush(a);
    st->sum_sq_err = qx_d_hsum(a->d_e2);
    st->sum_sq = qx_d_hsum(a->d_w2);
    st->max_abs_err = (double)qx_f_hmax(QX_FOLD_MAX(a->emax));
}

/*
 * One vector k (0..3) of a group: x fp32 -> y = clamp(x / s) fp32 -> q int32 (RNE). With
 * want_stats, e = q*s - w via vfmsub, accumulated into chain k % QX_NCHAIN.
 */
QX_AI qx_i quant_vec(const float *w, qx_f vs, qx_f vqmax, qx_f vqmin, qacc *a, const int k,
                     const int want_stats)
{
    qx_f x = qx_f_load(w);
    qx_f y = qx_f_div(x, vs); /* IEEE division, as the scalar w / s */
    y = qx_f_min(qx_f_max(y, vqmin), vqmax);
    qx_i q = qx_f_to_i(y); /* MXCSR rounding = RNE */
    if (want_stats) {
        const int c = k % QX_NCHAIN, m = k % QX_NEMAX;
        qx_f e = qx_f_fmsub(qx_i_to_f(q), vs, x);
        a->e2[c] = qx_f_fmadd(e, e, a->e2[c]);
        a->w2[c] = qx_f_fmadd(x, x, a->w2[c]);
        a->emax[m] = qx_f_max(a->emax[m], qx_f_abs(e));
    }
    return q;
}

/*
 * Quantize the QX_GROUP floats w[0..QX_GROUP) to int8 codes. Returns them packed but NOT yet in
 * element order: after vpackssdw + vpacksswb each 128-bit lane L holds four dwords
 *     [ v0[4L..4L+3] | v1[4L..4L+3] | v2[4L..4L+3] | v3[4L..4L+3] ]   (v_k = elements k*QX_W..)
 * which qx_i_perm() puts back in order (output dword t = (QX_W/4)*k + L sits at source dword
 * 4L + k). Keeping the permute out lets the INT4 path merge two groups bytewise first and
 * permute once. (Written out four times rather than as a loop: GCC -O2 does not unroll it and
 * would then keep the codes and the accumulators in memory.)
 */
QX_AI qx_i quant_group(const float *w, qx_f vs, qx_f vqmax, qx_f vqmin, qacc *a,
                       const int want_stats)
{
    qx_i q0 = quant_vec(w, vs, vqmax, vqmin, a, 0, want_stats);
    qx_i q1 = quant_vec(w + QX_W, vs, vqmax, vqmin, a, 1, want_stats);
    qx_i q2 = quant_vec(w + 2 * QX_W, vs, vqmax, vqmin, a, 2, want_stats);
    qx_i q3 = quant_vec(w + 3 * QX_W, vs, vqmax, vqmin, a, 3, want_stats);
    qx_i p01 = qx_i_packs_32(q0, q1); /* int16, per lane: v0 | v1 */
    qx_i p23 = qx_i_packs_32(q2, q3); /* int16, per lane: v2 | v3 */
    return qx_i_packs_16(p01, p23);   /* int8, per lane: v0 | v1 | v2 | v3 */
}

/* ---- INT8 ------------------------------------------------------------------------------------ */

/* 64 codes (one 64-byte output line) from w[0..64) into o[0..64). */
QX_AI void q8_line(const float *w, uint8_t *o, qx_f vs, qx_f vqmax, qx_f vqmin, qacc *a,
                   const int want_stats)
{
    qx_i b[64 / QX_GROUP];
    for (int g = 0; g < 64 / QX_GROUP; g++)
        b[g] = qx_i_perm(quant_group(w + g * QX_GROUP, vs, vqmax, vqmin, a, want_stats));
    for (int g = 0; g < 64 / QX_GROUP; g++) qx_i_store(o + g * QX_GROUP, b[g]);
}

/* ---- INT4 ------------------------------------------------------------------------------------ */

/*
 * One 128-element block -> 64 bytes, QX_GROUP bytes per step h. lo = codes of elements
 * QX_GROUP*h.., hi = codes of 64 + QX_GROUP*h.., both int8 in the same (unpermuted) byte order,
 * so byte b of (lo+8) | (hi+8) << 4 pairs element j with element j+64 as quant.h draws it. The
 * shift is vpsllw on 16-bit lanes: each byte is 1..15 before the shift, so nothing crosses into
 * the neighbouring byte.
 */
QX_AI void q4_block(const float *w, uint8_t *o, qx_f vs, qx_f vqmax, qx_f vqmin, qacc *a,
                    const int want_stats)
{
    const qx_i eight = qx_i_set1_8(8);
    for (int h = 0; h < 64 / QX_GROUP; h++) {
        qx_i lo = quant_group(w + QX_GROUP * h, vs, vqmax, vqmin, a, want_stats);
        qx_i hi = quant_group(w + 64 + QX_GROUP * h, vs, vqmax, vqmin, a, want_stats);
        lo = qx_i_add_8(lo, eight);
        hi = qx_i_shl4_16(qx_i_add_8(hi, eight));
        qx_i_store(o + QX_GROUP * h, qx_i_perm(qx_i_or(lo, hi)));
    }
}

/* ---- one row ------------------------------------------------------------------------------- */

/*
 * The vector pass over a row: INT8 in 64-element lines, INT4 in 128-element blocks (q4 is a
 * constant after inlining). Statistics flush every 256 elements (4 lines or 2 blocks).
 */
QX_AI void q_body(const float *w, int64_t n, const int q4, uint8_t *o, float s, glmq_qstats *st,
                  const int want_stats)
{
    const int64_t step = q4 ? GLMQ_Q4_BLOCK : 64;
    const qx_f vs = qx_f_set1(s);
    const qx_f vqmax = qx_f_set1(q4 ? 7.0f : 127.0f), vqmin = qx_f_set1(q4 ? -7.0f : -127.0f);
    qacc a;
    acc_init(&a);
    int64_t i = 0;
    for (; i + step <= n; i += step) {
        if (q4)
            q4_block(w + i, o + i / 2, vs, vqmax, vqmin, &a, want_stats);
        else
            q8_line(w + i, o + i, vs, vqmax, vqmin, &a, want_stats);
        if (want_stats && (i + step) % 256 == 0) acc_flush(&a);
    }
    if (i < n) { /* tail: zero-padded block -> padding codes 0 / nibbles 8 */
        _Alignas(64) float buf[GLMQ_Q4_BLOCK];
        memset(buf, 0, (size_t)step * sizeof(float));
        memcpy(buf, w + i, (size_t)(n - i) * sizeof(float));
        if (q4)
            q4_block(buf, o + i / 2, vs, vqmax, vqmin, &a, want_stats);
        else
            q8_line(buf, o + i, vs, vqmax, vqmin, &a, want_stats);
    }
    if (want_stats) acc_finish(&a, st);
}

/* ---- entry points ---------------------------------------------------------------------------- */

/* Both quantizers: the scalar front (status, scale), then the vector body of q4 ? INT4 : INT8
 * (q4 a constant after inlining), or _ref for a scale-0 row. */
QX_AI glmq_status quantize_row(const float *w, int64_t n, const int q4, void *out,
                               uint16_t *scale, glmq_qstats *st, int64_t *bad_col)
{
    float s = 0.0f;
    glmq_status r = glmq_q_row_begin(w, n, amax_bits(w, n), q4 ? 7 : 127, scale, &s, bad_col);
    if (r != GLMQ_OK) return r;
    if (s == 0.0f)
        return (q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref)(w, n, out, scale, st,
                                                                          bad_col);
    if (st) /* two instances each: the statistics code compiled in or out */
        q_body(w, n, q4, (uint8_t *)out, s, st, 1);
    else
        q_body(w, n, q4, (uint8_t *)out, s, NULL, 0);
    return GLMQ_OK;
}

glmq_status QX_FN(glmq_quantize_row_q8_)(const float *w, int64_t n, void *out, uint16_t *scale,
                                         glmq_qstats *st, int64_t *bad_col)
{
    return quantize_row(w, n, 0, out, scale, st, bad_col);
}

glmq_status QX_FN(glmq_quantize_row_q4_)(const float *w, int64_t n, void *out, uint16_t *scale,
                                         glmq_qstats *st, int64_t *bad_col)
{
    return quantize_row(w, n, 1, out, scale, st, bad_col);
}

/* ---- 16-bit float conversions ---------------------------------------------------------------- */

/*
 * f16 -> f32: vcvtph2ps, QX_W halves -> QX_W floats, two vectors per step, then masked vectors.
 * Exact for every finite value (subnormals included). One difference from glmq_f16_to_f32: the
 * hardware quiets a signalling NaN (sets f32 bit 22), the scalar code keeps the payload bits as
 * they are. To stay bit-identical we track max(h & 0x7fff) in QX_W x u16 lanes (one vpand +
 * vpmaxuw per vector); if it exceeds 0x7c00 the row holds a NaN and those elements are redone
 * by the scalar function. NaN rows are errors for the quantizer anyway, so this path is cold.
 */
void QX_FN(glmq_f16_to_f32_)(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    const qx_h mag = qx_h_set1_16(0x7fff);
    qx_h hmax = qx_h_zero();
    int64_t i = 0;
    for (; i + 2 * QX_W <= n; i += 2 * QX_W) {
        qx_h h0 = qx_h_load(s + 2 * i);
        qx_h h1 = qx_h_load(s + 2 * i + 2 * QX_W);
        qx_f_store(dst + i, qx_h_to_f(h0));
        qx_f_store(dst + i + QX_W, qx_h_to_f(h1));
        hmax = qx_h_max_u16(hmax, qx_h_max_u16(qx_h_and(h0, mag), qx_h_and(h1, mag)));
    }
    for (; i < n; i += QX_W) { /* 1..2*QX_W-1 left: absent lanes read as 0 */
        const int64_t left = n - i < QX_W ? n - i : QX_W;
        const qx_m k = qx_mask_n(left);
        qx_h h = qx_h_load_m(s + 2 * i, k);
        qx_f_store_m(dst + i, k, qx_h_to_f(h));
        hmax = qx_h_max_u16(hmax, qx_h_and(h, mag));
    }
    if (GLMQ_UNLIKELY(qx_h_hmax_u16(hmax) > 0x7c00)) { /* some NaN: redo NaN lanes in scalar */
        for (int64_t j = 0; j < n; j++) {
            uint16_t h = glmq_rd_le16(s + 2 * j);
            if ((h & 0x7fff) > 0x7c00) dst[j] = glmq_f16_to_f32(h);
        }
    }
}

/* bf16 -> f32: zero-extend QX_W x u16 to QX_W x u32 (vpmovzxwd) and shift into the top half. */
void QX_FN(glmq_bf16_to_f32_)(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 2 * QX_W <= n; i += 2 * QX_W) {
        qx_i a = qx_h_zext_i(qx_h_load(s + 2 * i));
        qx_i b = qx_h_zext_i(qx_h_load(s + 2 * i + 2 * QX_W));
        qx_i_store(dst + i, qx_i_shl16_32(a));
        qx_i_store(dst + i + QX_W, qx_i_shl16_32(b));
    }
    for (; i < n; i += QX_W) {
        const int64_t left = n - i < QX_W ? n - i : QX_W;
        const qx_m k = qx_mask_n(left);
        qx_i a = qx_h_zext_i(qx_h_load_m(s + 2 * i, k));
        qx_i_store_m(dst + i, k, qx_i_shl16_32(a));
    }
}

/*
 * f32 -> f16: vcvtps2ph with an explicit round-to-nearest-even immediate (independent of
 * MXCSR.RC). The hardware result equals glmq_f32_to_f16 for every input: RNE including the
 * subnormal range and the carry into the exponent, overflow to inf, NaN quieted with the top
 * 10 payload bits kept (checked exhaustively over all 2^32 inputs during development, and by a
 * sampled sweep in tests/check_quant.c). QX_W floats -> QX_W halves per vector.
 */
void QX_FN(glmq_f32_to_f16_)(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 2 * QX_W <= n; i += 2 * QX_W) {
        qx_h a = qx_f_to_h(qx_f_load(src + i));
        qx_h b = qx_f_to_h(qx_f_load(src + i + QX_W));
        qx_h_store(dst + i, a);
        qx_h_store(dst + i + QX_W, b);
    }
    for (; i < n; i += QX_W) {
        const int64_t left = n - i < QX_W ? n - i : QX_W;
        const qx_m k = qx_mask_n(left);
        qx_h_store_m(dst + i, k, qx_f_to_h(qx_f_load_m(src + i, k)));
    }
}

#undef QX_FOLD_SUM
#undef QX_FOLD_MAX
#undef QX_AI
#undef QX_GROUP
#undef QX_FN
#undef QX_CAT
#undef QX_CAT2
