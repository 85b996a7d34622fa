/*
 * check_model.c - opening a model (runtime/model.h) from every sample checkpoint variant and from
 * converted .glmq files: config, tokenizer bytes and tensor views.
 *
 * Expected config values are the samples' config.json fields and the generator's manifest
 * (special ids), not glmq's own output. Tensor views must agree to the bit across the four
 * checkpoint variants (safetensors, sharded safetensors, .bin, sharded .bin) and with an f16
 * .glmq; an INT8/INT4 .glmq must dequantize to within half a quantization step.
 */
#include "testutil.h"
#include "runtime/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *models[] = {"glm2-tiny", "glm1-tiny"};
static const char *variants[] = {"st", "st-sharded", "bin", "bin-sharded"};

static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}


static glmq_model *open_ok(const char *path)
{
    glmq_model *m = NULL;
    glmq_err err = {0};
    glmq_status st = glmq_model_open(path, &m, &err);
    ck_assert_msg(st == GLMQ_OK, "open %s: %s", path, err.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

static char *convert(const char *model, glmq_type type, const char *name)
{
    char *src = tu_sample_path(model, "st");
    char *out = tu_path(tmpdir, name);
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = type;
    o.threads = 2;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert(src, out, &o, NULL, &err) == GLMQ_OK, "convert: %s", err.msg);
    free(src);
    return out;
}

/* The manifest's special ids. */
static int64_t special(const char *model, const char *key)
{
    char *g = tu_sample_path(model, "golden");
    char *p = tu_path(g, "manifest.json");
    size_t n;
    char *txt = (char *)tu_read_file(p, &n);
    ck_assert_ptr_nonnull(txt);
    cJSON *j = cJSON_ParseWithLength(txt, n);
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "special_ids"), key);
    ck_assert_msg(cJSON_IsNumber(v), "manifest special_ids.%s", key);
    int64_t r = (int64_t)v->valuedouble;
    cJSON_Delete(j);
    free(txt);
    free(p);
    free(g);
    return r;
}

/* Config values from samples/<model>/st/config.json (v1 alpha: decision 2). */
static void check_config(const char *model, const glmq_config *c)
{
    if (!strcmp(model, "glm2-tiny")) {
        ck_assert_int_eq(c->arch, GLMQ_ARCH_CHATGLM2);
        ck_assert_int_eq(c->hidden, 128);
        ck_assert_int_eq(c->n_layers, 2);
        ck_assert_int_eq(c->n_heads, 4);
        ck_assert_int_eq(c->head_dim, 32);
        ck_assert_int_eq(c->n_kv_groups, 2);
        ck_assert_int_eq(c->ffn, 172);
        ck_assert_int_eq(c->vocab, 1216);
        ck_assert_double_eq(c->rope_ratio, 2.0);
        ck_assert(c->qkv_bias && !c->linear_bias && c->rmsnorm && c->post_layer_norm);
        ck_assert(!c->tied_output);
        ck_assert_double_eq(c->alpha, 1.0);
        ck_assert_int_eq(c->tok_eos, special(model, "eos"));
        ck_assert_int_eq(c->tok_pad, special(model, "pad"));
    } else {
        ck_assert_int_eq(c->arch, GLMQ_ARCH_CHATGLM1);
        ck_assert_int_eq(c->hidden, 96);
        ck_assert_int_eq(c->n_layers, 2);
        ck_assert_int_eq(c->n_heads, 3);
        ck_assert_int_eq(c->head_dim, 32);
        ck_assert_int_eq(c->n_kv_groups, 3);
        ck_assert_int_eq(c->ffn, 360);
        ck_assert_int_eq(c->vocab, 1152);
        ck_assert(c->qkv_bias && c->linear_bias && !c->rmsnorm && c->post_layer_norm);
        ck_assert_double_eq_tol(c->alpha, sqrt(56.0), 1e-12); /* not sqrt(2*2) */
        ck_assert_int_eq(c->num_image_tokens, 0);
        ck_assert_int_eq(c->tok_pad, special(model, "pad"));
    }
    ck_assert_double_eq_tol(c->norm_eps, 1e-5, 1e-15);
    ck_assert_int_eq(c->seq_length, 512);
    ck_assert_int_eq(c->tok_mask, special(model, "mask"));
    ck_assert_int_eq(c->tok_gmask, special(model, "gmask"));
    ck_assert_int_eq(c->tok_sop, special(model, "sop"));
    ck_assert_int_eq(c->tok_eop, special(model, "eop"));
    ck_assert_str_eq(c->tokenizer_kind, "sentencepiece");
}

static void same_config(const glmq_config *a, const glmq_config *b)
{
    ck_assert_int_eq(a->arch, b->arch);
    ck_assert_int_eq(a->hidden, b->hidden);
    ck_assert_int_eq(a->n_layers, b->n_layers);
    ck_assert_int_eq(a->n_heads, b->n_heads);
    ck_assert_int_eq(a->head_dim, b->head_dim);
    ck_assert_int_eq(a->n_kv_groups, b->n_kv_groups);
    ck_assert_int_eq(a->ffn, b->ffn);
    ck_assert_int_eq(a->vocab, b->vocab);
    ck_assert_int_eq(a->seq_length, b->seq_length);
    ck_assert_double_eq(a->norm_eps, b->norm_eps);
    ck_assert_double_eq(a->rope_ratio, b->rope_ratio);
    ck_assert_double_eq(a->alpha, b->alpha);
    ck_assert_int_eq(a->qkv_bias, b->qkv_bias);
    ck_assert_int_eq(a->linear_bias, b->linear_bias);
    ck_assert_int_eq(a->rmsnorm, b->rmsnorm);
    ck_assert_int_eq(a->post_layer_norm, b->post_layer_norm);
    ck_assert_int_eq(a->tok_mask, b->tok_mask);
    ck_assert_int_eq(a->tok_gmask, b->tok_gmask);
    ck_assert_int_eq(a->tok_sop, b->tok_sop);
    ck_assert_int_eq(a->tok_eop, b->tok_eop);
    ck_assert_int_eq(a->tok_eos, b->tok_eos);
    ck_assert_int_eq(a->tok_pad, b->tok_pad);
    ck_assert_int_eq(a->num_image_tokens, b->num_image_tokens);
    ck_assert_str_eq(a->tokenizer_kind, b->tokenizer_kind);
}

/* Every expected tensor: present, shape as expected. Returns the table (free()). */
static glmq_expected_tensor *expected(const glmq_model *m, int64_t *n)
{
    glmq_expected_tensor *t = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_config_tensors(glmq_model_config(m), &t, n, &err), GLMQ_OK);
    for (int64_t i = 0; i < *n; i++) {
        const glmq_tensor_info *ti = glmq_model_tensor(m, t[i].name);
        ck_assert_msg(ti != NULL, "tensor %s missing", t[i].name);
        ck_assert_int_eq(ti->ndim, t[i].ndim);
        ck_assert_int_eq(ti->shape[0], t[i].shape[0]);
        if (t[i].ndim == 2) {
            ck_assert_int_eq(ti->rows, t[i].shape[0]);
            ck_assert_int_eq(ti->cols, t[i].shape[1]);
        } else {
            ck_assert_int_eq(ti->rows, 1);
            ck_assert_int_eq(ti->cols, t[i].shape[0]);
        }
    }
    return t;
}

/* Widen every row of a and b; exact equality, or |a-b| <= step/2 (+ rounding slack) for a
 * quantized b with per-row scale. */
static void compare_tensor(const glmq_tensor_info *a, const glmq_tensor_info *b)
{
    ck_assert_int_eq(a->rows, b->rows);
    ck_assert_int_eq(a->cols, b->cols);
    float *ra = malloc((size_t)a->cols * sizeof *ra), *rb = malloc((size_t)a->cols * sizeof *rb);
    glmq_err err = {0};
    const int quant = b->type == GLMQ_TYPE_INT8 || b->type == GLMQ_TYPE_INT4;
    for (int64_t r = 0; r < a->rows; r++) {
        ck_assert_int_eq(glmq_tensor_row_f32(a, r, ra, &err), GLMQ_OK);
        ck_assert_int_eq(glmq_tensor_row_f32(b, r, rb, &err), GLMQ_OK);
        if (!quant) {
            ck_assert_msg(!memcmp(ra, rb, (size_t)a->cols * sizeof *ra), "%s row %lld differs",
                          a->name, (long long)r);
            continue;
        }
        float s = glmq_f16_to_f32(glmq_rd_le16(&b->scales[r]));
        for (int64_t c = 0; c < a->cols; c++)
            ck_assert_msg(fabsf(ra[c] - rb[c]) <= 0.5f * s * 1.001f + 1e-7f,
                          "%s [%lld,%lld]: %g vs %g (scale %g)", a->name, (long long)r,
                          (long long)c, ra[c], rb[c], s);
    }
    free(ra);
    free(rb);
}

/* _i = model: the four variants open, have the config, the tokenizer and identical tensors. */
START_TEST(variant_dirs)
{
    const char *model = models[_i];
    glmq_model *ref = NULL;
    for (int v = 0; v < 4; v++) {
        char *dir = tu_sample_path(model, variants[v]);
        glmq_model *m = open_ok(dir);
        ck_assert_str_eq(glmq_model_kind(m), "checkpoint");
        ck_assert_str_eq(glmq_model_weight_type(m), "f16");
        check_config(model, glmq_model_config(m));
        /* the tokenizer is the bundled file's bytes */
        size_t tn = 0, fn = 0;
        const void *tok = glmq_model_tokenizer(m, &tn);
        char *tp = tu_path(dir, "tokenizer.model");
        uint8_t *file = tu_read_file(tp, &fn);
        ck_assert_ptr_nonnull(tok);
        ck_assert_uint_eq(tn, fn);
        ck_assert_mem_eq(tok, file, fn);
        free(file);
        free(tp);
        int64_t n;
        glmq_expected_tensor *t = expected(m, &n);
        if (!ref) {
            ref = m;
        } else {
            same_config(glmq_model_config(ref), glmq_model_config(m));
            for (int64_t i = 0; i < n; i++) {
                const glmq_tensor_info *a = glmq_model_tensor(ref, t[i].name);
                const glmq_tensor_info *b = glmq_model_tensor(m, t[i].name);
                ck_assert_int_eq(a->type, b->type);
                ck_assert_int_eq(a->type, GLMQ_TYPE_F16);
                compare_tensor(a, b);
            }
            glmq_model_close(m);
        }
        free(t);
        free(dir);
    }
    /* the identity is stable across opens and differs between variants' file sets */
    char *d0 = tu_sample_path(model, "st"), *d1 = tu_sample_path(model, "bin");
    glmq_model *a = open_ok(d0), *b = open_ok(d0), *c = open_ok(d1);
    ck_assert_uint_eq(glmq_model_ident(a), glmq_model_ident(b));
    ck_assert_uint_ne(glmq_model_ident(a), glmq_model_ident(c));
    glmq_model_close(a);
    glmq_model_close(b);
    glmq_model_close(c);
    free(d0);
    free(d1);
    glmq_model_close(ref);
}
END_TEST

/* _i = model * 3 + type: a converted .glmq opens with the same config and the same tensors
 * (exact for f16 and for every tensor kept in its stored precision, within scale/2 for the
 * quantized layer weights). */
START_TEST(packed)
{
    const char *model = models[_i / 3];
    const glmq_type type = (glmq_type[]){GLMQ_TYPE_F16, GLMQ_TYPE_INT8, GLMQ_TYPE_INT4}[_i % 3];
    char *path = convert(model, type, "m.glmq");
    char *dir = tu_sample_path(model, "st");
    glmq_model *p = open_ok(path), *d = open_ok(dir);
    ck_assert_str_eq(glmq_model_kind(p), "glmq");
    ck_assert_str_eq(glmq_model_weight_type(p), glmq_type_name(type));
    check_config(model, glmq_model_config(p));
    same_config(glmq_model_config(d), glmq_model_config(p));
    size_t tn = 0, dn = 0;
    const void *tp = glmq_model_tokenizer(p, &tn), *td = glmq_model_tokenizer(d, &dn);
    ck_assert_ptr_nonnull(tp);
    ck_assert_uint_eq(tn, dn);
    ck_assert_mem_eq(tp, td, tn);
    int64_t n;
    glmq_expected_tensor *t = expected(p, &n);
    int quantized = 0;
    for (int64_t i = 0; i < n; i++) {
        const glmq_tensor_info *a = glmq_model_tensor(d, t[i].name);
        const glmq_tensor_info *b = glmq_model_tensor(p, t[i].name);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        if (t[i].role == GLMQ_ROLE_LAYER_WEIGHT) {
            ck_assert_int_eq(b->type, type);
            quantized += b->type != GLMQ_TYPE_F16;
        } else {
            ck_assert_int_eq(b->type, a->type); /* default policy keeps the rest as stored */
        }
        compare_tensor(a, b);
        ck_assert_int_eq((uintptr_t)b->data % 64, 0); /* pack data is 64-byte aligned */
    }
    ck_assert_int_eq(quantized, type == GLMQ_TYPE_F16 ? 0 : 8);
    free(t);
    glmq_model_close(p);
    glmq_model_close(d);
    free(dir);
    free(path);
}
END_TEST

START_TEST(open_errors)
{
    glmq_model *m = (glmq_model *)1;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_model_open("/nonexistent/glmq-model", &m, &err), GLMQ_E_IO);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "/nonexistent/glmq-model") != NULL, "%s", err.msg);
    /* an empty directory is not a checkpoint */
    memset(&err, 0, sizeof err);
    ck_assert_int_ne(glmq_model_open(tmpdir, &m, &err), GLMQ_OK);
    ck_assert_ptr_null(m);
    ck_assert(err.msg[0] != 0);
    /* a file that is not a pack */
    char *f = tu_path(tmpdir, "junk.glmq");
    ck_assert_int_eq(tu_write_file(f, "not a pack at all, just some bytes.........", 44), 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_ne(glmq_model_open(f, &m, &err), GLMQ_OK);
    ck_assert_ptr_null(m);
    ck_assert(err.msg[0] != 0);
    free(f);
    glmq_model_close(NULL);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, variant_dirs, 0, 2);
    tcase_add_loop_test(tc, packed, 0, 6);
    tcase_add_test(tc, open_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
