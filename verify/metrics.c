/*
 * metrics.c - perplexity, logit drift and drift attribution (see metrics.h for the protocols).
 *
 * Everything that is summed over the vocabulary is done in fp64 from the fp32 logits, in a fixed
 * order, so results do not depend on the thread count. The reference R and the model under test
 * Q see exactly the same windows: one window is evaluated on R, then on Q, and the two logit
 * blocks are compared before the next window, so memory stays at two windows of logits (plus
 * two windows of hidden states for the per-layer attribution).
 */
#include "verify/metrics.h"

#include "core/file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void glmq_eval_opts_default(glmq_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ctx = 256;
    o->stride = 512;
}

void glmq_eval_opts_resolve(glmq_eval_opts *o)
{
    if (o->ctx <= 0) o->ctx = o->strided ? 2048 : 256;
    if (o->stride <= 0) o->stride = 512;
}

glmq_status glmq_eval_set_kernels(glmq_eval_opts *o, const char *name, glmq_err *err)
{
    if (name && !strcmp(name, "fast"))
        o->mode = GLMQ_FWD_FAST;
    else if (name && !strcmp(name, "exact"))
        o->mode = GLMQ_FWD_EXACT;
    else if (name && !strcmp(name, "reference"))
        o->mode = o->ref_mode = GLMQ_FWD_REFERENCE;
    else
        return glmq_fail(err, GLMQ_E_INVALID, "'%s' is not fast, exact or reference",
                         name ? name : "");
    return GLMQ_OK;
}

glmq_status glmq_eval_load_ids(const glmq_model *m, const char *text_file, const char *ids_file,
                               int32_t **ids, int64_t *n, glmq_err *err)
{
    *ids = NULL;
    *n = 0;
    const char *path = text_file ? text_file : ids_file;
    GLMQ_FAIL_IF(!path, err, GLMQ_E_INVALID, "no text or ids file given");
    glmq_ids v = {0};
    if (text_file) {
        GLMQ_TRY(glmq_model_encode_file(m, text_file, &v, err));
    } else {
        char *text = NULL;
        size_t len = 0;
        GLMQ_TRY(glmq_read_file(path, &text, &len, err));
        glmq_status st = glmq_parse_ids(text, len, glmq_model_config(m)->vocab, path, &v, err);
        free(text);
        if (st == GLMQ_OK && v.n == 0)
            st = glmq_fail(err, GLMQ_E_INVALID, "'%s' has no tokens", path);
        if (st != GLMQ_OK) {
            glmq_ids_free(&v);
            return st;
        }
    }
    *ids = v.ids;
    *n = (int64_t)v.n;
    return GLMQ_OK;
}

glmq_status glmq_parse_ids(const char *text, size_t len, int64_t vocab, const char *what,
                           glmq_ids *out, glmq_err *err)
{
    size_t i = 0;
    int64_t count = 0;
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' ||
                           text[i] == '\r' || text[i] == ','))
            i++;
        if (i >= len) break;
        size_t start = i;
        int64_t v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + (text[i] - '0');
            if (v > INT32_MAX) break;
            i++;
        }
        GLMQ_FAIL_IF(i == start || (i < len && !(text[i] == ' ' || text[i] == '\n' ||
                                                  text[i] == '\t' || text[i] == '\r' ||
                                                  text[i] == ',')),
                     err, GLMQ_E_FORMAT,
                     "%s: token %lld at byte %zu is not a non-negative integer id", what,
                     (long long)count, start);
        GLMQ_FAIL_IF(v >= vocab, err, GLMQ_E_VALUE,
                     "%s: token %lld at byte %zu: id %lld is outside the vocabulary [0, %lld)",
                     what, (long long)count, start, (long long)v, (long long)vocab);
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 1024;
            int32_t *p = realloc(out->ids, nc * sizeof *p);
            GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
            out->ids = p;
            out->cap = nc;
        }
        out->ids[out->n++] = (int32_t)v;
        count++;
    }
    return GLMQ_OK;
}

glmq_status glmq_eval_prefix(const glmq_config *c, int32_t prefix[2], glmq_err *err)
{
    GLMQ_FAIL_IF(c->tok_gmask < 0 || c->tok_sop < 0, err, GLMQ_E_INVALID,
                 "the model does not know its [gMASK]/sop ids (no tokenizer was bundled)");
    prefix[0] = (int32_t)c->tok_gmask;
    prefix[1] = (int32_t)c->tok_sop;
    return GLMQ_OK;
}

glmq_status glmq_windows(const glmq_config *c, int64_t n, const glmq_eval_opts *o,
                         glmq_window **out, int64_t *nw, glmq_err *err)
{
    *out = NULL;
    *nw = 0;
    GLMQ_FAIL_IF(n < 1, err, GLMQ_E_INVALID, "no tokens to evaluate");
    glmq_window *w = NULL;
    int64_t k = 0;
    if (!o->strided) {
        GLMQ_FAIL_IF(o->ctx < 3, err, GLMQ_E_INVALID, "--ctx must be at least 3 (2 prefix ids)");
        int64_t step = o->ctx - 2;
        int64_t total = (n + step - 1) / step;
        w = calloc((size_t)total, sizeof *w);
        GLMQ_FAIL_IF(!w, err, GLMQ_E_NOMEM, "out of memory");
        for (int64_t b = 0; b < n; b += step) {
            w[k].begin = b;
            w[k].len = n - b < step ? n - b : step;
            w[k].score_from = 0;
            k++;
        }
    } else {
        GLMQ_FAIL_IF(c->arch == GLMQ_ARCH_CHATGLM1, err, GLMQ_E_UNSUPPORTED,
                     "the strided protocol feeds windows without [gMASK] <sop>, which ChatGLM-6B "
                     "cannot run; use the default protocol");
        GLMQ_FAIL_IF(o->ctx < 2 || o->stride < 1, err, GLMQ_E_INVALID,
                     "--ctx must be >= 2 and --stride >= 1");
        int64_t total = n / o->stride + 2;
        w = calloc((size_t)total, sizeof *w);
        GLMQ_FAIL_IF(!w, err, GLMQ_E_NOMEM, "out of memory");
        int64_t prev_end = 0;
        for (int64_t b = 0; b < n; b += o->stride) {
            int64_t end = b + o->ctx < n ? b + o->ctx : n;
            int64_t target = end - prev_end < o->ctx - 1 ? end - prev_end : o->ctx - 1;
            w[k].begin = b;
            w[k].len = end - b;
            w[k].score_from = w[k].len - target;
            if (target > 0) k++;
            prev_end = end;
            if (end == n) break;
        }
    }
    if (o->max_chunks > 0 && k > o->max_chunks) k = o->max_chunks;
    *out = w;
    *nw = k;
    return GLMQ_OK;
}

/* Evaluation state of one model: a forward and buffers for one window. */
typedef struct {
    glmq_forward *fw;
    int32_t *ids;   /* [ctx] */
    float *logits;  /* [ctx][vocab] */
    float *hidden;  /* [n_layers][ctx][hidden] or NULL */
    int64_t plen;   /* prefix ids fed before the window */
} runner;

static void runner_free(runner *r)
{
    glmq_forward_free(r->fw);
    free(r->ids);
    free(r->logits);
    free(r->hidden);
    memset(r, 0, sizeof *r);
}

static glmq_status runner_init(runner *r, const glmq_model *m, const glmq_eval_opts *o,
                               glmq_forward_mode mode, int want_hidden, glmq_err *err)
{
    memset(r, 0, sizeof *r);
    const glmq_config *c = glmq_model_config(m);
    int64_t cap = o->ctx;
    r->plen = o->strided ? 0 : 2;
    GLMQ_TRY(glmq_forward_create_mode(m, cap, o->threads, mode, &r->fw, err));
    r->ids = malloc((size_t)cap * sizeof *r->ids);
    r->logits = malloc((size_t)cap * (size_t)c->vocab * sizeof *r->logits);
    if (want_hidden)
        r->hidden = malloc((size_t)c->n_layers * (size_t)cap * (size_t)c->hidden * sizeof(float));
    if (!r->ids || !r->logits || (want_hidden && !r->hidden)) {
        runner_free(r);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory for ctx %lld", (long long)cap);
    }
    if (r->plen) {
        int32_t pre[2] = {0, 0};
        glmq_status st = glmq_eval_prefix(c, pre, err);
        if (st != GLMQ_OK) {
            runner_free(r);
            return st;
        }
        r->ids[0] = pre[0];
        r->ids[1] = pre[1];
    }
    return GLMQ_OK;
}

/* Feed window w (fresh forward). Row (plen + j - 1) of r->logits then predicts text id
 * begin + j, for j >= score_from (and j >= 1 when there is no prefix). */
static glmq_status runner_eval(runner *r, const int32_t *ids, const glmq_window *w, glmq_err *err)
{
    memcpy(r->ids + r->plen, ids + w->begin, (size_t)w->len * sizeof *ids);
    glmq_forward_reset(r->fw);
    return glmq_forward_eval_ex(r->fw, r->ids, r->plen + w->len, r->logits, r->hidden, err);
}

/* fp64 log-sum-exp of a logit row */
static double logsumexp(const float *x, int64_t n)
{
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}

glmq_status glmq_perplexity(const glmq_model *m, const int32_t *ids, int64_t n,
                            const glmq_eval_opts *o, glmq_ppl_result *res, glmq_err *err)
{
    memset(res, 0, sizeof *res);
    const glmq_config *c = glmq_model_config(m);
    glmq_window *w = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_windows(c, n, o, &w, &nw, err));
    runner r;
    glmq_status st = runner_init(&r, m, o, o->mode, 0, err);
    if (st != GLMQ_OK) {
        free(w);
        return st;
    }
    for (int64_t k = 0; k < nw && st == GLMQ_OK; k++) {
        st = runner_eval(&r, ids, &w[k], err);
        for (int64_t j = w[k].score_from; st == GLMQ_OK && j < w[k].len; j++) {
            if (r.plen + j - 1 < 0) continue;
            const float *row = r.logits + (size_t)(r.plen + j - 1) * (size_t)c->vocab;
            res->nll_sum += logsumexp(row, c->vocab) - (double)row[ids[w[k].begin + j]];
            res->n_scored++;
        }
        res->n_windows++;
        if (o->progress) o->progress(o->progress_user, k + 1, nw, res->n_scored);
    }
    if (st == GLMQ_OK) res->ppl = exp(res->nll_sum / (double)res->n_scored);
    runner_free(&r);
    free(w);
    return st;
}

void glmq_drift_free(glmq_drift *d)
{
    if (!d) return;
    free(d->layer_rel_err);
    free(d->kld);
    memset(d, 0, sizeof *d);
}

/* A total order for qsort, NaN last, so that a NaN (a diverged model, or a value read from a
 * partial file) can never make the comparison inconsistent. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

/* linear interpolation between closest ranks of a sorted array */
static double quantile(const double *v, int64_t n, double q)
{
    if (n == 0) return 0;
    double pos = q * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos);
    int64_t hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

glmq_status glmq_drift_acc_init(glmq_drift_acc *a, int64_t n_layers, int64_t vocab,
                                glmq_err *err)
{
    memset(a, 0, sizeof *a);
    a->n_layers = n_layers;
    a->vocab = vocab;
    a->num = calloc((size_t)n_layers + 1, sizeof *a->num);
    a->den = calloc((size_t)n_layers + 1, sizeof *a->den);
    if (!a->num || !a->den) {
        glmq_drift_acc_free(a);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    return GLMQ_OK;
}

void glmq_drift_acc_free(glmq_drift_acc *a)
{
    if (!a) return;
    free(a->num);
    free(a->den);
    free(a->kld);
    memset(a, 0, sizeof *a);
}

glmq_status glmq_drift_acc_add(glmq_drift_acc *a, const glmq_window_sums *w, glmq_err *err)
{
    int64_t np, nl, logits;
    GLMQ_FAIL_IF(w->n_pos < 0 || __builtin_add_overflow(a->n_pos, w->n_pos, &np) ||
                     __builtin_mul_overflow(w->n_pos, a->vocab, &logits) ||
                     __builtin_add_overflow(a->n_logits, logits, &nl),
                 err, GLMQ_E_INVALID, "drift: %lld scored positions overflow the count",
                 (long long)w->n_pos);
    if (np > a->kld_cap) {
        int64_t cap = a->kld_cap ? a->kld_cap : 1024;
        while (cap < np) cap *= 2;
        double *k = realloc(a->kld, (size_t)cap * sizeof *k);
        GLMQ_FAIL_IF(!k, err, GLMQ_E_NOMEM, "out of memory for %lld KL values", (long long)cap);
        a->kld = k;
        a->kld_cap = cap;
    }
    if (w->n_pos) memcpy(a->kld + a->n_pos, w->kld, (size_t)w->n_pos * sizeof *a->kld);
    a->n_pos = np;
    a->n_logits = nl;
    a->agree += w->agree;
    a->nll_ref += w->nll_ref;
    a->nll_q += w->nll_q;
    a->kl += w->kl;
    a->dp += w->dp;
    a->dp_sq += w->dp_sq;
    a->dl_sq += w->dl_sq;
    if (w->dl_max > a->dl_max) a->dl_max = w->dl_max;
    for (int64_t l = 0; l < a->n_layers; l++) {
        a->num[l] += w->layer_num[l];
        a->den[l] += w->layer_den[l];
    }
    a->n_windows++;
    return GLMQ_OK;
}

glmq_status glmq_drift_acc_finish(glmq_drift_acc *a, glmq_drift *d, glmq_err *err)
{
    memset(d, 0, sizeof *d);
    int64_t np = a->n_pos, L = a->n_layers;
    d->layer_rel_err = calloc((size_t)L + 1, sizeof *d->layer_rel_err);
    d->kld = a->kld ? a->kld : malloc(sizeof *d->kld);
    a->kld = NULL;
    if (!d->layer_rel_err || !d->kld) {
        glmq_drift_free(d);
        glmq_drift_acc_free(a);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    d->n_layers = L;
    d->n_positions = np;
    d->ppl_ref.nll_sum = a->nll_ref;
    d->ppl_q.nll_sum = a->nll_q;
    d->ppl_ref.n_scored = d->ppl_q.n_scored = np;
    d->ppl_ref.n_windows = d->ppl_q.n_windows = a->n_windows;
    d->ppl_ref.ppl = exp(d->ppl_ref.nll_sum / (double)np);
    d->ppl_q.ppl = exp(d->ppl_q.nll_sum / (double)np);
    d->ppl_ratio = d->ppl_q.ppl / d->ppl_ref.ppl;
    qsort(d->kld, (size_t)np, sizeof *d->kld, cmp_double);
    d->kld_mean = a->kl / (double)np;
    d->kld_median = quantile(d->kld, np, 0.5);
    d->kld_p90 = quantile(d->kld, np, 0.9);
    d->kld_p99 = quantile(d->kld, np, 0.99);
    d->kld_max = np ? d->kld[np - 1] : 0;
    d->top1_agreement = (double)a->agree / (double)np;
    d->dp_mean = a->dp / (double)np;
    d->dp_rms = sqrt(a->dp_sq / (double)np);
    d->dlogit_max = a->dl_max;
    d->dlogit_rms = sqrt(a->dl_sq / (double)a->n_logits);
    for (int64_t l = 0; l < L; l++)
        d->layer_rel_err[l] = a->den[l] > 0 ? sqrt(a->num[l] / a->den[l]) : 0;
    glmq_drift_acc_free(a);
    return GLMQ_OK;
}

/* The sums of one window for one Q mode: R's logits/hidden in rr, Q's in rq. */
static void drift_window(const glmq_config *c, const runner *rr, const runner *rq,
                         const int32_t *ids, const glmq_window *w, glmq_window_sums *s)
{
    int64_t L = c->n_layers, H = c->hidden, V = c->vocab;
    int64_t T = rr->plen + w->len;
    double *num = s->layer_num, *den = s->layer_den, *kld = s->kld;
    memset(s, 0, sizeof *s);
    s->layer_num = num;
    s->layer_den = den;
    s->kld = kld;
    for (int64_t l = 0; l < L; l++) num[l] = den[l] = 0;
    for (int64_t j = w->score_from; j < w->len; j++) {
        int64_t row = rr->plen + j - 1;
        if (row < 0) continue;
        const float *a = rr->logits + (size_t)row * (size_t)V;
        const float *b = rq->logits + (size_t)row * (size_t)V;
        int32_t tgt = ids[w->begin + j];
        double za = logsumexp(a, V), zb = logsumexp(b, V), kl = 0;
        int64_t arg_a = 0, arg_b = 0;
        for (int64_t v = 0; v < V; v++) {
            double la = (double)a[v] - za, lb = (double)b[v] - zb;
            kl += exp(la) * (la - lb);
            double dl = fabs((double)a[v] - (double)b[v]);
            s->dl_sq += dl * dl;
            if (dl > s->dl_max) s->dl_max = dl;
            if (a[v] > a[arg_a]) arg_a = v;
            if (b[v] > b[arg_b]) arg_b = v;
        }
        if (kl < 0) kl = 0; /* rounding of an exact zero */
        kld[s->n_pos++] = kl;
        s->kl += kl;
        s->agree += arg_a == arg_b;
        double dp = exp((double)b[tgt] - zb) - exp((double)a[tgt] - za);
        s->dp += dp;
        s->dp_sq += dp * dp;
        s->nll_ref += za - (double)a[tgt];
        s->nll_q += zb - (double)b[tgt];
        for (int64_t l = 0; l < L; l++) {
            const float *ha = rr->hidden + ((size_t)l * (size_t)T + (size_t)row) * (size_t)H;
            const float *hb = rq->hidden + ((size_t)l * (size_t)T + (size_t)row) * (size_t)H;
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < H; i++) {
                double e = (double)hb[i] - (double)ha[i];
                s1 += e * e;
                s2 += (double)ha[i] * (double)ha[i];
            }
            num[l] += s1;
            den[l] += s2;
        }
    }
}

glmq_status glmq_drift_eval_windows(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                                    int64_t n, const glmq_eval_opts *o,
                                    const glmq_forward_mode *modes, int nmodes, int64_t shard,
                                    int64_t n_shards, glmq_window_fn fn, void *user,
                                    int64_t *n_windows, glmq_err *err)
{
    if (n_windows) *n_windows = 0;
    GLMQ_FAIL_IF(nmodes < 1 || nmodes > 3, err, GLMQ_E_INVALID, "1 to 3 modes");
    GLMQ_FAIL_IF(n_shards < 1 || shard < 0 || shard >= n_shards, err, GLMQ_E_INVALID,
                 "shard %lld of %lld: the shard must be in [0, %lld)", (long long)shard,
                 (long long)n_shards, (long long)n_shards);
    const glmq_config *c = glmq_model_config(ref), *cq = glmq_model_config(q);
    GLMQ_FAIL_IF(c->arch != cq->arch || c->vocab != cq->vocab || c->hidden != cq->hidden ||
                     c->n_layers != cq->n_layers || c->tok_gmask != cq->tok_gmask,
                 err, GLMQ_E_INVALID,
                 "the reference and the model under test are not the same architecture "
                 "(arch, vocabulary, width, depth or special tokens differ)");
    glmq_window *w = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_windows(c, n, o, &w, &nw, err));
    if (n_windows) *n_windows = nw;
    int64_t L = c->n_layers, mine = nw > shard ? (nw - shard + n_shards - 1) / n_shards : 0;
    runner rr, rq[3];
    glmq_window_sums s[3];
    memset(rq, 0, sizeof rq);
    memset(s, 0, sizeof s);
    glmq_status st = runner_init(&rr, ref, o, o->ref_mode, 1, err);
    for (int i = 0; i < nmodes && st == GLMQ_OK; i++) {
        st = runner_init(&rq[i], q, o, modes[i], 1, err);
        s[i].layer_num = calloc((size_t)L, sizeof(double));
        s[i].layer_den = calloc((size_t)L, sizeof(double));
        s[i].kld = malloc((size_t)o->ctx * sizeof(double));
        if (st == GLMQ_OK && (!s[i].layer_num || !s[i].layer_den || !s[i].kld))
            st = glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    int64_t done = 0, scored = 0;
    for (int64_t k = shard; k < nw && st == GLMQ_OK; k += n_shards) {
        st = runner_eval(&rr, ids, &w[k], err);
        for (int i = 0; i < nmodes && st == GLMQ_OK; i++) {
            st = runner_eval(&rq[i], ids, &w[k], err);
            if (st == GLMQ_OK) drift_window(c, &rr, &rq[i], ids, &w[k], &s[i]);
        }
        if (st == GLMQ_OK) st = fn(user, k, s, nmodes, err);
        scored += s[0].n_pos;
        if (o->progress) o->progress(o->progress_user, ++done, mine, scored);
    }
    for (int i = 0; i < nmodes; i++) {
        runner_free(&rq[i]);
        free(s[i].layer_num);
        free(s[i].layer_den);
        free(s[i].kld);
    }
    runner_free(&rr);
    free(w);
    return st;
}

/* glmq_drift_eval_modes: every window added to one accumulator per mode */
typedef struct {
    glmq_drift_acc acc[3];
} modes_acc;

static glmq_status add_window(void *user, int64_t k, const glmq_window_sums *s, int nmodes,
                              glmq_err *err)
{
    (void)k;
    modes_acc *m = user;
    for (int i = 0; i < nmodes; i++) GLMQ_TRY(glmq_drift_acc_add(&m->acc[i], &s[i], err));
    return GLMQ_OK;
}

glmq_status glmq_drift_eval_modes(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                                  int64_t n, const glmq_eval_opts *o,
                                  const glmq_forward_mode *modes, int nmodes, glmq_drift *d,
                                  glmq_err *err)
{
    GLMQ_FAIL_IF(nmodes < 1 || nmodes > 3, err, GLMQ_E_INVALID, "1 to 3 modes");
    for (int i = 0; i < nmodes; i++) memset(&d[i], 0, sizeof d[i]);
    const glmq_config *c = glmq_model_config(ref);
    modes_acc m;
    memset(&m, 0, sizeof m);
    glmq_status st = GLMQ_OK;
    for (int i = 0; i < nmodes && st == GLMQ_OK; i++)
        st = glmq_drift_acc_init(&m.acc[i], c->n_layers, c->vocab, err);
    if (st == GLMQ_OK)
        st = glmq_drift_eval_windows(ref, q, ids, n, o, modes, nmodes, 0, 1, add_window, &m, NULL,
                                     err);
    for (int i = 0; i < nmodes; i++) {
        if (st == GLMQ_OK) st = glmq_drift_acc_finish(&m.acc[i], &d[i], err);
        glmq_drift_acc_free(&m.acc[i]);
    }
    if (st != GLMQ_OK)
        for (int i = 0; i < nmodes; i++) glmq_drift_free(&d[i]);
    return st;
}

glmq_status glmq_drift_eval(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                            int64_t n, const glmq_eval_opts *o, glmq_drift *d, glmq_err *err)
{
    return glmq_drift_eval_modes(ref, q, ids, n, o, &o->mode, 1, d, err);
}

glmq_status glmq_rank_tensors(const glmq_model *ref, glmq_model *q, const int32_t *ids, int64_t n,
                              const glmq_eval_opts *o, double base_kld, glmq_tensor_effect **out,
                              int64_t *n_out, glmq_err *err)
{
    *out = NULL;
    *n_out = 0;
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_config_tensors(glmq_model_config(q), &want, &nw, err));
    glmq_tensor_effect *e = calloc((size_t)nw + 1, sizeof *e);
    glmq_status st = e ? GLMQ_OK : glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    glmq_eval_opts oo = *o;
    oo.progress = NULL;
    int64_t k = 0;
    for (int64_t i = 0; i < nw && st == GLMQ_OK; i++) {
        const glmq_tensor_info *tq = glmq_model_tensor(q, want[i].name);
        const glmq_tensor_info *tr = glmq_model_tensor(ref, want[i].name);
        if (!tq || !tr || tq->type == tr->type) continue; /* only tensors that Q changed */
        glmq_tensor_info saved;
        st = glmq_model_swap(q, want[i].name, tr, &saved, err);
        if (st != GLMQ_OK) break;
        glmq_drift d;
        st = glmq_drift_eval(ref, q, ids, n, &oo, &d, err);
        glmq_model_swap(q, want[i].name, &saved, NULL, NULL);
        if (st != GLMQ_OK) break;
        snprintf(e[k].name, sizeof e[k].name, "%s", want[i].name);
        e[k].kld_mean_without = d.kld_mean;
        e[k].kld_reduction = base_kld - d.kld_mean;
        k++;
        glmq_drift_free(&d);
        if (o->progress) o->progress(o->progress_user, i + 1, nw, 0);
    }
    free(want);
    if (st != GLMQ_OK) {
        free(e);
        return st;
    }
    /* largest effect first; ties by name order (stable: insertion sort on a small list) */
    for (int64_t a = 1; a < k; a++) {
        glmq_tensor_effect x = e[a];
        int64_t b = a - 1;
        while (b >= 0 && e[b].kld_reduction < x.kld_reduction) {
            e[b + 1] = e[b];
            b--;
        }
        e[b + 1] = x;
    }
    *out = e;
    *n_out = k;
    return GLMQ_OK;
}
