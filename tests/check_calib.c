/*
 * check_calib.c - calibrated conversion (convert/calib.c: --method gptq / search) end to end.
 *
 * On samples/glm2-outlier, where per-row round-to-nearest INT4 costs +5.2% perplexity in
 * PyTorch (its golden manifest), GPTQ must cut the perplexity increase to at most 25% of RTN's
 * and the mean KL to at most 35% (issue 9's targets); INT8 GPTQ keeps the ratio <= 1.002. On
 * the plain samples neither method may be worse than RTN (mean KL). The output is the same for
 * any thread count, the metadata records the calibration, and misuse is refused.
 * Calibration text: samples/text/calib.txt (from the training corpus; the eval texts are held
 * out). Drift is measured with the exact kernels on both sides.
 */
#include "convert/calib.h"
#include "core/hash.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;

static void setup(void)
{
    tmp = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
    tu_rmtree(tmp);
    free(tmp);
}

/* Convert samples/<model>/st with a method into tmp/<model>-<tag>.glmq. */
static char *convert(const char *model, glmq_type type, glmq_quant_method method, int act,
                     int threads, const char *tag)
{
    char *src = tu_sample_path(model, "st"), *calib = tu_path(tu_samples(), "text/calib.txt");
    char name[128];
    snprintf(name, sizeof name, "%s-%s.glmq", model, tag);
    char *out = tu_path(tmp, name);
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = type;
    if (type >= GLMQ_TYPE_INT8_G32 && type <= GLMQ_TYPE_INT4_G128) { /* a group-wise type */
        o.weight_type = type >= GLMQ_TYPE_INT4_G32 ? GLMQ_TYPE_INT4 : GLMQ_TYPE_INT8;
        o.group = 32 << ((type - GLMQ_TYPE_INT8_G32) % 3);
    }
    o.method = method;
    o.calib_path = calib;
    o.calib_ctx = 256;
    o.calib_tokens = 24 * 256;
    o.act_order = act;
    o.threads = threads;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert(src, out, &o, NULL, &err) == GLMQ_OK, "%s: %s", name, err.msg);
    free(src);
    free(calib);
    return out;
}

/* Drift of pack `q` against samples/<model>/st on eval_<text>, exact kernels. */
static glmq_drift drift(const char *model, const char *q, const char *text)
{
    char *ref = tu_sample_path(model, "st");
    char tn[64];
    snprintf(tn, sizeof tn, "text/eval_%s.txt", text);
    char *tp = tu_path(tu_samples(), tn);
    size_t len;
    char *buf = (char *)tu_read_file(tp, &len);
    ck_assert_ptr_nonnull(buf);
    glmq_model *mr = NULL, *mq = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(ref, &mr, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_msg(glmq_model_open(q, &mq, &err) == GLMQ_OK, "%s", err.msg);
    int32_t *ids = malloc(len * sizeof *ids + 4);
    size_t n = 0;
    ck_assert_int_eq(glmq_tokenize(mr, buf, len, 0, ids, len + 1, &n, &err), GLMQ_OK);
    glmq_eval_params p;
    glmq_eval_params_default(&p);
    p.kernels = GLMQ_KERNELS_EXACT;
    p.ref_kernels = GLMQ_KERNELS_EXACT;
    p.threads = 2;
    glmq_drift d;
    ck_assert_msg(glmq_eval_drift(mq, mr, ids, (int64_t)n, &p, &d, &err) == GLMQ_OK, "%s",
                  err.msg);
    free(ids);
    free(buf);
    free(tp);
    free(ref);
    glmq_model_close(mq);
    glmq_model_close(mr);
    return d;
}

START_TEST(gptq_beats_rtn_on_outliers)
{
    char *rtn = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_RTN, 0, 2, "rtn");
    char *gq = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_GPTQ, 0, 2, "gptq");
    char *ga = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_GPTQ, 1, 2, "gptq-act");
    char *se = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_SEARCH, 0, 2, "search");
    const char *texts[2] = {"en", "zh"};
    for (int t = 0; t < 2; t++) {
        glmq_drift dr = drift("glm2-outlier", rtn, texts[t]);
        glmq_drift dg = drift("glm2-outlier", gq, texts[t]);
        glmq_drift da = drift("glm2-outlier", ga, texts[t]);
        glmq_drift ds = drift("glm2-outlier", se, texts[t]);
        printf("# glm2-outlier %s: ppl ratio RTN %.5f GPTQ %.5f GPTQ act-order %.5f search %.5f; "
               "KL mean %.3e %.3e %.3e %.3e\n",
               texts[t], dr.ppl_ratio, dg.ppl_ratio, da.ppl_ratio, ds.ppl_ratio, dr.kld_mean,
               dg.kld_mean, da.kld_mean, ds.kld_mean);
        if (t == 0) /* the problem is there: RTN loses > 3% on English */
            ck_assert_double_gt(dr.ppl_ratio, 1.03);
        ck_assert_double_gt(dr.ppl_ratio, 1.01);
        for (int k = 0; k < 2; k++) {
            const glmq_drift *g = k ? &da : &dg;
            ck_assert_msg(g->ppl_ratio - 1 <= 0.25 * (dr.ppl_ratio - 1),
                          "%s: GPTQ ppl ratio %.5f vs RTN %.5f", texts[t], g->ppl_ratio,
                          dr.ppl_ratio);
            ck_assert_msg(g->kld_mean <= 0.35 * dr.kld_mean, "%s: GPTQ KL %.3e vs RTN %.3e",
                          texts[t], g->kld_mean, dr.kld_mean);
        }
        ck_assert_double_lt(ds.kld_mean, dr.kld_mean);
        glmq_drift_free(&dr);
        glmq_drift_free(&dg);
        glmq_drift_free(&da);
        glmq_drift_free(&ds);
    }
    free(rtn);
    free(gq);
    free(ga);
    free(se);
}
END_TEST

START_TEST(gptq_int8)
{
    char *q = convert("glm2-outlier", GLMQ_TYPE_INT8, GLMQ_METHOD_GPTQ, 1, 2, "gptq8");
    for (int t = 0; t < 2; t++) {
        glmq_drift d = drift("glm2-outlier", q, t ? "zh" : "en");
        printf("# glm2-outlier INT8 GPTQ: ppl ratio %.6f, KL mean %.3e\n", d.ppl_ratio,
               d.kld_mean);
        ck_assert_double_le(fabs(d.ppl_ratio - 1), 0.002);
        glmq_drift_free(&d);
    }
    free(q);
}
END_TEST

/* At 4.5 bits per weight: GPTQ with groups of 32 (codes -8..7: Q4_0's blocks, exported exactly)
 * against round-to-nearest of the same groups, which is llama.cpp's Q4_0 rule byte for byte
 * (check_ggml_peer): the "most accurate Q4_0" target, mean KL below it, on both texts
 * of the outlier sample and on the plain glm2-tiny; the calibration records the group. */
START_TEST(group_gptq_beats_q4_0)
{
    const char *models[2] = {"glm2-outlier", "glm2-tiny"};
    for (int m = 0; m < 2; m++) {
        char *rtn = convert(models[m], GLMQ_TYPE_INT4_G32, GLMQ_METHOD_RTN, 0, 2, "g32-rtn");
        char *ga = convert(models[m], GLMQ_TYPE_INT4_G32, GLMQ_METHOD_GPTQ, 1, 2, "g32-gptq");
        for (int t = 0; t < 2; t++) {
            glmq_drift dr = drift(models[m], rtn, t ? "zh" : "en");
            glmq_drift dg = drift(models[m], ga, t ? "zh" : "en");
            printf("# %s %s int4g32: KL mean RTN (Q4_0 rule) %.3e GPTQ act-order %.3e; ppl ratio "
                   "%.5f %.5f\n", models[m], t ? "zh" : "en", dr.kld_mean, dg.kld_mean,
                   dr.ppl_ratio, dg.ppl_ratio);
            ck_assert_double_le(dg.kld_mean, m == 0 ? 0.5 * dr.kld_mean : dr.kld_mean);
            glmq_drift_free(&dr);
            glmq_drift_free(&dg);
        }
        glmq_pack *p = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_pack_open(ga, &p, &err), GLMQ_OK);
        cJSON *meta = cJSON_Parse(glmq_pack_metadata(p));
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(meta, "quantization"), "calibration");
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(c, "group")->valueint, 32);
        cJSON_Delete(meta);
        glmq_pack_close(p);
        free(rtn);
        free(ga);
    }
}
END_TEST

/* Budgets on the outlier sample (RTN INT4 base, INT8 promotions): a bits-per-weight budget is
 * kept, promotes something and lowers the measured KL; a KL budget reaches its prediction, and
 * the final file holds exactly the promoted tensors at INT8; misuse is refused. */
START_TEST(budgets)
{
    char *src = tu_sample_path("glm2-outlier", "st"), *calib = tu_path(tu_samples(), "text/calib.txt");
    char *out = tu_path(tmp, "budget.glmq");
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.calib_path = calib;
    o.calib_ctx = 256;
    o.calib_tokens = 8 * 256; /* RTN base: the ids the sensitivities are measured on */
    o.threads = 2;
    glmq_budget_opts b = {.budget_bpw = 5.2};
    glmq_budget_report r;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert_budget(src, out, &o, &b, &r, &err) == GLMQ_OK, "%s", err.msg);
    printf("# budget-bpw 5.2: promoted %lld of %lld, bpw %.4f (base %.4f), KL base %.3e "
           "predicted %.3e measured %.3e\n", (long long)r.n_promoted, (long long)r.n, r.bpw,
           r.bpw_base, r.kld_base, r.kld_predicted, r.kld_measured);
    ck_assert_int_eq(r.n, 8);
    ck_assert_int_ge(r.n_promoted, 1);
    ck_assert_double_le(r.bpw, 5.2);
    ck_assert_double_gt(r.bpw, r.bpw_base);
    ck_assert_double_lt(r.kld_measured, 0.5 * r.kld_base);
    glmq_budget_report_free(&r);

    b = (glmq_budget_opts){.budget_kld = 5e-3};
    ck_assert_msg(glmq_convert_budget(src, out, &o, &b, &r, &err) == GLMQ_OK, "%s", err.msg);
    printf("# budget-kld 5e-3: promoted %lld of %lld, bpw %.4f, KL base %.3e predicted %.3e "
           "measured %.3e\n", (long long)r.n_promoted, (long long)r.n, r.bpw, r.kld_base,
           r.kld_predicted, r.kld_measured);
    ck_assert_double_le(r.kld_predicted, 5e-3);
    ck_assert_double_lt(r.kld_measured, 2 * 5e-3); /* the reductions add up roughly */
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    for (int64_t i = 0; i < r.n; i++) {
        glmq_tensor_info t;
        ck_assert_int_eq(glmq_pack_find(p, r.t[i].name, &t, &err), GLMQ_OK);
        ck_assert_int_eq(t.type, r.t[i].type);
    }
    glmq_pack_close(p);
    glmq_budget_report_free(&r);

    b = (glmq_budget_opts){.budget_kld = 1e-3, .budget_bpw = 5};
    ck_assert_int_eq(glmq_convert_budget(src, out, &o, &b, &r, &err), GLMQ_E_INVALID);
    b = (glmq_budget_opts){.budget_bpw = 4.0};
    ck_assert_int_eq(glmq_convert_budget(src, out, &o, &b, &r, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "below the base"));
    o.calib_path = NULL;
    b = (glmq_budget_opts){.budget_kld = 1e-3};
    ck_assert_int_eq(glmq_convert_budget(src, out, &o, &b, &r, &err), GLMQ_E_INVALID);
    free(src);
    free(calib);
    free(out);
}
END_TEST

/* On the plain samples neither method is worse than round-to-nearest (mean KL). */
START_TEST(plain_samples_not_worse)
{
    const char *model = _i ? "glm1-tiny" : "glm2-tiny";
    char *rtn = convert(model, GLMQ_TYPE_INT4, GLMQ_METHOD_RTN, 0, 2, "rtn");
    char *gq = convert(model, GLMQ_TYPE_INT4, GLMQ_METHOD_GPTQ, 1, 2, "gptq");
    char *se = convert(model, GLMQ_TYPE_INT4, GLMQ_METHOD_SEARCH, 0, 2, "search");
    for (int t = 0; t < 2; t++) {
        glmq_drift dr = drift(model, rtn, t ? "zh" : "en");
        glmq_drift dg = drift(model, gq, t ? "zh" : "en");
        glmq_drift ds = drift(model, se, t ? "zh" : "en");
        printf("# %s %s: KL mean RTN %.3e GPTQ %.3e search %.3e; ppl ratio %.5f %.5f %.5f\n",
               model, t ? "zh" : "en", dr.kld_mean, dg.kld_mean, ds.kld_mean, dr.ppl_ratio,
               dg.ppl_ratio, ds.ppl_ratio);
        ck_assert_double_le(dg.kld_mean, dr.kld_mean);
        ck_assert_double_le(ds.kld_mean, dr.kld_mean);
        glmq_drift_free(&dr);
        glmq_drift_free(&dg);
        glmq_drift_free(&ds);
    }
    free(rtn);
    free(gq);
    free(se);
}
END_TEST

/* Byte-identical for 1 and 2 threads; the metadata records the calibration. */
START_TEST(deterministic_and_recorded)
{
    char *a = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_GPTQ, 1, 1, "t1");
    char *b = convert("glm2-outlier", GLMQ_TYPE_INT4, GLMQ_METHOD_GPTQ, 1, 2, "t2");
    size_t na, nb;
    uint8_t *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    ck_assert_ptr_nonnull(da);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(da, db, na) == 0, "1 and 2 threads give different files");
    free(da);
    free(db);

    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_open(a, &p, &err), GLMQ_OK);
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    ck_assert_ptr_nonnull(m);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(m, "quantization");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(q, "method")->valuestring, "gptq");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(q, "calibration");
    ck_assert_ptr_nonnull(c);
    char *calib = tu_path(tu_samples(), "text/calib.txt");
    size_t tl;
    uint8_t *text = tu_read_file(calib, &tl);
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)XXH3_64bits(text, tl));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "text_xxh3")->valuestring, hx);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItemCaseSensitive(c, "text_bytes")->valuedouble,
                     (int64_t)tl);
    int64_t seqs = (int64_t)cJSON_GetObjectItemCaseSensitive(c, "sequences")->valuedouble;
    ck_assert_int_eq(seqs, 24);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItemCaseSensitive(c, "tokens")->valuedouble,
                     seqs * 256);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(c, "damp")->valuedouble, 0.01);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "order")->valuestring, "act-order");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "group")->valuestring, "row");
    /* every per-layer H-weighted error ratio is at most 1 */
    const cJSON *l, *v;
    int nl = 0;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(c, "layers_error_ratio"))
    {
        nl++;
        const char *keys[4] = {"qkv", "dense", "h_to_4h", "4h_to_h"};
        for (int k = 0; k < 4; k++) {
            v = cJSON_GetObjectItemCaseSensitive(l, keys[k]);
            ck_assert_ptr_nonnull(v);
            ck_assert_double_le(v->valuedouble, 1.0);
        }
    }
    ck_assert_int_eq(nl, 2);
    cJSON_Delete(m);
    glmq_pack_close(p);
    free(text);
    free(calib);
    free(a);
    free(b);
}
END_TEST

START_TEST(cli_refusals)
{
    char *src = tu_sample_path("glm2-tiny", "st"), *out = tu_path(tmp, "x.glmq");
    char *shortp = tu_path(tmp, "short.txt");
    ck_assert_int_eq(tu_write_file(shortp, "In the beginning", 16), 0);
    char *o = NULL;
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --method gptq", tu_bin(), src, out),
                     2);
    ck_assert_ptr_nonnull(strstr(o, "--calib"));
    free(o);
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --method gptq --calib '%s' --type f16",
                            tu_bin(), src, out, shortp),
                     2);
    free(o);
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --method awq", tu_bin(), src, out), 2);
    free(o);
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --method search --calib '%s'",
                            tu_bin(), src, out, shortp),
                     1);
    ck_assert_ptr_nonnull(strstr(o, "glmq: error: "));
    ck_assert_ptr_nonnull(strstr(o, "short.txt"));
    free(o);
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --method gptq --calib /nonexistent",
                            tu_bin(), src, out),
                     1);
    ck_assert_ptr_nonnull(strstr(o, "/nonexistent"));
    free(o);
    ck_assert(!tu_file_exists(out));
    free(shortp);
    free(src);
    free(out);
}
END_TEST

/* calib_log: counts the per-layer lines of a calibration */
static void count_line(void *user, const char *line)
{
    (void)line;
    ++*(int *)user;
}

/* The checksum of tensor `name` in the .glmq at path. */
static uint64_t tensor_sum(const char *path, const char *name)
{
    glmq_pack *p = NULL;
    glmq_err err = {0};
    glmq_tensor_info t;
    ck_assert_msg(glmq_pack_open(path, &p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_msg(glmq_pack_find(p, name, &t, &err) == GLMQ_OK, "%s", err.msg);
    glmq_pack_close(p);
    return t.checksum;
}

/* A budget over a GPTQ base calibrates once (one log line per layer), and its file holds the
 * tensors the sensitivities were measured with: every base tensor as a plain GPTQ conversion
 * with the same options writes it, every promoted one as a round-to-nearest INT8 one does. */
START_TEST(budget_gptq_calibrates_once)
{
    char *src = tu_sample_path("glm2-outlier", "st");
    char *calib = tu_path(tu_samples(), "text/calib.txt");
    char *out = tu_path(tmp, "budget.glmq"), *plain = tu_path(tmp, "gptq.glmq"),
         *high = tu_path(tmp, "int8.glmq");
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.method = GLMQ_METHOD_GPTQ;
    o.calib_path = calib;
    o.calib_ctx = 256;
    o.calib_tokens = 8 * 256;
    o.threads = 2;
    int lines = 0;
    o.calib_log = count_line;
    o.calib_log_user = &lines;
    glmq_budget_opts b = {.budget_bpw = 5.2};
    glmq_budget_report r;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert_budget(src, out, &o, &b, &r, &err) == GLMQ_OK, "%s", err.msg);
    printf("# budget-bpw 5.2 over GPTQ: promoted %lld of %lld, bpw %.4f, KL base %.3e predicted "
           "%.3e measured %.3e\n", (long long)r.n_promoted, (long long)r.n, r.bpw, r.kld_base,
           r.kld_predicted, r.kld_measured);
    const int per_run = lines;
    ck_assert_int_ge(r.n_promoted, 1);
    ck_assert_double_le(r.bpw, 5.2);

    lines = 0;
    glmq_calib *cal = NULL;
    ck_assert_msg(glmq_convert_calib(src, plain, &o, NULL, &cal, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(cal);
    ck_assert_int_gt(lines, 0);
    ck_assert_int_eq(per_run, lines); /* the budget's calibration: once, not twice */
    /* a kept calibration: not run again, the same file; refused with round-to-nearest */
    char *again = tu_path(tmp, "again.glmq");
    lines = 0;
    ck_assert_msg(glmq_convert_calib(src, again, &o, NULL, &cal, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(lines, 0);
    size_t n1 = 0, n2 = 0;
    uint8_t *b1 = tu_read_file(plain, &n1), *b2 = tu_read_file(again, &n2);
    ck_assert(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    glmq_convert_opts orr = o;
    orr.method = GLMQ_METHOD_RTN;
    ck_assert_int_eq(glmq_convert_calib(src, again, &orr, NULL, &cal, &err), GLMQ_E_INVALID);
    glmq_calib_free(cal);
    free(again);
    glmq_convert_opts oh = o;
    oh.method = GLMQ_METHOD_RTN;
    oh.weight_type = GLMQ_TYPE_INT8;
    ck_assert_msg(glmq_convert(src, high, &oh, NULL, &err) == GLMQ_OK, "%s", err.msg);
    for (int64_t i = 0; i < r.n; i++) {
        const int promoted = r.t[i].type == GLMQ_TYPE_INT8;
        ck_assert_msg(tensor_sum(out, r.t[i].name) ==
                          tensor_sum(promoted ? high : plain, r.t[i].name),
                      "%s (%s)", r.t[i].name, promoted ? "promoted" : "base");
    }
    /* the measured KL is the prediction when one tensor is promoted (it was measured so) */
    if (r.n_promoted == 1)
        ck_assert_double_le(fabs(r.kld_measured - r.kld_predicted), 1e-9 + 1e-6 * r.kld_base);
    glmq_budget_report_free(&r);
    free(src);
    free(calib);
    free(out);
    free(plain);
    free(high);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("calib");
    TCase *t = tcase_create("calib");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 900);
    tcase_add_test(t, gptq_beats_rtn_on_outliers);
    tcase_add_test(t, gptq_int8);
    tcase_add_loop_test(t, plain_samples_not_worse, 0, 2);
    tcase_add_test(t, deterministic_and_recorded);
    tcase_add_test(t, cli_refusals);
    suite_add_tcase(s, t);
    /* a second case, so that ctest can run it as its own test (CK_RUN_CASE=groups, see
     * tests/CMakeLists.txt) beside the first on another core */
    TCase *g = tcase_create("groups");
    tcase_add_checked_fixture(g, setup, teardown);
    tcase_set_timeout(g, 900);
    tcase_add_test(g, group_gptq_beats_q4_0);
    tcase_add_test(g, budgets);
    tcase_add_test(g, budget_gptq_calibrates_once);
    suite_add_tcase(s, g);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
