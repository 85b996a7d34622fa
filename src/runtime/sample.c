/*
 * sample.c - greedy, temperature and top-p sampling with a seeded generator (see sample.h),
 * and the public glmq_sampler on top of it.
 *
 * The sampler owns its work buffer (one candidate per vocabulary entry, allocated at create),
 * so sampling a token allocates nothing; it checks the row of logits first, because a NaN
 * would make the sort order and the cumulative sums meaningless.
 */
#include "runtime/sample.h"

#include <math.h>
#include <stdlib.h>

struct glmq_sampler {
    glmq_sampler_params p;
    int64_t vocab;
    uint64_t rng;
    glmq_sample_cand *work; /* [vocab] */
};

uint64_t glmq_rng_seed(uint64_t seed) { return seed ? seed : 0x9E3779B97F4A7C15ull; }

double glmq_rng_uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    uint64_t v = *s * 0x2545F4914F6CDD1Dull;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

/* by weight, descending; ties by id, ascending */
static int cmp_cand(const void *a, const void *b)
{
    const glmq_sample_cand *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

int32_t glmq_sample_pick(const float *logits, int64_t V, double temp, double top_p,
                         uint64_t *rng, glmq_sample_cand *work)
{
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temp <= 0) return (int32_t)best;
    double z = 0;
    for (int64_t v = 0; v < V; v++) {
        work[v].p = (float)exp(((double)logits[v] - logits[best]) / temp);
        work[v].id = (int32_t)v;
        z += work[v].p;
    }
    int64_t n = V;
    if (top_p < 1) {
        qsort(work, (size_t)V, sizeof *work, cmp_cand);
        double acc = 0;
        for (n = 0; n < V; n++) {
            acc += work[n].p / z;
            if (acc >= top_p) {
                n++;
                break;
            }
        }
        z = 0;
        for (int64_t i = 0; i < n; i++) z += work[i].p;
    }
    double u = glmq_rng_uniform(rng) * z, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += work[i].p;
        if (u < acc) return work[i].id;
    }
    return work[n - 1].id;
}

void glmq_sampler_params_default(glmq_sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0;
    p->top_p = 1;
    p->seed = 1;
}

glmq_status glmq_sampler_create(const glmq_sampler_params *p, int64_t vocab, glmq_sampler **out,
                                glmq_err *err)
{
    GLMQ_FAIL_IF(!out, err, GLMQ_E_INVALID, "glmq_sampler_create: no output pointer given");
    *out = NULL;
    GLMQ_FAIL_IF(!p, err, GLMQ_E_INVALID, "glmq_sampler_create: no parameters given");
    GLMQ_FAIL_IF(!isfinite(p->temperature) || p->temperature < 0, err, GLMQ_E_INVALID,
                 "sampler: temperature %g is not a finite number >= 0", p->temperature);
    GLMQ_FAIL_IF(!(p->top_p > 0 && p->top_p <= 1), err, GLMQ_E_INVALID,
                 "sampler: top-p %g is outside (0, 1]", p->top_p);
    GLMQ_FAIL_IF(vocab < 1 || vocab > INT32_MAX, err, GLMQ_E_INVALID,
                 "sampler: vocabulary size %lld is outside [1, 2^31)", (long long)vocab);
    glmq_sampler *s = calloc(1, sizeof *s);
    GLMQ_FAIL_IF(!s, err, GLMQ_E_NOMEM, "out of memory");
    s->work = malloc((size_t)vocab * sizeof *s->work);
    if (!s->work) {
        free(s);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory for a sampler over %lld ids",
                         (long long)vocab);
    }
    s->p = *p;
    s->vocab = vocab;
    s->rng = glmq_rng_seed(p->seed);
    *out = s;
    return GLMQ_OK;
}

glmq_status glmq_sampler_sample(glmq_sampler *s, const float *logits, int32_t *id, glmq_err *err)
{
    GLMQ_FAIL_IF(!s || !logits || !id, err, GLMQ_E_INVALID,
                 "glmq_sampler_sample: no sampler, logits or output given");
    int finite = 0;
    for (int64_t v = 0; v < s->vocab; v++) {
        float l = logits[v];
        GLMQ_FAIL_IF(isnan(l) || l == INFINITY, err, GLMQ_E_VALUE,
                     "sampler: logit %lld is %s", (long long)v, isnan(l) ? "NaN" : "+inf");
        finite |= l != -INFINITY;
    }
    GLMQ_FAIL_IF(!finite, err, GLMQ_E_VALUE, "sampler: every logit is -inf");
    *id = glmq_sample_pick(logits, s->vocab, s->p.temperature, s->p.top_p, &s->rng, s->work);
    return GLMQ_OK;
}

void glmq_sampler_free(glmq_sampler *s)
{
    if (!s) return;
    free(s->work);
    free(s);
}
