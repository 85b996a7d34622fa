/*
 * layout.h - how a quantized row is stored (formats/SPEC.md §5): padding and nibble order of
 * INT8 and INT4 rows, and the one row-bytes function of every stored type. Shared by the packed
 * file (formats/pack_*.c), the quantizers and the kernels (quant/).
 *
 * Storage layout of one row (what the packed file holds, formats/SPEC.md §5):
 *   INT8: cols padded up to a multiple of GLMQ_Q8_ALIGN (64) elements; int8 codes; pad = 0.
 *   INT4: cols padded up to a multiple of GLMQ_Q4_BLOCK (128) elements. Block b (elements
 *         128b .. 128b+127) is 64 bytes at byte offset 64b of the row:
 *
 *            byte 64b+j (j = 0..63):  bits 0-3 = q[128b + j] + 8
 *                                     bits 4-7 = q[128b + 64 + j] + 8
 *
 *         so a 64-byte load (one zmm) holds a whole block: the low nibbles are elements 0..63,
 *         the high nibbles elements 64..127; a 32-byte load (one ymm) at +32 holds 32..63 and
 *         96..127. Codes are offset-binary (1..15; 8 = zero, also used for padding) so that
 *         vpmaddubsw / vpdpbusd can take them as the unsigned operand and subtract 8*sum(a).
 *   Row bytes are therefore multiples of 64 for both types, and rows stay 64-byte aligned.
 *
 * Group-wise types (INT8_G32 ... INT4_G128, pack format 1.1) store their rows exactly as INT8 /
 * INT4 do; only the scale table differs: glmq_scales_per_row() fp16 scales per row, scale g
 * covering the g-th group of `group` columns of the padded row (padding groups have scale 0).
 */
#ifndef GLMQ_LAYOUT_H
#define GLMQ_LAYOUT_H

#include "core/ggml_type.h"
#include "core/internal.h"

#define GLMQ_Q4_BLOCK 128
#define GLMQ_Q8_ALIGN 64

_Static_assert(GLMQ_Q4_BLOCK / 2 == 64, "an INT4 block is one 64-byte cache line");

/* Padded element count and bytes of one stored row. */
static inline int64_t glmq_q4_padded_cols(int64_t cols)
{
    return (cols + GLMQ_Q4_BLOCK - 1) / GLMQ_Q4_BLOCK * GLMQ_Q4_BLOCK;
}
static inline int64_t glmq_q8_padded_cols(int64_t cols)
{
    return (cols + GLMQ_Q8_ALIGN - 1) / GLMQ_Q8_ALIGN * GLMQ_Q8_ALIGN;
}
static inline int64_t glmq_q4_row_bytes(int64_t cols) { return glmq_q4_padded_cols(cols) / 2; }
static inline int64_t glmq_q8_row_bytes(int64_t cols) { return glmq_q8_padded_cols(cols); }

/* Group size of a group-wise type (32, 64, 128); 0 for every other type. */
static inline int64_t glmq_type_group(glmq_type type)
{
    switch (type) {
    case GLMQ_TYPE_INT8_G32:
    case GLMQ_TYPE_INT4_G32: return 32;
    case GLMQ_TYPE_INT8_G64:
    case GLMQ_TYPE_INT4_G64: return 64;
    case GLMQ_TYPE_INT8_G128:
    case GLMQ_TYPE_INT4_G128: return 128;
    default: return 0;
    }
}

/* The row layout a type shares: INT8 for INT8 and INT8_G*, INT4 for INT4 and INT4_G*; the type
 * itself for every other. */
static inline glmq_type glmq_type_codes(glmq_type type)
{
    if (type >= GLMQ_TYPE_INT8_G32 && type <= GLMQ_TYPE_INT8_G128) return GLMQ_TYPE_INT8;
    if (type >= GLMQ_TYPE_INT4_G32 && type <= GLMQ_TYPE_INT4_G128) return GLMQ_TYPE_INT4;
    return type;
}

/* The group-wise type of INT8/INT4 codes with groups of `group` (0: the per-row type itself);
 * -1 when there is none. */
static inline int glmq_type_grouped(glmq_type codes, int64_t group)
{
    if (codes != GLMQ_TYPE_INT8 && codes != GLMQ_TYPE_INT4) return -1;
    const int base = codes == GLMQ_TYPE_INT8 ? GLMQ_TYPE_INT8_G32 : GLMQ_TYPE_INT4_G32;
    switch (group) {
    case 0: return (int)codes;
    case 32: return base;
    case 64: return base + 1;
    case 128: return base + 2;
    default: return -1;
    }
}

/* Whether a stored type has a scale table (INT8, INT4 and the group-wise types). */
static inline bool glmq_type_scaled(glmq_type type)
{
    const glmq_type c = glmq_type_codes(type);
    return c == GLMQ_TYPE_INT8 || c == GLMQ_TYPE_INT4;
}

/* fp16 scales per row: 1 for INT8/INT4, ceil(padded cols / group) for the group-wise types, 0
 * for the others. */
static inline int64_t glmq_scales_per_row(glmq_type type, int64_t cols)
{
    const int64_t g = glmq_type_group(type);
    if (!g) return glmq_type_scaled(type) ? 1 : 0;
    const int64_t pc = glmq_type_codes(type) == GLMQ_TYPE_INT4 ? glmq_q4_padded_cols(cols)
                                                              : glmq_q8_padded_cols(cols);
    return (pc + g - 1) / g;
}

/* The one row-bytes function: bytes of one stored row of `type` with `cols` columns, padding
 * included (F32 4 per element, F16/BF16 2; INT8/INT4 as above); -1 for an unknown type. */
static inline int64_t glmq_row_bytes(glmq_type type, int64_t cols)
{
    switch (type) {
    case GLMQ_TYPE_F32: return cols * 4;
    case GLMQ_TYPE_F16:
    case GLMQ_TYPE_BF16: return cols * 2;
    case GLMQ_TYPE_INT8: return glmq_q8_row_bytes(cols);
    case GLMQ_TYPE_INT4: return glmq_q4_row_bytes(cols);
    case GLMQ_TYPE_INT8_G32:
    case GLMQ_TYPE_INT8_G64:
    case GLMQ_TYPE_INT8_G128: return glmq_q8_row_bytes(cols);
    case GLMQ_TYPE_INT4_G32:
    case GLMQ_TYPE_INT4_G64:
    case GLMQ_TYPE_INT4_G128: return glmq_q4_row_bytes(cols);
    case GLMQ_TYPE_GGML: break;
    }
    if (type > GLMQ_TYPE_GGML) {
        uint64_t b = glmq_ggml_row_bytes((uint32_t)(type - GLMQ_TYPE_GGML), cols);
        return b && b <= INT64_MAX ? (int64_t)b : -1;
    }
    return -1;
}

#endif /* GLMQ_LAYOUT_H */
