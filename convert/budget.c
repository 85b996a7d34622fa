/*
 * budget.c - per-tensor precision under a budget: glmq_convert_budget (src/glmq.h).
 *
 * Three conversions of the same checkpoint and one evaluation per candidate tensor:
 *   base   the caller's recipe (e.g. INT4 GPTQ), every layer weight at the base type;
 *   high   round-to-nearest at the promoted type (INT8 by default), the source of promotions;
 *   final  the base recipe plus a --tensor-type rule "^name$=high" per promoted tensor, with
 *          the base's calibration reused (convert/calib.h): a calibrated base is calibrated
 *          once, and the final file holds exactly the tensors the sensitivities were measured
 *          with (each base tensor, each promoted one as `high` has it).
 * The sensitivity of a tensor is what promoting it alone buys: the mean KL of base against the
 * checkpoint minus that of base with this one tensor swapped for its `high` version (the model's
 * tensor swap, as `verify --rank-tensors` does), on the calibration ids with exact kernels. It
 * is measured where the promotion happens, among the other quantized tensors, rather than on an
 * otherwise unquantized model, so interactions with the rest of the file are included.
 * Candidates: layer weights stored at the base recipe's type and not set by a caller's rule.
 * Promotion is greedy by sensitivity per extra stored bit (ties: checkpoint order), which is
 * the knapsack's fractional order; the predicted KL assumes the reductions add up, and the
 * final file's KL is measured to check that. Temporary files sit next to the output (the same
 * file system, the same free space) and are removed on every path; a calibrated base also
 * keeps its calibration's unlinked temporary file (the calibrated tensors' stored rows) there
 * until the final file is written.
 */
#include "convert/calib.h"
#include "formats/glm_tensors.h"
#include "formats/layout.h"
#include "runtime/model.h"
#include "runtime/tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void glmq_budget_report_free(glmq_budget_report *r)
{
    if (!r) return;
    free(r->t);
    memset(r, 0, sizeof *r);
}

/* Stored bits of a tensor: codes (padding included) and scales. */
static double stored_bits(const glmq_tensor_info *t)
{
    return 8.0 * ((double)t->data_size + (double)t->scales_size);
}

/* "^name$" with the regex metacharacters of a checkpoint name escaped, then "=type". */
static char *exact_rule(const char *name, glmq_type type)
{
    const size_t n = strlen(name);
    char *r = malloc(2 * n + 32);
    if (!r) return NULL;
    size_t k = 0;
    r[k++] = '^';
    for (size_t i = 0; i < n; i++) {
        if (strchr(".[]()*+?{}|^$\\", name[i])) r[k++] = '\\';
        r[k++] = name[i];
    }
    snprintf(r + k, 2 * n + 32 - k, "$=%s", glmq_type_name(type));
    return r;
}

/* Mean KL of q against ref on ids. */
static glmq_status kld(const glmq_model *q, const glmq_model *ref, const int32_t *ids, int64_t n,
                       const glmq_eval_params *p, double *out, int64_t *positions, glmq_err *err)
{
    glmq_drift d;
    GLMQ_TRY(glmq_eval_drift(q, ref, ids, n, p, &d, err));
    *out = d.kld_mean;
    if (positions) *positions = d.n_positions;
    glmq_drift_free(&d);
    return GLMQ_OK;
}

/* The calibration text in ref's tokenizer (no special tokens, as calibration reads it), at
 * most max ids (*ids malloc'd). */
static glmq_status calib_ids(const glmq_model *ref, const char *path, int64_t max, int32_t **ids,
                             int64_t *n, glmq_err *err)
{
    glmq_ids v = {0};
    GLMQ_TRY(glmq_model_encode_file(ref, path, &v, err));
    *ids = v.ids;
    *n = (int64_t)v.n > max ? max : (int64_t)v.n;
    return GLMQ_OK;
}

/* Greedy promotion (see the top); sets type, n_promoted, kld_predicted and bpw. */
static void plan(glmq_budget_report *r, const glmq_budget_opts *b, glmq_type high)
{
    const int64_t n = r->n;
    double bits = 0, elems = 0;
    for (int64_t i = 0; i < n; i++) {
        bits += r->t[i].bits_base;
        elems += (double)r->t[i].elems;
    }
    int64_t *ord = malloc((size_t)(n + 1) * sizeof *ord);
    for (int64_t i = 0; ord && i < n; i++) ord[i] = i;
    /* by sensitivity per extra bit, descending; stable (insertion sort: a few hundred tensors) */
    for (int64_t a = 1; ord && a < n; a++) {
        const int64_t x = ord[a];
        const glmq_budget_tensor *tx = &r->t[x];
        const double kx = tx->sensitivity / (tx->bits_high - tx->bits_base + 1.0);
        int64_t c = a - 1;
        while (c >= 0) {
            const glmq_budget_tensor *tc = &r->t[ord[c]];
            if (tc->sensitivity / (tc->bits_high - tc->bits_base + 1.0) >= kx) break;
            ord[c + 1] = ord[c];
            c--;
        }
        ord[c + 1] = x;
    }
    double pred = r->kld_base;
    for (int64_t k = 0; ord && k < n; k++) {
        glmq_budget_tensor *t = &r->t[ord[k]];
        if (b->budget_kld > 0 && pred <= b->budget_kld) break;
        if (!(t->sensitivity > 0)) break; /* promoting the rest does not help */
        const double nb = bits - t->bits_base + t->bits_high;
        if (b->budget_bpw > 0 && nb > b->budget_bpw * elems) continue; /* a smaller one may fit */
        bits = nb;
        pred -= t->sensitivity;
        t->type = high;
        r->n_promoted++;
    }
    free(ord);
    r->kld_predicted = pred;
    r->bpw = elems > 0 ? bits / elems : 0;
}

glmq_status glmq_convert_budget(const char *src_dir, const char *out_path,
                                const glmq_convert_opts *o, const glmq_budget_opts *b,
                                glmq_budget_report *report, glmq_err *err)
{
    GLMQ_FAIL_IF(!src_dir || !out_path || !o || !b || !report, err, GLMQ_E_INVALID,
                 "budget: NULL argument");
    memset(report, 0, sizeof *report);
    GLMQ_FAIL_IF((b->budget_kld > 0) == (b->budget_bpw > 0), err, GLMQ_E_INVALID,
                 "give one budget: a mean KL (--budget-kld) or bits per weight (--budget-bpw)");
    GLMQ_FAIL_IF(!o->calib_path, err, GLMQ_E_INVALID,
                 "a budget needs a calibration text (--calib FILE) to measure sensitivities on");
    const glmq_type high = b->high ? b->high : GLMQ_TYPE_INT8;
    const glmq_type base_type = o->weight_type == GLMQ_TYPE_F16
                                    ? GLMQ_TYPE_F16
                                    : (glmq_type)glmq_type_grouped(o->weight_type, o->group);
    GLMQ_FAIL_IF(!glmq_type_scaled(high) || !glmq_type_scaled(base_type) || high == base_type,
                 err, GLMQ_E_INVALID,
                 "budget: the base (%s) and promoted (%s) types must be two quantized types",
                 glmq_type_name(base_type), glmq_type_name(high));

    glmq_status st = GLMQ_OK;
    char *base_path = NULL, *high_path = NULL;
    const char **rules = NULL;
    char **own = NULL;
    glmq_model *ref = NULL, *mb = NULL, *mh = NULL, *mf = NULL;
    int32_t *ids = NULL;
    glmq_calib *cal = NULL; /* the base's calibration, for the final conversion */
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0, nids = 0, no = 0;
    const size_t pl = strlen(out_path) + 32;
    base_path = malloc(pl);
    high_path = malloc(pl);
    GLMQ_FAIL_IF_G(!base_path || !high_path, err, GLMQ_E_NOMEM, "out of memory");
    snprintf(base_path, pl, "%s.budget-base.tmp", out_path);
    snprintf(high_path, pl, "%s.budget-high.tmp", out_path);

    /* 1. the base and the promoted conversions */
    GLMQ_TRY_G(glmq_convert_calib(src_dir, base_path, o, NULL, &cal, err));
    glmq_convert_opts oh = *o;
    oh.method = GLMQ_METHOD_RTN;
    oh.weight_type = glmq_type_codes(high);
    oh.group = (int)glmq_type_group(high);
    oh.progress = NULL;
    GLMQ_TRY_G(glmq_convert(src_dir, high_path, &oh, NULL, err));
    GLMQ_TRY_G(glmq_model_open(src_dir, &ref, err));
    GLMQ_TRY_G(glmq_model_open(base_path, &mb, err));
    GLMQ_TRY_G(glmq_model_open(high_path, &mh, err));

    /* 2. sensitivities on the calibration ids */
    GLMQ_TRY_G(calib_ids(ref, o->calib_path, b->eval_tokens > 0 ? b->eval_tokens : o->calib_tokens,
                         &ids, &nids, err));
    glmq_eval_params p;
    glmq_eval_params_default(&p);
    p.ctx = o->calib_ctx;
    p.kernels = GLMQ_KERNELS_EXACT;
    p.ref_kernels = GLMQ_KERNELS_EXACT;
    p.threads = o->threads;
    GLMQ_TRY_G(kld(mb, ref, ids, nids, &p, &report->kld_base, &report->eval_positions, err));
    GLMQ_TRY_G(glmq_config_tensors(glmq_model_config(mb), &want, &nw, err));
    report->t = calloc((size_t)nw + 1, sizeof *report->t);
    GLMQ_FAIL_IF_G(!report->t, err, GLMQ_E_NOMEM, "out of memory");
    double bits = 0, elems = 0;
    for (int64_t i = 0; i < nw; i++) {
        const glmq_tensor_info *tb = glmq_model_tensor(mb, want[i].name);
        const glmq_tensor_info *th = glmq_model_tensor(mh, want[i].name);
        if (!tb || !glmq_type_scaled(tb->type)) continue;
        bits += stored_bits(tb);
        elems += (double)tb->rows * (double)tb->cols;
        if (want[i].role != GLMQ_ROLE_LAYER_WEIGHT || tb->type != base_type || !th ||
            th->type != high || glmq_convert_rule_matches(o, want[i].name) != 0)
            continue; /* not a candidate (a caller's rule, or not at the base type) */
        glmq_budget_tensor *bt = &report->t[report->n++];
        snprintf(bt->name, sizeof bt->name, "%s", want[i].name);
        bt->type = tb->type;
        bt->bits_base = stored_bits(tb);
        bt->bits_high = stored_bits(th);
        bt->elems = tb->rows * tb->cols;
        glmq_tensor_info saved;
        GLMQ_TRY_G(glmq_model_swap(mb, want[i].name, th, &saved, err));
        double k = 0;
        st = kld(mb, ref, ids, nids, &p, &k, NULL, err);
        glmq_model_swap(mb, want[i].name, &saved, NULL, NULL);
        if (st != GLMQ_OK) goto fail;
        bt->sensitivity = report->kld_base - k;
    }
    report->bpw_base = elems > 0 ? bits / elems : 0;
    GLMQ_FAIL_IF_G(b->budget_bpw > 0 && b->budget_bpw < report->bpw_base, err, GLMQ_E_INVALID,
                   "--budget-bpw %g is below the base recipe's %.4f bits per weight: choose a "
                   "smaller base type", b->budget_bpw, report->bpw_base);

    /* 3. the plan; the final file; its KL */
    plan(report, b, high);
    rules = calloc((size_t)(o->n_tensor_types + report->n_promoted) + 1, sizeof *rules);
    own = calloc((size_t)report->n_promoted + 1, sizeof *own);
    GLMQ_FAIL_IF_G(!rules || !own, err, GLMQ_E_NOMEM, "out of memory");
    int nr = 0;
    for (int i = 0; i < o->n_tensor_types; i++) rules[nr++] = o->tensor_types[i];
    for (int64_t i = 0; i < report->n; i++)
        if (report->t[i].type == high) {
            own[no] = exact_rule(report->t[i].name, high);
            GLMQ_FAIL_IF_G(!own[no], err, GLMQ_E_NOMEM, "out of memory");
            rules[nr++] = own[no++];
        }
    glmq_convert_opts of = *o;
    of.tensor_types = rules;
    of.n_tensor_types = nr;
    glmq_model_close(mb); /* the final conversion copies the kept calibration, not this file */
    mb = NULL;
    GLMQ_TRY_G(glmq_convert_calib(src_dir, out_path, &of, NULL, &cal, err));
    GLMQ_TRY_G(glmq_model_open(out_path, &mf, err));
    GLMQ_TRY_G(kld(mf, ref, ids, nids, &p, &report->kld_measured, NULL, err));
    double fb = 0, fe = 0;
    for (int64_t i = 0; i < nw; i++) {
        const glmq_tensor_info *t = glmq_model_tensor(mf, want[i].name);
        if (!t || !glmq_type_scaled(t->type)) continue;
        fb += stored_bits(t);
        fe += (double)t->rows * (double)t->cols;
    }
    report->bpw = fe > 0 ? fb / fe : 0;
fail:
    if (st != GLMQ_OK) glmq_budget_report_free(report);
    for (int64_t i = 0; own && i < no; i++) free(own[i]);
    free(own);
    free(rules);
    free(want);
    free(ids);
    glmq_calib_free(cal);
    glmq_model_close(mf);
    glmq_model_close(mh);
    glmq_model_close(mb);
    glmq_model_close(ref);
    if (base_path) unlink(base_path);
    if (high_path) unlink(high_path);
    free(base_path);
    free(high_path);
    return st;
}
