/*
 * checkpoint.h - a Hugging Face GLM checkpoint directory, opened and validated (internal).
 *
 * glmq_checkpoint_open reads config.json (+ tokenizer_config.json), the tokenizer file, and the
 * weights (model.safetensors[.index.json] preferred over pytorch_model.bin[.index.json]), then
 * checks every tensor the architecture needs (formats/glm_tensors.h) for presence, dtype and
 * shape against the config before anything is written. Unexpected tensors become warnings;
 * inv_freq buffers are skipped. A GLM-130B SAT directory (a `latest` file or rank files,
 * formats/sat.h) is read instead by glmq_sat_open and then checked the same way.
 */
#ifndef GLMQ_CONVERT_CHECKPOINT_H
#define GLMQ_CONVERT_CHECKPOINT_H

#include "formats/config.h"
#include "formats/glm_tensors.h"
#include "formats/source.h"

typedef struct {
    char *name;     /* file name inside the directory */
    uint8_t *data;  /* whole contents (small files only) or NULL */
    size_t size;
} glmq_small_file;

typedef struct {
    glmq_expected_tensor want; /* name, shape, role */
    int64_t src;               /* index into set.tensors, or -1 (optional and absent) */
    /* THUDM's quantized releases (formats/thudm_quant.h): qbits 4 or 8 when `src` holds int8
     * codes (shape [rows, cols * qbits / 8]) and scale_src the fp16 `<name>_scale` [rows];
     * qbits 0 and scale_src -1 for a float tensor */
    int qbits;
    int64_t scale_src;
} glmq_ckpt_tensor;

typedef struct glmq_checkpoint {
    char *dir;
    glmq_config cfg;
    glmq_src_set set;
    const char *weights_format;    /* "safetensors" or "pytorch" */
    int sharded;
    glmq_small_file config_json;   /* config.json */
    glmq_small_file tokenizer;     /* tokenizer.model / ice_text.model (data NULL if absent) */
    glmq_small_file tokenizer_cfg; /* tokenizer_config.json (may be absent) */
    glmq_small_file index;         /* the shard index json (sharded only) */
    glmq_ckpt_tensor *tensors;     /* expected tensors, canonical order */
    int64_t n_tensors;
    char **warnings;
    int64_t n_warnings;
} glmq_checkpoint;

glmq_status glmq_checkpoint_open(const char *dir, glmq_checkpoint **out, glmq_err *err);

/* Only config.json, tokenizer_config.json and the tokenizer file (tokenizer.model,
 * ice_text.model or a GLM-4 tokenizer.json), as glmq_checkpoint_open reads them, with the
 * special ids numbered: no weights are looked at (set and tensors stay empty). For tokenizing a
 * directory; a missing tokenizer is a warning as there (c->tokenizer.data NULL). */
glmq_status glmq_checkpoint_open_meta(const char *dir, glmq_checkpoint **out, glmq_err *err);

/* Append a warning (printf-formatted, at most 511 bytes) to c->warnings, which the conversion
 * report hands on. */
glmq_status glmq_checkpoint_warn(glmq_checkpoint *c, glmq_err *err, const char *fmt, ...)
    GLMQ_PRINTF(3, 4);
void glmq_checkpoint_close(glmq_checkpoint *c);

#endif
