/*
 * check_metrics.c - perplexity, drift and the verify gate.
 *
 * Perplexity goldens are PyTorch's (samples/<model>/golden/manifest.json "perplexity", decision 5
 * protocol at ctx 256); token-id goldens are the sentencepiece library's. Converted INT8/INT4
 * packs must reproduce the INT8/INT4 goldens (PyTorch applied decision 6 itself).
 */
#include "verify/metrics.h"
#include "verify/report.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static char *tmpdir;
static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* glm2-outlier (samples/gen_outlier.py) only in ppl_goldens: the loops over 2 use the first two */
static const char *models[] = {"glm2-tiny", "glm1-tiny", "glm2-outlier"};
static const char *types[] = {"f16", "int8", "int4"};
static const char *texts[] = {"eval_en", "eval_zh"};

/* Delta-p of the correct token against PyTorch's (from its per-token NLLs): the reference path's
 * NLLs agree with torch's to ~1e-6 (perplexities to ~3e-8 relative), so each p = exp(-nll)
 * agrees to ~1e-6 * p and the mean and RMS of Delta-p to well under 1e-3 of the RMS of Delta-p
 * (>= 1e-4 on both samples). The gate is that, scaled by the golden RMS because the mean itself
 * can be ~0 (INT8: 5e-7); observed: 2e-5 of it. */
#define DP_REL_TOL 1e-3


static cJSON *manifest(const char *model)
{
    cJSON *j = tu_manifest(model);
    ck_assert_msg(j != NULL, "cannot read or parse samples/%s/golden/manifest.json", model);
    return j;
}

/* Convert sample `model` to `type` in tmpdir (f16 -> the checkpoint directory itself). */
static char *model_path(const char *model, const char *type)
{
    if (!strcmp(type, "f16")) return tu_sample_path(model, "st");
    char *src = tu_sample_path(model, "st");
    char name[64];
    snprintf(name, sizeof name, "%s-%s.glmq", model, type);
    char *out = tu_path(tmpdir, name);
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = !strcmp(type, "int8") ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert(src, out, &o, NULL, &err) == GLMQ_OK, "%s", err.msg);
    free(src);
    return out;
}

static int32_t *text_ids(const glmq_model *m, const char *text, int64_t *n)
{
    char name[64];
    snprintf(name, sizeof name, "text/%s.txt", text);
    char *p = tu_path(tu_samples(), name);
    size_t len;
    char *buf = (char *)tu_read_file(p, &len);
    ck_assert_ptr_nonnull(buf);
    glmq_tokenizer *t = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_tokenizer_open(m, &t, &err) == GLMQ_OK, "%s", err.msg);
    glmq_ids v = {0};
    ck_assert_int_eq(glmq_tokenizer_encode(t, buf, len, &v, &err), GLMQ_OK);
    glmq_tokenizer_free(t);
    free(buf);
    free(p);
    *n = (int64_t)v.n;
    return v.ids;
}

/* ppl of {model} x {f16, int8, int4} x {en, zh} within 0.05% of PyTorch (measured: ~1e-7). */
START_TEST(ppl_goldens)
{
    const char *model = models[_i / 3], *type = types[_i % 3];
    char *path = model_path(model, type);
    glmq_model *m = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(path, &m, &err) == GLMQ_OK, "%s", err.msg);
    cJSON *man = manifest(model);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(man, "perplexity"), "results");
    for (int t = 0; t < 2; t++) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res, texts[t]), type);
        double want = cJSON_GetObjectItemCaseSensitive(g, "ppl")->valuedouble;
        int64_t want_n = (int64_t)cJSON_GetObjectItemCaseSensitive(g, "n_tokens")->valuedouble;
        int64_t n;
        int32_t *ids = text_ids(m, texts[t], &n);
        glmq_eval_opts o;
        glmq_eval_opts_default(&o);
        o.threads = 2;
        /* reference and exact kernels: the PyTorch value (0.05%% required, ~1e-7 measured);
         * fast kernels (int8 activations): within 0.1%% */
        const glmq_forward_mode modes[3] = {GLMQ_FWD_REFERENCE, GLMQ_FWD_EXACT, GLMQ_FWD_FAST};
        /* glm2-outlier, fast kernels: the int8 activations of a 32-block holding a 20x outlier
         * channel lose precision (measured: 1.6e-3 INT8 zh, 4.3e-3 INT4 en) */
        const double fast = strcmp(model, "glm2-outlier") ? 1e-3 : 1e-2;
        const double bound[3] = {1e-5, 1e-5, fast};
        for (int mi = 0; mi < 3; mi++) {
            o.mode = modes[mi];
            glmq_ppl_result r;
            ck_assert_int_eq(glmq_perplexity(m, ids, n, &o, &r, &err), GLMQ_OK);
            ck_assert_int_eq(r.n_scored, want_n);
            double rel = fabs(r.ppl / want - 1);
            ck_assert_msg(rel <= 5e-4 || mi == 2, "%s %s %s: ppl %.9f vs golden %.9f (rel %.2e)",
                          model, type, texts[t], r.ppl, want, rel);
            ck_assert_msg(rel <= bound[mi], "%s %s %s %s kernels: ppl %.9f vs golden %.9f (rel "
                          "%.2e)", model, type, texts[t], glmq_forward_mode_name(modes[mi]),
                          r.ppl, want, rel);
        }
        free(ids);
    }
    cJSON_Delete(man);
    glmq_model_close(m);
    free(path);
}
END_TEST

/* R against itself: KL exactly 0, agreement exactly 1, ratio exactly 1. */
START_TEST(self_drift_is_zero)
{
    char *a = tu_sample_path(models[_i], "st"), *b = tu_sample_path(models[_i], "bin-sharded");
    glmq_model *ma = NULL, *mb = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_model_open(a, &ma, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_model_open(b, &mb, &err), GLMQ_OK);
    int64_t n;
    int32_t *ids = text_ids(ma, "eval_zh", &n);
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.max_chunks = 3;
    glmq_drift d;
    ck_assert_int_eq(glmq_drift_eval(ma, mb, ids, n, &o, &d, &err), GLMQ_OK);
    ck_assert(d.kld_mean == 0.0 && d.kld_max == 0.0);
    ck_assert(d.top1_agreement == 1.0);
    ck_assert(d.ppl_ratio == 1.0);
    ck_assert(d.dlogit_max == 0.0);
    for (int64_t l = 0; l < d.n_layers; l++) ck_assert(d.layer_rel_err[l] == 0.0);
    ck_assert_int_eq(d.n_positions, 3 * 254);
    glmq_drift_free(&d);
    free(ids);
    glmq_model_close(ma);
    glmq_model_close(mb);
    free(a);
    free(b);
}
END_TEST

/* PyTorch's per-token NLL of `text` under weight policy `type` (fp64, text order). */
static double *golden_nll(const char *model, const char *text, const char *type, int64_t *n,
                          double *ppl)
{
    cJSON *man = manifest(model);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(man, "perplexity"), "results"),
            text),
        type);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(g, "nll_file");
    ck_assert_msg(cJSON_IsString(f), "%s: no nll_file for %s/%s", model, text, type);
    *ppl = cJSON_GetObjectItemCaseSensitive(g, "ppl")->valuedouble;
    char name[128];
    snprintf(name, sizeof name, "golden/%s", f->valuestring);
    char *p = tu_sample_path(model, name);
    char dt[8];
    int nd;
    int64_t sh[4];
    size_t nb;
    double *x = tu_npy_load(p, dt, &nd, sh, &nb);
    ck_assert_msg(x != NULL, "cannot load %s", p);
    ck_assert_str_eq(dt, "<f8");
    ck_assert_int_eq(nd, 1);
    *n = sh[0];
    free(p);
    cJSON_Delete(man);
    return x;
}

/* Delta-p of the correct token between two golden NLL vectors: mean and RMS of
 * exp(-nll_q) - exp(-nll_r). */
static void golden_dp(const double *nll_r, const double *nll_q, int64_t n, double *mean,
                      double *rms)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double dp = exp(-nll_q[i]) - exp(-nll_r[i]);
        s += dp;
        s2 += dp * dp;
    }
    *mean = s / (double)n;
    *rms = sqrt(s2 / (double)n);
}

/* INT4 drifts more than INT8; both drift; the drift ppl numbers equal stand-alone ppl and
 * PyTorch's, and Delta-p of the correct token equals the one PyTorch's NLLs give. */
START_TEST(drift_orders_quantization)
{
    const char *model = models[_i];
    char *ref = tu_sample_path(model, "st"), *q8 = model_path(model, "int8"), *q4 = model_path(model, "int4");
    glmq_model *mr = NULL, *m8 = NULL, *m4 = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_model_open(ref, &mr, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_model_open(q8, &m8, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_model_open(q4, &m4, &err), GLMQ_OK);
    int64_t n;
    int32_t *ids = text_ids(mr, "eval_en", &n);
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    glmq_drift d8, d4;
    ck_assert_int_eq(glmq_drift_eval(mr, m8, ids, n, &o, &d8, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_drift_eval(mr, m4, ids, n, &o, &d4, &err), GLMQ_OK);
    ck_assert(d8.kld_mean > 0 && d4.kld_mean > 10 * d8.kld_mean);
    ck_assert(d8.top1_agreement >= d4.top1_agreement);
    ck_assert(d8.kld_median <= d8.kld_p90 && d8.kld_p90 <= d8.kld_p99 &&
              d8.kld_p99 <= d8.kld_max);
    glmq_ppl_result p4;
    ck_assert_int_eq(glmq_perplexity(m4, ids, n, &o, &p4, &err), GLMQ_OK);
    ck_assert_double_eq_tol(p4.ppl, d4.ppl_q.ppl, 1e-9 * p4.ppl);
    for (int64_t l = 0; l < d4.n_layers; l++)
        ck_assert(d4.layer_rel_err[l] > d8.layer_rel_err[l]);
    /* against PyTorch: both perplexities and the change of the correct token's probability */
    int64_t ng, n8, n4;
    double pr, p8, p4g;
    double *gr = golden_nll(model, "eval_en", "f16", &ng, &pr);
    double *g8 = golden_nll(model, "eval_en", "int8", &n8, &p8);
    double *g4 = golden_nll(model, "eval_en", "int4", &n4, &p4g);
    ck_assert_int_eq(d8.n_positions, ng);
    ck_assert_int_eq(d4.n_positions, ng);
    ck_assert_int_eq(n8, ng);
    ck_assert_int_eq(n4, ng);
    const glmq_drift *dd[2] = {&d8, &d4};
    const double *gq[2] = {g8, g4}, want_q[2] = {p8, p4g};
    for (int k = 0; k < 2; k++) {
        double m, r;
        golden_dp(gr, gq[k], ng, &m, &r);
        printf("# %s %s: dp mean %.9g (torch %.9g), rms %.9g (torch %.9g); ppl %.9g / %.9g "
               "(torch %.9g / %.9g)\n", model, k ? "int4" : "int8", dd[k]->dp_mean, m,
               dd[k]->dp_rms, r, dd[k]->ppl_ref.ppl, dd[k]->ppl_q.ppl, pr, want_q[k]);
        ck_assert_msg(fabs(dd[k]->ppl_ref.ppl / pr - 1) <= 1e-5, "ppl_ref %.9g vs %.9g",
                      dd[k]->ppl_ref.ppl, pr);
        ck_assert_msg(fabs(dd[k]->ppl_q.ppl / want_q[k] - 1) <= 1e-5, "ppl_q %.9g vs %.9g",
                      dd[k]->ppl_q.ppl, want_q[k]);
        ck_assert_msg(fabs(dd[k]->dp_mean - m) <= DP_REL_TOL * r, "dp_mean %.9g vs torch %.9g",
                      dd[k]->dp_mean, m);
        ck_assert_msg(fabs(dd[k]->dp_rms - r) <= DP_REL_TOL * r, "dp_rms %.9g vs torch %.9g",
                      dd[k]->dp_rms, r);
    }
    free(gr);
    free(g8);
    free(g4);
    glmq_drift_free(&d8);
    glmq_drift_free(&d4);
    free(ids);
    glmq_model_close(mr);
    glmq_model_close(m8);
    glmq_model_close(m4);
    free(ref);
    free(q8);
    free(q4);
}
END_TEST

START_TEST(windows_protocols)
{
    glmq_config c = {0};
    c.arch = GLMQ_ARCH_CHATGLM2;
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.ctx = 10;
    glmq_window *w = NULL;
    int64_t nw;
    glmq_err err = {0};
    /* default: 8 text tokens per window, last shorter, everything scored */
    ck_assert_int_eq(glmq_windows(&c, 20, &o, &w, &nw, &err), GLMQ_OK);
    ck_assert_int_eq(nw, 3);
    ck_assert_int_eq(w[2].begin, 16);
    ck_assert_int_eq(w[2].len, 4);
    ck_assert_int_eq(w[0].score_from, 0);
    free(w);
    /* strided (C.5): ctx 8, stride 4, N 20 -> begins 0,4,8,12; targets 7,4,4,4 */
    o.strided = 1;
    o.ctx = 8;
    o.stride = 4;
    ck_assert_int_eq(glmq_windows(&c, 20, &o, &w, &nw, &err), GLMQ_OK);
    ck_assert_int_eq(nw, 4);
    int64_t total = 0;
    for (int64_t k = 0; k < nw; k++) total += w[k].len - w[k].score_from;
    ck_assert_int_eq(w[0].len - w[0].score_from, 7);
    ck_assert_int_eq(w[3].begin + w[3].len, 20);
    ck_assert_int_eq(total, 19); /* every token but the first is scored exactly once */
    free(w);
    /* v1 refuses the strided protocol */
    c.arch = GLMQ_ARCH_CHATGLM1;
    ck_assert_int_eq(glmq_windows(&c, 20, &o, &w, &nw, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "ChatGLM-6B"));
    /* max chunks */
    c.arch = GLMQ_ARCH_CHATGLM2;
    o.strided = 0;
    o.ctx = 10;
    o.max_chunks = 2;
    ck_assert_int_eq(glmq_windows(&c, 100, &o, &w, &nw, &err), GLMQ_OK);
    ck_assert_int_eq(nw, 2);
    free(w);
}
END_TEST

START_TEST(parse_ids_errors)
{
    glmq_ids v = {0};
    glmq_err err = {0};
    ck_assert_int_eq(glmq_parse_ids("1 2\n3\t4,5", 9, 10, "x", &v, &err), GLMQ_OK);
    ck_assert_int_eq((int)v.n, 5);
    ck_assert_int_eq(v.ids[4], 5);
    v.n = 0;
    ck_assert_int_eq(glmq_parse_ids("1 2 x3", 6, 10, "ids.txt", &v, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "ids.txt"));
    ck_assert_ptr_nonnull(strstr(err.msg, "byte 4"));
    ck_assert_int_eq(glmq_parse_ids("1 -2", 4, 10, "ids.txt", &v, &err), GLMQ_E_FORMAT);
    ck_assert_int_eq(glmq_parse_ids("1 10", 4, 10, "ids.txt", &v, &err), GLMQ_E_VALUE);
    ck_assert_ptr_nonnull(strstr(err.msg, "outside the vocabulary"));
    ck_assert_int_eq(glmq_parse_ids("99999999999", 11, 10, "ids.txt", &v, &err), GLMQ_E_FORMAT);
    glmq_ids_free(&v);
}
END_TEST

/* CLI: verify exit codes 0 / 3 / 1 / 2; report and plot; malformed and out-of-vocab ids. */
START_TEST(cli_verify)
{
    char *ref = tu_sample_path("glm2-tiny", "st"), *q4 = model_path("glm2-tiny", "int4");
    char *text = tu_path(tu_samples(), "text/eval_en.txt");
    char *rep = tu_path(tmpdir, "r.json"), *svg = tu_path(tmpdir, "r.svg");
    char *t = NULL;
    int rc = tu_run(&t, "'%s' verify '%s' --ref '%s' --text '%s' --max-ppl-ratio 1.05 --max-kld 0.05 "
                        "--max-kld-p99 0.5 --min-top1 0.8 --report '%s' --plot '%s'",
                    tu_bin(), q4, ref, text, rep, svg);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, t);
    ck_assert_ptr_nonnull(strstr(t, "PASS"));
    free(t);
    char *js = (char *)tu_read_file(rep, NULL);
    cJSON *j = cJSON_Parse(js);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "verdict")->valuestring, "pass");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "thresholds")), 4);
    const cJSON *mq = cJSON_GetObjectItemCaseSensitive(j, "quant");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(mq, "weight_type")->valuestring, "int4");
    ck_assert_int_eq(strlen(cJSON_GetObjectItemCaseSensitive(mq, "hash")->valuestring), 16);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "evaluation");
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(ev, "tokens_evaluated")->valuedouble, 2100);
    cJSON_Delete(j);
    free(js);
    char *sv = (char *)tu_read_file(svg, NULL);
    ck_assert_ptr_nonnull(sv);
    ck_assert_ptr_nonnull(strstr(sv, "<svg"));
    ck_assert_ptr_null(strstr(sv, "href")); /* self-contained */
    free(sv);
    /* a threshold that cannot pass -> 3 */
    rc = tu_run(&t, "'%s' verify '%s' --ref '%s' --text '%s' --max-kld 1e-9 --quiet", tu_bin(), q4,
                ref, text);
    ck_assert_msg(rc == 3, "exit %d: %s", rc, t);
    free(t);
    rc = tu_run(&t, "'%s' verify '%s' --ref '%s' --text '%s' --min-top1 1 --quiet", tu_bin(), q4,
                ref, text);
    ck_assert_int_eq(rc, 3);
    free(t);
    /* usage errors -> 2 */
    ck_assert_int_eq(tu_run(&t, "'%s' verify '%s' --text '%s'", tu_bin(), q4, text), 2);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' verify '%s' --ref '%s' --text '%s' --max-kld abc", tu_bin(),
                            q4, ref, text), 2);
    free(t);
    /* malformed ids file and out-of-vocabulary id -> 1 with a clear message */
    char *ids = tu_path(tmpdir, "ids.txt");
    tu_write_file(ids, "5 6 seven 8", 11);
    rc = tu_run(&t, "'%s' ppl '%s' --ids-file '%s'", tu_bin(), ref, ids);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(t, "glmq: error: ") && strstr(t, "ids.txt") && strstr(t, "byte 4"), "%s", t);
    free(t);
    tu_write_file(ids, "5 6 999999 8", 12);
    rc = tu_run(&t, "'%s' verify '%s' --ref '%s' --ids-file '%s'", tu_bin(), q4, ref, ids);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(t, "outside the vocabulary"), "%s", t);
    free(t);
    free(ids);
    free(rep);
    free(svg);
    free(text);
    free(ref);
    free(q4);
}
END_TEST

/* glmq tokenize prints the sentencepiece library's ids (golden), for both samples. */
START_TEST(cli_tokenize_goldens)
{
    const char *model = models[_i];
    cJSON *man = manifest(model);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(man, "tokenizer"), "cases");
    const cJSON *c;
    int checked = 0;
    char *dir = tu_sample_path(model, "st");
    cJSON_ArrayForEach(c, cases)
    {
        const cJSON *tf = cJSON_GetObjectItemCaseSensitive(c, "text_file");
        if (!cJSON_IsString(tf)) continue;
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "file")->valuestring;
        char gname[128];
        snprintf(gname, sizeof gname, "golden/%s", file);
        char *gp = tu_sample_path(model, gname);
        char dt[8];
        int nd;
        int64_t sh[4];
        size_t nb;
        int32_t *want = tu_npy_load(gp, dt, &nd, sh, &nb);
        ck_assert_ptr_nonnull(want);
        /* text_file is relative to the repository root: samples/text/... */
        char *tp = tu_path(tu_samples(), tf->valuestring + strlen("samples/"));
        char *t = NULL;
        ck_assert_int_eq(tu_run(&t, "'%s' tokenize '%s' --text '%s' --json", tu_bin(), dir, tp), 0);
        cJSON *got = cJSON_Parse(t);
        ck_assert_ptr_nonnull(got);
        ck_assert_int_eq(cJSON_GetArraySize(got), (int)sh[0]);
        for (int64_t i = 0; i < sh[0]; i++)
            ck_assert_int_eq((int)cJSON_GetArrayItem(got, (int)i)->valuedouble, want[i]);
        cJSON_Delete(got);
        free(t);
        free(tp);
        free(want);
        free(gp);
        checked++;
    }
    ck_assert_int_ge(checked, 3);
    free(dir);
    cJSON_Delete(man);
}
END_TEST

/* glmq generate: greedy decoding is deterministic and respects -n; sampling is seeded. */
START_TEST(cli_generate)
{
    char *dir = tu_sample_path("glm2-tiny", "st");
    char *a = NULL, *b = NULL;
    ck_assert_int_eq(tu_run(&a, "'%s' generate '%s' -p 'And God said' -n 12 2>/dev/null",
                            tu_bin(), dir), 0);
    ck_assert_int_eq(tu_run(&b, "'%s' generate '%s' -p 'And God said' -n 12 2>/dev/null",
                            tu_bin(), dir), 0);
    ck_assert_str_eq(a, b);
    ck_assert_int_gt((int)strlen(a), 5);
    free(a);
    free(b);
    ck_assert_int_eq(tu_run(&a, "'%s' generate '%s' -p 'And God said' -n 12 --temp 0.9 --seed 5 "
                                "2>/dev/null", tu_bin(), dir), 0);
    ck_assert_int_eq(tu_run(&b, "'%s' generate '%s' -p 'And God said' -n 12 --temp 0.9 --seed 5 "
                                "2>/dev/null", tu_bin(), dir), 0);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    ck_assert_int_eq(tu_run(&a, "'%s' generate '%s' -p hi -n 3", tu_bin(), dir), 0);
    ck_assert_ptr_nonnull(strstr(a, "tokens/s"));
    free(a);
    ck_assert_int_eq(tu_run(&a, "'%s' generate '%s'", tu_bin(), dir), 2);
    free(a);
    ck_assert_int_eq(tu_run(&a, "'%s' generate '%s' -p x --top-p 0", tu_bin(), dir), 2);
    free(a);
    ck_assert_int_eq(tu_run(&a, "'%s' generate /nonexistent -p x", tu_bin()), 1);
    free(a);
    free(dir);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, ppl_goldens, 0, 9);
    tcase_add_loop_test(tc, self_drift_is_zero, 0, 2);
    tcase_add_loop_test(tc, drift_orders_quantization, 0, 2);
    tcase_add_test(tc, windows_protocols);
    tcase_add_test(tc, parse_ids_errors);
    tcase_add_test(tc, cli_verify);
    tcase_add_loop_test(tc, cli_tokenize_goldens, 0, 2);
    tcase_add_test(tc, cli_generate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
