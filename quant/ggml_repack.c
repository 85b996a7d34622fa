/*
 * ggml_repack.c - see ggml_repack.h.
 */
#include "quant/ggml_repack.h"

#include "formats/layout.h"

#include <string.h>

static void q4_set(uint8_t *row, int64_t j, unsigned nib)
{
    const int64_t b = j / GLMQ_Q4_BLOCK, k = j % GLMQ_Q4_BLOCK;
    uint8_t *p = &row[b * (GLMQ_Q4_BLOCK / 2) + (k & 63)];
    *p = k < 64 ? (uint8_t)((*p & 0xF0u) | nib) : (uint8_t)((*p & 0x0Fu) | (nib << 4));
}

/* The fp16 bits of ggml block b's d: the row's one scale (group 0) or its group's scale. */
static uint16_t block_d(const uint16_t *scales, int64_t group, int64_t b)
{
    return glmq_rd_le16(&scales[group ? b * GLMQ_GGML_QK / group : 0]);
}

void glmq_int4_row_to_q4_0(const void *row, const uint16_t *scales, int64_t group, int64_t cols,
                           void *dst)
{
    const uint8_t *r = row;
    uint8_t *o = dst;
    for (int64_t b = 0; b < cols / GLMQ_GGML_QK; b++, o += GLMQ_GGML_Q4_0_BYTES) {
        /* ggml block b = elements 32b..32b+31 = quarter k of glmq block B: for k = 0, 1 the low
         * nibbles of bytes 32k..32k+31 of its 64, for k = 2, 3 the high nibbles of bytes
         * 32(k-2)..32(k-2)+31 (formats/layout.h); the nibble is q + 8 in both formats */
        const int64_t B = b / 4, k = b % 4;
        const uint8_t *src = r + (GLMQ_Q4_BLOCK / 2) * B + 32 * (k & 1);
        glmq_wr_le16(o, block_d(scales, group, b));
        if (k < 2)
            for (int j = 0; j < 16; j++)
                o[2 + j] = (uint8_t)((src[j] & 15u) | (src[16 + j] & 15u) << 4);
        else
            for (int j = 0; j < 16; j++)
                o[2 + j] = (uint8_t)(src[j] >> 4 | (src[16 + j] & 0xf0u));
    }
}

void glmq_int8_row_to_q8_0(const void *row, const uint16_t *scales, int64_t group, int64_t cols,
                           void *dst)
{
    const uint8_t *r = row;
    uint8_t *o = dst;
    for (int64_t b = 0; b < cols / GLMQ_GGML_QK; b++, o += GLMQ_GGML_Q8_0_BYTES) {
        glmq_wr_le16(o, block_d(scales, group, b));
        memcpy(o + 2, r + b * GLMQ_GGML_QK, GLMQ_GGML_QK);
    }
}

/* 1 when every block's d equals the first and is finite (fp16 exponent not all ones). */
static int same_d(const uint8_t *src, int64_t nb, size_t bytes, uint16_t *d)
{
    *d = glmq_rd_le16(src);
    if ((*d & 0x7C00u) == 0x7C00u) return 0;
    for (int64_t b = 1; b < nb; b++)
        if (glmq_rd_le16(src + b * (int64_t)bytes) != *d) return 0;
    return 1;
}

int glmq_q4_0_row_to_int4(const void *src, int64_t cols, void *dst, uint16_t *scale)
{
    const uint8_t *s = src;
    const int64_t nb = cols / GLMQ_GGML_QK;
    if (!same_d(s, nb, GLMQ_GGML_Q4_0_BYTES, scale)) return 0;
    uint8_t *o = dst;
    memset(o, 0x88, (size_t)glmq_q4_row_bytes(cols)); /* padding: code 0 */
    for (int64_t b = 0; b < nb; b++, s += GLMQ_GGML_Q4_0_BYTES)
        for (int j = 0; j < 16; j++) {
            const unsigned lo = s[2 + j] & 15u, hi = s[2 + j] >> 4;
            if (lo == 0 || hi == 0) return 0;
            q4_set(o, b * GLMQ_GGML_QK + j, lo);
            q4_set(o, b * GLMQ_GGML_QK + j + 16, hi);
        }
    return 1;
}

int glmq_q8_0_row_to_int8(const void *src, int64_t cols, void *dst, uint16_t *scale)
{
    const uint8_t *s = src;
    const int64_t nb = cols / GLMQ_GGML_QK;
    if (!same_d(s, nb, GLMQ_GGML_Q8_0_BYTES, scale)) return 0;
    uint8_t *o = dst;
    memset(o, 0, (size_t)glmq_q8_row_bytes(cols));
    for (int64_t b = 0; b < nb; b++, s += GLMQ_GGML_Q8_0_BYTES) {
        for (int j = 0; j < GLMQ_GGML_QK; j++)
            if (s[2 + j] == 0x80) return 0;
        memcpy(o + b * GLMQ_GGML_QK, s + 2, GLMQ_GGML_QK);
    }
    return 1;
}

/* The fp16 d of every block, little-endian, into scales; the padding groups of the glmq row
 * (glmq_scales_per_row beyond cols/32) get 0. 0 when a d is not finite. */
static int block_scales(const uint8_t *s, int64_t cols, size_t bytes, glmq_type to,
                        uint16_t *scales)
{
    const int64_t nb = cols / GLMQ_GGML_QK, spr = glmq_scales_per_row(to, cols);
    for (int64_t b = 0; b < spr; b++) {
        const uint16_t d = b < nb ? glmq_rd_le16(s + b * (int64_t)bytes) : 0;
        if ((d & 0x7C00u) == 0x7C00u) return 0;
        glmq_wr_le16(&scales[b], d);
    }
    return 1;
}

int glmq_q4_0_row_to_int4g32(const void *src, int64_t cols, void *dst, uint16_t *scales)
{
    const uint8_t *s = src;
    if (!block_scales(s, cols, GLMQ_GGML_Q4_0_BYTES, GLMQ_TYPE_INT4_G32, scales)) return 0;
    uint8_t *o = dst;
    memset(o, 0x88, (size_t)glmq_q4_row_bytes(cols));
    for (int64_t b = 0; b < cols / GLMQ_GGML_QK; b++, s += GLMQ_GGML_Q4_0_BYTES)
        for (int j = 0; j < 16; j++) {
            q4_set(o, b * GLMQ_GGML_QK + j, s[2 + j] & 15u);
            q4_set(o, b * GLMQ_GGML_QK + j + 16, s[2 + j] >> 4);
        }
    return 1;
}

int glmq_q8_0_row_to_int8g32(const void *src, int64_t cols, void *dst, uint16_t *scales)
{
    const uint8_t *s = src;
    if (!block_scales(s, cols, GLMQ_GGML_Q8_0_BYTES, GLMQ_TYPE_INT8_G32, scales)) return 0;
    uint8_t *o = dst;
    memset(o, 0, (size_t)glmq_q8_row_bytes(cols));
    for (int64_t b = 0; b < cols / GLMQ_GGML_QK; b++, s += GLMQ_GGML_Q8_0_BYTES) {
        for (int j = 0; j < GLMQ_GGML_QK; j++)
            if (s[2 + j] == 0x80) return 0;
        memcpy(o + b * GLMQ_GGML_QK, s + 2, GLMQ_GGML_QK);
    }
    return 1;
}
