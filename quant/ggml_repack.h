/*
 * ggml_repack.h - ggml's Q4_0 / Q8_0 blocks and glmq's per-row INT4 / INT8 rows, both ways,
 * without any rounding (internal).
 *
 * ggml block of 32 elements (GGUF types 2 and 8):
 *   Q4_0: fp16 d, then 16 bytes; byte j holds element j in its low nibble and element j + 16 in
 *         its high nibble, each as q + 8; value = (nibble - 8) * d.
 *   Q8_0: fp16 d, then 32 int8 codes; value = q * d.
 * glmq's rows (formats/layout.h) hold the same codes with one fp16 scale per row. A glmq row
 * therefore becomes Q4_0/Q8_0 blocks that all carry the row's scale (the export), and a row of
 * blocks that all carry the same d becomes a glmq row (the import of such an export, so that the
 * fast INT4/INT8 kernels run it). INT4 codes are -7..7; a Q4_0 nibble 0 (code -8) has no INT4
 * code. The group-wise types (formats/layout.h) take any Q4_0 / Q8_0 row: INT4_G32 / INT8_G32
 * are ggml's blocks with the scales moved to the scale table. The values decoded either way are
 * the same floats: code * scale in fp32 in both formats.
 */
#ifndef GLMQ_QUANT_GGML_REPACK_H
#define GLMQ_QUANT_GGML_REPACK_H

#include "core/internal.h"

#define GLMQ_GGML_Q4_0_BYTES 18
#define GLMQ_GGML_Q8_0_BYTES 34
#define GLMQ_GGML_QK 32

/* A glmq INT4 / INT4_G* row (cols % 32 == 0) as cols/32 Q4_0 blocks in dst. scales: the row's
 * fp16 scales, little-endian as stored: one (group 0, a per-row type) or one per group of
 * `group` columns (a multiple of 32: each block lies in one group and carries its scale). */
void glmq_int4_row_to_q4_0(const void *row, const uint16_t *scales, int64_t group, int64_t cols,
                           void *dst);
/* A glmq INT8 / INT8_G* row (cols % 32 == 0) as cols/32 Q8_0 blocks in dst, as above. */
void glmq_int8_row_to_q8_0(const void *row, const uint16_t *scales, int64_t group, int64_t cols,
                           void *dst);

/* When every block of the Q4_0 row `src` (cols % 32 == 0) carries the same finite d and no
 * nibble is 0: write the glmq INT4 row (glmq_q4_row_bytes(cols) bytes, padding included) to dst,
 * *scale = d, return 1. Else return 0 (dst unspecified). */
int glmq_q4_0_row_to_int4(const void *src, int64_t cols, void *dst, uint16_t *scale);
/* The same for Q8_0 and glmq INT8 (codes -128 refused: INT8 codes are -127..127). */
int glmq_q8_0_row_to_int8(const void *src, int64_t cols, void *dst, uint16_t *scale);

/* Any Q4_0 row (cols % 32 == 0) as a glmq INT4_G32 row: the same nibbles, each block's d as its
 * group's scale (glmq_scales_per_row(INT4_G32, cols) little-endian entries in scales, the
 * padding groups 0). Return 1, or 0 when a d is not finite (dst unspecified). */
int glmq_q4_0_row_to_int4g32(const void *src, int64_t cols, void *dst, uint16_t *scales);
/* The same for Q8_0 and INT8_G32 (0 also for a code -128). */
int glmq_q8_0_row_to_int8g32(const void *src, int64_t cols, void *dst, uint16_t *scales);

#endif
