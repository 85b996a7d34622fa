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
#include "formats/hf_tokenizer.h"
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
    /* the GGUF file runs as the INT4 golden says (q4_0 blocks hold the same codes and scales) */
    int ns;
    gseq *seqs = sequences(models[0], &ns);
    int64_t V;
    float *lg = run_mode(out, GLMQ_FWD_REFERENCE, seqs[0].ids, seqs[0].n, &V);
    float *g = golden(models[0], seqs[0].logits[2], seqs[0].n, V);
    double mx = 0, mg = 0;
    for (int64_t i = 0; i < seqs[0].n * V; i++) {
        if (fabs((double)lg[i] - g[i]) > mx) mx = fabs((double)lg[i] - g[i]);
        if (fabs(g[i]) > mg) mg = fabs(g[i]);
    }
    ck_assert_msg(mx <= STRICT_TOL * mg, "gguf logits: max|diff| %g", mx);
    free(g);
    free(lg);
    free(seqs);
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


// --- config.json ---------------------------------------------------------------------------

static glmq_status parse(const char *json, glmq_config *c, glmq_err *err)
{
    return glmq_config_parse(json, strlen(json), NULL, 0, "config.json", c, err);
}

/* The samples' configs (transformers' field names) read as the ChatGLM2-family config. */
START_TEST(configs)
{
    for (int m = 0; m < 2; m++) {
        char *d = tu_sample_path(models[m], "st"), *p = tu_path(d, "config.json");
        size_t n;
        char *j = (char *)tu_read_file(p, &n);
        ck_assert_ptr_nonnull(j);
        glmq_config c;
        glmq_err err = {0};
        ck_assert_msg(parse(j, &c, &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_int_eq(c.arch, GLMQ_ARCH_CHATGLM2);
        ck_assert_int_eq(c.hf_layout, 1);
        ck_assert_int_eq(c.sandwich_norm, m == 1);
        ck_assert_int_eq(c.tied_output, m == 1);
        ck_assert_int_eq(c.hidden, 128);
        ck_assert_int_eq(c.n_layers, 2);
        ck_assert_int_eq(c.n_heads, 4);
        ck_assert_int_eq(c.n_kv_groups, 2);
        ck_assert_int_eq(c.head_dim, 32);
        ck_assert_int_eq(c.ffn, 172);
        ck_assert_int_eq(c.vocab, 1216);
        ck_assert_int_eq(c.qkv_bias, 1);
        ck_assert_int_eq(c.linear_bias, 0);
        ck_assert_double_eq_tol(c.rope_ratio, 2.0, 1e-12);
        ck_assert_double_eq_tol(c.norm_eps, 1e-5, 1e-15);
        free(j);
        free(p);
        free(d);
    }
    /* transformers' defaults (configuration_glm4.py) for what a config leaves out */
    glmq_config c;
    glmq_err err = {0};
    ck_assert_int_eq(parse("{\"model_type\":\"glm4\"}", &c, &err), GLMQ_OK);
    ck_assert_int_eq(c.vocab, 151552);
    ck_assert_int_eq(c.hidden, 4096);
    ck_assert_int_eq(c.n_layers, 40);
    ck_assert_int_eq(c.n_kv_groups, 2);
    ck_assert_int_eq(c.head_dim, 128);
    ck_assert_int_eq(c.ffn, 13696);
    ck_assert_double_eq_tol(c.norm_eps, 1.5625e-7, 1e-20);
    ck_assert_double_eq_tol(c.rope_ratio, 1.0, 1e-12);
    ck_assert_int_eq(c.qkv_bias, 1);
    ck_assert_int_eq(c.tok_eos, -1);
    ck_assert_int_eq(parse("{\"model_type\":\"glm\",\"rope_theta\":10000000,"
                           "\"eos_token_id\":[151329,151336,151338]}",
                           &c, &err),
                     GLMQ_OK);
    ck_assert_double_eq_tol(c.rope_ratio, 1000.0, 1e-9);
    ck_assert_int_eq(c.tok_eos, 151329);
    ck_assert_int_eq(c.sandwich_norm, 0);
}
END_TEST

static const struct {
    const char *json, *msg;
} cfg_bad[] = {
    {"{\"model_type\":\"glm4\",\"partial_rotary_factor\":1.0}", "partial_rotary_factor 1"},
    {"{\"model_type\":\"glm4\",\"rope_parameters\":{\"rope_type\":\"yarn\",\"factor\":4}}",
     "rope_type is 'yarn'"},
    {"{\"model_type\":\"glm\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}",
     "rope_type is 'linear'"},
    {"{\"model_type\":\"glm4\",\"hidden_act\":\"gelu\"}", "SwiGLU"},
    {"{\"model_type\":\"glm4\",\"quantization_config\":{\"quant_method\":\"gptq\"}}",
     "quantization_config"},
    {"{\"model_type\":\"glm4\",\"n_routed_experts\":128}", "mixture-of-experts"},
    {"{\"model_type\":\"glm4v\"}", "vision encoder"},
    {"{\"model_type\":\"glm4_moe\"}", "mixture-of-experts"},
    {"{\"model_type\":\"glm\",\"num_attention_heads\":32,\"num_key_value_heads\":3}",
     "does not divide"},
    {"{\"model_type\":\"glm\",\"hidden_size\":64,\"num_attention_heads\":32,"
     "\"num_key_value_heads\":2}",
     "head_dim 2 is not a positive multiple of 4"},
    {"{\"model_type\":\"glm\",\"attention_bias\":1}", "not a boolean"},
};

START_TEST(config_refusals)
{
    glmq_config c;
    glmq_err err = {0};
    ck_assert_int_ne(parse(cfg_bad[_i].json, &c, &err), GLMQ_OK);
    ck_assert_msg(strstr(err.msg, cfg_bad[_i].msg) != NULL, "%s -> %s", cfg_bad[_i].json,
                  err.msg);
}
END_TEST

// --- tokenizer.json ------------------------------------------------------------------------

static char *data_path(const char *sub, const char *file)
{
    char *d = tu_path(tu_testdata(), sub);
    char *p = tu_path(d, file);
    free(d);
    return p;
}

static uint8_t *ranks_of(const char *json, size_t n, size_t *out_n, int32_t *nr, glmq_err *err)
{
    uint8_t *out = NULL;
    glmq_status st = glmq_hf_tokenizer_ranks(json, n, "tokenizer.json", &out, out_n, nr, err);
    if (st != GLMQ_OK) ck_assert_ptr_null(out);
    return out;
}

/* The tiny fixture (written by gen_hf_glm.py with Python's base64 next to the JSON): the rank
 * file glmq writes is byte for byte the one Python wrote, in both merge spellings. */
START_TEST(tok_tiny)
{
    char *pj = data_path("hf_tokenizer", "tiny.json"), *pt = data_path("hf_tokenizer", "tiny.tiktoken");
    char *d = tu_path(tu_testdata(), "../fuzz/corpus/hf_tokenizer");
    char *ps = tu_path(d, "valid_strings.json");
    size_t nj, nt, ns, no;
    uint8_t *j = tu_read_file(pj, &nj), *t = tu_read_file(pt, &nt), *js = tu_read_file(ps, &ns);
    ck_assert(j && t && js);
    const uint8_t *in[2] = {j, js};
    const size_t inn[2] = {nj, ns};
    for (int k = 0; k < 2; k++) {
        glmq_err err = {0};
        int32_t nr = 0;
        uint8_t *o = ranks_of((const char *)in[k], inn[k], &no, &nr, &err);
        ck_assert_msg(o != NULL, "%s", err.msg);
        ck_assert_int_eq(nr, 296);
        ck_assert_uint_eq(no, nt);
        ck_assert_mem_eq(o, t, nt);
        free(o);
    }
    free(j);
    free(t);
    free(js);
    free(pj);
    free(pt);
    free(ps);
    free(d);
}
END_TEST

/* Hostile and foreign tokenizer.json files, each refused with its reason. */
typedef void (*tj_edit)(cJSON *r);

static cJSON *model_of(cJSON *r) { return cJSON_GetObjectItemCaseSensitive(r, "model"); }
static cJSON *merges_of(cJSON *r)
{
    return cJSON_GetObjectItemCaseSensitive(model_of(r), "merges");
}
static void e_normalizer(cJSON *r)
{
    cJSON_ReplaceItemInObject(r, "normalizer", cJSON_CreateString("NFC"));
}
static void e_wordpiece(cJSON *r)
{
    cJSON_ReplaceItemInObject(model_of(r), "type", cJSON_CreateString("WordPiece"));
}
static void e_regex(cJSON *r)
{
    cJSON *sp = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "pre_tokenizer"),
                                         "pretokenizers"),
        0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(sp, "pattern"), "Regex",
                              cJSON_CreateString("\\s+"));
}
static void e_use_regex(cJSON *r)
{
    cJSON *bl = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "pre_tokenizer"),
                                         "pretokenizers"),
        1);
    cJSON_ReplaceItemInObject(bl, "use_regex", cJSON_CreateTrue());
}
static void e_byte_fallback(cJSON *r)
{
    cJSON_ReplaceItemInObject(model_of(r), "byte_fallback", cJSON_CreateTrue());
}
static void e_dup_id(cJSON *r)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(model_of(r), "vocab"), "A",
                              cJSON_CreateNumber(0));
}
static void e_id_range(cJSON *r)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(model_of(r), "vocab"), "A",
                              cJSON_CreateNumber(296));
}
static void e_not_bytelevel(cJSON *r)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(model_of(r), "vocab");
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(v, "A");
    cJSON_AddItemToObject(v, "\xe4\xbd\xa0", t);
}
static void e_drop_merge(cJSON *r) { cJSON_DeleteItemFromArray(merges_of(r), 3); }
static void e_dup_merge(cJSON *r)
{
    cJSON *m = merges_of(r);
    cJSON_AddItemToArray(m, cJSON_Duplicate(cJSON_GetArrayItem(m, cJSON_GetArraySize(m) - 1), 1));
}
static void e_order(cJSON *r)
{
    cJSON *m = merges_of(r);
    cJSON *last = cJSON_DetachItemFromArray(m, cJSON_GetArraySize(m) - 1);
    cJSON_InsertItemInArray(m, 0, last);
}
static void e_unknown_part(cJSON *r)
{
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString("zz"));
    cJSON_AddItemToArray(p, cJSON_CreateString("z"));
    cJSON_AddItemToArray(merges_of(r), p);
}
static void e_special_id(cJSON *r)
{
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "added_tokens"), 2);
    cJSON_ReplaceItemInObject(t, "id", cJSON_CreateNumber(299));
}
static void e_added_in_vocab(cJSON *r)
{
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "added_tokens"), 0);
    cJSON_ReplaceItemInObject(t, "id", cJSON_CreateNumber(7));
}
static void e_not_object(cJSON *r) { cJSON_DeleteItemFromObject(r, "model"); }

static const struct {
    tj_edit edit;
    const char *msg;
    glmq_status code;
} tj_bad[] = {
    {e_normalizer, "normalizer is set", GLMQ_E_UNSUPPORTED},
    {e_wordpiece, "model type 'WordPiece'", GLMQ_E_UNSUPPORTED},
    {e_regex, "regex is not GLM-4's", GLMQ_E_UNSUPPORTED},
    {e_use_regex, "use_regex false", GLMQ_E_UNSUPPORTED},
    {e_byte_fallback, "byte_fallback", GLMQ_E_UNSUPPORTED},
    {e_dup_id, "id 0 is given to two vocab entries", GLMQ_E_FORMAT},
    {e_id_range, "has id outside 0..295", GLMQ_E_FORMAT},
    {e_not_bytelevel, "is not a byte-level string", GLMQ_E_FORMAT},
    {e_drop_merge, "the merges are not the complete set", GLMQ_E_UNSUPPORTED},
    {e_dup_merge, "two merges make token", GLMQ_E_FORMAT},
    {e_order, "not in rank order", GLMQ_E_UNSUPPORTED},
    {e_unknown_part, "is not in the vocabulary", GLMQ_E_FORMAT},
    {e_special_id, "'[gMASK]' has id 299; GLM-4 (and glmq) number it 298", GLMQ_E_UNSUPPORTED},
    {e_added_in_vocab, "inside the BPE vocabulary", GLMQ_E_UNSUPPORTED},
    {e_not_object, "no 'model' object", GLMQ_E_FORMAT},
};

START_TEST(tok_hostile)
{
    char *pj = data_path("hf_tokenizer", "tiny.json");
    size_t nj, no;
    uint8_t *j = tu_read_file(pj, &nj);
    ck_assert_ptr_nonnull(j);
    cJSON *r = cJSON_ParseWithLength((const char *)j, nj);
    ck_assert_ptr_nonnull(r);
    tj_bad[_i].edit(r);
    char *txt = cJSON_PrintUnformatted(r);
    glmq_err err = {0};
    int32_t nr;
    uint8_t *o = NULL;
    glmq_status st = glmq_hf_tokenizer_ranks(txt, strlen(txt), "t.json", &o, &no, &nr, &err);
    ck_assert_int_eq(st, tj_bad[_i].code);
    ck_assert_ptr_null(o);
    ck_assert_msg(strstr(err.msg, tj_bad[_i].msg) != NULL, "got: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "t.json") != NULL, "no file name: %s", err.msg);
    free(txt);
    cJSON_Delete(r);
    free(j);
    free(pj);
}
END_TEST

/* A GLM-4 byte-level string of token bytes (GPT-2 byte-to-unicode, written independently of
 * formats/hf_tokenizer.c: printable Latin-1 stays, the other 68 bytes go to U+0100.. in order). */
static void bl_string(const uint8_t *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned b = s[i];
        unsigned cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
            unsigned k = 0;
            for (unsigned c = 0; c < b; c++)
                k += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
            cp = 256 + k;
        }
        if (cp < 0x80)
            out[o++] = (char)cp;
        else {
            out[o++] = (char)(0xC0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 63));
        }
    }
    out[o] = 0;
}

typedef struct {
    uint8_t **tok;
    size_t *len;
    int32_t n;
    int32_t *slot; /* open addressing over token bytes */
    size_t cap;
} rankset;

static size_t rs_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return (size_t)h;
}

static int32_t rs_find(const rankset *r, const uint8_t *s, size_t n)
{
    for (size_t i = rs_hash(s, n) & (r->cap - 1);; i = (i + 1) & (r->cap - 1)) {
        const int32_t v = r->slot[i];
        if (v < 0) return -1;
        if (r->len[v] == n && !memcmp(r->tok[v], s, n)) return v;
    }
}

static int b64v(int c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return c && p ? (int)(p - a) : -1;
}

/* Parse a tiktoken rank file written in rank order. */
static void rs_load(rankset *r, const uint8_t *f, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += f[i] == '\n';
    r->tok = calloc(lines, sizeof *r->tok);
    r->len = calloc(lines, sizeof *r->len);
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (f[e] != ' ') e++;
        uint8_t *t = malloc((e - i) / 4 * 3 + 1);
        size_t o = 0;
        for (size_t k = i; k < e; k += 4) {
            int v[4];
            for (int q = 0; q < 4; q++) v[q] = f[k + q] == '=' ? 0 : b64v(f[k + q]);
            const unsigned x = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
            t[o++] = (uint8_t)(x >> 16);
            if (f[k + 2] != '=') t[o++] = (uint8_t)(x >> 8);
            if (f[k + 3] != '=') t[o++] = (uint8_t)x;
        }
        ck_assert_int_eq(atol((const char *)f + e + 1), r->n);
        r->tok[r->n] = t;
        r->len[r->n++] = o;
        while (f[e] != '\n') e++;
        i = e + 1;
    }
    for (r->cap = 1; r->cap < 4 * (size_t)r->n; r->cap <<= 1) {
    }
    r->slot = malloc(r->cap * sizeof *r->slot);
    for (size_t i = 0; i < r->cap; i++) r->slot[i] = -1;
    for (int32_t v = 0; v < r->n; v++) {
        size_t i = rs_hash(r->tok[v], r->len[v]) & (r->cap - 1);
        while (r->slot[i] >= 0) i = (i + 1) & (r->cap - 1);
        r->slot[i] = v;
    }
}

static void rs_free(rankset *r)
{
    for (int32_t i = 0; i < r->n; i++) free(r->tok[i]);
    free(r->tok);
    free(r->len);
    free(r->slot);
}

/* tokenizer.json for a rank set, in the structure transformers' TikTokenConverter writes. */
static char *converter_json(const rankset *r)
{
    static const char *const sp[] = {"<|endoftext|>",  "[MASK]",          "[gMASK]",
                                     "[sMASK]",        "<sop>",           "<eop>",
                                     "<|system|>",     "<|user|>",        "<|assistant|>",
                                     "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
                                     "<|begin_of_video|>", "<|end_of_video|>"};
    cJSON *root = cJSON_CreateObject();
    cJSON *at = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < 14; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", r->n + i);
        cJSON_AddStringToObject(t, "content", sp[i]);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddItemToArray(at, t);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pt, "type", "Sequence");
    cJSON *pts = cJSON_AddArrayToObject(pt, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex",
                            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                            "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                            "\\s+(?!\\S)|\\s+");
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pts, split);
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "trim_offsets", 1);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(pts, bl);
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", 0);
    cJSON_AddBoolToObject(m, "byte_fallback", 0);
    cJSON_AddBoolToObject(m, "ignore_merges", 0);
    cJSON *v = cJSON_AddObjectToObject(m, "vocab");
    cJSON *mg = cJSON_AddArrayToObject(m, "merges");
    char *a = malloc(8192), *b = malloc(8192), *ab = malloc(16400);
    int32_t pl[1024][2];
    for (int32_t t = 0; t < r->n; t++) {
        bl_string(r->tok[t], r->len[t], a);
        cJSON_AddItemToObject(v, a, cJSON_CreateNumber(t));
        int np = 0;
        for (size_t i = 1; i < r->len[t]; i++) {
            const int32_t x = rs_find(r, r->tok[t], i), y = rs_find(r, r->tok[t] + i, r->len[t] - i);
            if (x >= 0 && y >= 0 && np < 1024) {
                pl[np][0] = x;
                pl[np++][1] = y;
            }
        }
        for (int i = 1; i < np; i++) /* insertion sort by (rank l, rank r) */
            for (int k = i; k > 0 && (pl[k - 1][0] > pl[k][0] ||
                                      (pl[k - 1][0] == pl[k][0] && pl[k - 1][1] > pl[k][1]));
                 k--) {
                int32_t t0 = pl[k][0], t1 = pl[k][1];
                pl[k][0] = pl[k - 1][0];
                pl[k][1] = pl[k - 1][1];
                pl[k - 1][0] = t0;
                pl[k - 1][1] = t1;
            }
        for (int i = 0; i < np; i++) {
            bl_string(r->tok[pl[i][0]], r->len[pl[i][0]], a);
            bl_string(r->tok[pl[i][1]], r->len[pl[i][1]], b);
            snprintf(ab, 16400, "%s %s", a, b);
            cJSON_AddItemToArray(mg, cJSON_CreateString(ab));
        }
    }
    free(a);
    free(b);
    free(ab);
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}

static void same_ids(const glmq_tokenizer *x, const glmq_tokenizer *y, const char *file)
{
    size_t n;
    uint8_t *text = tu_read_file(file, &n);
    ck_assert_msg(text != NULL, "%s", file);
    glmq_ids a = {0}, b = {0};
    glmq_err err = {0};
    ck_assert_int_eq(glmq_tokenizer_encode(x, (const char *)text, n, &a, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_encode(y, (const char *)text, n, &b, &err), GLMQ_OK);
    ck_assert_uint_gt(a.n, 0);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert_mem_eq(a.ids, b.ids, a.n * sizeof *a.ids);
    printf("# %s: %zu ids, equal\n", file, a.n);
    glmq_ids_free(&a);
    glmq_ids_free(&b);
    free(text);
}

/* The real GLM-4 rank file -> tokenizer.json as transformers writes it -> glmq's reader: the
 * same rank file byte for byte, and the same ids on the eval and tricky texts. */
START_TEST(tok_real_glm4)
{
    const char *rf = getenv("GLMQ_GLM4_TOKENIZER");
    if (!rf || !tu_file_exists(rf)) {
        printf("# SKIP tok_real_glm4: GLM-4 tokenizer.model not found (GLMQ_GLM4_TOKENIZER)\n");
        return;
    }
    size_t n, no;
    uint8_t *f = tu_read_file(rf, &n);
    ck_assert_ptr_nonnull(f);
    rankset r = {0};
    rs_load(&r, f, n);
    ck_assert_int_eq(r.n, 151329);
    char *json = converter_json(&r);
    glmq_err err = {0};
    int32_t nr;
    uint8_t *o = ranks_of(json, strlen(json), &no, &nr, &err);
    ck_assert_msg(o != NULL, "%s", err.msg);
    ck_assert_int_eq(nr, 151329);
    ck_assert_uint_eq(no, n);
    ck_assert_mem_eq(o, f, n);
    glmq_tok_glm cfg;
    glmq_tok_glm_init(&cfg, GLMQ_TOK_GLM4);
    glmq_tokenizer *x = NULL, *y = NULL;
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(f, n, &cfg, &x, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(o, no, &cfg, &y, &err), GLMQ_OK);
    static const char *const texts[] = {"eval_en.txt", "eval_zh.txt", "tricky.txt"};
    char *td = tu_sample_path("text", "");
    for (int i = 0; i < 3; i++) {
        char *p = tu_path(td, texts[i]);
        same_ids(x, y, p);
        free(p);
    }
    char *p = data_path("tokenizer", "eval.txt");
    same_ids(x, y, p);
    free(p);
    free(td);
    glmq_tokenizer_free(x);
    glmq_tokenizer_free(y);
    free(o);
    free(json);
    rs_free(&r);
    free(f);
}
END_TEST

/* A transformers-native directory with tokenizer.json and no tokenizer.model: the checkpoint
 * reads it as the tiktoken tokenizer (specials after its ranks), convert stores it, and the pack
 * tokenizes as the rank file does. */
START_TEST(tok_checkpoint)
{
    char *d = tu_path(tmpdir, "tokjson");
    char *src = tu_sample_path("glm-hf-tiny", "st");
    ck_assert_int_eq(tu_copy_dir(src, d), 0);
    char *tm = tu_path(d, "tokenizer.model");
    ck_assert_int_eq(remove(tm), 0);
    char *pj = data_path("hf_tokenizer", "tiny.json"), *dj = tu_path(d, "tokenizer.json");
    size_t nj;
    uint8_t *j = tu_read_file(pj, &nj);
    ck_assert_int_eq(tu_write_file(dj, j, nj), 0);
    glmq_checkpoint *c = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_checkpoint_open(d, &c, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_str_eq(c->cfg.tokenizer_kind, "tiktoken");
    ck_assert_int_eq(c->cfg.tok_gmask, 296 + 2);
    ck_assert_int_eq(c->cfg.tok_sop, 296 + 4);
    ck_assert_str_eq(c->tokenizer.name, "tokenizer.json");
    glmq_checkpoint_close(c);
    char *pack = tu_path(tmpdir, "tokjson.glmq"), *txt = tu_path(tmpdir, "t.txt"), *log = NULL;
    static const char text[] = "the man said unto them, Is this Naomi?";
    ck_assert_int_eq(tu_write_file(txt, text, sizeof text - 1), 0);
    int rc = tu_run(&log, "'%s' convert '%s' -o '%s' --quiet", tu_bin(), d, pack);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    rc = tu_run(&log, "'%s' tokenize '%s' --text '%s'", tu_bin(), pack, txt);
    ck_assert_msg(rc == 0, "%s", log);
    /* the same ids from the Python-written rank file */
    char *pt = data_path("hf_tokenizer", "tiny.tiktoken");
    size_t nt;
    uint8_t *t = tu_read_file(pt, &nt);
    glmq_tokenizer *tk = NULL;
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(t, nt, NULL, &tk, &err), GLMQ_OK);
    glmq_ids ids = {0};
    ck_assert_int_eq(glmq_tokenizer_encode(tk, text, sizeof text - 1, &ids, &err), GLMQ_OK);
    char want[4096] = "";
    size_t w = 0;
    for (size_t i = 0; i < ids.n; i++)
        w += (size_t)snprintf(want + w, sizeof want - w, "%s%d", i ? " " : "", ids.ids[i]);
    ck_assert_msg(strncmp(log, want, w) == 0, "got '%s', want '%s'", log, want);
    ck_assert_uint_lt(ids.n, sizeof text - 1); /* merges were used */
    glmq_ids_free(&ids);
    glmq_tokenizer_free(tk);
    free(t);
    free(pt);
    free(log);
    free(pack);
    free(txt);
    free(j);
    free(pj);
    free(dj);
    free(tm);
    free(src);
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
    tcase_add_test(tc, configs);
    tcase_add_loop_test(tc, config_refusals, 0, (int)(sizeof cfg_bad / sizeof cfg_bad[0]));
    tcase_add_test(tc, tok_tiny);
    tcase_add_loop_test(tc, tok_hostile, 0, (int)(sizeof tj_bad / sizeof tj_bad[0]));
    tcase_add_test(tc, tok_real_glm4);
    tcase_add_test(tc, tok_checkpoint);
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
