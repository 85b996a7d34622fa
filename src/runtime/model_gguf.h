/*
 * model_gguf.h - a GGUF file of llama.cpp's `chatglm` architecture (ChatGLM2/3-6B, GLM-4-9B) as
 * a glmq model: its configuration and its tensors as glmq_tensor_info views (internal; model.c
 * opens the file, this part knows the naming and the metadata).
 */
#ifndef GLMQ_RUNTIME_MODEL_GGUF_H
#define GLMQ_RUNTIME_MODEL_GGUF_H

#include "formats/config.h"
#include "formats/gguf.h"

/* The configuration: the `glmq.config` object when the file is a glmq export (formats/SPEC.md,
 * "GGUF export"), else derived from the chatglm.* hyper-parameters, the tensor shapes and the
 * vocabulary's special-token pieces. Refuses other architectures by name. */
glmq_status glmq_gguf_model_config(const glmq_gguf *g, glmq_config *cfg, glmq_err *err);

/* A view of GGUF tensor t as glmq sees tensors: shape in checkpoint (PyTorch) order, F32/F16/BF16
 * as such, every other decodable ggml type as GLMQ_TYPE_GGML + type. `name` is the checkpoint
 * name the view carries (borrowed). An undecodable type is GLMQ_E_UNSUPPORTED naming it. */
glmq_status glmq_gguf_tensor_view(const glmq_gguf *g, const glmq_gguf_tensor *t, const char *name,
                                  glmq_tensor_info *out, glmq_err *err);

#endif
