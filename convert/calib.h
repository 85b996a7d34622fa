/*
 * calib.h - calibrated quantization of a checkpoint's layer weights (internal).
 *
 * glmq_calibrate runs glmq's own exact forward pass over calibration sequences, layer by layer
 * (GPTQ's sequential scheme): the residual stream of every sequence entering layer l is kept;
 * one pass through layer l, unquantized, accumulates H = sum x x^T of the inputs of its four
 * matrices (fp64, in token order); the matrices are quantized (quant/gptq.h: GPTQ, or the
 * activation-weighted scale search with d = diag H); a second pass through the quantized layer
 * advances the stream to layer l + 1. So the inputs of layer l come from the already-quantized
 * layers before it. H is accumulated by quant/hacc.h's kernels (the same bits on every level
 * and thread count). Peak memory: one layer's four H matrices, freed one by one as their
 * matrices are quantized (the widest, the FFN down-projection, last), plus one matrix's GPTQ
 * work (quant/gptq.h: one more cols x cols matrix); the stream (sequences x ctx x hidden fp32)
 * lives in a second unlinked temporary file, one sequence in memory at a time, and the
 * checkpoint pages of a layer's tensors are released once the layer is done with them.
 *
 * The stored rows and scales of every calibrated matrix go to an unlinked temporary file in
 * the output's directory, from which convert copies them instead of quantizing.
 */
#ifndef GLMQ_CONVERT_CALIB_H
#define GLMQ_CONVERT_CALIB_H

#include "core/internal.h"
#include "glmq.h"

struct cJSON;
typedef struct glmq_calib glmq_calib;

/* Calibrate the INT4/INT8 layer weights of checkpoint directory `src_dir` as o->method says
 * (SEARCH or GPTQ; o->weight_type INT4 or INT8). tmp_dir holds the temporary file. */
glmq_status glmq_calibrate(const char *src_dir, const glmq_convert_opts *o, const char *tmp_dir,
                           glmq_calib **out, glmq_err *err);
void glmq_calib_free(glmq_calib *c); /* NULL-safe */

/* glmq_convert, with the calibration kept (keep != NULL): if *keep is NULL, the calibration
 * this conversion runs (if its method calibrates) is handed to the caller in *keep on success
 * (free it with glmq_calib_free); if *keep is set, it is used instead of calibrating again.
 * The caller gives it for the same checkpoint and method (a round-to-nearest method with one is
 * GLMQ_E_INVALID); a tensor it does not hold at the type chosen for it (e.g. one a
 * --tensor-type rule promotes) is quantized round-to-nearest.
 * keep == NULL is glmq_convert. */
glmq_status glmq_convert_calib(const char *src_dir, const char *out_path,
                               const glmq_convert_opts *o, glmq_convert_report *report,
                               glmq_calib **keep, glmq_err *err);

/* 1 when tensor `name` was calibrated (as `type`, rows x cols). */
int glmq_calib_has(const glmq_calib *c, const char *name, glmq_type type, int64_t rows,
                   int64_t cols);

/* Stored rows [r0, r0 + nr) of a calibrated tensor (formats/layout.h) into dst and their fp16
 * scales into scales[0..nr). */
glmq_status glmq_calib_rows(const glmq_calib *c, const char *name, int64_t r0, int64_t nr,
                            void *dst, uint16_t *scales, glmq_err *err);

/* What the metadata records: method, calibration text hash and size, tokens, sequences, ctx,
 * damping, order, group, and per matrix the H-weighted error against round-to-nearest (no
 * timings: the output is byte-identical for the same input and options). */
struct cJSON *glmq_calib_json(const glmq_calib *c);

#endif /* GLMQ_CONVERT_CALIB_H */
