/*
 * tokenize.h - a model's own tokenizer (internal; the public entry points are glmq_tokenize and
 * glmq_detokenize in src/glmq.h).
 *
 * The tokenizer file comes with the model (embedded in a .glmq, or the checkpoint's
 * tokenizer.model / ice_text.model); the GLM flavour (special ids, v1 preprocessing and image
 * offset, prompt framing) follows from the model's config, and the tokenizer's own [gMASK] must
 * be the config's.
 */
#ifndef GLMQ_RUNTIME_TOKENIZE_H
#define GLMQ_RUNTIME_TOKENIZE_H

#include "formats/tokenizer.h"
#include "runtime/model.h"

/* Open the tokenizer bundled with a model, with the GLM flavour implied by its config. The
 * caller owns *out (glmq_tokenizer_free). */
glmq_status glmq_model_tokenizer_open(const glmq_model *m, glmq_tokenizer **out, glmq_err *err);

/* The same tokenizer, opened on the first call and owned by the model until glmq_model_close
 * (model.c). Any number of threads may call it, and use the tokenizer, at once. */
glmq_status glmq_model_tokenizer_cached(const glmq_model *m, const glmq_tokenizer **out,
                                        glmq_err *err);

/* The UTF-8 file at path in m's tokenizer (no special tokens): *out's ids (glmq_ids_free).
 * An unreadable file is GLMQ_E_IO naming it, a file without tokens GLMQ_E_INVALID. */
glmq_status glmq_model_encode_file(const glmq_model *m, const char *path, glmq_ids *out,
                                   glmq_err *err);

#endif
