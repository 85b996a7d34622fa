/*
 * sat.h - a SwissArmyTransformer (SAT) checkpoint of GLM-130B, split N ways for tensor
 * parallelism (formats/GLM130B.md), presented as one GLM checkpoint (internal).
 *
 * Layout: DIR/latest holds the iteration tag; DIR/<tag>/mp_rank_0N_model_states.pt (N = 0 ..
 * ranks-1) each hold torch.save({'module': state dict of rank N}). DIR may also be the iteration
 * folder itself. DIR/model_config.json (SAT's argument names; read from the folder above the
 * iteration folder too) gives the hyper-parameters; without it the release's constants are used
 * when the shapes are GLM-130B's (glmq_config_parse_sat).
 *
 * Every rank's tensors are loaded under the prefix "mp_rank_NN/" (nothing is read but the
 * pickles), and every tensor of the glm130b table (formats/glm_tensors.c) is added as a composite
 * of the ranks' slices, in canonical order:
 *   word embedding (vocab-parallel)          rows of ranks 0..N-1
 *   query_key_value weight, bias (column)    rows of ranks 0..N-1 (each rank: its heads, every
 *                                            head's [q k v] rows together)
 *   dense_h_to_4h weight, bias (column,      the first half of every rank's rows (ranks 0..N-1),
 *     GeGLU)                                 then the second half of every rank's rows
 *   dense, dense_4h_to_h weight (row)        columns of ranks 0..N-1
 *   norms, dense / dense_4h_to_h biases      rank 0's (replicated; every rank's shape checked)
 * Each slice must have exactly the shape the N-way split implies; errors name the rank's file
 * and the tensor.
 */
#ifndef GLMQ_FORMATS_SAT_H
#define GLMQ_FORMATS_SAT_H

#include "formats/checkpoint.h"

/* 1 when `dir` holds a `latest` file or an mp_rank_00_model_states.pt and no config.json (a
 * SAT checkpoint, not a Hugging Face directory that kept DeepSpeed files). */
int glmq_sat_detect(const char *dir);

/* Fill c->set (ranks and composites), c->cfg and c->config_json (model_config.json, or the
 * hyper-parameters used, written as such a file when the directory has none) from c->dir.
 * *n_ranks receives the rank count. */
glmq_status glmq_sat_open(glmq_checkpoint *c, int *n_ranks, glmq_err *err);

#endif /* GLMQ_FORMATS_SAT_H */
