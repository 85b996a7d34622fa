/*
 * ggml_dequant.c - ggml tensor types to fp32, bit-identical to ggml's own decoding (see
 * ggml_dequant.h for the block table).
 *
 * Why bit-identical and not "close": a GGUF model is gated against its original checkpoint, and
 * glmq's forward pass over a GGUF must see exactly the weights llama.cpp sees. So each decoder
 * below performs the same fp32 operations, in the same order, as the definition of the format
 * in ggml (quoted per type as a formula):
 *   - integer parts (nibbles, high bits, 6-bit scales, offsets like -8, -16, -32) are computed
 *     exactly in int and converted to float exactly (they are small);
 *   - each `a * b` and `a - b` is one rounded fp32 operation; a*b - c is never fused (this file
 *     is compiled with -ffp-contract=off, and the pragma below says the same to compilers that
 *     honour it);
 *   - fp16 fields are widened exactly; a NaN becomes a quiet NaN with the same payload, as
 *     ggml's widening (an exact multiply by 2^-112) does.
 * The loops have fixed trip counts and no branches in their bodies, so the compiler vectorizes
 * them at -O2; there is no ISA-specific code.
 *
 * Inputs are byte pointers of any alignment: every multi-byte field is read with a
 * little-endian load, never through a struct cast.
 */
#include "quant/ggml_dequant.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* GCC ignores (and warns about) it; -ffp-contract=off covers GCC */
#endif

#define QK 32   /* elements per block of the 32-element types */
#define QKK 256 /* elements per super-block of the K types */

/* A 16-bit little-endian field (memcpy on little-endian hosts, so that loops vectorize). */
static inline uint16_t ld16(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return glmq_rd_le16(p);
#endif
}

/*
 * IEEE binary16 -> binary32, exact; a NaN is quieted (bit 22 set), payload and sign kept.
 * Written without branches (each case computed, then selected by a mask) so that loops over it
 * vectorize:
 *   exponent 0      zero or subnormal: man * 2^-24 (exact: 10-bit integer times a power of 2)
 *   exponent 1..30  rebias the exponent by 127 - 15 = 112
 *   exponent 31     infinity or NaN: exponent 255, and bit 22 when man != 0 (man + 1023 has
 *                   bit 10 set exactly when man != 0)
 */
static inline float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    const float sub = (float)(int32_t)man * 0x1p-24f;
    uint32_t sub_bits;
    memcpy(&sub_bits, &sub, 4);
    const uint32_t norm = ((exp + 112u) << 23) | (man << 13);
    const uint32_t special = 0x7f800000u | (man << 13) | (((man + 0x3ffu) & 0x400u) << 12);
    const uint32_t is_sub = 0u - (uint32_t)(exp == 0), is_special = 0u - (uint32_t)(exp == 0x1f);
    const uint32_t is_norm = ~(is_sub | is_special);
    const uint32_t u = sign | (sub_bits & is_sub) | (special & is_special) | (norm & is_norm);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float rd_half(const uint8_t *p) { return half_to_float(ld16(p)); }

/* ---- plain types ---------------------------------------------------------------------------- */

static void dq_f32(const uint8_t *restrict s, int64_t n, float *restrict y)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = glmq_rd_le32(s + 4 * i);
        memcpy(&y[i], &u, 4);
    }
}

static void dq_f16(const uint8_t *restrict s, int64_t n, float *restrict y)
{
    for (int64_t i = 0; i < n; i++) y[i] = half_to_float(ld16(s + 2 * i));
}

static void dq_bf16(const uint8_t *restrict s, int64_t n, float *restrict y)
{
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)ld16(s + 2 * i) << 16;
        memcpy(&y[i], &u, 4);
    }
}

/* ---- 32-element blocks ------------------------------------------------------------------------
 * Byte j of qs: element j (low nibble) and element j + 16 (high nibble). */

/* q4_0: y = (nibble - 8) * d */
static void dq_q4_0(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 18, y += QK) {
        const float d = rd_half(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)((qs[j] & 0x0f) - 8) * d;
            y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

/* q4_1: y = nibble * d + m (product rounded, then the sum) */
static void dq_q4_1(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 20, y += QK) {
        const float d = rd_half(b), m = rd_half(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < QK / 2; j++) {
            const float p0 = (float)(qs[j] & 0x0f) * d;
            const float p1 = (float)(qs[j] >> 4) * d;
            y[j] = p0 + m;
            y[j + QK / 2] = p1 + m;
        }
    }
}

/* The fifth bits of a q5 block: bit i of the little-endian u32 at qh, as 0 or 16 (a test
 * against a constant mask per element, which vectorizes, instead of a variable shift). */
static const uint32_t bit_of[QK] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

static inline void q5_high(const uint8_t *qh, int hi[QK])
{
    const uint32_t h = glmq_rd_le32(qh);
    for (int j = 0; j < QK; j++) hi[j] = (h & bit_of[j]) ? 16 : 0;
}

/* q5_0: y = ((nibble | fifth bit << 4) - 16) * d */
static void dq_q5_0(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    int hi[QK];
    for (int64_t i = 0; i < nb; i++, b += 22, y += QK) {
        const float d = rd_half(b);
        q5_high(b + 2, hi);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = (float)(((qs[j] & 0x0f) | hi[j]) - 16) * d;
            y[j + QK / 2] = (float)(((qs[j] >> 4) | hi[j + QK / 2]) - 16) * d;
        }
    }
}

/* q5_1: y = (nibble | fifth bit << 4) * d + m */
static void dq_q5_1(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    int hi[QK];
    for (int64_t i = 0; i < nb; i++, b += 24, y += QK) {
        const float d = rd_half(b), m = rd_half(b + 2);
        q5_high(b + 4, hi);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < QK / 2; j++) {
            const float p0 = (float)((qs[j] & 0x0f) | hi[j]) * d;
            const float p1 = (float)((qs[j] >> 4) | hi[j + QK / 2]) * d;
            y[j] = p0 + m;
            y[j + QK / 2] = p1 + m;
        }
    }
}

/* q8_0: y = code * d */
static void dq_q8_0(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 34, y += QK) {
        const float d = rd_half(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QK; j++) y[j] = (float)qs[j] * d;
    }
}

/* ---- 256-element super-blocks ---------------------------------------------------------------- */

/*
 * q2_K: 16 sub-blocks of 16. Byte s of scales: low nibble = scale, high nibble = min of sub-block
 * s. Element 128h + 32j + l (h < 2, j < 4, l < 32) is the 2-bit field at bit 2j of byte
 * qs[32h + l], in sub-block 8h + 2j + (l >= 16).
 *   dl = d * scale, ml = dmin * min, y = dl * code - ml
 */
static void dq_q2_K(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 84) {
        const uint8_t *sc = b, *qs = b + 16;
        const float d = rd_half(b + 80), dmin = rd_half(b + 82);
        for (int h = 0; h < 2; h++, qs += 32) {
            for (int j = 0; j < 4; j++) {
                const int shift = 2 * j;
                for (int half = 0; half < 2; half++, y += 16) {
                    const uint8_t s = *sc++;
                    const float dl = d * (float)(s & 0x0f);
                    const float ml = dmin * (float)(s >> 4);
                    const uint8_t *q = qs + 16 * half;
                    for (int l = 0; l < 16; l++) {
                        const float p = dl * (float)((q[l] >> shift) & 3);
                        y[l] = p - ml;
                    }
                }
            }
        }
    }
}

/*
 * q3_K: 16 sub-blocks of 16 with signed 6-bit scales (stored + 32) packed in 12 bytes: the
 * low 4 bits of scale s are the low nibble of byte s (s < 8) or the high nibble of byte s - 8
 * (s >= 8), its high 2 bits are bits 2(s / 4)..2(s / 4)+1 of byte 8 + s % 4. Element
 * 128h + 32j + l (h < 2, j < 4, l < 32) has low bits (qs[32h + l] >> 2j) & 3 and high bit
 * (hmask[l] >> (4h + j)) & 1; its code is low - (high bit clear ? 4 : 0), in -4..3, and it is
 * in sub-block 8h + 2j + (l >= 16).
 *   dl = d * (scale - 32), y = dl * code
 */
static inline void q3_scales(const uint8_t *p, int out[16])
{
    for (int k = 0; k < 4; k++) {
        const int hb = p[8 + k];
        out[k] = ((p[k] & 0x0f) | (((hb >> 0) & 3) << 4)) - 32;
        out[4 + k] = ((p[4 + k] & 0x0f) | (((hb >> 2) & 3) << 4)) - 32;
        out[8 + k] = ((p[k] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        out[12 + k] = ((p[4 + k] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
    }
}

static void dq_q3_K(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    int sc[16];
    for (int64_t i = 0; i < nb; i++, b += 110) {
        const uint8_t *hm = b, *qs = b + 32;
        const float d = rd_half(b + 108);
        q3_scales(b + 96, sc);
        int is = 0;
        for (int h = 0; h < 2; h++, qs += 32) {
            for (int j = 0; j < 4; j++) {
                const int shift = 2 * j;
                const uint8_t bit = (uint8_t)(1u << (4 * h + j));
                for (int half = 0; half < 2; half++, y += 16) {
                    const float dl = d * (float)sc[is++];
                    const uint8_t *q = qs + 16 * half, *m = hm + 16 * half;
                    for (int l = 0; l < 16; l++) {
                        const int code = ((q[l] >> shift) & 3) - ((m[l] & bit) ? 0 : 4);
                        y[l] = dl * (float)code;
                    }
                }
            }
        }
    }
}

/*
 * The 6-bit scale and min of sub-block j (0..7) of a q4_K/q5_K super-block, from its 12 scale
 * bytes: j < 4: low 6 bits of bytes j and j + 4; j >= 4: a nibble of byte j + 4 plus the top two
 * bits of bytes j - 4 and j.
 */
static inline void k4_scale_min(const uint8_t *q, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/*
 * q4_K: 8 sub-blocks of 32. Elements 64g + l and 64g + 32 + l (g < 4, l < 32) are the low and
 * high nibble of qs[32g + l], in sub-blocks 2g and 2g + 1.
 *   dl = d * scale, ml = dmin * min, y = dl * nibble - ml
 */
static void dq_q4_K(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 144) {
        const float d = rd_half(b), dmin = rd_half(b + 2);
        const uint8_t *scales = b + 4, *qs = b + 16;
        for (int g = 0; g < 4; g++, qs += 32, y += 64) {
            int s0, m0, s1, m1;
            k4_scale_min(scales, 2 * g, &s0, &m0);
            k4_scale_min(scales, 2 * g + 1, &s1, &m1);
            const float d0 = d * (float)s0, n0 = dmin * (float)m0;
            const float d1 = d * (float)s1, n1 = dmin * (float)m1;
            for (int l = 0; l < 32; l++) {
                const float p = d0 * (float)(qs[l] & 0x0f);
                y[l] = p - n0;
            }
            for (int l = 0; l < 32; l++) {
                const float p = d1 * (float)(qs[l] >> 4);
                y[32 + l] = p - n1;
            }
        }
    }
}

/*
 * q5_K: as q4_K with a fifth bit: for element 64g + l it is bit 2g of qh[l], for 64g + 32 + l
 * bit 2g + 1 of qh[l]; the code is nibble + 16 * bit.
 */
static void dq_q5_K(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 176) {
        const float d = rd_half(b), dmin = rd_half(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
        for (int g = 0; g < 4; g++, qs += 32, y += 64) {
            int s0, m0, s1, m1;
            k4_scale_min(scales, 2 * g, &s0, &m0);
            k4_scale_min(scales, 2 * g + 1, &s1, &m1);
            const float d0 = d * (float)s0, n0 = dmin * (float)m0;
            const float d1 = d * (float)s1, n1 = dmin * (float)m1;
            const int sh0 = 2 * g, sh1 = 2 * g + 1;
            for (int l = 0; l < 32; l++) {
                const int code = (qs[l] & 0x0f) + (((qh[l] >> sh0) & 1) << 4);
                const float p = d0 * (float)code;
                y[l] = p - n0;
            }
            for (int l = 0; l < 32; l++) {
                const int code = (qs[l] >> 4) + (((qh[l] >> sh1) & 1) << 4);
                const float p = d1 * (float)code;
                y[32 + l] = p - n1;
            }
        }
    }
}

/*
 * q6_K: 16 sub-blocks of 16 with signed 8-bit scales. In half h (128 elements), for l < 32 and
 * k < 4, element 128h + 32k + l has low nibble from ql[64h + l + 32 (k & 1)] (low nibble for
 * k < 2, high for k >= 2), high two bits (qh[32h + l] >> 2k) & 3, code = that 6-bit value - 32,
 * and scale scales[8h + 2k + l / 16].
 *   y = (d * scale) * code      (two roundings, in that order)
 */
static void dq_q6_K(const uint8_t *restrict b, int64_t nb, float *restrict y)
{
    for (int64_t i = 0; i < nb; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = rd_half(b + 208);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int k = 0; k < 4; k++) {
                const uint8_t *lo = ql + 32 * (k & 1);
                const int nshift = (k >> 1) * 4, hshift = 2 * k;
                for (int half = 0; half < 2; half++) {
                    const float ds = d * (float)sc[2 * k + half];
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const int code =
                            (((lo[l] >> nshift) & 0x0f) | (((qh[l] >> hshift) & 3) << 4)) - 32;
                        y[32 * k + l] = ds * (float)code;
                    }
                }
            }
        }
    }
}

/* ---- entry point ----------------------------------------------------------------------------- */

typedef void (*dq_fn)(const uint8_t *restrict b, int64_t n, float *restrict y);

/* Decoder of a type, called with the block count (the element count for the plain types). */
static dq_fn decoder(uint32_t type)
{
    switch (type) {
    case GLMQ_GGML_F32: return dq_f32;
    case GLMQ_GGML_F16: return dq_f16;
    case GLMQ_GGML_BF16: return dq_bf16;
    case GLMQ_GGML_Q4_0: return dq_q4_0;
    case GLMQ_GGML_Q4_1: return dq_q4_1;
    case GLMQ_GGML_Q5_0: return dq_q5_0;
    case GLMQ_GGML_Q5_1: return dq_q5_1;
    case GLMQ_GGML_Q8_0: return dq_q8_0;
    case GLMQ_GGML_Q2_K: return dq_q2_K;
    case GLMQ_GGML_Q3_K: return dq_q3_K;
    case GLMQ_GGML_Q4_K: return dq_q4_K;
    case GLMQ_GGML_Q5_K: return dq_q5_K;
    case GLMQ_GGML_Q6_K: return dq_q6_K;
    default: return NULL;
    }
}

glmq_status glmq_ggml_dequant_row(uint32_t type, const void *src, int64_t ne0, float *dst,
                                  glmq_err *err)
{
    const glmq_ggml_type_info *t = glmq_ggml_type_get(type);
    GLMQ_FAIL_IF(!t, err, GLMQ_E_UNSUPPORTED, "unknown ggml type %u", (unsigned)type);
    const dq_fn fn = decoder(type);
    GLMQ_FAIL_IF(!fn, err, GLMQ_E_UNSUPPORTED,
                 "ggml type %s is not supported (glmq decodes f32, f16, bf16, q4_0, q4_1, q5_0, "
                 "q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K)",
                 t->name);
    GLMQ_FAIL_IF(ne0 < 0 || ne0 % t->block != 0, err, GLMQ_E_INVALID,
                 "ggml type %s: row length %lld is not a multiple of its block size %d", t->name,
                 (long long)ne0, t->block);
    if (ne0 == 0) return GLMQ_OK;
    GLMQ_FAIL_IF(!src || !dst, err, GLMQ_E_INVALID, "ggml type %s: NULL row", t->name);
    fn((const uint8_t *)src, ne0 / t->block, dst);
    return GLMQ_OK;
}
