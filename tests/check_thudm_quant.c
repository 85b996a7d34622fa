/*
 * check_thudm_quant.c - THUDM's own quantized releases (chatglm-6b-int4/-int8, chatglm2-6b-int4,
 * the -int4-qe release with quantized embeddings): import, conversion, the runtime, refusals.
 *
 * Fixtures and goldens: tests/data/thudm_quant/, written by samples/gen_thudm_quant.py with
 * PyTorch from the tiny samples, quantized by the rules of THUDM's quantization.py (never by
 * glmq): each fixture's golden/ holds THUDM's dequantized values (code * scale, fp32) and the
 * signed codes of one quantized tensor, and PyTorch's logits on the dequantized weights.
 *   - lossless: with no type given, the pack keeps int4/int8 and every code and every scale:
 *     its dequantization equals THUDM's bit for bit (pack, and the directory opened directly);
 *   - logits of the imported model equal PyTorch's within check_forward's tolerance, and differ
 *     from the unquantized sample's by far more (the comparison discriminates);
 *   - an explicit type that differs re-rounds (or rounds to f16) and says so (report, metadata,
 *     CLI); the same type keeps the bytes;
 *   - hostile variants (scale shape/dtype/missing/inf, weight dtype/shape, odd int4 columns, a
 *     -8 code, quantization_bit 3) are refused naming the tensor.
 */
#include "formats/layout.h"
#include "runtime/model.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL 1e-4 /* check_forward.c: max|diff| <= 1e-4 * max|golden| */

static const struct {
    const char *dir, *sample, *seq, *golden_tensor;
    int bits;
    glmq_type type;
} fx[] = {
    {"glm2-int4", "glm2-tiny", "en", "transformer.encoder.layers.1.self_attention.dense.weight", 4,
     GLMQ_TYPE_INT4},
    {"glm1-int8", "glm1-tiny", "gen", "transformer.layers.1.attention.dense.weight", 8,
     GLMQ_TYPE_INT8},
    {"glm1-int4-qe", "glm1-tiny", "gen", "transformer.layers.1.attention.dense.weight", 4,
     GLMQ_TYPE_INT4},
};

static char *tmpdir;
static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

static char *fixture(const char *name)
{
    char *d = tu_path(tu_testdata(), "thudm_quant");
    char *p = tu_path(d, name);
    free(d);
    return p;
}

/* golden/<file> of a fixture as a loaded .npy with the expected dtype. */
static void *golden(const char *fix, const char *file, const char *dtype, int64_t shape[4])
{
    char *d = fixture(fix), *g = tu_path(d, "golden"), *p = tu_path(g, file);
    char dt[8];
    int nd = 0;
    size_t nb = 0;
    void *v = tu_npy_load(p, dt, &nd, shape, &nb);
    ck_assert_msg(v != NULL, "cannot read %s", p);
    ck_assert_str_eq(dt, dtype);
    free(d);
    free(g);
    free(p);
    return v;
}

static glmq_status convert(const char *src, const char *out, int given, glmq_type type,
                           glmq_convert_report *rep, glmq_err *err)
{
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.threads = 2;
    o.weight_type_given = given;
    if (given) o.weight_type = type;
    return glmq_convert(src, out, &o, rep, err);
}

static char *convert_ok(int i, int given, glmq_type type, const char *name,
                        glmq_convert_report *rep)
{
    char *src = fixture(fx[i].dir);
    char *out = tu_path(tmpdir, name);
    glmq_err err = {0};
    glmq_convert_report r;
    glmq_status st = convert(src, out, given, type, &r, &err);
    ck_assert_msg(st == GLMQ_OK, "convert %s: %s", src, err.msg);
    if (rep)
        *rep = r;
    else
        glmq_convert_report_free(&r);
    free(src);
    return out;
}

/* Signed code of column c of a stored glmq row, read from layout.h's description. */
static int stored_code(const glmq_tensor_info *t, int64_t r, int64_t c)
{
    const uint8_t *row = (const uint8_t *)t->data + r * t->row_stride;
    if (t->type == GLMQ_TYPE_INT8) return (int8_t)row[c];
    const uint8_t b = row[(c / 128) * 64 + (c % 128) % 64];
    return ((c % 128) < 64 ? (b & 15) : (b >> 4)) - 8;
}

/* The golden tensor of fixture i in t: its codes and its dequantization are THUDM's exactly. */
static void check_lossless(int i, const glmq_tensor_info *t, const char *where)
{
    int64_t sd[4], sc[4];
    float *deq = golden(fx[i].dir, "deq_l1_dense.npy", "<f4", sd);
    int8_t *codes = golden(fx[i].dir, "codes_l1_dense.npy", "|i1", sc);
    ck_assert_int_eq(t->type, fx[i].type);
    ck_assert_int_eq(t->rows, sd[0]);
    ck_assert_int_eq(t->cols, sd[1]);
    ck_assert_int_eq(sc[0], sd[0]);
    ck_assert_int_eq(sc[1], sd[1]);
    float *row = malloc((size_t)t->cols * sizeof *row);
    int64_t nonzero = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        glmq_err err = {0};
        ck_assert_int_eq(glmq_tensor_row_f32(t, r, row, &err), GLMQ_OK);
        ck_assert_msg(!memcmp(row, deq + r * t->cols, (size_t)t->cols * sizeof *row),
                      "%s %s row %lld: dequantized values differ from THUDM's", where,
                      fx[i].dir, (long long)r);
        for (int64_t c = 0; c < t->cols; c++) {
            ck_assert_msg(stored_code(t, r, c) == codes[r * t->cols + c],
                          "%s %s: code of row %lld column %lld", where, fx[i].dir, (long long)r,
                          (long long)c);
            nonzero += codes[r * t->cols + c] != 0;
        }
    }
    ck_assert_int_gt(nonzero, t->rows * t->cols / 2);
    free(row);
    free(deq);
    free(codes);
}

/* Convert with no type: int4/int8 kept, every code and scale; the same from the directory. */
START_TEST(import_lossless)
{
    glmq_convert_report rep;
    char *out = convert_ok(_i, 0, GLMQ_TYPE_F16, "kept.glmq", &rep);
    for (int64_t k = 0; k < rep.n_tensors; k++)
        if (rep.stats[k].type == fx[_i].type)
            ck_assert_msg(rep.stats[k].rms_err == 0 && rep.stats[k].max_abs_err == 0,
                          "%s: '%s' reported a rounding error", fx[_i].dir, rep.stats[k].name);
    for (int64_t k = 0; k < rep.n_warnings; k++)
        ck_assert_msg(!strstr(rep.warnings[k], "THUDM"), "unexpected warning: %s",
                      rep.warnings[k]);
    glmq_convert_report_free(&rep);

    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_verify(p, &err), GLMQ_OK);
    glmq_tensor_info t;
    ck_assert_int_eq(glmq_pack_find(p, fx[_i].golden_tensor, &t, &err), GLMQ_OK);
    check_lossless(_i, &t, "pack");
    /* every tensor THUDM quantized is int4/int8 in the pack, the embedding too for -qe */
    int64_t nq = 0;
    for (int64_t k = 0; k < glmq_pack_tensor_count(p); k++) {
        ck_assert_int_eq(glmq_pack_tensor(p, k, &t, &err), GLMQ_OK);
        int layer_w = strstr(t.name, ".layers.") && t.ndim == 2;
        int emb = strstr(t.name, "word_embeddings") || !strcmp(t.name, "lm_head.weight");
        int want_q = layer_w || (emb && strstr(fx[_i].dir, "-qe"));
        ck_assert_msg((t.type == fx[_i].type) == want_q, "%s: '%s' stored as %s", fx[_i].dir,
                      t.name, glmq_type_name(t.type));
        nq += want_q;
    }
    ck_assert_int_ge(nq, 8);
    /* metadata: the quantization came from the source, kept */
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    ck_assert_ptr_nonnull(m);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(m, "quantization");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(q, "weight_type")->valuestring,
                     glmq_type_name(fx[_i].type));
    const cJSON *sq = cJSON_GetObjectItemCaseSensitive(q, "source_quantization");
    ck_assert_ptr_nonnull(sq);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(sq, "bits")->valuedouble, fx[_i].bits);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(sq, "requantized")));
    ck_assert(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(sq, "embeddings")));
    ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sq, "embeddings")),
                     strstr(fx[_i].dir, "-qe") != NULL);
    /* the scale tensors are consumed, not skipped */
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "skipped"))
        ck_assert_msg(!strstr(e->valuestring, "_scale"), "skipped %s", e->valuestring);
    cJSON_Delete(m);
    glmq_pack_close(p);

    /* the directory opened directly holds the same rows */
    char *dir = fixture(fx[_i].dir);
    glmq_model *md = NULL;
    ck_assert_msg(glmq_model_open(dir, &md, &err) == GLMQ_OK, "%s", err.msg);
    const glmq_tensor_info *dt = glmq_model_tensor(md, fx[_i].golden_tensor);
    ck_assert_ptr_nonnull(dt);
    check_lossless(_i, dt, "directory");
    glmq_model_close(md);
    free(dir);
    free(out);
}
END_TEST

/* Logits [n][V] of ids on the model at path, in kernel mode km. */
static float *logits_of(const char *path, const int32_t *ids, int64_t n, glmq_kernel_mode km,
                        int64_t *vocab)
{
    glmq_model *m = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(path, &m, &err) == GLMQ_OK, "open %s: %s", path, err.msg);
    glmq_session_opts so;
    glmq_session_opts_default(&so);
    so.kernels = km;
    so.threads = 2;
    so.max_tokens = n;
    glmq_session *s = NULL;
    ck_assert_msg(glmq_session_create(m, &so, &s, &err) == GLMQ_OK, "%s", err.msg);
    *vocab = glmq_model_config(m)->vocab;
    float *lg = malloc((size_t)(n * *vocab) * sizeof *lg);
    ck_assert_msg(glmq_session_eval(s, ids, n, lg, &err) == GLMQ_OK, "eval: %s", err.msg);
    glmq_session_free(s);
    glmq_model_close(m);
    return lg;
}

static double max_abs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert(isfinite(a[i]));
        double d = fabs((double)a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* Logits of the imported model (pack and directory; reference and exact kernels) against
 * PyTorch on THUDM's dequantized weights. */
START_TEST(logits_match_torch)
{
    const int i = _i / 2, from_dir = _i % 2;
    char file[64];
    int64_t si[4], sl[4];
    snprintf(file, sizeof file, "ids_%s.npy", fx[i].seq);
    int32_t *ids = golden(fx[i].dir, file, "<i4", si);
    snprintf(file, sizeof file, "logits_%s.npy", fx[i].seq);
    float *g = golden(fx[i].dir, file, "<f4", sl);
    ck_assert_int_eq(sl[0], si[0]);
    char *path = from_dir ? fixture(fx[i].dir) : convert_ok(i, 0, GLMQ_TYPE_F16, "m.glmq", NULL);
    /* the unquantized sample's own golden: far from this one, so the gate discriminates */
    char *sg = tu_sample_path(fx[i].sample, "golden");
    snprintf(file, sizeof file, "logits_%s_f16.npy", fx[i].seq);
    char *sp = tu_path(sg, file);
    char dt[8];
    int nd;
    int64_t s16[4];
    size_t nb;
    float *g16 = tu_npy_load(sp, dt, &nd, s16, &nb);
    ck_assert_ptr_nonnull(g16);
    ck_assert_int_eq(s16[0] * s16[1], sl[0] * sl[1]);
    const int64_t cnt = sl[0] * sl[1];
    const double tol = REL_TOL * max_abs(g, cnt);
    const double d16 = max_diff(g16, g, cnt);
    printf("# %s: the f16 sample's logits differ by %.3g\n", fx[i].dir, d16);
    ck_assert_msg(d16 > 3 * tol, "%s: quantized and f16 goldens too close (%g)", fx[i].dir, d16);
    const glmq_kernel_mode modes[] = {GLMQ_KERNELS_REFERENCE, GLMQ_KERNELS_EXACT};
    for (int k = 0; k < 2; k++) {
        int64_t V = 0;
        float *lg = logits_of(path, ids, si[0], modes[k], &V);
        ck_assert_int_eq(V, sl[1]);
        double d = max_diff(lg, g, cnt);
        printf("# %s %s %s: max|diff| %.3g (tolerance %.3g)\n", fx[i].dir,
               from_dir ? "directory" : "pack", glmq_kernel_mode_name(modes[k]), d, tol);
        ck_assert_msg(d <= tol, "%s %s: logits differ from PyTorch's by %g > %g", fx[i].dir,
                      glmq_kernel_mode_name(modes[k]), d, tol);
        free(lg);
    }
    free(g16);
    free(sp);
    free(sg);
    free(path);
    free(ids);
    free(g);
}
END_TEST

static int warned(const glmq_convert_report *r, const char *what)
{
    for (int64_t k = 0; k < r->n_warnings; k++)
        if (strstr(r->warnings[k], "THUDM") && strstr(r->warnings[k], what)) return 1;
    return 0;
}

static const cJSON *source_q(cJSON *m)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "quantization"),
                                            "source_quantization");
}

/* An explicit type that differs re-rounds (or rounds to f16) and says so; the same type keeps. */
START_TEST(explicit_type)
{
    glmq_convert_report rep;
    glmq_err err = {0};
    /* int4 source, --type int8: a second rounding */
    char *a = convert_ok(0, 1, GLMQ_TYPE_INT8, "a.glmq", &rep);
    ck_assert(warned(&rep, "re-rounded"));
    glmq_convert_report_free(&rep);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(a, &p, &err), GLMQ_OK);
    glmq_tensor_info t;
    ck_assert_int_eq(glmq_pack_find(p, fx[0].golden_tensor, &t, &err), GLMQ_OK);
    ck_assert_int_eq(t.type, GLMQ_TYPE_INT8);
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(source_q(m), "requantized")));
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItemCaseSensitive(source_q(m), "kept")->valuestring,
                                 "re-rounds"));
    cJSON_Delete(m);
    glmq_pack_close(p);

    /* int8 source, --type f16: THUDM's values rounded to fp16 */
    char *b = convert_ok(1, 1, GLMQ_TYPE_F16, "b.glmq", &rep);
    ck_assert(warned(&rep, "rounded to f16"));
    glmq_convert_report_free(&rep);
    ck_assert_int_eq(glmq_pack_open(b, &p, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_find(p, fx[1].golden_tensor, &t, &err), GLMQ_OK);
    ck_assert_int_eq(t.type, GLMQ_TYPE_F16);
    int64_t sd[4];
    float *deq = golden(fx[1].dir, "deq_l1_dense.npy", "<f4", sd);
    float *row = malloc((size_t)t.cols * sizeof *row);
    int64_t inexact = 0;
    for (int64_t r = 0; r < t.rows; r++) {
        ck_assert_int_eq(glmq_tensor_row_f32(&t, r, row, &err), GLMQ_OK);
        for (int64_t c = 0; c < t.cols; c++) {
            float want = deq[r * t.cols + c];
            ck_assert_msg(fabsf(row[c] - want) <= fabsf(want) * 0x1p-11f, "%g vs %g", row[c],
                          want);
            inexact += row[c] != want;
        }
    }
    ck_assert_int_gt(inexact, 0); /* really rounded: code * scale needs more than 11 bits */
    free(row);
    free(deq);
    glmq_pack_close(p);

    /* the source's own type, given explicitly: kept, byte for byte the same file */
    char *c1 = convert_ok(0, 1, GLMQ_TYPE_INT4, "c1.glmq", &rep);
    ck_assert(!warned(&rep, "re-rounded"));
    glmq_convert_report_free(&rep);
    char *c2 = convert_ok(0, 0, GLMQ_TYPE_F16, "c2.glmq", NULL);
    size_t n1, n2;
    uint8_t *d1 = tu_read_file(c1, &n1), *d2 = tu_read_file(c2, &n2);
    ck_assert(d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1));
    free(d1);
    free(d2);

    /* the CLI prints the warning */
    char *log = NULL;
    char *src = fixture(fx[0].dir);
    int rc = tu_run(&log, "'%s' convert '%s' -o '%s/cli.glmq' --type int8 --threads 2", tu_bin(),
                    src, tmpdir);
    ck_assert_msg(rc == 0, "%s", log);
    ck_assert_msg(strstr(log, "glmq: warning:") && strstr(log, "re-rounded"), "%s", log);
    free(log);
    rc = tu_run(&log, "'%s' convert '%s' -o '%s/cli2.glmq' --threads 2", tu_bin(), src, tmpdir);
    ck_assert_msg(rc == 0 && !strstr(log, "re-rounded"), "%s", log);
    free(log);
    free(src);
    free(a);
    free(b);
    free(c1);
    free(c2);
}
END_TEST

static const struct {
    const char *dir, *msg, *tensor;
} bad[] = {
    {"bad_scale_shape", "expected [32] (one scale per row",
     "transformer.encoder.layers.0.self_attention.dense.weight_scale"},
    {"bad_scale_dtype", "has dtype F32; expected F16",
     "transformer.encoder.layers.0.self_attention.dense.weight_scale"},
    {"bad_scale_missing", "is missing (the fp16 per-row scales",
     "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight_scale"},
    {"bad_scale_inf", "row 5: scale inf is not a finite number",
     "transformer.encoder.layers.0.self_attention.dense.weight_scale"},
    {"bad_weight_dtype", "has dtype I16; config.json's quantization_bit 4",
     "transformer.encoder.layers.0.mlp.dense_h_to_4h.weight"},
    {"bad_weight_float", "has dtype F16; config.json's quantization_bit 4",
     "transformer.encoder.layers.0.self_attention.query_key_value.weight"},
    {"bad_weight_shape", "has shape [64, 15]; config.json with quantization_bit 4 implies int8 "
                         "[64, 16]",
     "transformer.encoder.layers.0.self_attention.query_key_value.weight"},
    {"bad_odd_cols", "has 31 columns, which pairs of int4 codes cannot hold",
     "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight"},
    {"bad_code_minus8", "row 3 column 6: code -8 is outside glmq's int4 range",
     "transformer.encoder.layers.0.self_attention.dense.weight"},
    {"bad_bits_3", "quantization_bit = 3: THUDM's quantized releases use 4 or 8", "config.json"},
};

/* Each hostile variant is refused by convert and by the runtime, naming the tensor; the good
 * one they were made from converts. */
START_TEST(hostile_refused)
{
    glmq_err err = {0};
    char *out = tu_path(tmpdir, "x.glmq");
    if (_i == (int)(sizeof bad / sizeof bad[0])) {
        char *src = fixture("tiny_good");
        glmq_convert_report rep;
        ck_assert_msg(convert(src, out, 0, GLMQ_TYPE_F16, &rep, &err) == GLMQ_OK, "%s", err.msg);
        glmq_convert_report_free(&rep);
        glmq_model *m = NULL;
        ck_assert_msg(glmq_model_open(src, &m, &err) == GLMQ_OK, "%s", err.msg);
        glmq_model_close(m);
        free(src);
        free(out);
        return;
    }
    char *src = fixture(bad[_i].dir);
    glmq_convert_report rep;
    glmq_status st = convert(src, out, 0, GLMQ_TYPE_F16, &rep, &err);
    ck_assert_int_ne(st, GLMQ_OK);
    ck_assert_msg(strstr(err.msg, bad[_i].msg) && strstr(err.msg, bad[_i].tensor),
                  "%s: convert said: %s", bad[_i].dir, err.msg);
    ck_assert(!tu_file_exists(out));
    glmq_model *m = NULL;
    err = (glmq_err){0};
    st = glmq_model_open(src, &m, &err);
    ck_assert_int_ne(st, GLMQ_OK);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, bad[_i].msg) && strstr(err.msg, bad[_i].tensor),
                  "%s: open said: %s", bad[_i].dir, err.msg);
    free(src);
    free(out);
}
END_TEST

static Suite *thudm_quant_suite(void)
{
    Suite *s = suite_create("thudm_quant");
    TCase *tc = tcase_create("thudm_quant");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    const int nfx = (int)(sizeof fx / sizeof fx[0]);
    tcase_add_loop_test(tc, import_lossless, 0, nfx);
    tcase_add_loop_test(tc, logits_match_torch, 0, 2 * nfx);
    tcase_add_test(tc, explicit_type);
    tcase_add_loop_test(tc, hostile_refused, 0, (int)(sizeof bad / sizeof bad[0]) + 1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(thudm_quant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? 0 : 1;
}
