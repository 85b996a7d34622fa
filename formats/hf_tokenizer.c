/*
 * hf_tokenizer.c - tokenizer.json (Hugging Face `tokenizers`) of the GLM-4 family -> the GLM-4
 * tiktoken rank file (see hf_tokenizer.h for what is accepted and why).
 *
 * Byte-level strings: `tokenizers`' ByteLevel (GPT-2's bytes_to_unicode) writes byte b as the
 * code point b when b is printable Latin-1 ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) and as
 * U+0100 + k for the k-th remaining byte in increasing order (68 of them: 0x00..0x20, 0x7F..0xA0,
 * 0xAD). byte_of() inverts that; any other code point is a malformed vocabulary.
 *
 * Merge completeness is what makes merge order equal rank order: BPE by merge list applies the
 * earliest-listed merge among the adjacent pairs, tiktoken the pair whose concatenation has the
 * lowest rank. With one merge for every split of every token into two tokens, listed by the rank
 * of the result, the earliest applicable merge is always one producing the lowest-ranked
 * concatenation, so both pick the same pair (ties within a result rank merge into the same
 * token at the same place).
 *
 * Memory: the parsed JSON plus the vocabulary's bytes, two arrays of n ids, and one 8-byte key
 * per merge (duplicate detection by sorting). Every count and id from the file is range-checked
 * before it indexes anything.
 */
#include "formats/hf_tokenizer.h"
#include "formats/tok_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_RANKS (1 << 24)
#define MAX_TOKEN_BYTES 4096

const char glmq_hf_glm4_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GLM-4's specials in the order glmq numbers them after the ranks (GLM-SPEC C.3). */
static const char *const glm4_specials[] = {
    "<|endoftext|>", "[MASK]",          "[gMASK]",           "[sMASK]",
    "<sop>",         "<eop>",           "<|system|>",        "<|user|>",
    "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
    "<|begin_of_video|>", "<|end_of_video|>"};
#define N_SPECIALS ((int32_t)(sizeof glm4_specials / sizeof glm4_specials[0]))

/* Byte of a byte-level code point, or -1. The 68 non-printable bytes, in increasing order, are
 * 0x00..0x20 (U+0100..U+0120), 0x7F..0xA0 (U+0121..U+0142) and 0xAD (U+0143). */
static int byte_of(uint32_t cp)
{
    if (cp < 256) {
        const int printable =
            (cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE;
        return printable ? (int)cp : -1;
    }
    const uint32_t k = cp - 256;
    if (cp < 256 || k >= 68) return -1;
    return k < 33 ? (int)k : k < 67 ? (int)(0x7F + (k - 33)) : 0xAD;
}

/* Decode a byte-level string into dst (at most cap bytes). Returns the byte count or -1. */
static long decode_bl(const char *s, uint8_t *dst, size_t cap)
{
    const size_t n = strlen(s);
    size_t i = 0, o = 0;
    while (i < n) {
        size_t l = 0;
        const uint32_t cp = glmq_utf8_decode((const uint8_t *)s + i, n - i, &l);
        const int b = byte_of(cp);
        if (l == 0 || b < 0 || o >= cap) return -1;
        dst[o++] = (uint8_t)b;
        i += l;
    }
    return (long)o;
}

typedef struct {
    glmq_tkbuf pool;
    uint32_t *off, *len;
    int32_t n;
    glmq_tkmap map;
} vocab_t;

static int32_t find(const vocab_t *v, const uint8_t *s, size_t n)
{
    const glmq_tkpool p = {v->pool.p, v->off, v->len};
    return glmq_tkmap_find(&v->map, &p, s, n);
}

static const cJSON *item(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int is_null(const cJSON *j) { return !j || cJSON_IsNull(j); }

static int str_is(const cJSON *j, const char *s)
{
    return cJSON_IsString(j) && !strcmp(j->valuestring, s);
}

/* Integer in [lo, hi] (exact). */
static int int_in(const cJSON *j, double lo, double hi, int64_t *v)
{
    if (!cJSON_IsNumber(j)) return 0;
    const double d = j->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d)) return 0;
    *v = (int64_t)d;
    return 1;
}

static glmq_status check_pipeline(const cJSON *r, const char *path, glmq_err *err)
{
    const cJSON *nz = item(r, "normalizer");
    GLMQ_FAIL_IF(!is_null(nz), err, GLMQ_E_UNSUPPORTED,
                 "'%s': normalizer is set: GLM-4's tokenizer has none, so this is not a GLM-4 "
                 "tiktoken vocabulary",
                 path);
    const cJSON *pt = item(r, "pre_tokenizer");
    const cJSON *seq = item(pt, "pretokenizers");
    const cJSON *sp = cJSON_GetArrayItem(seq, 0), *bl = cJSON_GetArrayItem(seq, 1);
    GLMQ_FAIL_IF(!str_is(item(pt, "type"), "Sequence") || cJSON_GetArraySize(seq) != 2 ||
                     !str_is(item(sp, "type"), "Split") || !str_is(item(bl, "type"), "ByteLevel"),
                 err, GLMQ_E_UNSUPPORTED,
                 "'%s': pre_tokenizer is not Sequence[Split, ByteLevel] (GLM-4's tiktoken "
                 "pre-tokenizer as transformers writes it)",
                 path);
    GLMQ_FAIL_IF(!str_is(item(item(sp, "pattern"), "Regex"), glmq_hf_glm4_pattern), err,
                 GLMQ_E_UNSUPPORTED,
                 "'%s': the Split pre-tokenizer's regex is not GLM-4's (GLM-SPEC C.3); glmq "
                 "implements only that one",
                 path);
    GLMQ_FAIL_IF(!str_is(item(sp, "behavior"), "Isolated") || cJSON_IsTrue(item(sp, "invert")),
                 err, GLMQ_E_UNSUPPORTED,
                 "'%s': the Split pre-tokenizer must be behavior Isolated, invert false", path);
    GLMQ_FAIL_IF(cJSON_IsTrue(item(bl, "add_prefix_space")) ||
                     !cJSON_IsFalse(item(bl, "use_regex")),
                 err, GLMQ_E_UNSUPPORTED,
                 "'%s': the ByteLevel pre-tokenizer must have add_prefix_space false and "
                 "use_regex false (the split is GLM-4's regex alone)",
                 path);
    const cJSON *m = item(r, "model");
    GLMQ_FAIL_IF(!cJSON_IsObject(m), err, GLMQ_E_FORMAT, "'%s': no 'model' object", path);
    const cJSON *ty = item(m, "type");
    GLMQ_FAIL_IF(!str_is(ty, "BPE"), err, GLMQ_E_UNSUPPORTED,
                 "'%s': model type '%s': only a byte-level BPE (GLM-4's tiktoken vocabulary) "
                 "is supported",
                 path, cJSON_IsString(ty) ? ty->valuestring : "?");
    GLMQ_FAIL_IF(!is_null(item(m, "dropout")) || !is_null(item(m, "unk_token")) ||
                     cJSON_IsTrue(item(m, "byte_fallback")),
                 err, GLMQ_E_UNSUPPORTED,
                 "'%s': BPE with dropout, unk_token or byte_fallback is not GLM-4's tokenizer",
                 path);
    static const char *const affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = item(m, affix[i]);
        GLMQ_FAIL_IF(!is_null(a) && !str_is(a, ""), err, GLMQ_E_UNSUPPORTED,
                     "'%s': BPE %s is set: not GLM-4's tokenizer", path, affix[i]);
    }
    return GLMQ_OK;
}

static glmq_status load_vocab(const cJSON *vj, const char *path, vocab_t *v, glmq_err *err)
{
    GLMQ_FAIL_IF(!cJSON_IsObject(vj), err, GLMQ_E_FORMAT, "'%s': model.vocab is not an object",
                 path);
    const int n = cJSON_GetArraySize(vj);
    GLMQ_FAIL_IF(n < 256 || n > MAX_RANKS, err, GLMQ_E_FORMAT,
                 "'%s': model.vocab has %d entries; a byte-level BPE has 256 .. %d", path, n,
                 MAX_RANKS);
    v->n = n;
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = calloc((size_t)n, sizeof *v->len);
    GLMQ_FAIL_IF(!v->off || !v->len, err, GLMQ_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) v->off[i] = UINT32_MAX; /* not seen yet */
    uint8_t tmp[MAX_TOKEN_BYTES];
    const cJSON *e;
    cJSON_ArrayForEach(e, vj)
    {
        int64_t id;
        GLMQ_FAIL_IF(!int_in(e, 0, n - 1, &id), err, GLMQ_E_FORMAT,
                     "'%s': vocab entry '%.64s' has id outside 0..%d (ids must be exactly the "
                     "ranks 0..n-1)",
                     path, e->string, n - 1);
        GLMQ_FAIL_IF(v->off[id] != UINT32_MAX, err, GLMQ_E_FORMAT,
                     "'%s': id %lld is given to two vocab entries", path, (long long)id);
        const long bl = decode_bl(e->string, tmp, sizeof tmp);
        GLMQ_FAIL_IF(bl <= 0, err, GLMQ_E_FORMAT,
                     "'%s': vocab entry '%.64s' (id %lld) is not a byte-level string (GPT-2 "
                     "byte-to-unicode) of 1..%d bytes",
                     path, e->string, (long long)id, MAX_TOKEN_BYTES);
        GLMQ_FAIL_IF(v->pool.n > UINT32_MAX - (size_t)bl, err, GLMQ_E_FORMAT,
                     "'%s': vocabulary too large", path);
        v->off[id] = (uint32_t)v->pool.n;
        v->len[id] = (uint32_t)bl;
        GLMQ_TRY(glmq_tkbuf_put(&v->pool, tmp, (size_t)bl, err));
    }
    GLMQ_TRY(glmq_tkmap_init(&v->map, (uint32_t)n, err));
    const glmq_tkpool p = {v->pool.p, v->off, v->len};
    for (int32_t i = 0; i < n; i++) {
        const int32_t dup = glmq_tkmap_insert(&v->map, &p, i);
        GLMQ_FAIL_IF(dup >= 0, err, GLMQ_E_FORMAT,
                     "'%s': ids %d and %d are the same byte string", path, (int)dup, (int)i);
    }
    for (int b = 0; b < 256; b++) {
        const uint8_t c = (uint8_t)b;
        GLMQ_FAIL_IF(find(v, &c, 1) < 0, err, GLMQ_E_FORMAT,
                     "'%s': the single byte 0x%02X is not in the vocabulary (a byte-level BPE "
                     "has all 256)",
                     path, b);
    }
    return GLMQ_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The two parts of merge e ("a b" or ["a", "b"]) as byte-level strings in a / b. */
static int merge_parts(const cJSON *e, char *buf, size_t cap, const char **a, const char **b)
{
    if (cJSON_IsArray(e)) {
        const cJSON *x = cJSON_GetArrayItem(e, 0), *y = cJSON_GetArrayItem(e, 1);
        if (cJSON_GetArraySize(e) != 2 || !cJSON_IsString(x) || !cJSON_IsString(y)) return 0;
        *a = x->valuestring;
        *b = y->valuestring;
        return 1;
    }
    if (!cJSON_IsString(e)) return 0;
    const size_t n = strlen(e->valuestring);
    const char *sp = strchr(e->valuestring, ' ');
    if (n >= cap || !sp || strchr(sp + 1, ' ')) return 0; /* byte-level strings hold no ' ' */
    memcpy(buf, e->valuestring, n + 1);
    buf[sp - e->valuestring] = 0;
    *a = buf;
    *b = buf + (sp - e->valuestring) + 1;
    return 1;
}

static glmq_status check_merges(const cJSON *mj, const char *path, const vocab_t *v,
                                glmq_err *err)
{
    GLMQ_FAIL_IF(!cJSON_IsArray(mj), err, GLMQ_E_FORMAT, "'%s': model.merges is not an array",
                 path);
    const int nm = cJSON_GetArraySize(mj);
    glmq_status st = GLMQ_OK;
    uint32_t *cnt = calloc((size_t)v->n, sizeof *cnt);
    uint64_t *keys = malloc((size_t)(nm > 0 ? nm : 1) * sizeof *keys);
    uint8_t *cat = malloc(2 * MAX_TOKEN_BYTES);
    char *buf = malloc(4 * MAX_TOKEN_BYTES + 8);
    GLMQ_FAIL_IF_G(!cnt || !keys || !cat || !buf, err, GLMQ_E_NOMEM, "out of memory");
    int32_t prev = -1;
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, mj)
    {
        const char *a, *b;
        GLMQ_FAIL_IF_G(!merge_parts(e, buf, 4 * MAX_TOKEN_BYTES + 8, &a, &b), err,
                       GLMQ_E_FORMAT,
                       "'%s': merge #%d is neither \"a b\" nor a pair of strings", path, k);
        const long la = decode_bl(a, cat, MAX_TOKEN_BYTES);
        const long lb = la > 0 ? decode_bl(b, cat + la, MAX_TOKEN_BYTES) : -1;
        GLMQ_FAIL_IF_G(la <= 0 || lb <= 0, err, GLMQ_E_FORMAT,
                       "'%s': merge #%d ('%.40s' '%.40s') has a part that is not a byte-level "
                       "string",
                       path, k, a, b);
        const int32_t ia = find(v, cat, (size_t)la), ib = find(v, cat + la, (size_t)lb);
        const int32_t ic = find(v, cat, (size_t)(la + lb));
        GLMQ_FAIL_IF_G(ia < 0 || ib < 0 || ic < 0, err, GLMQ_E_FORMAT,
                       "'%s': merge #%d ('%.40s' '%.40s'): %s is not in the vocabulary", path,
                       k, a, b, ia < 0 ? "its first part" : ib < 0 ? "its second part"
                                                               : "the merged token");
        GLMQ_FAIL_IF_G(ic < prev, err, GLMQ_E_UNSUPPORTED,
                       "'%s': merge #%d makes rank %d after a merge making rank %d: the merges "
                       "are not in rank order, so this BPE is not a tiktoken vocabulary",
                       path, k, (int)ic, (int)prev);
        prev = ic;
        cnt[ic]++;
        keys[k++] = (uint64_t)ic << 32 | (uint64_t)la;
    }
    qsort(keys, (size_t)k, sizeof *keys, cmp_u64);
    for (int i = 1; i < k; i++)
        GLMQ_FAIL_IF_G(keys[i] == keys[i - 1], err, GLMQ_E_FORMAT,
                       "'%s': two merges make token %d from the same split", path,
                       (int)(keys[i] >> 32));
    /* every split of every token into two tokens has its merge */
    for (int32_t t = 0; t < v->n; t++) {
        const uint8_t *s = v->pool.p + v->off[t];
        uint32_t splits = 0;
        for (uint32_t i = 1; i < v->len[t]; i++)
            splits += find(v, s, i) >= 0 && find(v, s + i, v->len[t] - i) >= 0;
        GLMQ_FAIL_IF_G(splits != cnt[t], err, GLMQ_E_UNSUPPORTED,
                       "'%s': token %d splits into two tokens in %u ways but %u merges make it: "
                       "the merges are not the complete set that makes BPE merge order equal "
                       "tiktoken's rank order",
                       path, (int)t, splits, cnt[t]);
    }
fail:
    free(cnt);
    free(keys);
    free(cat);
    free(buf);
    return st;
}

static glmq_status check_added(const cJSON *at, const char *path, int32_t n, glmq_err *err)
{
    if (is_null(at)) return GLMQ_OK;
    GLMQ_FAIL_IF(!cJSON_IsArray(at), err, GLMQ_E_FORMAT, "'%s': added_tokens is not an array",
                 path);
    const int na = cJSON_GetArraySize(at);
    GLMQ_FAIL_IF(na > 65536, err, GLMQ_E_FORMAT, "'%s': %d added tokens", path, na);
    glmq_status st = GLMQ_OK;
    int64_t *ids = malloc((size_t)(na > 0 ? na : 1) * sizeof *ids);
    GLMQ_FAIL_IF(!ids, err, GLMQ_E_NOMEM, "out of memory");
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, at)
    {
        int64_t id;
        const cJSON *c = item(e, "content");
        GLMQ_FAIL_IF_G(!cJSON_IsString(c) || !c->valuestring[0] ||
                           !int_in(item(e, "id"), 0, MAX_RANKS, &id),
                       err, GLMQ_E_FORMAT, "'%s': added token #%d needs an id and a content",
                       path, k);
        GLMQ_FAIL_IF_G(id < n, err, GLMQ_E_UNSUPPORTED,
                       "'%s': added token '%.40s' has id %lld inside the BPE vocabulary "
                       "(0..%d); GLM-4's specials follow the ranks",
                       path, c->valuestring, (long long)id, (int)n - 1);
        int32_t s = 0;
        while (s < N_SPECIALS && strcmp(glm4_specials[s], c->valuestring)) s++;
        GLMQ_FAIL_IF_G(s < N_SPECIALS && id != n + s, err, GLMQ_E_UNSUPPORTED,
                       "'%s': special token '%s' has id %lld; GLM-4 (and glmq) number it %lld, "
                       "the %d-th after the %d ranks",
                       path, c->valuestring, (long long)id, (long long)(n + s), (int)s, (int)n);
        GLMQ_FAIL_IF_G(s == N_SPECIALS && id < n + N_SPECIALS, err, GLMQ_E_UNSUPPORTED,
                       "'%s': added token '%.40s' has id %lld, a place of GLM-4's specials", path,
                       c->valuestring, (long long)id);
        for (int i = 0; i < k; i++)
            GLMQ_FAIL_IF_G(ids[i] == id, err, GLMQ_E_FORMAT,
                           "'%s': two added tokens have id %lld", path, (long long)id);
        ids[k++] = id;
    }
fail:
    free(ids);
    return st;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static glmq_status write_ranks(const vocab_t *v, glmq_tkbuf *o, glmq_err *err)
{
    for (int32_t r = 0; r < v->n; r++) {
        const uint8_t *s = v->pool.p + v->off[r];
        const uint32_t n = v->len[r];
        GLMQ_TRY(glmq_tkbuf_reserve(o, (size_t)n / 3 * 4 + 32, err));
        for (uint32_t i = 0; i < n; i += 3) {
            const uint32_t x = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                               (i + 2 < n ? s[i + 2] : 0);
            o->p[o->n++] = (uint8_t)b64[x >> 18];
            o->p[o->n++] = (uint8_t)b64[(x >> 12) & 63];
            o->p[o->n++] = (uint8_t)(i + 1 < n ? b64[(x >> 6) & 63] : '=');
            o->p[o->n++] = (uint8_t)(i + 2 < n ? b64[x & 63] : '=');
        }
        o->n += (size_t)snprintf((char *)o->p + o->n, 16, " %d\n", (int)r);
    }
    return GLMQ_OK;
}

glmq_status glmq_hf_tokenizer_ranks(const char *json, size_t len, const char *path, uint8_t **out,
                                    size_t *out_len, int32_t *n_ranks, glmq_err *err)
{
    *out = NULL;
    *out_len = 0;
    *n_ranks = 0;
    glmq_status st = GLMQ_OK;
    vocab_t v = {0};
    glmq_tkbuf o = {0};
    cJSON *r = cJSON_ParseWithLength(json, len);
    GLMQ_FAIL_IF_G(!cJSON_IsObject(r), err, GLMQ_E_FORMAT, "'%s': not a JSON object", path);
    GLMQ_TRY_G(check_pipeline(r, path, err));
    const cJSON *m = item(r, "model");
    GLMQ_TRY_G(load_vocab(item(m, "vocab"), path, &v, err));
    GLMQ_TRY_G(check_merges(item(m, "merges"), path, &v, err));
    GLMQ_TRY_G(check_added(item(r, "added_tokens"), path, v.n, err));
    GLMQ_TRY_G(write_ranks(&v, &o, err));
    *out = o.p;
    *out_len = o.n;
    *n_ranks = v.n;
    o.p = NULL;
fail:
    glmq_tkbuf_free(&o);
    glmq_tkmap_free(&v.map);
    glmq_tkbuf_free(&v.pool);
    free(v.off);
    free(v.len);
    cJSON_Delete(r);
    return st;
}
