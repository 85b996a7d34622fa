/*
 * check_tokenizer.c - verify/tokenizer.[ch]: SentencePiece (BPE, UNIGRAM), tiktoken (GLM-4) and
 * the GLM flavours against goldens made by the sentencepiece library and an independent Python
 * GLM-4 implementation (tests/data/tokenizer/gen.py), plus chatglm.cpp's GLM-4 reference ids
 * (glm4_ref.json); hostile model files; API contracts.
 *
 * The GLM-4 tests read the real rank file from $GLMQ_GLM4_TOKENIZER (tests/CMakeLists.txt points
 * it at shared/upstream/glm-4-9b-chat/tokenizer.model beside the checkout) and are skipped (with
 * a message) when it is absent. ChatGLM-6B / ChatGLM2/3's own test vectors (GLM-SPEC A.8, B.7) need the real
 * ice_text.model / tokenizer.model, which are not available: they cannot be checked here.
 */
#include "testutil.h"
#include "formats/tokenizer.h"
#include "formats/tok_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static char *tok_path(const char *name)
{
    char *dir = tu_path(tu_testdata(), "tokenizer");
    char *p = tu_path(dir, name);
    free(dir);
    return p;
}

static cJSON *g_gold; /* goldens.json, loaded once per process */

static cJSON *goldens(void)
{
    if (!g_gold) {
        char *p = tok_path("goldens.json");
        size_t n;
        uint8_t *b = tu_read_file(p, &n);
        ck_assert_msg(b != NULL, "cannot read %s", p);
        g_gold = cJSON_ParseWithLength((const char *)b, n);
        ck_assert_msg(g_gold != NULL, "bad JSON in %s", p);
        free(b);
        free(p);
    }
    return g_gold;
}

static uint8_t *unhex(const char *h, size_t *n)
{
    size_t l = strlen(h);
    uint8_t *b = malloc(l / 2 + 1);
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *n = l / 2;
    return b;
}

static int32_t *json_ids(const cJSON *a, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (int32_t)e->valuedouble;
    return v;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *v, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%d ", v[i]);
}

/* Compare id lists with a readable message on mismatch. */
static void check_ids(const char *what, const int32_t *got, size_t ng, const int32_t *want,
                      size_t nw)
{
    if (ng == nw && (nw == 0 || memcmp(got, want, nw * sizeof *got) == 0)) return;
    size_t i = 0;
    while (i < ng && i < nw && got[i] == want[i]) i++;
    char a[512], b[512];
    size_t from = i > 4 ? i - 4 : 0;
    fmt_ids(a, sizeof a, got + from, ng > from ? (ng - from < 24 ? ng - from : 24) : 0);
    fmt_ids(b, sizeof b, want + from, nw > from ? (nw - from < 24 ? nw - from : 24) : 0);
    ck_abort_msg(
        "%s: ids differ at %zu (got %zu ids, want %zu)\n  got  [%zu..]: %s\n  want [%zu..]: %s",
        what, i, ng, nw, from, a, from, b);
}

static glmq_tokenizer *load_sp_file(const char *name, const glmq_tok_glm *cfg)
{
    char *p = tok_path(name);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    glmq_status st = glmq_tokenizer_open(p, cfg, &t, &e);
    ck_assert_msg(st == GLMQ_OK, "load %s: %s", p, e.msg);
    free(p);
    return t;
}

static const char *glm4_path(void)
{
    const char *e = getenv("GLMQ_GLM4_TOKENIZER");
    return e && *e ? e : "";
}

static glmq_tokenizer *load_glm4(glmq_tok_family fam)
{
    if (!tu_file_exists(glm4_path())) return NULL;
    glmq_tok_glm cfg;
    glmq_tok_glm_init(&cfg, fam);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    glmq_status st = glmq_tokenizer_open(glm4_path(), &cfg, &t, &e);
    ck_assert_msg(st == GLMQ_OK, "load %s: %s", glm4_path(), e.msg);
    return t;
}

#define SKIP_NO_GLM4(t)                                                                            \
    do {                                                                                           \
        if (!(t)) {                                                                                \
            fprintf(stderr,                                                                        \
                    "# SKIP %s: GLM-4 tokenizer.model not found at %s (set "                       \
                    "GLMQ_GLM4_TOKENIZER)\n",                                                      \
                    __func__, glm4_path());                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Check one golden case: ids, and decode against decoded_hex (if present). */
static void check_case(glmq_tokenizer *t, const char *model, const cJSON *c, int prompt)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    size_t tn, nw;
    uint8_t *text = unhex(cJSON_GetObjectItem(c, "text_hex")->valuestring, &tn);
    int32_t *want = json_ids(cJSON_GetObjectItem(c, "ids"), &nw);
    glmq_ids ids = {0};
    glmq_err e = {0};
    char what[160];
    snprintf(what, sizeof what, "%s/%s", model, name);
    ck_assert_msg(glmq_tokenizer_encode(t, (const char *)text, tn, &ids, &e) == GLMQ_OK, "%s: %s",
                  what, e.msg);
    check_ids(what, ids.ids, ids.n, want, nw);
    const cJSON *dh = cJSON_GetObjectItem(c, "decoded_hex");
    if (dh) {
        size_t dn;
        uint8_t *dec = unhex(dh->valuestring, &dn);
        char *out = NULL;
        size_t on = 0;
        ck_assert_msg(glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, &e) == GLMQ_OK, "%s: %s",
                      what, e.msg);
        ck_assert_msg(on == dn && memcmp(out, dec, dn) == 0, "%s: decode gives '%.*s' want '%.*s'",
                      what, (int)on, out, (int)dn, (const char *)dec);
        ck_assert_int_eq(out[on], 0);
        free(out);
        free(dec);
    }
    if (prompt) { /* prefix / suffix from the flavour */
        glmq_ids p = {0};
        size_t np, ns;
        const int32_t *pre = glmq_tokenizer_prefix(t, &np), *suf = glmq_tokenizer_suffix(t, &ns);
        ck_assert_int_eq(glmq_tokenizer_encode_prompt(t, (const char *)text, tn, &p, &e), GLMQ_OK);
        ck_assert_uint_eq(p.n, np + nw + ns);
        ck_assert(np == 0 || memcmp(p.ids, pre, np * 4) == 0);
        ck_assert(nw == 0 || memcmp(p.ids + np, want, nw * 4) == 0);
        ck_assert(ns == 0 || memcmp(p.ids + np + nw, suf, ns * 4) == 0);
        const cJSON *jp = cJSON_GetObjectItem(c, "prefix"), *js = cJSON_GetObjectItem(c, "suffix");
        if (jp) {
            size_t k;
            int32_t *v = json_ids(jp, &k);
            check_ids("prefix", pre, np, v, k);
            free(v);
        }
        if (js) {
            size_t k;
            int32_t *v = json_ids(js, &k);
            check_ids("suffix", suf, ns, v, k);
            free(v);
        }
        glmq_ids_free(&p);
    }
    glmq_ids_free(&ids);
    free(want);
    free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* SentencePiece goldens                                                                       */

static const char *const k_models[] = {"sp_bpe",          "sp_unigram",     "sp_tiny",
                                       "sp_bpe_unused",   "sp_tiny_unused", "sp_bpe_suffix",
                                       "sp_bpe_noescape", "sp_tiny_ud"};
#define N_MODELS ((int)(sizeof k_models / sizeof k_models[0]))

START_TEST(test_sp_goldens)
{
    const char *name = k_models[_i];
    cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(goldens(), "models"), name);
    ck_assert_ptr_nonnull(m);
    glmq_tokenizer *t = load_sp_file(cJSON_GetObjectItem(m, "file")->valuestring, NULL);

    /* flags read back by gen.py's own protobuf reader */
    cJSON *info = cJSON_GetObjectItem(m, "info");
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    ck_assert_int_eq(ti.n_base, cJSON_GetObjectItem(info, "n_pieces")->valueint);
    ck_assert_int_eq(ti.n_vocab, ti.n_base);
    ck_assert_int_eq(ti.model,
                     strcmp(cJSON_GetObjectItem(info, "model_type")->valuestring, "bpe") == 0
                         ? GLMQ_TOK_SP_BPE
                         : GLMQ_TOK_SP_UNIGRAM);
    ck_assert_int_eq(ti.byte_fallback, cJSON_IsTrue(cJSON_GetObjectItem(info, "byte_fallback")));
    ck_assert_int_eq(ti.add_dummy_prefix,
                     cJSON_IsTrue(cJSON_GetObjectItem(info, "add_dummy_prefix")));
    ck_assert_int_eq(ti.remove_extra_whitespaces,
                     cJSON_IsTrue(cJSON_GetObjectItem(info, "remove_extra_whitespaces")));
    ck_assert_int_eq(ti.escape_whitespaces,
                     cJSON_IsTrue(cJSON_GetObjectItem(info, "escape_whitespaces")));
    ck_assert_int_eq(ti.treat_whitespace_as_suffix,
                     cJSON_IsTrue(cJSON_GetObjectItem(info, "treat_whitespace_as_suffix")));
    ck_assert_uint_eq(ti.charsmap_size,
                      (size_t)cJSON_GetObjectItem(info, "charsmap_bytes")->valuedouble);
    ck_assert_str_eq(ti.normalizer_name, cJSON_GetObjectItem(info, "normalizer")->valuestring);
    ck_assert_int_eq(ti.unk_id, cJSON_GetObjectItem(info, "unk_id")->valueint);

    const cJSON *c;
    int count = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cases"))
    {
        check_case(t, name, c, 0);
        count++;
    }
    ck_assert_int_ge(count, 50);
    glmq_tokenizer_free(t);
}
END_TEST

/* The whole held-out eval text: ids equal the library's, and tokens/s is reported. */
static void eval_text(glmq_tokenizer *t, const char *npy, const char *label, int roundtrip)
{
    char *p = tok_path("eval.txt");
    size_t tn;
    uint8_t *text = tu_read_file(p, &tn);
    ck_assert_ptr_nonnull(text);
    char *q = tok_path(npy);
    char dt[8];
    int nd;
    int64_t shape[4];
    size_t nb;
    int32_t *want = tu_npy_load(q, dt, &nd, shape, &nb);
    ck_assert_msg(want != NULL, "cannot read %s", q);
    ck_assert_str_eq(dt, "<i4");
    glmq_ids ids = {0};
    glmq_err e = {0};
    int reps = 0;
    double t0 = now_s(), t1;
    do { /* repeat for at least 0.2 s for a stable rate */
        ids.n = 0;
        ck_assert_int_eq(glmq_tokenizer_encode(t, (const char *)text, tn, &ids, &e), GLMQ_OK);
        reps++;
        t1 = now_s();
    } while (t1 - t0 < 0.2);
    check_ids(label, ids.ids, ids.n, want, (size_t)shape[0]);
    fprintf(stderr, "# perf %-12s %zu bytes -> %zu tokens: %.0f tokens/s, %.1f MB/s (%d runs)\n",
            label, tn, ids.n, (double)ids.n * reps / (t1 - t0), (double)tn * reps / (t1 - t0) / 1e6,
            reps);
    if (roundtrip) {
        char *out;
        size_t on;
        ck_assert_int_eq(glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, &e), GLMQ_OK);
        ck_assert_msg(on == tn && memcmp(out, text, tn) == 0, "%s: decode(encode(eval)) differs",
                      label);
        free(out);
    }
    glmq_ids_free(&ids);
    free(want);
    free(text);
    free(p);
    free(q);
}

START_TEST(test_sp_eval)
{
    static const char *const names[] = {"sp_bpe", "sp_unigram", "sp_tiny"};
    char file[64], npy[64];
    snprintf(file, sizeof file, "%s.model", names[_i]);
    snprintf(npy, sizeof npy, "eval_%s.npy", names[_i]);
    glmq_tokenizer *t = load_sp_file(file, NULL);
    /* identity normalizer without whitespace folding round-trips exactly */
    eval_text(t, npy, names[_i], _i == 0);
    glmq_tokenizer_free(t);
}
END_TEST

/* GLM flavours over the SentencePiece models (v1 preprocessing + offset + suffix; v2/v3). */
START_TEST(test_flavours)
{
    const cJSON *c;
    int n1 = 0, n2 = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(goldens(), "flavours"))
    {
        const char *fam = cJSON_GetObjectItem(c, "family")->valuestring;
        glmq_tok_glm cfg;
        glmq_tok_family f = strcmp(fam, "chatglm1") == 0   ? GLMQ_TOK_CHATGLM1
                            : strcmp(fam, "chatglm2") == 0 ? GLMQ_TOK_CHATGLM2
                                                           : GLMQ_TOK_CHATGLM3;
        glmq_tok_glm_init(&cfg, f);
        cfg.image_tokens = cJSON_GetObjectItem(c, "image_tokens")->valueint;
        char file[64];
        snprintf(file, sizeof file, "%s.model", cJSON_GetObjectItem(c, "model")->valuestring);
        glmq_tokenizer *t = load_sp_file(file, &cfg);
        char label[64];
        snprintf(label, sizeof label, "%s+%d", fam, (int)cfg.image_tokens);
        check_case(t, label, c, 1);
        glmq_tok_info ti;
        glmq_tokenizer_info(t, &ti);
        if (f == GLMQ_TOK_CHATGLM1) {
            n1++;
            ck_assert_int_eq(ti.n_vocab, cfg.image_tokens + ti.n_base);
            ck_assert_int_eq(ti.n_special, 0);
        } else {
            n2++;
            ck_assert_int_eq(ti.n_special, f == GLMQ_TOK_CHATGLM2 ? 5 : 9);
            int32_t id;
            ck_assert_int_eq(glmq_tokenizer_special(t, "sop", &id, NULL), GLMQ_OK);
            ck_assert_int_eq(id, ti.n_base + 3);
            glmq_status st = glmq_tokenizer_special(t, "<|user|>", &id, NULL);
            ck_assert_int_eq(st, f == GLMQ_TOK_CHATGLM3 ? GLMQ_OK : GLMQ_E_INVALID);
            if (st == GLMQ_OK) ck_assert_int_eq(id, ti.n_base + 6);
        }
        glmq_tokenizer_free(t);
    }
    ck_assert_int_gt(n1, 50);
    ck_assert_int_gt(n2, 10);
}
END_TEST

/* v1 details the JSON does not cover: config ids override piece lookup; image ids decode. */
START_TEST(test_v1_config)
{
    glmq_tok_glm cfg;
    glmq_tok_glm_init(&cfg, GLMQ_TOK_CHATGLM1);
    cfg.image_tokens = 20000;
    glmq_tokenizer *t = load_sp_file("sp_unigram.model", &cfg);
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    int32_t gm, sop, eop, smask;
    ck_assert_int_eq(glmq_tokenizer_special(t, "[gMASK]", &gm, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_special(t, "<sop>", &sop, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_special(t, "<eop>", &eop, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_special(t, "[sMASK]", &smask, NULL), GLMQ_OK);
    size_t l;
    const char *s = glmq_tokenizer_piece(t, gm, &l);
    ck_assert(s && l == 7 && memcmp(s, "[gMASK]", 7) == 0);
    ck_assert_ptr_null(glmq_tokenizer_piece(t, 19999, &l)); /* image token */
    /* image tokens and CONTROL pieces vanish from decoded text */
    int32_t ids[] = {5, 19999, gm, sop, eop};
    char *out;
    size_t on;
    ck_assert_int_eq(glmq_tokenizer_decode(t, ids, 5, &out, &on, NULL), GLMQ_OK);
    ck_assert_uint_eq(on, 0);
    free(out);
    glmq_tokenizer_free(t);

    /* explicit config ids win */
    glmq_tok_glm_init(&cfg, GLMQ_TOK_CHATGLM1);
    cfg.gmask_id = 100;
    cfg.bos_id = 101;
    t = load_sp_file("sp_unigram.model", &cfg);
    size_t ns;
    const int32_t *suf = glmq_tokenizer_suffix(t, &ns);
    ck_assert_uint_eq(ns, 2);
    ck_assert_int_eq(suf[0], 100);
    ck_assert_int_eq(suf[1], 101);
    glmq_tokenizer_free(t);

    /* bad config: id past the vocabulary; v1 flavour on a model without [gMASK] */
    glmq_err e = {0};
    char *p = tok_path("sp_unigram.model");
    cfg.gmask_id = 1 << 30;
    ck_assert_int_eq(glmq_tokenizer_open(p, &cfg, &t, &e), GLMQ_E_INVALID);
    ck_assert_ptr_null(t);
    ck_assert(strstr(e.msg, "[gMASK]") != NULL);
    free(p);
    p = tok_path("sp_bpe.model");
    glmq_tok_glm_init(&cfg, GLMQ_TOK_CHATGLM1);
    ck_assert_int_eq(glmq_tokenizer_open(p, &cfg, &t, &e), GLMQ_E_INVALID);
    glmq_tok_glm_init(&cfg, GLMQ_TOK_GLM4);
    ck_assert_int_eq(glmq_tokenizer_open(p, &cfg, &t, &e), GLMQ_E_INVALID);
    ck_assert(strstr(e.msg, "tiktoken") != NULL);
    free(p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* GLM-4 (real rank file)                                                                      */

START_TEST(test_glm4_reference)
{
    glmq_tokenizer *t = load_glm4(GLMQ_TOK_PLAIN);
    SKIP_NO_GLM4(t);
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    ck_assert_int_eq(ti.model, GLMQ_TOK_TIKTOKEN);
    ck_assert_int_eq(ti.n_base, 151329);
    char *p = tok_path("glm4_ref.json");
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    cJSON *ref = cJSON_ParseWithLength((const char *)b, n);
    ck_assert_ptr_nonnull(ref);
    const cJSON *c;
    int count = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases"))
    {
        check_case(t, "glm4_ref", c, 0);
        count++;
    }
    ck_assert_int_eq(count, 6);
    cJSON_Delete(ref);
    free(b);
    free(p);
    glmq_tokenizer_free(t);
}
END_TEST

START_TEST(test_glm4_goldens)
{
    glmq_tokenizer *t = load_glm4(GLMQ_TOK_GLM4);
    SKIP_NO_GLM4(t);
    const cJSON *g4 = cJSON_GetObjectItem(goldens(), "glm4");
    ck_assert_ptr_nonnull(g4);
    ck_assert_int_eq(cJSON_GetObjectItem(g4, "n_ranks")->valueint, 151329);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g4, "cases"))
    {
        check_case(t, "glm4", c, 1);
        /* every valid UTF-8 text round-trips */
        size_t tn;
        uint8_t *text = unhex(cJSON_GetObjectItem(c, "text_hex")->valuestring, &tn);
        glmq_ids ids = {0};
        ck_assert_int_eq(glmq_tokenizer_encode(t, (const char *)text, tn, &ids, NULL), GLMQ_OK);
        char *out;
        size_t on;
        ck_assert_int_eq(glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, NULL), GLMQ_OK);
        ck_assert_msg(on == tn && memcmp(out, text, tn) == 0, "glm4 round trip %s",
                      cJSON_GetObjectItem(c, "name")->valuestring);
        free(out);
        glmq_ids_free(&ids);
        free(text);
    }
    eval_text(t, "eval_glm4.npy", "glm4", 1);
    glmq_tokenizer_free(t);
}
END_TEST

/* GLM-SPEC C.3 prompt / chat ids. */
START_TEST(test_glm4_prompt)
{
    glmq_tokenizer *t = load_glm4(GLMQ_TOK_GLM4);
    SKIP_NO_GLM4(t);
    glmq_ids ids = {0};
    ck_assert_int_eq(glmq_tokenizer_encode_prompt(t, "你好", strlen("你好"), &ids, NULL), GLMQ_OK);
    const int32_t want1[] = {151331, 151333, 109377};
    check_ids("prompt", ids.ids, ids.n, want1, 3);
    /* chat [{user: "你好"}]: prefix, <|user|>, ids("\n"), ids("你好"), <|assistant|> */
    ids.n = 0;
    int32_t user, assistant, eot;
    ck_assert_int_eq(glmq_tokenizer_special(t, "<|user|>", &user, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_special(t, "<|assistant|>", &assistant, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tokenizer_special(t, "<|endoftext|>", &eot, NULL), GLMQ_OK);
    ck_assert_int_eq(eot, 151329);
    size_t np;
    const int32_t *pre = glmq_tokenizer_prefix(t, &np);
    for (size_t i = 0; i < np; i++) glmq_ids_push(&ids, pre[i], NULL);
    glmq_ids_push(&ids, user, NULL);
    glmq_tokenizer_encode(t, "\n", 1, &ids, NULL);
    glmq_tokenizer_encode(t, "你好", strlen("你好"), &ids, NULL);
    glmq_ids_push(&ids, assistant, NULL);
    const int32_t want2[] = {151331, 151333, 151336, 198, 109377, 151337};
    check_ids("chat", ids.ids, ids.n, want2, 6);
    /* specials are skipped by decode; their text is available through piece() */
    char *out;
    size_t on, l;
    ck_assert_int_eq(glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, NULL), GLMQ_OK);
    ck_assert_str_eq(out, "\n你好");
    free(out);
    const char *s = glmq_tokenizer_piece(t, 151342, &l);
    ck_assert(s && l == strlen("<|end_of_video|>") && memcmp(s, "<|end_of_video|>", l) == 0);
    ck_assert_ptr_null(glmq_tokenizer_piece(t, 151343, &l));
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    ck_assert_int_eq(ti.n_vocab, 151343);
    /* special-token text is ordinary text for encode_ordinary */
    ids.n = 0;
    ck_assert_int_eq(glmq_tokenizer_encode(t, "<|user|>", 8, &ids, NULL), GLMQ_OK);
    ck_assert_int_gt(ids.n, 1);
    for (size_t i = 0; i < ids.n; i++) ck_assert_int_lt(ids.ids[i], 151329);
    glmq_ids_free(&ids);
    glmq_tokenizer_free(t);
}
END_TEST

/* Merge algorithms agree: tiktoken's O(n^2) scan and the heap, on long random chunks. */
START_TEST(test_glm4_bpe_differential)
{
    glmq_tokenizer *t = load_glm4(GLMQ_TOK_PLAIN);
    SKIP_NO_GLM4(t);
    char *p = tok_path("eval.txt");
    size_t tn;
    uint8_t *text = tu_read_file(p, &tn);
    glmq_tt_model *m = NULL;
    size_t fn;
    uint8_t *file = tu_read_file(glm4_path(), &fn);
    ck_assert_int_eq(glmq_tt_load(file, fn, &m, NULL), GLMQ_OK);
    uint64_t x = 88172645463325252ull;
    glmq_ids a = {0}, b = {0};
    for (int it = 0; it < 300; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = 1 + x % 700, at = (x >> 20) % (tn - len);
        a.n = b.n = 0;
        ck_assert_int_eq(glmq_tt_bpe(m, text + at, len, 0, &a, NULL), GLMQ_OK);
        ck_assert_int_eq(glmq_tt_bpe(m, text + at, len, 1, &b, NULL), GLMQ_OK);
        check_ids("scan vs heap", a.ids, a.n, b.ids, b.n);
    }
    /* a long repetitive chunk (encode picks the heap) */
    char big[4000];
    memset(big, 'a', sizeof big);
    a.n = b.n = 0;
    ck_assert_int_eq(glmq_tt_bpe(m, (uint8_t *)big, sizeof big, 0, &a, NULL), GLMQ_OK);
    ck_assert_int_eq(glmq_tt_bpe(m, (uint8_t *)big, sizeof big, 1, &b, NULL), GLMQ_OK);
    check_ids("aaaa", a.ids, a.n, b.ids, b.n);
    glmq_ids_free(&a);
    glmq_ids_free(&b);
    glmq_tt_free(m);
    free(file);
    free(text);
    free(p);
    glmq_tokenizer_free(t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* pre-tokenizer and Unicode classes (no model needed)                                         */

START_TEST(test_pretokenizer)
{
    static const struct {
        const char *text;
        const char *chunks[12];
    } cases[] = {
        {"Hello world", {"Hello", " world"}},
        {"I'VE 'm 'll'd", {"I", "'VE", " '", "m", " '", "ll", "'d"}},
        {"\xC5\xBF'\xC5\xBF", {"\xC5\xBF", "'\xC5\xBF"}}, /* U+017F folds to s */
        {"12345 6", {"123", "45", " ", "6"}},
        {"  x", {" ", " x"}},
        {"a \n\n b", {"a", " \n\n", " b"}},
        {"x   ", {"x", "   "}},
        {"x \t\ty", {"x", " \t", "\ty"}},
        {"?!\r\n\r\nok", {"?!\r\n\r\n", "ok"}},
        {" ...x", {" ...", "x"}},
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x81", {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xef\xbc\x81"}},
        {"a\xff"
         "b\xfe\xfe",
         {"a",
          "\xff"
          "b",
          "\xfe\xfe"}},
        {"\xe3\x80\x80x", {"\xe3\x80\x80x"}}, /* U+3000 is White_Space, then rule 2 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const uint8_t *s = (const uint8_t *)cases[k].text;
        size_t n = strlen(cases[k].text), pos = 0;
        for (int j = 0; cases[k].chunks[j]; j++) {
            ck_assert_msg(pos < n, "case %zu: ran out of text", k);
            size_t cl = glmq_tt_chunk(s + pos, n - pos);
            size_t want = strlen(cases[k].chunks[j]);
            ck_assert_msg(cl == want && memcmp(s + pos, cases[k].chunks[j], want) == 0,
                          "case %zu chunk %d: got %zu bytes '%.*s' want '%s'", k, j, cl, (int)cl,
                          (const char *)s + pos, cases[k].chunks[j]);
            pos += cl;
        }
        ck_assert_msg(pos == n, "case %zu: %zu bytes left", k, n - pos);
    }
    ck_assert_int_eq(glmq_tt_class('A'), 1);
    ck_assert_int_eq(glmq_tt_class(0x4E2D), 1);  /* 中 Lo */
    ck_assert_int_eq(glmq_tt_class(0x0663), 2);  /* Arabic-indic 3, Nd */
    ck_assert_int_eq(glmq_tt_class(0x2167), 2);  /* Roman numeral, Nl */
    ck_assert_int_eq(glmq_tt_class(0x00BD), 2);  /* ½ No */
    ck_assert_int_eq(glmq_tt_class(0x0085), 3);  /* NEL */
    ck_assert_int_eq(glmq_tt_class(0x001C), 0);  /* isspace() but not White_Space */
    ck_assert_int_eq(glmq_tt_class(0x200B), 0);  /* ZWSP: not White_Space */
    ck_assert_int_eq(glmq_tt_class(0x1F600), 0); /* emoji */
    ck_assert_int_eq(glmq_tt_class(0x10FFFF), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* synthetic tiktoken files: loader errors, merges                                             */

static char *b64(const uint8_t *s, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        out[o++] = a[w >> 18];
        out[o++] = a[(w >> 12) & 63];
        out[o++] = i + 1 < n ? a[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[w & 63] : '=';
    }
    out[o] = 0;
    return out;
}

/* 256 single bytes (rank = byte value) then the given extra tokens. */
static char *make_ranks(const char *const *extra, int n_extra, size_t *len)
{
    size_t cap = 64 * (256 + (size_t)n_extra) + 1, o = 0;
    char *f = malloc(cap), enc[256];
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        o += (size_t)snprintf(f + o, cap - o, "%s %d\n", b64(&c, 1, enc), b);
    }
    for (int i = 0; i < n_extra; i++)
        o += (size_t)snprintf(f + o, cap - o, "%s %d\n",
                              b64((const uint8_t *)extra[i], strlen(extra[i]), enc), 256 + i);
    *len = o;
    return f;
}

START_TEST(test_tiktoken_synthetic)
{
    const char *extra[] = {"ab", "bc", "abc", "cd", "abcd", " a"};
    size_t n;
    char *f = make_ranks(extra, 6, &n);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(f, n, NULL, &t, &e), GLMQ_OK);
    glmq_ids ids = {0};
    /* "abcd" is a token itself; "xabcd" -> x, then "abcd" chunk; " ab" merges " a" (261) first?
     * pairs of " abcd": " a"=261, "ab"=256, "bc"=257, "cd"=259 -> lowest ab(256) ... */
    ck_assert_int_eq(glmq_tokenizer_encode(t, "abcd", 4, &ids, &e), GLMQ_OK);
    const int32_t w1[] = {260};
    check_ids("abcd", ids.ids, ids.n, w1, 1);
    ids.n = 0;
    ck_assert_int_eq(glmq_tokenizer_encode(t, "x abcb", 6, &ids, &e), GLMQ_OK);
    /* chunks "x", " abcb": ab(256) -> [ab][c][b]? pairs: " "+"ab"? no; "ab"+"c"=abc(258);
     * "c"+"b" none -> [ ][abc][b] */
    const int32_t w2[] = {'x', ' ', 258, 'b'};
    check_ids("x abcb", ids.ids, ids.n, w2, 4);
    char *out;
    size_t on;
    ck_assert_int_eq(glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, &e), GLMQ_OK);
    ck_assert_str_eq(out, "x abcb");
    free(out);
    int32_t bad = 262;
    ck_assert_int_eq(glmq_tokenizer_decode(t, &bad, 1, &out, &on, &e), GLMQ_E_VALUE);
    ck_assert(strstr(e.msg, "262") != NULL);
    glmq_ids_free(&ids);
    glmq_tokenizer_free(t);

    /* loader errors */
    struct {
        const char *text;
        const char *msg;
    } bad_files[] = {
        {"", "no tokens"},
        {"YQ== 0\nYg== 0\n", "repeated"},
        {"YQ== 1\n", "rank 1"},
        {"YQ==\n", "fields"},
        {"YQ== 0 7\n", "fields"},
        {"Y!== 0\n", "base64"},
        {"YQ= 0\n", "base64"},
        {"YQ== x\n", "bad rank"},
        {"YQ== 99999999999\n", "bad rank"},
        {"YQ== 0\nYg== 1\n", "single byte 0x00"},
    };
    for (size_t k = 0; k < sizeof bad_files / sizeof bad_files[0]; k++) {
        e.msg[0] = 0;
        glmq_status st = glmq_tokenizer_load_tiktoken(bad_files[k].text, strlen(bad_files[k].text),
                                                      NULL, &t, &e);
        ck_assert_msg(st == GLMQ_E_FORMAT, "bad tiktoken %zu: status %d", k, (int)st);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(e.msg, bad_files[k].msg) != NULL, "bad tiktoken %zu: '%s'", k, e.msg);
    }
    /* duplicate bytes under two ranks */
    const char *dup[] = {"ab", "ab"};
    char *f2 = make_ranks(dup, 2, &n);
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(f2, n, NULL, &t, &e), GLMQ_E_FORMAT);
    ck_assert(strstr(e.msg, "same bytes") != NULL);
    free(f2);
    /* CRLF lines and blank lines are fine */
    free(f);
    f = make_ranks(extra, 0, &n);
    char *f3 = malloc(2 * n + 4);
    size_t o = 0;
    f3[o++] = '\n';
    for (size_t i = 0; i < n; i++) {
        if (f[i] == '\n') f3[o++] = '\r';
        f3[o++] = f[i];
    }
    ck_assert_int_eq(glmq_tokenizer_load_tiktoken(f3, o, NULL, &t, &e), GLMQ_OK);
    glmq_tokenizer_free(t);
    free(f3);
    free(f);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* hostile SentencePiece models                                                                */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pbw;

static void pb_bytes_(pbw *w, const void *d, size_t n)
{
    if (n == 0) return;
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}
static void pb_var(pbw *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    pb_bytes_(w, b, n);
}
static void pb_key(pbw *w, unsigned f, unsigned wire) { pb_var(w, (uint64_t)f << 3 | wire); }
static void pb_str(pbw *w, unsigned f, const void *s, size_t n)
{
    pb_key(w, f, 2);
    pb_var(w, n);
    pb_bytes_(w, s, n);
}
static void pb_int(pbw *w, unsigned f, uint64_t v)
{
    pb_key(w, f, 0);
    pb_var(w, v);
}
static void pb_msg(pbw *w, unsigned f, pbw *sub)
{
    pb_str(w, f, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}
static void add_piece(pbw *w, const char *s, float score, int type)
{
    pbw p = {0};
    pb_str(&p, 1, s, strlen(s));
    uint32_t u;
    memcpy(&u, &score, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(&p, 2, 5);
    pb_bytes_(&p, b, 4);
    if (type != 1) pb_int(&p, 3, (uint64_t)type);
    pb_msg(w, 1, &p);
}

enum {
    H_OK,
    H_NO_UNK,
    H_TWO_UNK,
    H_DUP,
    H_BF_NO_BYTES,
    H_BYTE_NO_BF,
    H_BAD_BYTE,
    H_EMPTY_PIECE,
    H_NUL_PIECE,
    H_BAD_TYPE,
    H_WORD,
    H_BAD_MODEL,
    H_CHARSMAP_SHORT,
    H_CHARSMAP_BIG,
    H_CHARSMAP_ZERO,
    H_GROUP,
    H_WIRE,
    H_LONG_PIECE,
    H_UNIGRAM_EMPTY,
    H_COUNT
};

/* A small BPE (or unigram) model with one defect. */
static pbw make_model(int defect)
{
    pbw w = {0}, ts = {0}, ns = {0};
    int unigram = defect == H_UNIGRAM_EMPTY;
    if (defect != H_NO_UNK) add_piece(&w, "<unk>", 0, 2);
    if (defect == H_TWO_UNK) add_piece(&w, "<unk2>", 0, 2);
    add_piece(&w, "<s>", 0, 3);
    add_piece(&w, "</s>", 0, 3);
    if (!unigram) {
        const char *normal[] = {"\xE2\x96\x81",
                                "a",
                                "b",
                                "ab",
                                "\xE2\x96\x81"
                                "ab",
                                "c"};
        for (int i = 0; i < 6; i++) add_piece(&w, normal[i], -(float)i, 1);
    }
    if (defect == H_DUP) add_piece(&w, "ab", -9, 1);
    if (defect == H_BYTE_NO_BF || defect == H_BAD_BYTE)
        add_piece(&w, defect == H_BAD_BYTE ? "<0xzz>" : "<0x41>", 0, 6);
    if (defect == H_EMPTY_PIECE) add_piece(&w, "", 0, 1);
    if (defect == H_NUL_PIECE) {
        pbw p = {0};
        pb_str(&p, 1, "x\0y", 3);
        pb_msg(&w, 1, &p);
    }
    if (defect == H_BAD_TYPE) add_piece(&w, "zz", 0, 7);
    if (defect == H_LONG_PIECE) {
        char *s = malloc(9001);
        memset(s, 'q', 9000);
        s[9000] = 0;
        add_piece(&w, s, 0, 1);
        free(s);
    }
    if (defect == H_BAD_BYTE) pb_int(&ts, 35, 1);
    pb_int(&ts, 3, defect == H_WORD ? 3 : defect == H_BAD_MODEL ? 9 : unigram ? 1 : 2);
    if (defect == H_BF_NO_BYTES) pb_int(&ts, 35, 1);
    pb_int(&ts, 40, 0);
    pb_int(&ts, 43, (uint64_t)-1); /* pad_id = -1: a 10-byte varint */
    pb_msg(&w, 2, &ts);
    pb_str(&ns, 1, "identity", 8);
    pb_int(&ns, 4, 0);
    if (defect == H_CHARSMAP_SHORT) pb_str(&ns, 2, "\x01\x00\x00\x00", 4);
    if (defect == H_CHARSMAP_BIG) pb_str(&ns, 2, "\xff\x00\x00\x00xyz", 7);
    if (defect == H_CHARSMAP_ZERO) pb_str(&ns, 2, "\x02\x00\x00\x00xyz", 7);
    pb_msg(&w, 3, &ns);
    if (defect == H_GROUP) pb_key(&w, 9, 3);
    if (defect == H_WIRE) pb_int(&w, 1, 5); /* pieces as a varint */
    pb_str(&w, 99, "unknown field, skipped", 22);
    return w;
}

START_TEST(test_sp_hostile_defects)
{
    static const struct {
        glmq_status st;
        const char *msg;
    } want[H_COUNT] = {
        [H_OK] = {GLMQ_OK, ""},
        [H_NO_UNK] = {GLMQ_E_FORMAT, "no unknown"},
        [H_TWO_UNK] = {GLMQ_E_FORMAT, "second unknown"},
        [H_DUP] = {GLMQ_E_FORMAT, "already defined"},
        [H_BF_NO_BYTES] = {GLMQ_E_FORMAT, "<0x00> is missing"},
        [H_BYTE_NO_BF] = {GLMQ_E_FORMAT, "byte_fallback is false"},
        [H_BAD_BYTE] = {GLMQ_E_FORMAT, "is invalid"},
        [H_EMPTY_PIECE] = {GLMQ_E_FORMAT, "is empty"},
        [H_NUL_PIECE] = {GLMQ_E_FORMAT, "NUL"},
        [H_BAD_TYPE] = {GLMQ_E_FORMAT, "unknown type 7"},
        [H_WORD] = {GLMQ_E_UNSUPPORTED, "WORD"},
        [H_BAD_MODEL] = {GLMQ_E_FORMAT, "model_type 9"},
        [H_CHARSMAP_SHORT] = {GLMQ_E_FORMAT, "broken"},
        [H_CHARSMAP_BIG] = {GLMQ_E_FORMAT, "exceeds"},
        [H_CHARSMAP_ZERO] = {GLMQ_E_FORMAT, "empty"},
        [H_GROUP] = {GLMQ_E_FORMAT, "group"},
        [H_WIRE] = {GLMQ_E_FORMAT, "wire type"},
        [H_LONG_PIECE] = {GLMQ_E_FORMAT, "too long"},
        [H_UNIGRAM_EMPTY] = {GLMQ_E_FORMAT, "no pieces"},
    };
    pbw w = make_model(_i);
    glmq_tokenizer *t = (glmq_tokenizer *)1;
    glmq_err e = {0};
    glmq_status st = glmq_tokenizer_load_sp(w.p, w.n, NULL, &t, &e);
    ck_assert_msg(st == want[_i].st, "defect %d: status %d (%s)", _i, (int)st, e.msg);
    ck_assert_msg(strstr(e.msg, want[_i].msg) != NULL, "defect %d: message '%s'", _i, e.msg);
    if (st == GLMQ_OK) {
        glmq_ids ids = {0};
        ck_assert_int_eq(glmq_tokenizer_encode(t, "ab abc x", 8, &ids, &e), GLMQ_OK);
        /* normalized "▁ab▁abc▁x": ▁ab(7) ▁ab(7) c(8) ▁(3) x->unk(0) */
        const int32_t w1[] = {7, 7, 8, 3, 0};
        check_ids("tiny bpe", ids.ids, ids.n, w1, 5);
        glmq_ids_free(&ids);
        glmq_tok_info ti;
        glmq_tokenizer_info(t, &ti);
        ck_assert_int_eq(ti.bos_id, 1);
        ck_assert_int_eq(ti.eos_id, 2);
        ck_assert_int_eq(ti.pad_id, -1);
        glmq_tokenizer_free(t);
    } else {
        ck_assert_ptr_null(t);
    }
    free(w.p);
}
END_TEST

/* Truncations, bit flips and length corruption of real fixtures: an error or a working model,
 * never a crash (ASan/UBSan builds make "never" strict). */
START_TEST(test_sp_hostile_mutations)
{
    static const char *const files[] = {"sp_bpe.model", "sp_tiny_unused.model"};
    for (int fi = 0; fi < 2; fi++) {
        char *p = tok_path(files[fi]);
        size_t n;
        uint8_t *b = tu_read_file(p, &n);
        ck_assert_ptr_nonnull(b);
        uint8_t *m = malloc(n);
        glmq_err e;
        glmq_tokenizer *t;
        /* every truncation in the first 600 bytes, then a stride */
        for (size_t cut = 0; cut < n; cut += cut < 600 ? 1 : 97) {
            glmq_status st = glmq_tokenizer_load_sp(b, cut, NULL, &t, &e);
            ck_assert_msg(st != GLMQ_OK || t != NULL, "cut %zu", cut);
            if (st == GLMQ_OK) {
                glmq_ids ids = {0};
                glmq_tokenizer_encode(t, "Hello, world \xff", 14, &ids, NULL);
                glmq_ids_free(&ids);
                glmq_tokenizer_free(t);
            }
        }
        uint64_t x = 0x2545F4914F6CDD1Dull + (uint64_t)fi;
        int ok = 0;
        for (int it = 0; it < 1500; it++) {
            memcpy(m, b, n);
            int flips = 1 + (int)(x % 4);
            for (int k = 0; k < flips; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                size_t at = (size_t)(x % (it % 3 == 0 ? (n < 2048 ? n : 2048) : n));
                m[at] ^= (uint8_t)(1u << ((x >> 32) % 8));
                if (it % 5 == 0) m[at] = (uint8_t)(x >> 40); /* random byte (lengths, keys) */
            }
            glmq_status st = glmq_tokenizer_load_sp(m, n, NULL, &t, &e);
            if (st == GLMQ_OK) {
                ok++;
                glmq_ids ids = {0};
                static const char txt[] = "The LORD \xe4\xbd\xa0\xe5\xa5\xbd  x\xff\xfe \tend ";
                glmq_status s2 = glmq_tokenizer_encode(t, txt, sizeof txt - 1, &ids, &e);
                if (s2 == GLMQ_OK) {
                    char *out;
                    size_t on;
                    if (glmq_tokenizer_decode(t, ids.ids, ids.n, &out, &on, NULL) == GLMQ_OK)
                        free(out);
                }
                glmq_ids_free(&ids);
                glmq_tokenizer_free(t);
            } else {
                ck_assert_ptr_null(t);
                ck_assert(e.msg[0] != 0);
            }
        }
        fprintf(stderr, "# %s: %d of 1500 mutants still load\n", files[fi], ok);
        free(m);
        free(b);
        free(p);
    }
}
END_TEST

/* Length fields past the end, truncated varints, over-long varints, huge lengths. */
START_TEST(test_sp_hostile_wire)
{
    static const struct {
        const char *bytes;
        size_t n;
        const char *msg;
    } cases[] = {
        {"\x0a", 1, "truncated varint"},
        {"\x0a\x05\x0a\x01", 4, "past the end"},
        {"\x0a\xff\xff\xff\xff\x0f", 6, "past the end"},
        {"\x0a\x80", 2, "truncated varint"},
        {"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12, "longer than 10"},
        {"\x0d\x00\x00", 3, "truncated fixed32"},
        {"\x09\x00\x00\x00", 4, "truncated fixed64"},
        {"\x00", 1, "field number 0"},
        {"\x0f", 1, "bad wire type"},
        {"\x0a\x03\x0a\x05x", 5, "past the end"},    /* nested length overrun */
        {"\x12\x02\x18\x80", 4, "truncated varint"}, /* inside trainer_spec */
        {"\x1a\x02\x12\x09", 4, "past the end"},     /* charsmap length */
        {"", 0, "no unknown"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        glmq_tokenizer *t = NULL;
        glmq_err e = {0};
        glmq_status st = glmq_tokenizer_load_sp(cases[k].bytes, cases[k].n, NULL, &t, &e);
        ck_assert_msg(st == GLMQ_E_FORMAT, "wire case %zu: status %d (%s)", k, (int)st, e.msg);
        ck_assert_msg(strstr(e.msg, cases[k].msg) != NULL, "wire case %zu: '%s'", k, e.msg);
        ck_assert_ptr_null(t);
    }
    /* 10000 unknown fields, a 3000-deep nesting of messages inside self_test_data (skipped
     * unparsed, so no recursion), and a huge length */
    pbw w = make_model(H_OK);
    for (int i = 0; i < 10000; i++) pb_int(&w, 1000 + (unsigned)i, 1);
    pbw deep = {0};
    for (int d = 0; d < 3000; d++) {
        pbw outer = {0};
        pb_msg(&outer, 1, &deep);
        deep = outer;
    }
    pb_msg(&w, 4, &deep);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_int_eq(glmq_tokenizer_load_sp(w.p, w.n, NULL, &t, &e), GLMQ_OK);
    glmq_tokenizer_free(t);
    pb_key(&w, 4, 2);
    pb_var(&w, UINT64_MAX);
    ck_assert_int_eq(glmq_tokenizer_load_sp(w.p, w.n, NULL, &t, &e), GLMQ_E_FORMAT);
    ck_assert(strstr(e.msg, "past the end") != NULL);
    ck_assert_ptr_null(t);
    free(w.p);
}
END_TEST

/* A charsmap whose trie value points outside the string table: encode reports it. */
START_TEST(test_sp_charsmap_bad_value)
{
    /* Darts array: unit0 = root with offset 1 (1 << 10); node for 'a' at 1 ^ 'a' = 0x60:
     * label 'a', has_leaf, offset 0 -> value unit at 0x60 ^ 0 = 0x60?? Build it directly:
     * root offset o=0x100 -> child pos 0x100 ^ 'a' = 0x161, unit = 'a' | leaf(1<<8) | offset 0
     * ... the value unit is then at 0x161 ^ 0 = 0x161 itself: label check of a later byte fails,
     * value = unit & 0x7fffffff = large -> out of range. */
    size_t nunits = 0x200;
    size_t blob_n = 4 + nunits * 4 + 2;
    uint8_t *blob = calloc(1, blob_n);
    glmq_wr_le32(blob, (uint32_t)(nunits * 4));
    glmq_wr_le32(blob + 4, (uint32_t)(0x100 >> 8) << 10 | (1u << 9)); /* offset 0x100 (<<8 form) */
    glmq_wr_le32(blob + 4 + 0x161 * 4, (uint32_t)'a' | (1u << 8));
    pbw w = {0}, ts = {0}, ns = {0};
    add_piece(&w, "<unk>", 0, 2);
    add_piece(&w, "a", -1, 1);
    pb_int(&ts, 3, 2);
    pb_msg(&w, 2, &ts);
    pb_str(&ns, 2, blob, blob_n);
    pb_msg(&w, 3, &ns);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_int_eq(glmq_tokenizer_load_sp(w.p, w.n, NULL, &t, &e), GLMQ_OK);
    glmq_ids ids = {0};
    ck_assert_int_eq(glmq_tokenizer_encode(t, "xa", 2, &ids, &e), GLMQ_E_FORMAT);
    ck_assert(strstr(e.msg, "charsmap") != NULL);
    ck_assert_uint_eq(ids.n, 0);
    ck_assert_int_eq(glmq_tokenizer_encode(t, "xx", 2, &ids, &e), GLMQ_OK);
    glmq_ids_free(&ids);
    glmq_tokenizer_free(t);
    free(w.p);
    free(blob);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* API contracts                                                                               */

START_TEST(test_api)
{
    glmq_tokenizer_free(NULL);
    glmq_ids_free(NULL);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_int_eq(glmq_tokenizer_open("/nonexistent/tokenizer.model", NULL, &t, &e), GLMQ_E_IO);
    ck_assert(strstr(e.msg, "/nonexistent/tokenizer.model") != NULL);
    ck_assert_int_eq(glmq_tokenizer_load_sp(NULL, 5, NULL, &t, &e), GLMQ_E_INVALID);
    glmq_tok_glm cfg;
    glmq_tok_glm_init(&cfg, (glmq_tok_family)42);
    t = NULL;
    char *p = tok_path("sp_bpe.model");
    ck_assert_int_eq(glmq_tokenizer_open(p, &cfg, &t, &e), GLMQ_E_INVALID);
    ck_assert_ptr_null(t);
    t = load_sp_file("sp_bpe.model", NULL);
    glmq_ids ids = {0};
    ck_assert_int_eq(glmq_tokenizer_encode(t, NULL, 3, &ids, &e), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_tokenizer_encode(t, NULL, 0, &ids, &e), GLMQ_OK);
    ck_assert_uint_eq(ids.n, 0);
    /* appends; the embedded NUL is text */
    ck_assert_int_eq(glmq_tokenizer_encode(t, "a\0b", 3, &ids, &e), GLMQ_OK);
    size_t n1 = ids.n;
    ck_assert_int_eq(glmq_tokenizer_encode(t, "a\0b", 3, &ids, &e), GLMQ_OK);
    ck_assert_uint_eq(ids.n, 2 * n1);
    ck_assert_int_eq(memcmp(ids.ids, ids.ids + n1, n1 * 4), 0);
    size_t np, ns;
    glmq_tokenizer_prefix(t, &np);
    glmq_tokenizer_suffix(t, &ns);
    ck_assert_uint_eq(np + ns, 0);
    int32_t id;
    ck_assert_int_eq(glmq_tokenizer_special(t, "[gMASK]", &id, &e), GLMQ_E_INVALID);
    /* decode: bad ids; empty input gives "" */
    int32_t bad[2] = {5, 2000};
    char *out = (char *)1;
    size_t on;
    ck_assert_int_eq(glmq_tokenizer_decode(t, bad, 2, &out, &on, &e), GLMQ_E_VALUE);
    ck_assert_ptr_null(out);
    ck_assert(strstr(e.msg, "2000") != NULL && strstr(e.msg, "position 1") != NULL);
    bad[1] = -1;
    ck_assert_int_eq(glmq_tokenizer_decode(t, bad, 2, &out, &on, &e), GLMQ_E_VALUE);
    ck_assert_int_eq(glmq_tokenizer_decode(t, NULL, 0, &out, &on, &e), GLMQ_OK);
    ck_assert_uint_eq(on, 0);
    ck_assert_str_eq(out, "");
    free(out);
    /* pieces */
    size_t l;
    const char *s = glmq_tokenizer_piece(t, 0, &l);
    ck_assert(s && l == 5 && memcmp(s, "<unk>", 5) == 0);
    ck_assert_ptr_null(glmq_tokenizer_piece(t, 2000, &l));
    ck_assert_ptr_null(glmq_tokenizer_piece(t, -3, &l));
    /* byte pieces decode as UTF-8; a lone continuation byte is U+FFFD */
    int32_t bytes[3];
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    ck_assert_int_eq(ti.model, GLMQ_TOK_SP_BPE);
    for (int i = 0; i < 3; i++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", (unsigned)"\xe4\xbd\xa0"[i] & 0xFF);
        ck_assert_int_eq(glmq_tokenizer_special(t, piece, &id, &e), GLMQ_E_INVALID); /* PLAIN */
        bytes[i] = -1;
        for (int32_t k = 0; k < ti.n_base && bytes[i] < 0; k++) {
            s = glmq_tokenizer_piece(t, k, &l);
            if (s && l == 6 && memcmp(s, piece, 6) == 0) bytes[i] = k;
        }
        ck_assert_int_ge(bytes[i], 0);
    }
    ck_assert_int_eq(glmq_tokenizer_decode(t, bytes, 3, &out, &on, &e), GLMQ_OK);
    ck_assert_str_eq(out, "\xe4\xbd\xa0");
    free(out);
    ck_assert_int_eq(glmq_tokenizer_decode(t, bytes + 1, 2, &out, &on, &e), GLMQ_OK);
    ck_assert_str_eq(out, "\xef\xbf\xbd\xef\xbf\xbd");
    free(out);
    glmq_ids_free(&ids);
    glmq_tokenizer_free(t);
    free(p);
}
END_TEST

/* The same tokenizer from several threads gives identical ids (immutability contract). */
#include <pthread.h>
typedef struct {
    glmq_tokenizer *t;
    const uint8_t *text;
    size_t n;
    glmq_ids out;
} thr_arg;
static void *thr_main(void *a)
{
    thr_arg *x = a;
    for (int i = 0; i < 3; i++) {
        x->out.n = 0;
        glmq_tokenizer_encode(x->t, (const char *)x->text, x->n, &x->out, NULL);
    }
    return NULL;
}

START_TEST(test_threads)
{
    glmq_tokenizer *t = load_sp_file("sp_unigram.model", NULL);
    char *p = tok_path("eval.txt");
    size_t n;
    uint8_t *text = tu_read_file(p, &n);
    thr_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){t, text, n, {0}};
        pthread_create(&th[i], NULL, thr_main, &a[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 1; i < 4; i++)
        check_ids("threads", a[i].out.ids, a[i].out.n, a[0].out.ids, a[0].out.n);
    ck_assert_uint_gt(a[0].out.n, 10000);
    for (int i = 0; i < 4; i++) glmq_ids_free(&a[i].out);
    free(text);
    free(p);
    glmq_tokenizer_free(t);
}
END_TEST

Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("sentencepiece");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_sp_goldens, 0, N_MODELS);
    tcase_add_loop_test(tc, test_sp_eval, 0, 3);
    tcase_add_test(tc, test_flavours);
    tcase_add_test(tc, test_v1_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("glm4");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_glm4_reference);
    tcase_add_test(tc, test_glm4_goldens);
    tcase_add_test(tc, test_glm4_prompt);
    tcase_add_test(tc, test_glm4_bpe_differential);
    tcase_add_test(tc, test_pretokenizer);
    tcase_add_test(tc, test_tiktoken_synthetic);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_sp_hostile_defects, 0, H_COUNT);
    tcase_add_test(tc, test_sp_hostile_mutations);
    tcase_add_test(tc, test_sp_hostile_wire);
    tcase_add_test(tc, test_sp_charsmap_bad_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_api);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tokenizer_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (g_gold) cJSON_Delete(g_gold);
    return failed ? 1 : 0;
}
