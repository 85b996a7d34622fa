/*
 * thudm_quant.c - THUDM's quantized rows, repacked into glmq's INT8/INT4 rows or dequantized
 * (see thudm_quant.h for the storage). Pure layout: no rounding happens here; the codes and the
 * fp16 scale are carried over as they are.
 */
#include "formats/thudm_quant.h"

int64_t glmq_thudm_repack_row(const int8_t *src, int bits, int64_t cols, uint8_t *dst)
{
    if (bits == 8) {
        const int64_t pc = glmq_q8_padded_cols(cols);
        for (int64_t c = 0; c < cols; c++) {
            if (src[c] == -128) return c;
            dst[c] = (uint8_t)src[c];
        }
        memset(dst + cols, 0, (size_t)(pc - cols));
        return -1;
    }
    /* INT4 (layout.h): byte 64b+j = (q[128b+j] + 8) | (q[128b+64+j] + 8) << 4; padding 8 */
    const int64_t pc = glmq_q4_padded_cols(cols);
    for (int64_t c = 0; c < pc; c++) {
        int q = 0;
        if (c < cols) {
            q = glmq_thudm_code(src, 4, c);
            if (q == -8) return c;
        }
        const int64_t b = c / GLMQ_Q4_BLOCK, k = c % GLMQ_Q4_BLOCK;
        uint8_t *p = dst + b * (GLMQ_Q4_BLOCK / 2) + (k & 63);
        const uint8_t nib = (uint8_t)(q + 8);
        if (k < 64)
            *p = nib; /* the low nibble comes first; the high one is or'ed in at k + 64 */
        else
            *p = (uint8_t)(*p | (nib << 4));
    }
    return -1;
}

void glmq_thudm_dequant_row(const int8_t *src, int bits, int64_t cols, uint16_t scale,
                            float *dst)
{
    const float s = glmq_f16_to_f32(scale);
    for (int64_t c = 0; c < cols; c++) dst[c] = (float)glmq_thudm_code(src, bits, c) * s;
}

glmq_status glmq_thudm_row(const int8_t *src, int bits, int64_t cols, uint16_t scale,
                           uint8_t *dst, const char *name, int64_t row, glmq_err *err)
{
    GLMQ_FAIL_IF(!glmq_thudm_scale_ok(scale), err, GLMQ_E_VALUE,
                 "tensor '%s_scale' row %lld: scale %g is not a finite number >= 0", name,
                 (long long)row, (double)glmq_f16_to_f32(scale));
    const int64_t c = dst ? glmq_thudm_repack_row(src, bits, cols, dst) : -1;
    GLMQ_FAIL_IF(c >= 0, err, GLMQ_E_VALUE,
                 "tensor '%s' row %lld column %lld: code %d is outside glmq's %s range (%s); "
                 "THUDM's rounding never writes it",
                 name, (long long)row, (long long)c, bits == 8 ? -128 : -8,
                 glmq_type_name(glmq_thudm_type(bits)), bits == 8 ? "-127..127" : "-7..7");
    return GLMQ_OK;
}
