/*
 * fp16.c - IEEE binary16 <-> binary32 conversion (bit-exact, no hardware dependence).
 *
 * f16 -> f32 is exact. f32 -> f16 rounds to nearest, ties to even, produces subnormals, and maps
 * overflow to infinity; NaN stays NaN (quiet). These are the conversions of GLM-SPEC D.6 and the
 * rounding of decision 6 (scale = fp16(amax/qmax)).
 */
#include "internal.h"

float glmq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400) == 0);
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t glmq_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        /* subnormal or zero in f16 */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: ok */
    return (uint16_t)(sign | half);
}

void glmq_f16_to_f32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = glmq_f16_to_f32(glmq_rd_le16(s + 2 * i));
}

void glmq_bf16_to_f32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = glmq_bf16_to_f32(glmq_rd_le16(s + 2 * i));
}

void glmq_f32le_to_f32_row(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = glmq_rd_le32(s + 4 * i);
        memcpy(&dst[i], &u, 4);
    }
}
