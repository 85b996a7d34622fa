/*
 * thudm_quant.h - the storage of THUDM's own quantized releases (chatglm-6b-int4/-int8,
 * chatglm2-6b-int4, chatglm-6b-int4-qe) and its lossless repacking into glmq's INT8/INT4 rows
 * (formats/layout.h); internal.
 *
 * What those checkpoints hold (THUDM's quantization.py, shipped in the release repositories):
 * every quantized linear weight W [rows, cols] is stored as
 *   <name>         int8 [rows, cols]     (quantization_bit 8: one signed code per byte), or
 *                  int8 [rows, cols/2]   (quantization_bit 4: two signed nibbles per byte,
 *                                         column 2j in the high nibble, 2j+1 in the low one)
 *   <name>_scale   fp16 [rows]           scale = fp16(max|W row| / (2^(bit-1) - 1))
 * with codes round(W / scale) (round half to even, no clamp) and the dequantized value
 * code * scale. Their rounding never produces -128 (int8) or -8 (int4): |W / scale| <= qmax
 * up to one fp16 rounding. glmq's INT8 and INT4 hold -127..127 and -7..7 and use the same
 * value = code * scale with an fp16 scale per row, so a THUDM row is repacked without any
 * rounding; a -128 / -8 code (a hand-made file) is reported, never altered.
 */
#ifndef GLMQ_FORMATS_THUDM_QUANT_H
#define GLMQ_FORMATS_THUDM_QUANT_H

#include "formats/layout.h"

/* The signed code of column c of a THUDM row `row` of `bits` (4 or 8). */
static inline int glmq_thudm_code(const int8_t *row, int bits, int64_t c)
{
    if (bits == 8) return row[c];
    const uint8_t b = (uint8_t)row[c >> 1];
    const int nib = (c & 1) ? (b & 15) : (b >> 4);
    return nib >= 8 ? nib - 16 : nib;
}

/* 1 when an fp16 scale is usable: finite and not negative (+-0 included). */
static inline int glmq_thudm_scale_ok(uint16_t h)
{
    return (h & 0x7c00u) != 0x7c00u && (!(h & 0x8000u) || (h & 0x7fffu) == 0);
}

/* The glmq storage type that holds a THUDM row of `bits` without rounding. */
static inline glmq_type glmq_thudm_type(int bits)
{
    return bits == 8 ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
}

/*
 * Repack one THUDM row (cols columns of `bits`) into glmq's stored row of
 * glmq_thudm_type(bits), padding included (glmq_row_bytes(type, cols) bytes at dst). Returns -1,
 * or the first column whose code the glmq type cannot hold (-128 for int8, -8 for int4); dst is
 * then unspecified.
 */
int64_t glmq_thudm_repack_row(const int8_t *src, int bits, int64_t cols, uint8_t *dst);

/*
 * The checked form for one row `row` of tensor `name`: the scale must pass
 * glmq_thudm_scale_ok and, when dst is not NULL, the row is repacked as above. @return GLMQ_OK,
 * or GLMQ_E_VALUE naming the tensor (its `_scale` for a bad scale), row and column.
 */
glmq_status glmq_thudm_row(const int8_t *src, int bits, int64_t cols, uint16_t scale,
                           uint8_t *dst, const char *name, int64_t row, glmq_err *err);

/* THUDM's dequantization of one row: dst[c] = code(c) * scale, in fp32 (exact: an 8-bit code
 * times an 11-bit significand). */
void glmq_thudm_dequant_row(const int8_t *src, int bits, int64_t cols, uint16_t scale,
                            float *dst);

#endif /* GLMQ_FORMATS_THUDM_QUANT_H */
