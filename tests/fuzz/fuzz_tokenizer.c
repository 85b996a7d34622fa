/*
 * fuzz_tokenizer.c - fuzz target for verify/tokenizer: model parsers and encoding.
 *
 * The first input byte picks a mode (mod 4), the rest is the payload:
 *   0  payload = a SentencePiece ModelProto: load it; if it loads, encode fixed strings and
 *      the payload itself, decode the ids, and check determinism (encode twice, same ids).
 *   1  payload = a tiktoken rank file: the same.
 *   2  payload = text: encode it with the SentencePiece fixtures of tests/data/tokenizer (plain
 *      and ChatGLM-6B flavour), a synthetic tiktoken table and, when present, the real GLM-4
 *      file; oracles: determinism, every id < n_vocab, decode succeeds, tiktoken decode(encode
 *      (x)) == x for any bytes, and sp_bpe decode(encode(x)) == x for valid UTF-8 without
 *      U+2581 (identity normalizer, no whitespace folding).
 *   3  payload = bytes: byte-pair merge with the O(n^2) scan and the heap must agree.
 * Fixtures are found through $GLMQ_TESTDATA (set by ctest) or tests/data; missing ones are
 * skipped. Crashes, sanitizer reports and abort() on a broken oracle are the failures.
 */
#include "formats/tokenizer.h"
#include "formats/tok_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tokenizer: oracle failed: %s\n", what);
        abort();
    }
}

/* Encode + decode + determinism + id range. Returns the ids (caller frees) or n = 0. */
static void exercise(const glmq_tokenizer *t, const uint8_t *s, size_t n, glmq_ids *ids)
{
    glmq_ids again = {0};
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    ids->n = 0;
    glmq_status st = glmq_tokenizer_encode(t, (const char *)s, n, ids, NULL);
    if (st != GLMQ_OK) {
        check(ids->n == 0, "failed encode left ids");
        return;
    }
    check(glmq_tokenizer_encode(t, (const char *)s, n, &again, NULL) == GLMQ_OK, "second encode");
    check(again.n == ids->n && (ids->n == 0 || memcmp(again.ids, ids->ids, ids->n * 4) == 0),
          "encode is deterministic");
    for (size_t i = 0; i < ids->n; i++)
        check(ids->ids[i] >= 0 && ids->ids[i] < ti.n_vocab, "id range");
    char *out = NULL;
    size_t on = 0;
    check(glmq_tokenizer_decode(t, ids->ids, ids->n, &out, &on, NULL) == GLMQ_OK, "decode");
    free(out);
    glmq_ids_free(&again);
}

static int valid_utf8_no_2581(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l;
        if (glmq_utf8_decode(s + i, n - i, &l) == GLMQ_UTF8_INVALID) return 0;
        if (l == 3 && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return 0;
        i += l;
    }
    return 1;
}

static int roundtrip(const glmq_tokenizer *t, const glmq_ids *ids, const uint8_t *s, size_t n)
{
    char *out = NULL;
    size_t on = 0;
    int ok = glmq_tokenizer_decode(t, ids->ids, ids->n, &out, &on, NULL) == GLMQ_OK && on == n &&
             (n == 0 || memcmp(out, s, n) == 0);
    free(out);
    return ok;
}

/* ---- fixtures, loaded once ---- */

enum { FX_BPE, FX_UNIGRAM, FX_TINY, FX_V1, FX_TT_SYN, FX_GLM4, FX_COUNT };
static glmq_tokenizer *g_fx[FX_COUNT];
static glmq_tt_model *g_syn_tt;
static int g_loaded;

static char *synthetic_ranks(size_t *len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char *const extra[] = {"ab",   "ba", "aa", "aaa",      "aaaa",
                                        "abab", " a", " b", "\n\n",     "the",
                                        " the", "th", "he", "\xe4\xbd", "\xe4\xbd\xa0"};
    size_t ne = sizeof extra / sizeof extra[0], cap = 16 * (256 + ne), o = 0;
    char *f = malloc(cap);
    for (size_t r = 0; r < 256 + ne; r++) {
        uint8_t one = (uint8_t)r;
        const uint8_t *s = r < 256 ? &one : (const uint8_t *)extra[r - 256];
        size_t n = r < 256 ? 1 : strlen(extra[r - 256]);
        for (size_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                         (i + 2 < n ? s[i + 2] : 0);
            f[o++] = a[w >> 18];
            f[o++] = a[(w >> 12) & 63];
            f[o++] = i + 1 < n ? a[(w >> 6) & 63] : '=';
            f[o++] = i + 2 < n ? a[w & 63] : '=';
        }
        o += (size_t)snprintf(f + o, cap - o, " %zu\n", r);
    }
    *len = o;
    return f;
}

static void load_fixtures(void)
{
    if (g_loaded) return;
    g_loaded = 1;
    const char *dir = getenv("GLMQ_TESTDATA");
    if (!dir || !*dir) dir = "tests/data";
    static const char *const files[] = {"sp_bpe.model", "sp_unigram.model", "sp_tiny.model",
                                        "sp_unigram.model"};
    for (int i = 0; i < 4; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/tokenizer/%s", dir, files[i]);
        glmq_tok_glm cfg;
        glmq_tok_glm_init(&cfg, i == FX_V1 ? GLMQ_TOK_CHATGLM1 : GLMQ_TOK_PLAIN);
        if (glmq_tokenizer_open(p, &cfg, &g_fx[i], NULL) != GLMQ_OK) g_fx[i] = NULL;
    }
    size_t n;
    char *f = synthetic_ranks(&n);
    if (glmq_tokenizer_load_tiktoken(f, n, NULL, &g_fx[FX_TT_SYN], NULL) != GLMQ_OK) abort();
    if (glmq_tt_load((const uint8_t *)f, n, &g_syn_tt, NULL) != GLMQ_OK) abort();
    free(f);
    const char *g4 = getenv("GLMQ_GLM4_TOKENIZER");
    if (!g4 || !*g4) g4 = "../shared/upstream/glm-4-9b-chat/tokenizer.model";
    if (glmq_tokenizer_open(g4, NULL, &g_fx[FX_GLM4], NULL) != GLMQ_OK) g_fx[FX_GLM4] = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] & 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    glmq_ids ids = {0};
    static const char *const texts[] = {"", "Hello  world\n", "\xe4\xbd\xa0\xe5\xa5\xbd \xff\t",
                                        "<n><|tab|>aaaa abab"};
    if (mode == 0 || mode == 1) {
        glmq_tokenizer *t = NULL;
        glmq_err e = {0};
        glmq_status st = mode == 0 ? glmq_tokenizer_load_sp(p, n, NULL, &t, &e)
                                   : glmq_tokenizer_load_tiktoken(p, n, NULL, &t, &e);
        if (st != GLMQ_OK) {
            check(t == NULL && e.msg[0] != 0, "failed load leaves NULL and a message");
            return 0;
        }
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            exercise(t, (const uint8_t *)texts[i], strlen(texts[i]), &ids);
        exercise(t, p, n < 512 ? n : 512, &ids);
        glmq_tokenizer_free(t);
    } else if (mode == 2) {
        load_fixtures();
        for (int i = 0; i < FX_COUNT; i++) {
            if (!g_fx[i]) continue;
            exercise(g_fx[i], p, n, &ids);
            if ((i == FX_TT_SYN || i == FX_GLM4) && ids.n)
                check(roundtrip(g_fx[i], &ids, p, n), "tiktoken decode(encode(x)) == x");
            if (i == FX_BPE && valid_utf8_no_2581(p, n))
                check(roundtrip(g_fx[i], &ids, p, n), "sp_bpe decode(encode(x)) == x");
        }
    } else {
        load_fixtures();
        glmq_ids b = {0};
        if (n > 4096) n = 4096;
        glmq_tt_bpe(g_syn_tt, p, n, 0, &ids, NULL);
        glmq_tt_bpe(g_syn_tt, p, n, 1, &b, NULL);
        check(ids.n == b.n && (b.n == 0 || memcmp(ids.ids, b.ids, b.n * 4) == 0),
              "scan and heap merges agree");
        glmq_ids_free(&b);
    }
    glmq_ids_free(&ids);
    return 0;
}
