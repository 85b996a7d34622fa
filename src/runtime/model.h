/*
 * model.h - a GLM model's config, tokenizer and weights, from a .glmq file or directly from a
 * Hugging Face checkpoint directory (internal).
 *
 * Either way the weights are glmq_tensor_info views (src/glmq.h): F32/F16/BF16 rows, or INT8/INT4
 * rows with fp16 scales. Views point into a read-only mapping wherever the bytes can be used as
 * they are (packed files always; safetensors and stored .bin members when element-aligned), and
 * into private copies otherwise (deflated members, strided tensors). Nothing is converted up
 * front: the forward pass widens rows as it needs them.
 */
#ifndef GLMQ_VERIFY_MODEL_H
#define GLMQ_VERIFY_MODEL_H

#include "formats/config.h"
#include "formats/glm_tensors.h"

typedef struct glmq_model glmq_model;

glmq_status glmq_model_open(const char *path, glmq_model **out, glmq_err *err);
void glmq_model_close(glmq_model *m); /* NULL-safe */

const glmq_config *glmq_model_config(const glmq_model *m);

/* The tensor called `name` (checkpoint naming, GLM-SPEC A.3/B.2), or NULL when absent. */
const glmq_tensor_info *glmq_model_tensor(const glmq_model *m, const char *name);

/* Replace the view of tensor `name` by `t` (borrowed: it must outlive its use), saving the old
 * view in *saved (may be NULL). For drift attribution: swap one quantized tensor back to the
 * reference's, evaluate, swap it back. */
glmq_status glmq_model_swap(glmq_model *m, const char *name, const glmq_tensor_info *t,
                            glmq_tensor_info *saved, glmq_err *err);

/* The packed file of a model opened from a .glmq (its metadata, blobs and header checksum), or
 * NULL for a checkpoint directory or a GGUF file. Owned by the model. */
const glmq_pack *glmq_model_pack(const glmq_model *m);

/* The embedded/bundled tokenizer file bytes, or NULL (size 0) when the model has none. */
const void *glmq_model_tokenizer(const glmq_model *m, size_t *size);

/* "glmq" or "checkpoint", and a 64-bit identity: the header checksum of a packed file, or the
 * XXH3-64 of the checkpoint's config.json and file names/sizes. */
const char *glmq_model_kind(const glmq_model *m);
uint64_t glmq_model_ident(const glmq_model *m);
/* The storage type of the layer weights ("int4", "int8", "f16", "bf16", "f32"). */
const char *glmq_model_weight_type(const glmq_model *m);

#endif
