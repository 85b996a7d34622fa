/*
 * check_tok_upstream.c - the tokenizers against the real released files (GLMQ_UPSTREAM =
 * shared/upstream beside the checkout; those tests skip with a message when it is absent) and
 * against the sentencepiece library on long texts (tests/data/tokenizer/upstream_goldens.json,
 * made by samples/gen_tok_upstream.py):
 *   - the March 2023 ChatGLM-6B ice_text.model (130000 pieces) completed at load time equals
 *     the released file piece by piece, and encodes every text to the released file's ids +
 *     20000, decoding to the same text;
 *   - long texts (232 KB, several encode chunks) give the library's ids, as is and on one line;
 *   - special-token text (GLMQ_TOKENIZE_SPECIAL) against ids derived from the upstream rules;
 *   - tokenizer-only directories (config + tokenizer, no weights) tokenize, and still do not
 *     open as models;
 *   - without shared/upstream, special-token text and a weightless directory still run on the
 *     committed glm2-tiny tokenizer against its sentencepiece goldens.
 */
#include "testutil.h"
#include "formats/tok_common.h"
#include "formats/tokenizer.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static const char *upstream(void)
{
    const char *u = getenv("GLMQ_UPSTREAM");
    return u && *u ? u : NULL;
}

#define NEED_UPSTREAM()                                                                        \
    do {                                                                                       \
        if (!upstream()) {                                                                     \
            fprintf(stderr, "# SKIP %s: GLMQ_UPSTREAM (shared/upstream) is absent\n", __func__); \
            return;                                                                            \
        }                                                                                      \
    } while (0)

static glmq_tokenizer *load_dir(const char *name)
{
    char *d = tu_path(upstream(), name);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_msg(glmq_tokenizer_load(d, &t, &e) == GLMQ_OK, "%s: %s", d, e.msg);
    free(d);
    return t;
}

static cJSON *g_gold;

static cJSON *goldens(void)
{
    if (!g_gold) {
        char *dir = tu_path(tu_testdata(), "tokenizer");
        char *p = tu_path(dir, "upstream_goldens.json");
        size_t n;
        uint8_t *b = tu_read_file(p, &n);
        ck_assert_msg(b != NULL, "cannot read %s", p);
        g_gold = cJSON_ParseWithLength((const char *)b, n);
        ck_assert(g_gold != NULL);
        free(b);
        free(p);
        free(dir);
    }
    return g_gold;
}

/* samples/gen_tok_upstream.py long_text: the three sample texts in turn, each followed by
 * " <i> ", 72 times; one_line: newlines replaced by spaces. */
static char *long_text(int one_line, size_t *len)
{
    static const char *names[3] = {"eval_en.txt", "eval_zh.txt", "tricky.txt"};
    uint8_t *part[3];
    size_t pn[3], cap = 0;
    for (int i = 0; i < 3; i++) {
        char *p = tu_path(tu_samples(), "text");
        char *f = tu_path(p, names[i]);
        part[i] = tu_read_file(f, &pn[i]);
        ck_assert_msg(part[i] != NULL, "cannot read %s", f);
        cap += 72 * (pn[i] + 8);
        free(p);
        free(f);
    }
    char *t = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 72; i++) {
        memcpy(t + n, part[i % 3], pn[i % 3]);
        n += pn[i % 3];
        n += (size_t)sprintf(t + n, " %d ", i);
    }
    if (one_line)
        for (size_t i = 0; i < n; i++)
            if (t[i] == '\n') t[i] = ' ';
    for (int i = 0; i < 3; i++) free(part[i]);
    *len = n;
    return t;
}

/* FNV-1a 64 over the ids as little-endian int32 (the generator's fnv). */
static uint64_t fnv(const int32_t *ids, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (u >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void check_long(glmq_tokenizer *t, const char *key, int one_line)
{
    char full[128];
    snprintf(full, sizeof full, "%s/%s", key, one_line ? "line" : "text");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(goldens(), "long"), full);
    ck_assert_msg(g != NULL, "no golden %s", full);
    size_t len;
    char *text = long_text(one_line, &len);
    ck_assert_uint_eq(len, (size_t)cJSON_GetObjectItem(g, "bytes")->valuedouble);
    glmq_ids v = {0};
    glmq_err e = {0};
    ck_assert_msg(glmq_tokenizer_encode(t, text, len, &v, &e) == GLMQ_OK, "%s", e.msg);
    char h[20];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)fnv(v.ids, v.n));
    ck_assert_msg(v.n == (size_t)cJSON_GetObjectItem(g, "n")->valuedouble &&
                      strcmp(h, cJSON_GetObjectItem(g, "fnv")->valuestring) == 0,
                  "%s: %zu ids hash %s, the library: %d ids hash %s", full, v.n, h,
                  (int)cJSON_GetObjectItem(g, "n")->valuedouble,
                  cJSON_GetObjectItem(g, "fnv")->valuestring);
    glmq_ids_free(&v);
    free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* long texts: the encoder's chunks against one library pass                                  */

static const char *const k_models[4] = {"sp_bpe.model", "sp_unigram.model", "sp_tiny.model",
                                        "sp_bpe_unused.model"};

START_TEST(test_long_committed_models)
{
    char *dir = tu_path(tu_testdata(), "tokenizer");
    char *p = tu_path(dir, k_models[_i / 2]);
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_msg(glmq_tokenizer_open(p, NULL, &t, &e) == GLMQ_OK, "%s", e.msg);
    check_long(t, k_models[_i / 2], _i % 2);
    glmq_tokenizer_free(t);
    free(p);
    free(dir);
}
END_TEST

START_TEST(test_long_real)
{
    NEED_UPSTREAM();
    const char *names[2] = {"chatglm-6b", "chatglm3-6b"};
    glmq_tokenizer *t = load_dir(names[_i / 2]);
    check_long(t, names[_i / 2], _i % 2);
    glmq_tokenizer_close(t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* the March 2023 ChatGLM-6B tokenizer                                                         */

static char *read_sample(const char *name, size_t *n)
{
    char *p = tu_path(tu_samples(), "text");
    char *f = tu_path(p, name);
    char *b = (char *)tu_read_file(f, n);
    ck_assert_msg(b != NULL, "cannot read %s", f);
    free(p);
    free(f);
    return b;
}

START_TEST(test_v1_early_pieces)
{
    NEED_UPSTREAM();
    glmq_tokenizer *early = load_dir("chatglm-6b-early"), *final = load_dir("chatglm-6b");
    glmq_tok_info ie, fi;
    glmq_tokenizer_info(early, &ie);
    glmq_tokenizer_info(final, &fi);
    ck_assert_int_eq(ie.n_base, 130344);
    ck_assert_int_eq(fi.n_base, 130344);
    ck_assert_int_eq(ie.id_offset, 20000);
    ck_assert_int_eq(fi.id_offset, 0);
    ck_assert_int_eq(ie.byte_fallback, 1);
    ck_assert_int_eq(ie.n_user_defined, fi.n_user_defined);
    for (int32_t i = 0; i < fi.n_base; i++) {
        size_t le, lf;
        const char *pe = glmq_tokenizer_piece(early, i + 20000, &le);
        const char *pf = glmq_tokenizer_piece(final, i, &lf);
        float se, sf;
        int te, tf;
        ck_assert(glmq_tokenizer_sp_meta(early, i, &se, &te));
        ck_assert(glmq_tokenizer_sp_meta(final, i, &sf, &tf));
        ck_assert_msg(pe && pf && le == lf && memcmp(pe, pf, le) == 0 && se == sf && te == tf,
                      "piece %d differs", (int)i);
    }
    /* the prompt suffix and the specials are the config's ids */
    size_t ns;
    const int32_t *suf = glmq_tokenizer_suffix(early, &ns);
    ck_assert_uint_eq(ns, 2);
    ck_assert_int_eq(suf[0], 150001);
    ck_assert_int_eq(suf[1], 150004);
    int32_t id;
    ck_assert_int_eq(glmq_tokenizer_special(early, "[MASK]", &id, NULL), GLMQ_OK);
    ck_assert_int_eq(id, 150000);
    ck_assert_int_eq(glmq_tokenizer_special(early, "<eop>", &id, NULL), GLMQ_OK);
    ck_assert_int_eq(id, 150005);
    glmq_tokenizer_close(early);
    glmq_tokenizer_close(final);
}
END_TEST

/* texts: the three samples, the long text as is and on one line (465 KB in all) */
START_TEST(test_v1_early_ids)
{
    NEED_UPSTREAM();
    glmq_tokenizer *early = load_dir("chatglm-6b-early"), *final = load_dir("chatglm-6b");
    static const char *names[3] = {"eval_en.txt", "eval_zh.txt", "tricky.txt"};
    for (int k = 0; k < 5; k++) {
        size_t n;
        char *text = k < 3 ? read_sample(names[k], &n) : long_text(k == 4, &n);
        for (int special = 0; special < 2; special++) {
            unsigned fl = special ? GLMQ_TOKENIZE_SPECIAL : 0u;
            glmq_ids a = {0}, b = {0};
            ck_assert_int_eq(glmq_tokenizer_encode_ex(early, text, n, fl, &a, NULL), GLMQ_OK);
            ck_assert_int_eq(glmq_tokenizer_encode_ex(final, text, n, fl, &b, NULL), GLMQ_OK);
            ck_assert_uint_eq(a.n, b.n);
            ck_assert(a.n > n / 8);
            for (size_t i = 0; i < a.n; i++)
                ck_assert_msg(a.ids[i] == b.ids[i] + 20000, "text %d id %zu: %d vs %d", k, i,
                              (int)a.ids[i], (int)b.ids[i]);
            char *da, *db;
            size_t la, lb;
            ck_assert_int_eq(glmq_tokenizer_decode(early, a.ids, a.n, &da, &la, NULL), GLMQ_OK);
            ck_assert_int_eq(glmq_tokenizer_decode(final, b.ids, b.n, &db, &lb, NULL), GLMQ_OK);
            ck_assert(la == lb && memcmp(da, db, la) == 0);
            ck_assert(la > n / 2);
            free(da);
            free(db);
            glmq_ids_free(&a);
            glmq_ids_free(&b);
        }
        free(text);
    }
    glmq_tokenizer_close(early);
    glmq_tokenizer_close(final);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* special-token text                                                                          */

static void check_special(glmq_tokenizer *t, const char *key, int32_t add)
{
    const cJSON *list =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(goldens(), "special"), key);
    ck_assert(cJSON_GetArraySize(list) >= 4);
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        glmq_ids v = {0};
        glmq_err e = {0};
        ck_assert_msg(glmq_tokenizer_encode_ex(t, text, strlen(text), GLMQ_TOKENIZE_SPECIAL, &v,
                                               &e) == GLMQ_OK,
                      "%s", e.msg);
        ck_assert_msg(v.n == (size_t)cJSON_GetArraySize(want), "%s '%s': %zu ids, want %d", key,
                      text, v.n, cJSON_GetArraySize(want));
        size_t i = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, want)
        {
            ck_assert_msg(v.ids[i] == (int32_t)w->valuedouble + add, "%s '%s' id %zu: %d, want %d",
                          key, text, i, (int)v.ids[i], (int)w->valuedouble + add);
            i++;
        }
        glmq_ids_free(&v);
    }
}

START_TEST(test_special_real)
{
    NEED_UPSTREAM();
    glmq_tokenizer *t = load_dir("chatglm3-6b");
    check_special(t, "chatglm3-6b", 0);
    glmq_tokenizer_close(t);
    t = load_dir("chatglm2-6b"); /* the same file; glmq gives it the ChatGLM3 specials */
    check_special(t, "chatglm3-6b", 0);
    glmq_tokenizer_close(t);
    t = load_dir("chatglm-6b");
    check_special(t, "chatglm-6b", 0);
    glmq_tokenizer_close(t);
    t = load_dir("chatglm-6b-early");
    check_special(t, "chatglm-6b", 20000);
    glmq_tokenizer_close(t);
}
END_TEST

/* GLM-4: chatglm.cpp's chat vector (GLM-SPEC C.3): [gMASK] <sop> <|user|> "\n" 你好 <|assistant|> */
START_TEST(test_special_glm4)
{
    NEED_UPSTREAM();
    glmq_tokenizer *t = load_dir("glm-4-9b-chat");
    const char text[] = "[gMASK]<sop><|user|>\n你好<|assistant|>";
    const int32_t want[] = {151331, 151333, 151336, 198, 109377, 151337};
    int32_t ids[16];
    size_t n = 0;
    glmq_err e = {0};
    ck_assert_int_eq(glmq_tokenizer_tokenize(t, text, strlen(text), GLMQ_TOKENIZE_SPECIAL, ids, 16,
                                             &n, &e),
                     GLMQ_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert_mem_eq(ids, want, sizeof want);
    /* without the flag the same text is ordinary text: no id of a special */
    ck_assert_int_eq(glmq_tokenizer_tokenize(t, text, strlen(text), 0, ids, 16, &n, &e), GLMQ_OK);
    ck_assert(n > 6);
    for (size_t i = 0; i < n; i++) ck_assert_int_lt(ids[i], 151329);
    /* every special alone, and the prompt prefix before it */
    const char *names[] = {"<|endoftext|>", "[sMASK]", "<|observation|>", "<|end_of_video|>"};
    const int32_t nid[] = {151329, 151332, 151338, 151342};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(glmq_tokenizer_tokenize(t, names[k], strlen(names[k]),
                                                 GLMQ_TOKENIZE_SPECIAL | GLMQ_TOKENIZE_PROMPT, ids,
                                                 16, &n, &e),
                         GLMQ_OK);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(ids[0], 151331);
        ck_assert_int_eq(ids[1], 151333);
        ck_assert_int_eq(ids[2], nid[k]);
    }
    glmq_tokenizer_close(t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* tokenizer-only directories                                                                  */

/* The same features on the committed sample (runs everywhere, shared/upstream or not):
 * samples/glm2-tiny's config + tokenizer in a directory without weights tokenize (and do not
 * open as a model); its eval text gives the sentencepiece library's ids (golden/tok_eval_en.npy);
 * with GLMQ_TOKENIZE_SPECIAL, "[gMASK]sop" + s + "<|user|>" + s gives the special ids (the
 * manifest's, and <|user|> = n_pieces + 6 in ChatGLM3's numbering) around the library's ids of
 * s (the manifest's short cases), and without the flag no special id at all. */
START_TEST(test_samples_special_and_dir)
{
    char *tmp = tu_mkdtemp();
    char *src = tu_sample_path("glm2-tiny", "st");
    const char *files[] = {"config.json", "tokenizer.model", "tokenizer_config.json"};
    for (int k = 0; k < 3; k++) {
        char *a = tu_path(src, files[k]), *b = tu_path(tmp, files[k]);
        size_t n;
        uint8_t *d = tu_read_file(a, &n);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(tu_write_file(b, d, n), 0);
        free(d);
        free(a);
        free(b);
    }
    glmq_err e = {0};
    glmq_model *m = NULL;
    ck_assert_int_ne(glmq_model_open(tmp, &m, &e), GLMQ_OK);
    ck_assert_ptr_null(m);
    glmq_tokenizer *t = NULL;
    ck_assert_msg(glmq_tokenizer_load(tmp, &t, &e) == GLMQ_OK, "%s", e.msg);

    /* the eval text against the library's ids */
    char *tp = tu_path(tu_samples(), "text/eval_en.txt"), *gp = tu_sample_path("glm2-tiny",
                                                                             "golden/tok_eval_en.npy");
    size_t len;
    char *text = (char *)tu_read_file(tp, &len);
    char dt[8];
    int nd;
    int64_t sh[4];
    size_t nb;
    int32_t *want = tu_npy_load(gp, dt, &nd, sh, &nb);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(want);
    glmq_ids v = {0};
    ck_assert_int_eq(glmq_tokenizer_encode_ex(t, text, len, 0, &v, &e), GLMQ_OK);
    ck_assert_uint_eq(v.n, (size_t)sh[0]);
    ck_assert_mem_eq(v.ids, want, v.n * sizeof *want);
    glmq_ids_free(&v);

    /* special-token text */
    cJSON *man = tu_manifest("glm2-tiny");
    ck_assert_ptr_nonnull(man);
    const cJSON *sp = cJSON_GetObjectItem(man, "special_ids");
    const int32_t gmask = cJSON_GetObjectItem(sp, "gmask")->valueint;
    const int32_t sop = cJSON_GetObjectItem(sp, "sop")->valueint;
    const int32_t user = cJSON_GetObjectItem(sp, "n_pieces")->valueint + 6;
    const cJSON *c;
    int tested = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(man, "tokenizer"), "cases"))
    {
        const cJSON *tx = cJSON_GetObjectItem(c, "text"), *ids = cJSON_GetObjectItem(c, "ids");
        if (!cJSON_IsString(tx) || !ids || strstr(tx->valuestring, "sop") ||
            strstr(tx->valuestring, "eop") || strchr(tx->valuestring, '[') ||
            strstr(tx->valuestring, "<|"))
            continue;
        char in[512];
        int n = snprintf(in, sizeof in, "[gMASK]sop%s<|user|>%s", tx->valuestring,
                         tx->valuestring);
        ck_assert(n > 0 && n < (int)sizeof in);
        ck_assert_int_eq(glmq_tokenizer_encode_ex(t, in, (size_t)n, GLMQ_TOKENIZE_SPECIAL, &v, &e),
                         GLMQ_OK);
        const int k = cJSON_GetArraySize(ids);
        ck_assert_uint_eq(v.n, (size_t)(3 + 2 * k));
        ck_assert_int_eq(v.ids[0], gmask);
        ck_assert_int_eq(v.ids[1], sop);
        ck_assert_int_eq(v.ids[2 + k], user);
        for (int i = 0; i < k; i++) {
            ck_assert_int_eq(v.ids[2 + i], cJSON_GetArrayItem(ids, i)->valueint);
            ck_assert_int_eq(v.ids[3 + k + i], cJSON_GetArrayItem(ids, i)->valueint);
        }
        v.n = 0;
        ck_assert_int_eq(glmq_tokenizer_encode_ex(t, in, (size_t)n, 0, &v, &e), GLMQ_OK);
        for (size_t i = 0; i < v.n; i++) ck_assert_int_lt(v.ids[i], gmask - 1);
        glmq_ids_free(&v);
        tested++;
    }
    ck_assert_int_ge(tested, 4);

    /* a transformers-native directory: config + tokenizer.json, read as the checkpoint reader
     * reads it (the equivalent rank file), gives the rank file's ids */
    {
        char *hd = tu_path(tmp, "hf"), *hc = tu_sample_path("glm4-hf-tiny", "st/config.json");
        char *tdir = tu_path(tu_testdata(), "hf_tokenizer");
        char *tj = tu_path(tdir, "tiny.json"), *tt = tu_path(tdir, "tiny.tiktoken");
        ck_assert_int_eq(mkdir(hd, 0755), 0);
        const char *from[2] = {hc, tj}, *to[2] = {"config.json", "tokenizer.json"};
        for (int k = 0; k < 2; k++) {
            size_t n;
            uint8_t *d = tu_read_file(from[k], &n);
            ck_assert_ptr_nonnull(d);
            char *dst = tu_path(hd, to[k]);
            ck_assert_int_eq(tu_write_file(dst, d, n), 0);
            free(dst);
            free(d);
        }
        glmq_tokenizer *th = NULL, *tr = NULL;
        ck_assert_msg(glmq_tokenizer_load(hd, &th, &e) == GLMQ_OK, "%s", e.msg);
        ck_assert_msg(glmq_tokenizer_open(tt, NULL, &tr, &e) == GLMQ_OK, "%s", e.msg);
        glmq_ids a = {0}, b = {0};
        ck_assert_int_eq(glmq_tokenizer_encode(th, text, len, &a, &e), GLMQ_OK);
        ck_assert_int_eq(glmq_tokenizer_encode(tr, text, len, &b, &e), GLMQ_OK);
        ck_assert_uint_eq(a.n, b.n);
        ck_assert_mem_eq(a.ids, b.ids, a.n * sizeof *a.ids);
        glmq_ids_free(&a);
        glmq_ids_free(&b);
        glmq_tokenizer_close(th);
        glmq_tokenizer_free(tr);
        free(hd);
        free(hc);
        free(tdir);
        free(tj);
        free(tt);
    }

    /* the command on the weightless directory */
    char *tf = tu_path(tmp, "in.txt"), *outp = NULL;
    ck_assert_int_eq(tu_write_file(tf, "[gMASK]sop<|user|>", 18), 0);
    ck_assert_int_eq(tu_run(&outp, "'%s' tokenize '%s' --text '%s' --special", tu_bin(), tmp, tf),
                     0);
    char wantline[64];
    snprintf(wantline, sizeof wantline, "%d %d %d\n", gmask, sop, user);
    ck_assert_str_eq(outp, wantline);
    free(outp);
    free(tf);
    cJSON_Delete(man);
    free(want);
    free(text);
    free(tp);
    free(gp);
    glmq_tokenizer_close(t);
    tu_rmtree(tmp);
    free(tmp);
    free(src);
}
END_TEST

START_TEST(test_tokenizer_only_dir)
{
    NEED_UPSTREAM();
    const char *dirs[] = {"chatglm-6b-early", "chatglm-6b", "chatglm2-6b", "chatglm3-6b",
                          "glm-4-9b-chat"};
    for (int k = 0; k < 5; k++) {
        char *d = tu_path(upstream(), dirs[k]);
        glmq_err e = {0};
        glmq_model *m = NULL;
        /* weights are still required where they are needed */
        ck_assert_int_ne(glmq_model_open(d, &m, &e), GLMQ_OK);
        ck_assert_ptr_null(m);
        glmq_tokenizer *t = NULL;
        ck_assert_msg(glmq_tokenizer_load(d, &t, &e) == GLMQ_OK, "%s: %s", d, e.msg);
        const char text[] = "你好, world!\n  x";
        size_t n = 0;
        ck_assert_int_eq(glmq_tokenizer_tokenize(t, text, strlen(text), GLMQ_TOKENIZE_PROMPT,
                                                 NULL, 0, &n, &e),
                         GLMQ_OK);
        ck_assert_uint_gt(n, 4);
        int32_t *ids = malloc(n * sizeof *ids);
        size_t n2 = 0;
        ck_assert_int_eq(glmq_tokenizer_tokenize(t, text, strlen(text), GLMQ_TOKENIZE_PROMPT, ids,
                                                 n - 1, &n2, &e),
                         GLMQ_E_INVALID);
        ck_assert_int_eq(glmq_tokenizer_tokenize(t, text, strlen(text), GLMQ_TOKENIZE_PROMPT, ids,
                                                 n, &n2, &e),
                         GLMQ_OK);
        char buf[64];
        size_t len = 0;
        ck_assert_int_eq(glmq_tokenizer_detokenize(t, ids, n, buf, sizeof buf, &len, &e),
                         GLMQ_OK);
        ck_assert_str_eq(buf, text);
        free(ids);
        glmq_tokenizer_close(t);
        free(d);
    }
    /* the command: glmq tokenize DIR --special --prefix on a directory without weights */
    char *tmp = tu_mkdtemp();
    char *tf = tu_path(tmp, "in.txt");
    const char chat[] = "<|user|>\n你好<|assistant|>";
    ck_assert(tu_write_file(tf, chat, strlen(chat)) == 0);
    char *d = tu_path(upstream(), "glm-4-9b-chat"), *outp = NULL;
    ck_assert_int_eq(tu_run(&outp, "'%s' tokenize '%s' --text '%s' --special --prefix", tu_bin(),
                            d, tf),
                     0);
    ck_assert_str_eq(outp, "151331 151333 151336 198 109377 151337\n");
    free(outp);
    ck_assert_int_eq(tu_run(&outp, "'%s' logits '%s' --ids 1,2 -o '%s/x.npy'", tu_bin(), d, tmp),
                     1);
    ck_assert_msg(strstr(outp, "does not exist") != NULL, "%s", outp); /* the shards */
    free(outp);
    free(d);
    free(tf);
    tu_rmtree(tmp);
    free(tmp);
    /* a directory whose config cannot be read is refused by name */
    glmq_tokenizer *t = NULL;
    glmq_err e = {0};
    ck_assert_int_ne(glmq_tokenizer_load("/nonexistent-dir", &t, &e), GLMQ_OK);
    ck_assert_ptr_null(t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* tiktoken: a long pre-tokenizer chunk merged in cut pieces equals one heap merge of it        */

static uint32_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

START_TEST(test_tiktoken_cuts)
{
    NEED_UPSTREAM();
    char *d = tu_path(upstream(), "glm-4-9b-chat");
    char *p = tu_path(d, "tokenizer.model");
    size_t fn;
    uint8_t *file = tu_read_file(p, &fn);
    ck_assert(file != NULL);
    glmq_tt_model *m = NULL;
    glmq_err e = {0};
    ck_assert_msg(glmq_tt_load(file, fn, &m, &e) == GLMQ_OK, "%s", e.msg);
    const size_t n = 300000;
    uint8_t *s = malloc(n);
    uint64_t x = 12345 + (uint64_t)_i;
    static const char *const cjk[] = {"\xe4\xbd\xa0", "\xe5\xa5\xbd", "\xe7\x9a\x84",
                                      "\xe4\xb8\xad", "\xe6\x96\x87", "\xe6\x98\xaf"};
    size_t k = 0;
    while (k < n) {
        uint32_t r = lcg(&x);
        if (_i == 0) { /* letters, with runs of one letter now and then */
            size_t run = r % 64 == 0 ? 1 + r % 300 : 1;
            char c = (char)((r >> 8) % 2 ? 'a' + (r >> 9) % 26 : 'A' + (r >> 9) % 26);
            for (size_t j = 0; j < run && k < n; j++) s[k++] = (uint8_t)c;
        } else if (k + 3 <= n) { /* CJK characters */
            memcpy(s + k, cjk[r % 6], 3);
            k += 3;
        } else {
            s[k++] = 'x';
        }
    }
    ck_assert_uint_eq(glmq_tt_chunk(s, n), n); /* one chunk */
    glmq_ids a = {0}, b = {0};
    ck_assert_int_eq(glmq_tt_encode(m, s, n, &a, &e), GLMQ_OK);
    ck_assert_int_eq(glmq_tt_bpe(m, s, n, 1, &b, &e), GLMQ_OK);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert_mem_eq(a.ids, b.ids, a.n * sizeof *a.ids);
    glmq_ids_free(&a);
    glmq_ids_free(&b);
    free(s);
    glmq_tt_free(m);
    free(file);
    free(p);
    free(d);
}
END_TEST

/* Threads sharing one fresh model: the first long chunk builds the token trie; concurrent
 * builders race to publish it (one wins, the others free theirs) and all agree. */
typedef struct {
    const glmq_tt_model *m;
    const uint8_t *s;
    size_t n;
    glmq_ids out;
    glmq_status st;
} tt_job;

static void *tt_thread(void *arg)
{
    tt_job *j = arg;
    j->st = glmq_tt_encode(j->m, j->s, j->n, &j->out, NULL);
    return NULL;
}

START_TEST(test_tiktoken_cuts_threads)
{
    NEED_UPSTREAM();
    char *d = tu_path(upstream(), "glm-4-9b-chat");
    char *p = tu_path(d, "tokenizer.model");
    size_t fn;
    uint8_t *file = tu_read_file(p, &fn);
    ck_assert(file != NULL);
    glmq_tt_model *m = NULL;
    ck_assert_int_eq(glmq_tt_load(file, fn, &m, NULL), GLMQ_OK);
    const size_t n = 40000;
    uint8_t *s = malloc(n);
    uint64_t x = 99;
    for (size_t k = 0; k < n; k++) s[k] = (uint8_t)('a' + lcg(&x) % 26);
    tt_job j[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (tt_job){m, s, n, {0}, GLMQ_OK};
        ck_assert_int_eq(pthread_create(&th[i], NULL, tt_thread, &j[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    glmq_ids whole = {0};
    ck_assert_int_eq(glmq_tt_bpe(m, s, n, 1, &whole, NULL), GLMQ_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(j[i].st, GLMQ_OK);
        ck_assert_uint_eq(j[i].out.n, whole.n);
        ck_assert_mem_eq(j[i].out.ids, whole.ids, whole.n * sizeof *whole.ids);
        glmq_ids_free(&j[i].out);
    }
    glmq_ids_free(&whole);
    free(s);
    glmq_tt_free(m);
    free(file);
    free(p);
    free(d);
}
END_TEST

static Suite *tok_upstream_suite(void)
{
    Suite *s = suite_create("tok_upstream");
    TCase *tc = tcase_create("long");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_long_committed_models, 0, 8);
    tcase_add_loop_test(tc, test_long_real, 0, 4);
    tcase_add_loop_test(tc, test_tiktoken_cuts, 0, 2);
    tcase_add_test(tc, test_tiktoken_cuts_threads);
    suite_add_tcase(s, tc);
    tc = tcase_create("v1_early");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_v1_early_pieces);
    tcase_add_test(tc, test_v1_early_ids);
    suite_add_tcase(s, tc);
    tc = tcase_create("special");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_special_real);
    tcase_add_test(tc, test_special_glm4);
    tcase_add_test(tc, test_tokenizer_only_dir);
    tcase_add_test(tc, test_samples_special_and_dir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tok_upstream_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    cJSON_Delete(g_gold);
    return nf ? 1 : 0;
}
