/*
 * check_hf_layout.c - transformers-native GLM checkpoints (model_type "glm" and "glm4",
 * GLM-SPEC C.4) and the tokenizer.json reader (formats/hf_tokenizer.h).
 *
 * Goldens are PyTorch's: samples/gen_hf_glm.py runs a GlmModel / Glm4Model-style forward pass
 * (split q/k/v, interleaved partial RoPE, sandwich norms for glm4) on samples/glm-hf-tiny (the
 * trained glm2-tiny re-laid out; its manifest points at glm2-tiny's goldens, which that script
 * checked its own forward pass reproduces) and samples/glm4-hf-tiny (extra norms with seeded
 * weights, tied embeddings). Tolerances are check_forward.c's: reference max|diff| <= 1e-5 of
 * max|logit|; FAST mode RMS <= 0.75% and max <= 3.5% of RMS(golden).
 */
#include "formats/checkpoint.h"
#include "formats/tokenizer.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRICT_TOL 1e-5
#define FAST_RMS_TOL 0.0075
#define FAST_MAX_TOL 0.035
/* glm4's sandwich norms rescale every attention and MLP output to unit RMS before the residual
 * add, so the per-token activation rounding of FAST mode reaches the stream undamped and its
 * maximum has a heavier tail: measured max|diff| 2.2% .. 8.8% of RMS(golden) (RMS 0.35% .. 0.69%,
 * inside FAST_RMS_TOL). INT4 weights alone move glm4-hf-tiny's logits by 4.4% .. 12% RMS, so the
 * RMS gate still tells the policies apart. */
#define FAST_MAX_TOL_SANDWICH 0.12

static const char *models[] = {"glm-hf-tiny", "glm4-hf-tiny"};
static const char *types[] = {"f16", "int8", "int4"};
static const glmq_type type_ids[] = {GLMQ_TYPE_F16, GLMQ_TYPE_INT8, GLMQ_TYPE_INT4};

static char *tmpdir;
static char *packs[2][3];

static void convert_all(void)
{
    tmpdir = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmpdir);
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            glmq_err err = {0};
            packs[m][t] = tu_convert_sample(tmpdir, models[m], type_ids[t], &err);
            ck_assert_msg(packs[m][t] != NULL, "convert %s: %s", models[m], err.msg);
        }
}

static void remove_all(void)
{
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            free(packs[m][t]);
            packs[m][t] = NULL;
        }
    tu_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}

// --- goldens -------------------------------------------------------------------------------

typedef struct {
    char name[32];
    int32_t ids[512];
    int64_t n;
    char logits[3][96];
} gseq;

static gseq *sequences(const char *model, int *count)
{
    cJSON *j = tu_manifest(model);
    ck_assert_msg(j != NULL, "samples/%s/golden/manifest.json", model);
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(j, "sequences"), *s;
    int n = cJSON_GetArraySize(seqs), k = 0;
    ck_assert_int_gt(n, 0);
    gseq *out = calloc((size_t)n, sizeof *out);
    cJSON_ArrayForEach(s, seqs)
    {
        gseq *g = &out[k++];
        snprintf(g->name, sizeof g->name, "%s",
                 cJSON_GetObjectItemCaseSensitive(s, "name")->valuestring);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "ids"))
        {
            ck_assert(g->n < 512);
            g->ids[g->n++] = (int32_t)e->valuedouble;
        }
        const cJSON *lg = cJSON_GetObjectItemCaseSensitive(s, "logits");
        for (int t = 0; t < 3; t++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(lg, types[t]);
            ck_assert(cJSON_IsString(f));
            snprintf(g->logits[t], sizeof g->logits[t], "%s", f->valuestring);
        }
    }
    cJSON_Delete(j);
    *count = n;
    return out;
}

static float *golden(const char *model, const char *file, int64_t n, int64_t V)
{
    char *g = tu_sample_path(model, "golden");
    char *p = tu_path(g, file);
    char dt[8];
    int nd;
    int64_t sh[4];
    size_t nb;
    float *x = tu_npy_load(p, dt, &nd, sh, &nb);
    ck_assert_msg(x != NULL, "cannot load %s", p);
    ck_assert_str_eq(dt, "<f4");
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(sh[0], n);
    ck_assert_int_eq(sh[1], V);
    free(p);
    free(g);
    return x;
}

static float *run_mode(const char *path, glmq_forward_mode mode, const int32_t *ids, int64_t n,
                       int64_t *vocab)
{
    glmq_model *m = NULL;
    glmq_err err = {0};
    glmq_status st = glmq_model_open(path, &m, &err);
    ck_assert_msg(st == GLMQ_OK, "open %s: %s", path, err.msg);
    glmq_forward *f = NULL;
    st = glmq_forward_create_mode(m, n, 2, mode, &f, &err);
    ck_assert_msg(st == GLMQ_OK, "forward_create_mode: %s", err.msg);
    const int64_t V = glmq_model_config(m)->vocab;
    float *lg = malloc((size_t)(n * V) * sizeof *lg);
    ck_assert_ptr_nonnull(lg);
    st = glmq_forward_eval(f, ids, n, lg, &err);
    ck_assert_msg(st == GLMQ_OK, "eval: %s", err.msg);
    glmq_forward_free(f);
    glmq_model_close(m);
    *vocab = V;
    return lg;
}

/* _i = model * 4 + source (0: the checkpoint directory, 1..3: the f16, int8, int4 pack, each
 * against the golden of its policy), in REFERENCE and FAST mode. */
START_TEST(matches_torch)
{
    const int mi = _i / 4, src = _i % 4, pol = src == 0 ? 0 : src - 1;
    const char *model = models[mi];
    char *dir = tu_sample_path(model, "st");
    const char *path = src == 0 ? dir : packs[mi][src - 1];
    int ns;
    gseq *seqs = sequences(model, &ns);
    for (int s = 0; s < ns; s++) {
        for (int md = 0; md < 2; md++) {
            const glmq_forward_mode mode = md ? GLMQ_FWD_FAST : GLMQ_FWD_REFERENCE;
            int64_t V;
            float *lg = run_mode(path, mode, seqs[s].ids, seqs[s].n, &V);
            float *g = golden(model, seqs[s].logits[pol], seqs[s].n, V);
            double mx = 0, mg = 0, sd = 0, sg = 0;
            for (int64_t i = 0; i < seqs[s].n * V; i++) {
                ck_assert(isfinite(lg[i]));
                const double e = fabs((double)lg[i] - g[i]);
                if (e > mx) mx = e;
                if (fabs(g[i]) > mg) mg = fabs(g[i]);
                sd += e * e;
                sg += (double)g[i] * g[i];
            }
            const double rms_d = sqrt(sd / (double)(seqs[s].n * V));
            const double rms_g = sqrt(sg / (double)(seqs[s].n * V));
            printf("# %s %s %-4s %s %s: max|diff| %.3g (rel %.3g), rms %.3g\n", model,
                   src ? "pack" : "dir", seqs[s].name, types[pol],
                   glmq_forward_mode_name(mode), mx, mx / mg, rms_d / rms_g);
            if (mode == GLMQ_FWD_REFERENCE || pol == 0) /* FAST on 16-bit weights is exact */
                ck_assert_msg(mx <= STRICT_TOL * mg, "%s %s: max|diff| %g > %g * %g", model,
                              seqs[s].name, mx, STRICT_TOL, mg);
            else {
                ck_assert_msg(rms_d <= FAST_RMS_TOL * rms_g, "%s %s: rms %g", model,
                              seqs[s].name, rms_d / rms_g);
                const double mt = mi == 1 ? FAST_MAX_TOL_SANDWICH : FAST_MAX_TOL;
                ck_assert_msg(mx <= mt * rms_g, "%s %s: max %g", model, seqs[s].name,
                              mx / rms_g);
            }
            free(g);
            free(lg);
        }
    }
    free(seqs);
    free(dir);
}
END_TEST

/* glm-hf-tiny is glm2-tiny re-laid out: the same canonical tensors, so the same logits to the
 * bit; glm4-hf-tiny's sandwich norms really change them (the goldens tell the two apart). */
START_TEST(glm_equals_glm2)
{
    int ns;
    gseq *seqs = sequences("glm-hf-tiny", &ns);
    char *a = tu_sample_path("glm-hf-tiny", "st"), *b = tu_sample_path("glm2-tiny", "st");
    int64_t V, V2;
    float *la = run_mode(a, GLMQ_FWD_REFERENCE, seqs[0].ids, seqs[0].n, &V);
    float *lb = run_mode(b, GLMQ_FWD_REFERENCE, seqs[0].ids, seqs[0].n, &V2);
    ck_assert_int_eq(V, V2);
    ck_assert_mem_eq(la, lb, (size_t)(seqs[0].n * V) * sizeof *la);
    float *g4 = golden("glm4-hf-tiny", "logits_en_f16.npy", seqs[0].n, V);
    double mx = 0;
    for (int64_t i = 0; i < seqs[0].n * V; i++)
        if (fabs((double)g4[i] - la[i]) > mx) mx = fabs((double)g4[i] - la[i]);
    ck_assert_msg(mx > 0.5, "glm4 goldens too close to glm's (%g)", mx);
    free(g4);
    free(la);
    free(lb);
    free(a);
    free(b);
    free(seqs);
}
END_TEST

/* The pack's config: sandwich_norm set for glm4 only; `glmq check` passes on every pack. */
START_TEST(packs_check)
{
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            glmq_model *md = NULL;
            glmq_err err = {0};
            ck_assert_int_eq(glmq_model_open(packs[m][t], &md, &err), GLMQ_OK);
            const glmq_config *c = glmq_model_config(md);
            ck_assert_int_eq(c->sandwich_norm, m == 1);
            ck_assert_int_eq(c->arch, GLMQ_ARCH_CHATGLM2);
            ck_assert_double_eq_tol(c->rope_ratio, 2.0, 1e-12);
            glmq_model_close(md);
            char *log = NULL;
            int rc = tu_run(&log, "'%s' check '%s'", tu_bin(), packs[m][t]);
            ck_assert_msg(rc == 0, "glmq check %s: %s", packs[m][t], log);
            free(log);
        }
}
END_TEST

/* GGUF export: glm goes through the canonical layout; glm4 is refused naming the reason. */
START_TEST(export_gguf)
{
    char *out = tu_path(tmpdir, "x.gguf"), *log = NULL;
    int rc = tu_run(&log, "'%s' export '%s' -o '%s' --quiet", tu_bin(), packs[0][2], out);
    ck_assert_msg(rc == 0, "export glm: %s", log);
    free(log);
    rc = tu_run(&log, "'%s' check '%s'", tu_bin(), out);
    ck_assert_msg(rc == 0, "check gguf: %s", log);
    free(log);
    rc = tu_run(&log, "'%s' export '%s' -o '%s' --quiet", tu_bin(), packs[1][0], out);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(log, "post_self_attn_layernorm") != NULL, "%s", log);
    free(log);
    free(out);
}
END_TEST

// --- variants and bad checkpoints ----------------------------------------------------------

/* Copy samples/<model>/st to dst, rewriting the safetensors header with `edit` (the data
 * section is kept byte for byte). */
typedef void (*hdr_edit)(cJSON *hdr);

static void variant(const char *model, const char *dst, hdr_edit edit)
{
    char *src = tu_sample_path(model, "st");
    ck_assert_int_eq(tu_copy_dir(src, dst), 0);
    char *p = tu_path(dst, "model.safetensors");
    size_t n;
    uint8_t *raw = tu_read_file(p, &n);
    ck_assert_ptr_nonnull(raw);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    cJSON *h = cJSON_ParseWithLength((const char *)raw + 8, (size_t)hl);
    ck_assert_ptr_nonnull(h);
    edit(h);
    char *txt = cJSON_PrintUnformatted(h);
    size_t tl = strlen(txt), pad = (8 - tl % 8) % 8;
    size_t dl = n - 8 - (size_t)hl, total = 8 + tl + pad + dl;
    uint8_t *o = malloc(total);
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)((tl + pad) >> (8 * i));
    memcpy(o + 8, txt, tl);
    memset(o + 8 + tl, ' ', pad);
    memcpy(o + 8 + tl + pad, raw + 8 + hl, dl);
    ck_assert_int_eq(tu_write_file(p, o, total), 0);
    free(o);
    free(txt);
    cJSON_Delete(h);
    free(raw);
    free(p);
    free(src);
}

/* Fuse each layer's q/k/v (adjacent in the file: q, k, v) into the early converter's qkv_proj. */
static void fuse_qkv(cJSON *h)
{
    for (int l = 0; l < 2; l++)
        for (int b = 0; b < 2; b++) {
            const char *kind = b ? "bias" : "weight";
            char q[96], k[96], v[96], f[96];
            snprintf(q, sizeof q, "model.layers.%d.self_attn.q_proj.%s", l, kind);
            snprintf(k, sizeof k, "model.layers.%d.self_attn.k_proj.%s", l, kind);
            snprintf(v, sizeof v, "model.layers.%d.self_attn.v_proj.%s", l, kind);
            snprintf(f, sizeof f, "model.layers.%d.self_attn.qkv_proj.%s", l, kind);
            cJSON *tq = cJSON_GetObjectItemCaseSensitive(h, q);
            cJSON *tk = cJSON_GetObjectItemCaseSensitive(h, k);
            cJSON *tv = cJSON_GetObjectItemCaseSensitive(h, v);
            const cJSON *oq = cJSON_GetObjectItemCaseSensitive(tq, "data_offsets");
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(tk, "data_offsets");
            const cJSON *ov = cJSON_GetObjectItemCaseSensitive(tv, "data_offsets");
            ck_assert(cJSON_GetArrayItem(oq, 1)->valuedouble ==
                      cJSON_GetArrayItem(ok, 0)->valuedouble);
            ck_assert(cJSON_GetArrayItem(ok, 1)->valuedouble ==
                      cJSON_GetArrayItem(ov, 0)->valuedouble);
            const cJSON *sq = cJSON_GetObjectItemCaseSensitive(tq, "shape");
            const double rows = cJSON_GetArrayItem(sq, 0)->valuedouble +
                                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tk, "shape"),
                                                   0)->valuedouble +
                                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tv, "shape"),
                                                   0)->valuedouble;
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "dtype", "F16");
            cJSON *sh = cJSON_AddArrayToObject(t, "shape");
            cJSON_AddItemToArray(sh, cJSON_CreateNumber(rows));
            if (!b) cJSON_AddItemToArray(sh, cJSON_CreateNumber(cJSON_GetArrayItem(sq, 1)->valuedouble));
            cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
            cJSON_AddItemToArray(of, cJSON_CreateNumber(cJSON_GetArrayItem(oq, 0)->valuedouble));
            cJSON_AddItemToArray(of, cJSON_CreateNumber(cJSON_GetArrayItem(ov, 1)->valuedouble));
            cJSON_DeleteItemFromObjectCaseSensitive(h, q);
            cJSON_DeleteItemFromObjectCaseSensitive(h, k);
            cJSON_DeleteItemFromObjectCaseSensitive(h, v);
            cJSON_AddItemToObject(h, f, t);
        }
}

static void rename_key(cJSON *h, const char *from, const char *to)
{
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(h, from);
    ck_assert_ptr_nonnull(t);
    cJSON_AddItemToObject(h, to, t);
}

static void drop_v(cJSON *h)
{
    rename_key(h, "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.v.weight");
}
static void drop_lm_head(cJSON *h) { rename_key(h, "lm_head.weight", "unrelated.weight"); }
static void swap_kq_bias(cJSON *h)
{
    /* a k_proj with the rows of q_proj: the total still fits, the split does not */
    rename_key(h, "model.layers.0.self_attn.q_proj.bias", "tmp");
    rename_key(h, "model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.q_proj.bias");
    rename_key(h, "tmp", "model.layers.0.self_attn.k_proj.bias");
}

START_TEST(fused_qkv_proj)
{
    char *d = tu_path(tmpdir, "fused");
    variant("glm-hf-tiny", d, fuse_qkv);
    char *ref = tu_sample_path("glm-hf-tiny", "st");
    int ns;
    gseq *seqs = sequences("glm-hf-tiny", &ns);
    int64_t V;
    float *a = run_mode(d, GLMQ_FWD_REFERENCE, seqs[0].ids, seqs[0].n, &V);
    float *b = run_mode(ref, GLMQ_FWD_REFERENCE, seqs[0].ids, seqs[0].n, &V);
    ck_assert_mem_eq(a, b, (size_t)(seqs[0].n * V) * sizeof *a);
    free(a);
    free(b);
    free(seqs);
    free(ref);
    tu_rmtree(d);
    free(d);
}
END_TEST

static const struct {
    hdr_edit edit;
    const char *msg;
} bad[] = {
    {drop_v, "model.layers.1.self_attn.v_proj.weight' is missing"},
    {drop_lm_head, "'lm_head.weight' is missing and config.json has tie_word_embeddings = false"},
    {swap_kq_bias, "model.layers.0.self_attn.q_proj.bias' has 64 rows; config.json implies 128"},
};

START_TEST(bad_checkpoints)
{
    char *d = tu_path(tmpdir, "bad");
    variant("glm-hf-tiny", d, bad[_i].edit);
    glmq_checkpoint *c = NULL;
    glmq_err err = {0};
    glmq_status st = glmq_checkpoint_open(d, &c, &err);
    ck_assert_int_ne(st, GLMQ_OK);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, bad[_i].msg) != NULL, "got: %s", err.msg);
    tu_rmtree(d);
    free(d);
}
END_TEST

Suite *hf_layout_suite(void);
Suite *hf_layout_suite(void)
{
    Suite *s = suite_create("hf_layout");
    TCase *tc = tcase_create("layout");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, convert_all, remove_all);
    tcase_add_loop_test(tc, matches_torch, 0, 8);
    tcase_add_test(tc, glm_equals_glm2);
    tcase_add_test(tc, packs_check);
    tcase_add_test(tc, export_gguf);
    tcase_add_test(tc, fused_qkv_proj);
    tcase_add_loop_test(tc, bad_checkpoints, 0, (int)(sizeof bad / sizeof bad[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hf_layout_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
