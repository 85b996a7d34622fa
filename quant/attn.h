/*
 * attn.h - the attention kernels of the EXACT/FAST forward pass: one query head (or, with the
 * group kernel below, all query heads of a KV group) against the cached keys and values of its
 * KV group, internal.
 *
 *     s_u   = (q . k_u) * scale                      u in [0, n)
 *     p_u   = e_u / Z,   e_u = glmq_att_exp(s_u - max_u s_u),   Z = sum_u e_u
 *     out_e = sum_u p_u * v_u[e]                     e in [0, d)
 *
 * q: d floats; key u at k + u*ld, value u at v + u*ld (d floats each, ld >= d; the forward
 * pass's group-major KV cache passes ld == d, the fastest layout for the x86 kernels: see
 * attn_x86_impl.h); s: caller scratch of n floats (left holding e_u);
 * out: d floats (may not alias q, k, v or s). n >= 1, d >= 1.
 *
 * The reference forward (runtime/forward.c, GLMQ_FWD_REFERENCE) keeps its own plain-C loop with
 * libm expf and a double Z, bit-reproducible everywhere; this kernel is what the EXACT and FAST
 * modes run. It differs from the reference only in rounding: scores multiply by 1/sqrt(d)
 * instead of dividing, sums run in fp32 SIMD lanes, exp is the polynomial below.
 *
 * glmq_att_exp(x), for the x <= 0 that softmax feeds it (Cephes expf, ~1 ulp on [-87, 0]):
 *     x < -87 or NaN:  0       (exp(-87) < 2^-125: below the fp32 resolution of Z >= 1)
 *     x > 0:           treated as 0 (only non-finite scores get there; never UB)
 *     otherwise:       m = rint(x * log2(e)), r = (x - m*C1) - m*C2 (C1 + C2 = ln 2, C1 exact
 *                      in 9 bits), result = 2^m * (1 + r + r^2 * P(r)) with the degree-5
 *                      Cephes polynomial P.
 * Every level evaluates these same operations (SIMD levels with FMA where _ref rounds twice),
 * so the levels agree to a few ulp; tests/check_attn.c holds them to
 *     |out - out_ref| <= 2e-5 * sum_u p_u |v_u[e]| + 1e-6   per element.
 */
#ifndef GLMQ_ATTN_H
#define GLMQ_ATTN_H

#include <stdint.h>

typedef void (*glmq_att_head_fn)(const float *q, const float *k, const float *v, int64_t ld,
                                 int64_t d, int64_t n, float scale, float *s, float *out);

/*
 * ---- The group kernel: the hq query heads of one KV group, one token ------------------------
 *
 * GQA (ChatGLM2/3: 32 query heads on 2 KV groups, GLM-4: 16 per group) has every query head of
 * a group attend over the same keys and values. Run head by head, each of them streams the
 * group's K and V from memory again: at long context those bytes (2 * ctx * d * 4 per group and
 * layer) are what decode spends its time on. The group kernel reads them once: keys in tiles
 * of glmq_att_tile(d) keys (~32 KiB, L1/L2 resident), the scores of all hq heads for a tile
 * before the next tile; then each head's softmax; then values in tiles, all heads' context
 * accumulators advancing over a tile before the next one (the accumulators live in the scratch
 * between tiles: an exact fp32 store and reload).
 *
 *   q:   head h at q + h*ldq (d floats each)
 *   k,v: as glmq_att_head_fn (key u at k + u*ld, ld >= d)
 *   s:   caller scratch of glmq_att_group_scratch(hq, n, d) floats: on return head h's e_u at
 *        s + h*n (as the per-head kernel leaves them), the rest is work space
 *   out: head h at out + h*ldo (d floats; may not alias q, k, v or s)
 *
 * Contract: head h's output and e_u are BIT-IDENTICAL to glmq_att_head_fn of the same level on
 * (q + h*ldq, k, v, ld, d, n, scale): every head runs the same operations in the same order
 * (tiles start at multiples of 16 keys, so score blocks and value pairs fall where the per-head
 * kernel puts them). Hence the forward pass may serve a group's heads in any chunks. The _ref
 * level, the scalar truth, simply runs glmq_att_head_ref head after head.
 */
typedef void (*glmq_att_group_fn)(const float *q, int64_t ldq, int64_t hq, const float *k,
                                  const float *v, int64_t ld, int64_t d, int64_t n, float scale,
                                  float *s, float *out, int64_t ldo);

/* Columns of one context accumulator set in the group scratch: d rounded up to 16. */
static inline int64_t glmq_att_dpad(int64_t d) { return (d + 15) / 16 * 16; }

/* Floats of group scratch: per head n scores + two accumulator sets + 16 (max, 1/Z). */
static inline int64_t glmq_att_group_scratch(int64_t hq, int64_t n, int64_t d)
{
    return hq * (n + 2 * glmq_att_dpad(d) + 16);
}

/* Keys per tile of the group kernel: a multiple of 16, ~32 KiB of keys (at least 16). */
static inline int64_t glmq_att_tile(int64_t d)
{
    const int64_t t = 8192 / (d > 0 ? d : 1) / 16 * 16;
    return t < 16 ? 16 : t;
}

/* Cephes expf constants shared by every level. */
#define GLMQ_ATT_EXP_MIN (-87.0f)
#define GLMQ_ATT_LOG2E 1.44269504088896341f
#define GLMQ_ATT_C1 0.693359375f
#define GLMQ_ATT_C2 (-2.12194440e-4f)
#define GLMQ_ATT_P0 1.9875691500e-4f
#define GLMQ_ATT_P1 1.3981999507e-3f
#define GLMQ_ATT_P2 8.3334519073e-3f
#define GLMQ_ATT_P3 4.1665795894e-2f
#define GLMQ_ATT_P4 1.6666665459e-1f
#define GLMQ_ATT_P5 5.0000001201e-1f

/* The scalar exp of every level (used directly by _ref and for tests). */
float glmq_att_exp(float x);

void glmq_att_head_ref(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                       int64_t n, float scale, float *s, float *out);
void glmq_att_group_ref(const float *q, int64_t ldq, int64_t hq, const float *k, const float *v,
                        int64_t ld, int64_t d, int64_t n, float scale, float *s, float *out,
                        int64_t ldo);
#if defined(GLMQ_HAVE_X86)
void glmq_att_head_avx2(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                        int64_t n, float scale, float *s, float *out);
void glmq_att_head_avx512(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                          int64_t n, float scale, float *s, float *out);
void glmq_att_group_avx2(const float *q, int64_t ldq, int64_t hq, const float *k, const float *v,
                         int64_t ld, int64_t d, int64_t n, float scale, float *s, float *out,
                         int64_t ldo);
void glmq_att_group_avx512(const float *q, int64_t ldq, int64_t hq, const float *k,
                           const float *v, int64_t ld, int64_t d, int64_t n, float scale,
                           float *s, float *out, int64_t ldo);
#endif

#endif /* GLMQ_ATTN_H */
