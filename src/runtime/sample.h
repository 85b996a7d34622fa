/*
 * sample.h - choosing the next token from a row of logits (internal; the public sampler is
 * glmq_sampler_* in src/glmq.h, implemented in sample.c on these functions).
 *
 * Greedy: the argmax, the lowest id among equal maxima. Temperature T > 0: weights
 * w_v = exp((l_v - max) / T) in fp64 rounded to fp32, normalized by their fp64 sum z; with
 * top-p < 1 the ids are sorted by weight (descending, ties by ascending id) and cut after the
 * first prefix whose probability reaches top-p. A uniform u in [0, 1) from xorshift64* picks
 * the first id whose running weight sum exceeds u * z. Every step has one fixed order, so the
 * same seed and logits give the same id on every machine.
 */
#ifndef GLMQ_RUNTIME_SAMPLE_H
#define GLMQ_RUNTIME_SAMPLE_H

#include "core/internal.h"

/* One candidate of the work buffer: weight and id. */
typedef struct {
    float p;
    int32_t id;
} glmq_sample_cand;

/* The state a seed starts from: the seed itself, with 0 (a fixed point of xorshift) replaced
 * by 0x9E3779B97F4A7C15. */
uint64_t glmq_rng_seed(uint64_t seed);

/* xorshift64*: advance *state and return a uniform double in [0, 1) (53 bits). */
double glmq_rng_uniform(uint64_t *state);

/* The id picked from logits[0..vocab) (vocab >= 1) at temperature `temp` (<= 0: greedy, no
 * random number drawn) and nucleus `top_p` (>= 1: no cut); `work` holds vocab entries. The
 * logits must be finite or -inf, with at least one finite (glmq_sampler_sample checks). */
int32_t glmq_sample_pick(const float *logits, int64_t vocab, double temp, double top_p,
                         uint64_t *rng, glmq_sample_cand *work);

#endif
