/*
 * check_glm130b.c - GLM-130B's tensor-parallel SAT checkpoint (formats/sat.c) and its forward
 * pass (src/runtime/forward.c), against samples/glm130b-tiny (written by samples/gen_glm130b.py
 * from PyTorch: the 8 rank files, the CRC-32 of every merged tensor as PyTorch merges it, and
 * logits of an independent PyTorch implementation, cross-checked there against a run of the 8
 * partitions).
 *
 * Hostile checkpoints (a missing rank, a wrong rank count, shards of mismatched shapes or
 * contents, a pickled argparse.Namespace) are made here: copies of the fixture, or rank files
 * written by the small torch.save writer below (stored zip + protocol-2 pickle of
 * {'module': state dict}, as SAT's loader reads them). The same writer makes a ~50 MB checkpoint
 * whose conversion must stay far below its size in peak RSS (the stream claim of the README).
 */
#include "formats/checkpoint.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

static char *tmpdir;
static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

static char *sat_dir(void) { return tu_sample_path("glm130b-tiny", "sat"); }

static cJSON *manifest(void)
{
    cJSON *m = tu_manifest("glm130b-tiny");
    ck_assert_msg(m != NULL, "samples/glm130b-tiny/golden/manifest.json");
    return m;
}

static glmq_status open_ck(const char *dir, glmq_checkpoint **ck, glmq_err *err)
{
    memset(err, 0, sizeof *err);
    return glmq_checkpoint_open(dir, ck, err);
}

// --- merge ---------------------------------------------------------------------------------

/* Every merged tensor (a composite of the 8 ranks' slices) holds exactly the bytes PyTorch's
 * merge gives (CRC-32 of the fp16 row-major data), in canonical order. */
static void check_merge(const char *dir)
{
    glmq_checkpoint *ck = NULL;
    glmq_err err;
    ck_assert_msg(open_ck(dir, &ck, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(ck->cfg.arch, GLMQ_ARCH_GLM130B);
    ck_assert_int_eq(ck->cfg.hidden, 64);
    ck_assert_int_eq(ck->cfg.n_heads, 8);
    ck_assert_int_eq(ck->cfg.ffn, 128);
    ck_assert_int_eq(ck->cfg.vocab, 1024);
    ck_assert_int_eq(ck->cfg.n_layers, 2);
    ck_assert_double_eq_tol(ck->cfg.alpha, 2.0, 1e-12); /* sqrt(2 * 2 layers) */
    cJSON *man = manifest();
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(man, "tensors");
    int64_t present = 0;
    for (int64_t i = 0; i < ck->n_tensors; i++) present += ck->tensors[i].src >= 0;
    ck_assert_int_eq(present, cJSON_GetArraySize(ts));
    for (int64_t i = 0; i < ck->n_tensors; i++) {
        const glmq_ckpt_tensor *ct = &ck->tensors[i];
        if (ct->src < 0) { /* only the tied output layer may be absent */
            ck_assert_str_eq(ct->want.name, "lm_head.weight");
            continue;
        }
        const glmq_src_tensor *t = &ck->set.tensors[ct->src];
        ck_assert_int_gt(t->n_pieces, 0);
        ck_assert_int_eq(t->dtype, GLMQ_DT_F16);
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(ts, ct->want.name);
        ck_assert_msg(g != NULL, "%s not in the manifest", ct->want.name);
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(g, "shape");
        ck_assert_int_eq(t->ndim, cJSON_GetArraySize(sh));
        for (int d = 0; d < t->ndim; d++)
            ck_assert_int_eq(t->shape[d], (int64_t)cJSON_GetArrayItem(sh, d)->valuedouble);
        size_t bytes = (size_t)t->nelem * 2;
        uint8_t *buf = malloc(bytes);
        ck_assert_ptr_nonnull(buf);
        ck_assert_msg(glmq_src_read_rows_raw(&ck->set, t, 0, glmq_src_rows(t), buf, &err) ==
                          GLMQ_OK,
                      "%s", err.msg);
        uLong c = crc32(0L, buf, (uInt)bytes);
        double want = cJSON_GetObjectItemCaseSensitive(g, "crc32_f16")->valuedouble;
        ck_assert_msg((double)c == want, "%s: merged bytes differ from PyTorch's merge",
                      ct->want.name);
        free(buf);
    }
    ck_assert_str_eq(ck->weights_format, "sat");
    /* no rank tensor left over: every one is a piece or the rotary buffer */
    for (int64_t i = 0; i < ck->n_warnings; i++)
        ck_assert_msg(!strstr(ck->warnings[i], "unexpected"), "%s", ck->warnings[i]);
    cJSON_Delete(man);
    glmq_checkpoint_close(ck);
}

START_TEST(merge_matches_pytorch)
{
    char *d = sat_dir();
    check_merge(d);
    free(d);
}
END_TEST

/* The iteration folder itself (model_config.json one level up) opens the same way. */
START_TEST(iteration_folder)
{
    char *d = sat_dir();
    char *it = tu_path(d, "1000");
    check_merge(it);
    free(it);
    free(d);
}
END_TEST

// --- logits --------------------------------------------------------------------------------

static int32_t *case_ids(const char *c, int64_t *n)
{
    cJSON *man = manifest();
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(man, "cases"), c),
        "ids");
    *n = cJSON_GetArraySize(ids);
    int32_t *v = malloc((size_t)*n * sizeof *v);
    for (int64_t i = 0; i < *n; i++) v[i] = (int32_t)cJSON_GetArrayItem(ids, (int)i)->valuedouble;
    cJSON_Delete(man);
    return v;
}

static float *golden(const char *c, int64_t n)
{
    char name[64];
    snprintf(name, sizeof name, "golden/logits_%s.npy", c);
    char *p = tu_sample_path("glm130b-tiny", name);
    char dt[8];
    int nd;
    int64_t sh[4];
    size_t nb;
    float *g = tu_npy_load(p, dt, &nd, sh, &nb);
    ck_assert_msg(g != NULL, "%s", p);
    ck_assert_str_eq(dt, "<f4");
    ck_assert_int_eq(sh[0], n);
    ck_assert_int_eq(sh[1], 1024);
    free(p);
    return g;
}

static float *run(const char *path, glmq_forward_mode mode, const int32_t *ids, int64_t n,
                  int split)
{
    glmq_model *m = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(path, &m, &err) == GLMQ_OK, "%s", err.msg);
    glmq_forward *f = NULL;
    ck_assert_msg(glmq_forward_create_mode(m, n, 2, mode, &f, &err) == GLMQ_OK, "%s", err.msg);
    const int64_t V = glmq_model_config(m)->vocab;
    float *lg = malloc((size_t)(n * V) * sizeof *lg);
    /* split > 0: the context in one call, then one token per call (the KV cache path) */
    int64_t done = 0;
    while (done < n) {
        int64_t k = split > 0 && done > 0 ? 1 : (split > 0 ? split : n);
        ck_assert_msg(glmq_forward_eval(f, ids + done, k, lg + done * V, &err) == GLMQ_OK, "%s",
                      err.msg);
        done += k;
    }
    glmq_forward_free(f);
    glmq_model_close(m);
    return lg;
}

typedef struct {
    double max_abs, max_g, top1;
} cmp;

static cmp compare(const float *a, const float *g, int64_t n, int64_t V)
{
    cmp c = {0, 0, 0};
    for (int64_t t = 0; t < n; t++) {
        int64_t ia = 0, ig = 0;
        for (int64_t v = 0; v < V; v++) {
            const float x = a[t * V + v], y = g[t * V + v];
            ck_assert(isfinite(x));
            if (fabs(x - y) > c.max_abs) c.max_abs = fabs(x - y);
            if (fabs(y) > c.max_g) c.max_g = fabs(y);
            if (x > a[t * V + ia]) ia = v;
            if (y > g[t * V + ig]) ig = v;
        }
        c.top1 += ia == ig;
    }
    c.top1 /= (double)n;
    return c;
}

static const char *const cases[] = {"gmask", "mask"};

/* The reference forward pass straight from the SAT directory against PyTorch's logits, whole and
 * token by token through the KV cache. */
START_TEST(reference_logits)
{
    const char *c = cases[_i];
    int64_t n;
    int32_t *ids = case_ids(c, &n);
    float *g = golden(c, n);
    char *d = sat_dir();
    for (int split = 0; split <= 1; split++) {
        /* with the cache: the context up to and including sop, then one token per call */
        int64_t ctx = 0;
        while (ids[ctx] != 1004) ctx++;
        float *lg = run(d, GLMQ_FWD_REFERENCE, ids, n, split ? (int)ctx + 1 : 0);
        cmp r = compare(lg, g, n, 1024);
        ck_assert_msg(r.max_abs <= 1e-5 * r.max_g + 1e-5, "%s split %d: max |d| %g (max %g)", c,
                      split, r.max_abs, r.max_g);
        free(lg);
    }
    free(d);
    free(g);
    free(ids);
}
END_TEST

/* INT8 / INT4 packs: the reference (exact dequantized) and fast (int8 activations) paths stay
 * near PyTorch's fp32 logits. Measured on this fixture: int8 max |d| 0.8% of max |logit|, int4
 * 16%, top-1 equal everywhere; the bounds leave about 3x room. */
START_TEST(quantized_paths)
{
    const glmq_type types[] = {GLMQ_TYPE_INT8, GLMQ_TYPE_INT4};
    const double tol[] = {0.03, 0.45};
    char *d = sat_dir();
    for (int k = 0; k < 2; k++) {
        char *out = tu_path(tmpdir, k ? "g4.glmq" : "g8.glmq");
        glmq_convert_opts o;
        glmq_convert_opts_default(&o);
        o.weight_type = types[k];
        o.threads = 2;
        glmq_convert_report rep;
        glmq_err err = {0};
        ck_assert_msg(glmq_convert(d, out, &o, &rep, &err) == GLMQ_OK, "%s", err.msg);
        glmq_convert_report_free(&rep);
        for (int ci = 0; ci < 2; ci++) {
            int64_t n;
            int32_t *ids = case_ids(cases[ci], &n);
            float *g = golden(cases[ci], n);
            for (int mode = GLMQ_FWD_REFERENCE; mode <= GLMQ_FWD_FAST; mode += 2) {
                float *lg = run(out, (glmq_forward_mode)mode, ids, n, 0);
                cmp r = compare(lg, g, n, 1024);
                ck_assert_msg(r.max_abs <= tol[k] * r.max_g && r.top1 >= 0.9,
                              "%s %s %s: max |d| %g of %g, top-1 %g", k ? "int4" : "int8",
                              cases[ci], glmq_forward_mode_name((glmq_forward_mode)mode),
                              r.max_abs, r.max_g, r.top1);
                free(lg);
            }
            free(g);
            free(ids);
        }
        free(out);
    }
    free(d);
}
END_TEST

/* export refuses it by name, with the reason. */
START_TEST(export_refused)
{
    char *d = sat_dir();
    char *out = tu_path(tmpdir, "g.glmq");
    char *gg = tu_path(tmpdir, "g.gguf");
    char *o = NULL;
    ck_assert_int_eq(tu_run(&o, "'%s' convert '%s' -o '%s' --type int8 --quiet", tu_bin(), d,
                            out), 0);
    free(o);
    int rc = tu_run(&o, "'%s' export '%s' -o '%s'", tu_bin(), out, gg);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(o, "GLM-130B cannot be exported") && strstr(o, "llama.cpp"), "%s", o);
    free(o);
    free(gg);
    free(out);
    free(d);
}
END_TEST

/* The CLI on the SAT directory: `logits` writes PyTorch's logits (within the reference
 * tolerance), bit-identical for 1 and 2 threads; `ppl` runs on ids. */
START_TEST(cli_logits_ppl)
{
    int64_t n;
    int32_t *ids = case_ids("mask", &n);
    float *g = golden("mask", n);
    char list[512] = "";
    size_t len = 0;
    for (int64_t i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i ? "," : "", ids[i]);
    char *d = sat_dir();
    float *lg[2];
    for (int th = 1; th <= 2; th++) {
        char name[32];
        snprintf(name, sizeof name, "l%d.npy", th);
        char *out = tu_path(tmpdir, name);
        char *o = NULL;
        int rc = tu_run(&o, "'%s' logits '%s' --ids %s -o '%s' --threads %d", tu_bin(), d, list,
                        out, th);
        ck_assert_msg(rc == 0, "%s", o);
        free(o);
        char dt[8];
        int nd;
        int64_t sh[4];
        size_t nb;
        lg[th - 1] = tu_npy_load(out, dt, &nd, sh, &nb);
        ck_assert_ptr_nonnull(lg[th - 1]);
        ck_assert_int_eq(sh[0], n);
        cmp r = compare(lg[th - 1], g, n, 1024);
        ck_assert_msg(r.max_abs <= 1e-5 * r.max_g + 1e-5, "max |d| %g", r.max_abs);
        free(out);
    }
    ck_assert(memcmp(lg[0], lg[1], (size_t)(n * 1024) * sizeof(float)) == 0);
    char *idf = tu_path(tmpdir, "ids.txt");
    char text[4096] = "";
    len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d ", (i * 37 + 11) % 1000);
    ck_assert_int_eq(tu_write_file(idf, text, len), 0);
    char *o = NULL;
    int rc = tu_run(&o, "'%s' ppl '%s' --ids-file '%s' --ctx 64", tu_bin(), d, idf);
    ck_assert_msg(rc == 0 && strstr(o, "ppl "), "%s", o);
    free(o);
    free(idf);
    free(lg[0]);
    free(lg[1]);
    free(d);
    free(g);
    free(ids);
}
END_TEST

// --- hostile checkpoints from the fixture --------------------------------------------------

/* tmpdir/sat: a copy of the fixture (latest, model_config.json, 1000/ with the rank files). */
static char *copy_fixture(void)
{
    char *src = sat_dir();
    char *dst = tu_path(tmpdir, "sat");
    ck_assert_int_eq(tu_copy_dir(src, dst), 0);
    char *s1 = tu_path(src, "1000"), *d1 = tu_path(dst, "1000");
    ck_assert_int_eq(tu_copy_dir(s1, d1), 0);
    free(s1);
    free(d1);
    free(src);
    return dst;
}

static void expect_fail(const char *dir, glmq_status code, const char *a, const char *b)
{
    glmq_checkpoint *ck = NULL;
    glmq_err err;
    glmq_status st = open_ck(dir, &ck, &err);
    ck_assert_ptr_null(ck);
    ck_assert_msg(st == code, "status %d, want %d: %s", (int)st, (int)code, err.msg);
    ck_assert_msg(strstr(err.msg, a), "'%s' not in: %s", a, err.msg);
    if (b) ck_assert_msg(strstr(err.msg, b), "'%s' not in: %s", b, err.msg);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    ck_assert_int_eq(tu_write_file(p, text, strlen(text)), 0);
    free(p);
}

static void remove_rank(const char *dir, int r)
{
    char name[64];
    snprintf(name, sizeof name, "1000/mp_rank_%02d_model_states.pt", r);
    char *p = tu_path(dir, name);
    ck_assert_int_eq(remove(p), 0);
    free(p);
}

START_TEST(missing_rank)
{
    char *d = copy_fixture();
    remove_rank(d, 3);
    expect_fail(d, GLMQ_E_FORMAT, "mp_rank_03_model_states.pt", "missing");
    free(d);
}
END_TEST

/* 7 rank files where model_config.json says 8; without that field, the split of the vocabulary
 * no longer divides (the message names the tensor). */
START_TEST(wrong_rank_count)
{
    char *d = copy_fixture();
    remove_rank(d, 7);
    expect_fail(d, GLMQ_E_FORMAT, "model_parallel_size is 8", "holds 7 rank files");
    write_text(d, "model_config.json",
               "{\"num_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
               "\"vocab_size\": 1024, \"inner_hidden_size\": 128, \"mask_token_id\": 1000, "
               "\"gmask_token_id\": 1001, \"sop_token_id\": 1004, \"eop_token_id\": 1005}");
    /* 8 heads over 7 ranks */
    expect_fail(d, GLMQ_E_SHAPE, "8 attention heads cannot be split over 7 ranks", NULL);
    free(d);
}
END_TEST

/* A config whose GeGLU width disagrees with the shards: the first shard checked is named. */
START_TEST(mismatched_config)
{
    char *d = copy_fixture();
    write_text(d, "model_config.json",
               "{\"num_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
               "\"vocab_size\": 1024, \"inner_hidden_size\": 256, \"model_parallel_size\": 8, "
               "\"mask_token_id\": 1000, \"gmask_token_id\": 1001, \"sop_token_id\": 1004, "
               "\"eop_token_id\": 1005}");
    expect_fail(d, GLMQ_E_SHAPE, "mp_rank_00_model_states.pt",
                "'transformer.layers.0.mlp.dense_h_to_4h.weight' has shape [32, 64]");
    write_text(d, "model_config.json", "{\"num_layers\": 2, \"hidden_size\": 64, "
                                       "\"num_attention_heads\": 8, \"vocab_size\": 1024}");
    expect_fail(d, GLMQ_E_FORMAT, "are unknown", "sop_token_id");
    write_text(d, "model_config.json",
               "{\"num_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 8, "
               "\"vocab_size\": 1024, \"position_encoding_2d\": true}");
    expect_fail(d, GLMQ_E_UNSUPPORTED, "position_encoding_2d", "1-D RoPE");
    char *cf = tu_path(d, "model_config.json");
    ck_assert_int_eq(remove(cf), 0);
    free(cf);
    expect_fail(d, GLMQ_E_UNSUPPORTED, "no model_config.json", "num_attention_heads");
    free(d);
}
END_TEST

// --- a small torch.save writer ---------------------------------------------------------------

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_raw(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u8(buf *b, unsigned v) { uint8_t x = (uint8_t)v; b_raw(b, &x, 1); }
static void b_le(buf *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}
static void p_str(buf *b, const char *s)
{
    b_u8(b, 'X');
    b_le(b, strlen(s), 4);
    b_raw(b, s, strlen(s));
}
static void p_int(buf *b, int64_t v)
{
    b_u8(b, 'J');
    b_le(b, (uint64_t)(uint32_t)(int32_t)v, 4);
}
static void p_global(buf *b, const char *mod, const char *name)
{
    b_u8(b, 'c');
    b_raw(b, mod, strlen(mod));
    b_u8(b, '\n');
    b_raw(b, name, strlen(name));
    b_u8(b, '\n');
}

typedef struct {
    char name[128];
    int64_t rows, cols; /* cols 0: a vector of `rows` */
} ten;

/* data.pkl of {'module': {names: fp16 tensors with storage keys 0..n-1}} (+ 'args': a
 * Namespace, which needs executing, when with_args). */
static void pickle_sd(buf *b, const ten *t, int n, int with_args)
{
    b_u8(b, 0x80);
    b_u8(b, 2);
    b_u8(b, '}');
    p_str(b, "module");
    b_u8(b, '}');
    b_u8(b, '(');
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        const int64_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
        p_str(b, t[i].name);
        p_global(b, "torch._utils", "_rebuild_tensor_v2");
        b_u8(b, '(');
        b_u8(b, '(');
        p_str(b, "storage");
        p_global(b, "torch", "HalfStorage");
        p_str(b, key);
        p_str(b, "cpu");
        p_int(b, numel);
        b_u8(b, 't');
        b_u8(b, 'Q');
        p_int(b, 0);
        b_u8(b, '(');
        p_int(b, t[i].rows);
        if (t[i].cols) p_int(b, t[i].cols);
        b_u8(b, 't');
        b_u8(b, '(');
        if (t[i].cols) p_int(b, t[i].cols);
        p_int(b, 1);
        b_u8(b, 't');
        b_u8(b, 0x89);
        p_global(b, "collections", "OrderedDict");
        b_u8(b, ')');
        b_u8(b, 'R');
        b_u8(b, 't');
        b_u8(b, 'R');
    }
    b_u8(b, 'u');
    b_u8(b, 's');
    if (with_args) {
        p_str(b, "args");
        p_global(b, "argparse", "Namespace");
        b_u8(b, ')');
        b_u8(b, 'R');
        b_u8(b, 's');
    }
    b_u8(b, '.');
}

typedef struct {
    char name[64];
    size_t off;
    uint32_t crc, size;
} zent;

static void zip_member(FILE *f, buf *cd, const char *name, const void *data, size_t n,
                       uint32_t crc)
{
    buf h = {0};
    const size_t off = (size_t)ftell(f);
    b_le(&h, 0x04034b50, 4);
    b_le(&h, 20, 2);
    b_le(&h, 0, 2);
    b_le(&h, 0, 2); /* stored */
    b_le(&h, 0, 4);
    b_le(&h, crc, 4);
    b_le(&h, n, 4);
    b_le(&h, n, 4);
    b_le(&h, strlen(name), 2);
    b_le(&h, 0, 2);
    b_raw(&h, name, strlen(name));
    ck_assert_int_eq(fwrite(h.p, 1, h.n, f), h.n);
    if (n) ck_assert_int_eq(fwrite(data, 1, n, f), n);
    free(h.p);
    b_le(cd, 0x02014b50, 4);
    b_le(cd, 20, 2);
    b_le(cd, 20, 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 4);
    b_le(cd, crc, 4);
    b_le(cd, n, 4);
    b_le(cd, n, 4);
    b_le(cd, strlen(name), 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 2);
    b_le(cd, 0, 4);
    b_le(cd, off, 4);
    b_raw(cd, name, strlen(name));
}

/* fp16 value of element i of tensor `k` of rank `r` (deterministic, small). */
static uint16_t val(uint64_t seed, int64_t i)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
    uint64_t x = tu_splitmix64(&s);
    /* |v| < 0.125: sign, exponent 8..11 (2^-7 .. 2^-4), random mantissa */
    return (uint16_t)(((x >> 63) << 15) | ((8 + ((x >> 20) & 3)) << 10) | (x & 0x3ff));
}

/* Write one rank file of a GLM-130B-shaped model (h, heads, F, V, L layers, n ranks). */
static void write_rank(const char *path, int r, int n, int64_t h, int64_t F, int64_t V, int L,
                       uint64_t seed, int with_args)
{
    ten *t = calloc(16 * (size_t)L + 4, sizeof *t);
    int k = 0;
    snprintf(t[k].name, sizeof t[k].name, "transformer.word_embeddings.weight");
    t[k].rows = V / n, t[k++].cols = h;
    for (int l = 0; l < L; l++) {
        const struct {
            const char *nm;
            int64_t rows, cols;
        } lt[] = {
            {"input_layernorm.weight", h, 0},        {"input_layernorm.bias", h, 0},
            {"attention.query_key_value.weight", 3 * h / n, h},
            {"attention.query_key_value.bias", 3 * h / n, 0},
            {"attention.dense.weight", h, h / n},    {"attention.dense.bias", h, 0},
            {"post_attention_layernorm.weight", h, 0}, {"post_attention_layernorm.bias", h, 0},
            {"mlp.dense_h_to_4h.weight", 2 * F / n, h}, {"mlp.dense_h_to_4h.bias", 2 * F / n, 0},
            {"mlp.dense_4h_to_h.weight", h, F / n},  {"mlp.dense_4h_to_h.bias", h, 0},
        };
        for (size_t j = 0; j < sizeof lt / sizeof lt[0]; j++) {
            snprintf(t[k].name, sizeof t[k].name, "transformer.layers.%d.%s", l, lt[j].nm);
            t[k].rows = lt[j].rows;
            t[k++].cols = lt[j].cols;
        }
    }
    snprintf(t[k].name, sizeof t[k].name, "transformer.final_layernorm.weight");
    t[k++].rows = h;
    snprintf(t[k].name, sizeof t[k].name, "transformer.final_layernorm.bias");
    t[k++].rows = h;

    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    buf cd = {0}, pk = {0};
    pickle_sd(&pk, t, k, with_args);
    zip_member(f, &cd, "archive/data.pkl", pk.p, pk.n, (uint32_t)crc32(0L, pk.p, (uInt)pk.n));
    zip_member(f, &cd, "archive/byteorder", "little", 6, (uint32_t)crc32(0L, (const Bytef *)"little", 6));
    int members = 2;
    for (int i = 0; i < k; i++) {
        const int64_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
        /* replicated vectors are equal on every rank; slices differ by rank */
        const int repl = t[i].cols == 0 && !strstr(t[i].name, "query_key_value") &&
                         !strstr(t[i].name, "dense_h_to_4h");
        uint16_t *d = malloc((size_t)numel * 2);
        for (int64_t e = 0; e < numel; e++)
            d[e] = val(seed + (uint64_t)i * 1000 + (repl ? 0 : (uint64_t)r), e);
        char nm[64];
        snprintf(nm, sizeof nm, "archive/data/%d", i);
        zip_member(f, &cd, nm, d, (size_t)numel * 2, (uint32_t)crc32(0L, (Bytef *)d, (uInt)(numel * 2)));
        members++;
        free(d);
    }
    const size_t cd_off = (size_t)ftell(f);
    ck_assert_int_eq(fwrite(cd.p, 1, cd.n, f), cd.n);
    buf e = {0};
    b_le(&e, 0x06054b50, 4);
    b_le(&e, 0, 2);
    b_le(&e, 0, 2);
    b_le(&e, members, 2);
    b_le(&e, members, 2);
    b_le(&e, cd.n, 4);
    b_le(&e, cd_off, 4);
    b_le(&e, 0, 2);
    ck_assert_int_eq(fwrite(e.p, 1, e.n, f), e.n);
    ck_assert_int_eq(fclose(f), 0);
    free(e.p);
    free(cd.p);
    free(pk.p);
    free(t);
}

/* A SAT directory dir/{latest, model_config.json, 7/mp_rank_NN...}. */
static void write_sat(const char *dir, int n, int64_t h, int nh, int64_t F, int64_t V, int L)
{
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text(dir, "latest", "7\n");
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_class\": \"GLM130B\", \"num_layers\": %d, \"hidden_size\": %lld, "
             "\"num_attention_heads\": %d, \"vocab_size\": %lld, \"inner_hidden_size\": %lld, "
             "\"model_parallel_size\": %d, \"layernorm_order\": \"post\", \"mask_token_id\": 1, "
             "\"gmask_token_id\": 2, \"sop_token_id\": 3, \"eop_token_id\": 4}",
             L, (long long)h, nh, (long long)V, (long long)F, n);
    write_text(dir, "model_config.json", cfg);
    char *it = tu_path(dir, "7");
    ck_assert_int_eq(mkdir(it, 0755), 0);
    for (int r = 0; r < n; r++) {
        char name[64];
        snprintf(name, sizeof name, "mp_rank_%02d_model_states.pt", r);
        char *p = tu_path(it, name);
        write_rank(p, r, n, h, F, V, L, 42, 0);
        free(p);
    }
    free(it);
}

/* The writer's checkpoint opens (it is what the hostile cases below start from). */
START_TEST(writer_opens)
{
    char *d = tu_path(tmpdir, "w");
    write_sat(d, 4, 32, 4, 48, 256, 1);
    glmq_checkpoint *ck = NULL;
    glmq_err err;
    ck_assert_msg(open_ck(d, &ck, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(ck->cfg.ffn, 48);
    glmq_checkpoint_close(ck);
    free(d);
}
END_TEST

/* A rank file of another model (other shapes) among the ranks: named by file and tensor. */
START_TEST(mismatched_shard)
{
    char *d = tu_path(tmpdir, "w");
    write_sat(d, 4, 32, 4, 48, 256, 1);
    char *p = tu_path(d, "7/mp_rank_02_model_states.pt");
    write_rank(p, 2, 4, 32, 64, 256, 1, 42, 0);
    expect_fail(d, GLMQ_E_SHAPE, "mp_rank_02_model_states.pt",
                "'transformer.layers.0.mlp.dense_h_to_4h.weight' has shape [32, 32]");
    /* same shapes, other contents: the replicated norms differ from rank 0's */
    write_rank(p, 2, 4, 32, 48, 256, 1, 43, 0);
    expect_fail(d, GLMQ_E_FORMAT, "mp_rank_02_model_states.pt", "differs from rank 0's copy");
    /* an argparse.Namespace in a rank file needs executing: refused by name */
    write_rank(p, 2, 4, 32, 48, 256, 1, 42, 1);
    expect_fail(d, GLMQ_E_UNSUPPORTED, "mp_rank_02_model_states.pt", "argparse.Namespace");
    free(p);
    free(d);
}
END_TEST

/* Peak RSS of `glmq convert` on a ~50 MB 8-way checkpoint stays far below the checkpoint's size:
 * tensors are merged and quantized chunk by chunk, never whole checkpoints (README). */
START_TEST(convert_streams)
{
    char *d = tu_path(tmpdir, "big");
    const int64_t h = 512, F = 2048, V = 32768;
    write_sat(d, 8, h, 8, F, V, 2);
    const double ck_mb = (double)(V * h + 2 * (4 * h * h + 3 * h * F)) * 2 / 1048576.0;
    char *out = tu_path(tmpdir, "big.glmq");
    char *o = NULL;
    int rc = tu_run(&o, "'%s' convert '%s' -o '%s' --type int8 --threads 2 --quiet", tu_bin(), d,
                    out);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
    const double peak_mb = (double)ru.ru_maxrss / 1024.0;
    fprintf(stderr, "glm130b convert: checkpoint %.1f MB, peak RSS %.1f MB\n", ck_mb, peak_mb);
#if defined(__SANITIZE_ADDRESS__)
    (void)peak_mb; /* shadow memory makes RSS meaningless under ASan */
#else
    ck_assert_msg(peak_mb < ck_mb / 2, "peak RSS %.1f MB for a %.1f MB checkpoint", peak_mb,
                  ck_mb);
#endif
    free(out);
    free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("glm130b");
    TCase *tc = tcase_create("glm130b");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, merge_matches_pytorch);
    tcase_add_test(tc, iteration_folder);
    tcase_add_loop_test(tc, reference_logits, 0, 2);
    tcase_add_test(tc, quantized_paths);
    tcase_add_test(tc, export_refused);
    tcase_add_test(tc, cli_logits_ppl);
    tcase_add_test(tc, missing_rank);
    tcase_add_test(tc, wrong_rank_count);
    tcase_add_test(tc, mismatched_config);
    tcase_add_test(tc, writer_opens);
    tcase_add_test(tc, mismatched_shard);
    tcase_add_test(tc, convert_streams);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
