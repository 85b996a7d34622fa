/*
 * export.h - internals of the GGUF export (convert/export.c); the API is glmq_export_gguf in
 * src/glmq.h.
 */
#ifndef GLMQ_CONVERT_EXPORT_H
#define GLMQ_CONVERT_EXPORT_H

#include "core/internal.h"

/*
 * Re-encode one stored glmq row (formats/SPEC.md §5) of `cols` elements, cols a multiple of 32,
 * as cols / 32 ggml blocks at `out`: GLMQ_TYPE_INT8 -> Q8_0 (34 bytes a block), GLMQ_TYPE_INT4
 * -> Q4_0 (18 bytes). `scale` is the row's fp16 scale (bits), written as every block's d. ggml's
 * dequantization of the blocks equals glmq's of the row, bit for bit.
 */
void glmq_export_q_row(glmq_type type, const void *row, uint16_t scale, int64_t cols,
                       uint8_t *out);

#endif /* GLMQ_CONVERT_EXPORT_H */
