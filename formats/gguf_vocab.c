/*
 * gguf_vocab.c - tokenizer.ggml.* metadata for llama.cpp's `chatglm` architecture (see
 * gguf_vocab.h for what is written per family and why).
 *
 * Token texts are collected in one string pool (offsets + lengths), checked for duplicates with a
 * hash map over that pool (llama.cpp asserts that every token text is distinct), and handed to
 * the writer as pointer + length arrays.
 *
 * GLM-4 merges: for a multi-byte token of rank r, byte-pair merging of its own bytes with ranks
 * below r (lowest rank first, leftmost on ties - tiktoken's rule) ends in the parts that the
 * last merge joins (the converter's entry). Each token is merged with a heap keyed by (rank,
 * left offset), so a token of L bytes costs O(L log L) rank look-ups; then its L - 1 split
 * points are looked up (the other pairs tiktoken may merge into it). The whole vocabulary is
 * O(total bytes * log). The merges are listed in rank order, so llama.cpp's merge priority
 * (list position) orders them as the ranks do.
 *
 * Invariants: every array written has exactly cfg->vocab entries (merges: one per multi-byte
 * rank); nothing depends on hash order, so the output is the same on every run.
 */
#include "formats/gguf_vocab.h"
#include "formats/tok_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* llama.cpp token types (gguf-py TokenType; equal to SentencePiece's piece types). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

uint32_t glmq_gguf_byte_char(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    /* the other 68 bytes, in byte order: 0..32, 127..160, 173 */
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33u + (uint32_t)(b - 127);
    return 256u + 67u;
}

static void set_warn(char *warn, size_t warn_size, const char *fmt, ...) GLMQ_PRINTF(3, 4);
static void set_warn(char *warn, size_t warn_size, const char *fmt, ...)
{
    if (!warn || warn_size == 0 || warn[0]) return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(warn, warn_size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------------ */
/* a table of strings in one pool                                                              */

typedef struct {
    glmq_tkbuf pool;
    uint32_t *off, *len;
    size_t n, cap;
} strtab;

static void strtab_free(strtab *t)
{
    glmq_tkbuf_free(&t->pool);
    free(t->off);
    free(t->len);
    memset(t, 0, sizeof *t);
}

/* Start a new string at the end of the pool; its bytes are whatever is appended until the next
 * strtab_open or strtab_close. */
static glmq_status strtab_open(strtab *t, glmq_err *err)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        uint32_t *o = realloc(t->off, cap * sizeof *o);
        if (o) t->off = o;
        uint32_t *l = realloc(t->len, cap * sizeof *l);
        if (l) t->len = l;
        GLMQ_FAIL_IF(!o || !l, err, GLMQ_E_NOMEM, "gguf vocabulary: out of memory");
        t->cap = cap;
    }
    t->off[t->n] = (uint32_t)t->pool.n;
    t->len[t->n] = 0;
    t->n++;
    return GLMQ_OK;
}

static glmq_status strtab_put(strtab *t, const void *s, size_t n, glmq_err *err)
{
    GLMQ_FAIL_IF(t->pool.n + n >= UINT32_MAX, err, GLMQ_E_INVALID,
                 "gguf vocabulary: token texts exceed 4 GiB");
    GLMQ_TRY(glmq_tkbuf_put(&t->pool, s, n, err));
    t->len[t->n - 1] += (uint32_t)n;
    return GLMQ_OK;
}

static glmq_status strtab_add(strtab *t, const void *s, size_t n, glmq_err *err)
{
    GLMQ_TRY(strtab_open(t, err));
    return strtab_put(t, s, n, err);
}

/* Append bytes as GPT-2 byte-level characters (UTF-8). */
static glmq_status strtab_put_bytelevel(strtab *t, const uint8_t *s, size_t n, glmq_err *err)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t u[4];
        size_t l = glmq_utf8_encode(glmq_gguf_byte_char(s[i]), u);
        GLMQ_TRY(strtab_put(t, u, l, err));
    }
    return GLMQ_OK;
}

static glmq_status strtab_add_pad(strtab *t, int64_t id, glmq_err *err)
{
    char buf[32];
    int k = snprintf(buf, sizeof buf, "[PAD%lld]", (long long)id);
    return strtab_add(t, buf, (size_t)k, err);
}

/* Fail when two strings are equal (llama.cpp requires distinct token texts). */
static glmq_status strtab_check_unique(const strtab *t, glmq_err *err)
{
    glmq_tkmap m = {0};
    glmq_status st = GLMQ_OK;
    glmq_tkpool pv = {t->pool.p, t->off, t->len};
    GLMQ_TRY(glmq_tkmap_init(&m, (uint32_t)t->n, err));
    for (size_t i = 0; i < t->n; i++) {
        int32_t dup = glmq_tkmap_insert(&m, &pv, (int32_t)i);
        GLMQ_FAIL_IF_G(dup >= 0, err, GLMQ_E_INVALID,
                       "gguf vocabulary: ids %d and %d would have the same token text '%.*s' "
                       "(llama.cpp needs distinct texts)",
                       (int)dup, (int)i, (int)(t->len[i] > 40 ? 40 : t->len[i]),
                       (const char *)t->pool.p + t->off[i]);
    }
fail:
    glmq_tkmap_free(&m);
    return st;
}

/* Write the table as a string array. */
static glmq_status strtab_write(const strtab *t, glmq_gguf_writer *w, const char *key,
                                glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    const char **p = malloc((t->n ? t->n : 1) * sizeof *p);
    uint64_t *l = malloc((t->n ? t->n : 1) * sizeof *l);
    GLMQ_FAIL_IF_G(!p || !l, err, GLMQ_E_NOMEM, "gguf vocabulary: out of memory");
    for (size_t i = 0; i < t->n; i++) {
        p[i] = (const char *)t->pool.p + t->off[i];
        l[i] = t->len[i];
    }
    GLMQ_TRY_G(glmq_gguf_writer_add_arr_str(w, key, t->n, p, l, err));
fail:
    free(p);
    free(l);
    return st;
}

static glmq_status add_id(glmq_gguf_writer *w, const char *key, int64_t id, int64_t n_vocab,
                          glmq_err *err)
{
    if (id < 0 || id >= n_vocab) return GLMQ_OK;
    return glmq_gguf_writer_add_u32(w, key, (uint32_t)id, err);
}

/* ------------------------------------------------------------------------------------------ */
/* ChatGLM2/3: SentencePiece                                                                   */

static glmq_status add_spm(glmq_gguf_writer *w, const glmq_config *cfg, const glmq_tokenizer *tok,
                           const glmq_tok_info *info, char *warn, size_t warn_size, glmq_err *err)
{
    static const char *const k_renamed[3] = {"<unk>", "<bos>", "<eos>"};
    glmq_status st = GLMQ_OK;
    strtab names = {0};
    const int64_t nv = cfg->vocab;
    float *scores = malloc((size_t)nv * sizeof *scores);
    int32_t *types = malloc((size_t)nv * sizeof *types);
    GLMQ_FAIL_IF_G(!scores || !types, err, GLMQ_E_NOMEM, "gguf vocabulary: out of memory");

    /* Ids after the file's pieces get a score below every piece's (the converter writes 0):
     * llama.cpp's SPM tokenizer merges into any vocabulary entry, best score first, so with 0
     * the control token "eop" would win inside "Europe" or "geophysics" and split the word. */
    float low = 0.0f;
    for (int32_t id = 0; id < info->n_base; id++) {
        float sc;
        int ty;
        if (glmq_tokenizer_sp_meta(tok, id, &sc, &ty) && sc < low) low = sc;
    }
    low = low > -1e30f ? low - 1.0f : low;
    int64_t n_unused = 0;
    for (int64_t id = 0; id < nv; id++) {
        float score = 0.0f;
        int type;
        if (id < info->n_base) {
            size_t len;
            const char *s = glmq_tokenizer_piece(tok, (int32_t)id, &len);
            GLMQ_FAIL_IF_G(!s || !glmq_tokenizer_sp_meta(tok, (int32_t)id, &score, &type), err,
                           GLMQ_E_INTERNAL, "gguf vocabulary: no piece %lld", (long long)id);
            if (type == TT_UNUSED) n_unused++;
            /* the converter renames ids 0..2 (ChatGLM3's <unk> <s> </s>) */
            if (id < 3 && (type == TT_UNKNOWN || type == TT_CONTROL)) {
                s = k_renamed[id];
                len = strlen(s);
            }
            if (type == TT_USER) type = TT_NORMAL; /* the converter asks only is_unknown,
                                                     is_control, is_unused, is_byte */
            GLMQ_TRY_G(strtab_add(&names, s, len, err));
        } else if (id < info->n_vocab) {
            size_t len;
            const char *s = glmq_tokenizer_piece(tok, (int32_t)id, &len);
            GLMQ_FAIL_IF_G(!s, err, GLMQ_E_INTERNAL, "gguf vocabulary: no special %lld",
                           (long long)id);
            type = TT_CONTROL;
            score = low;
            GLMQ_TRY_G(strtab_add(&names, s, len, err));
        } else {
            type = TT_UNUSED;
            score = low;
            GLMQ_TRY_G(strtab_add_pad(&names, id, err));
        }
        scores[id] = score;
        types[id] = type;
    }
    GLMQ_TRY_G(strtab_check_unique(&names, err));

    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", err));
    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "tokenizer.ggml.pre", "chatglm-spm", err));
    GLMQ_TRY_G(strtab_write(&names, w, "tokenizer.ggml.tokens", err));
    GLMQ_TRY_G(glmq_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", (uint64_t)nv, scores, err));
    GLMQ_TRY_G(
        glmq_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", (uint64_t)nv, types, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.bos_token_id", cfg->tok_bos, nv, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.eos_token_id", cfg->tok_eos, nv, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.padding_token_id", cfg->tok_pad, nv, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0, err));
    if (!info->add_dummy_prefix)
        GLMQ_TRY_G(glmq_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", 0, err));

    /* what llama.cpp's SPM tokenizer (no normalizer; merge any vocabulary entry by score; split
     * unknown symbols into <0xXX> pieces) cannot do the way SentencePiece does */
    if (info->charsmap_size)
        set_warn(warn, warn_size,
                 "the SentencePiece normalizer '%s' rewrites text (llama.cpp applies no "
                 "SentencePiece normalizer), so llama.cpp tokenizes such text differently",
                 info->normalizer_name[0] ? info->normalizer_name : "(unnamed)");
    if (info->model != GLMQ_TOK_SP_BPE)
        set_warn(warn, warn_size,
                 "the SentencePiece model is UNIGRAM; llama.cpp tokenizes it by merging pieces "
                 "by score (BPE), so its tokenization differs");
    if (info->remove_extra_whitespaces)
        set_warn(warn, warn_size,
                 "the SentencePiece normalizer removes extra whitespace; llama.cpp keeps it, so "
                 "text with space runs tokenizes differently");
    if (!info->escape_whitespaces || info->treat_whitespace_as_suffix)
        set_warn(warn, warn_size,
                 "the SentencePiece model %s; llama.cpp always marks spaces with U+2581 as a "
                 "prefix, so its tokenization differs",
                 info->treat_whitespace_as_suffix ? "treats whitespace as a suffix"
                                                  : "does not escape whitespace");
    if (info->n_user_defined)
        set_warn(warn, warn_size,
                 "the SentencePiece model has %d user-defined pieces, which llama.cpp merges "
                 "like normal pieces, so its tokenization may differ",
                 info->n_user_defined);
    if (n_unused)
        set_warn(warn, warn_size,
                 "the SentencePiece model has %lld unused pieces, which llama.cpp does not split "
                 "back, so its tokenization may differ",
                 (long long)n_unused);
    if (!info->byte_fallback)
        set_warn(warn, warn_size,
                 "the SentencePiece model has no byte fallback; llama.cpp cannot tokenize "
                 "characters outside its pieces");
    if (info->denorm_charsmap_size)
        set_warn(warn, warn_size,
                 "the SentencePiece model has a denormalizer, which llama.cpp does not apply "
                 "when it decodes");
fail:
    strtab_free(&names);
    free(scores);
    free(types);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* GLM-4: tiktoken ranks -> byte-level BPE vocabulary and merges                               */

typedef struct {
    const glmq_tkmap *map; /* raw token bytes -> rank */
    const glmq_tkpool *pv;
    glmq_bpe bpe;          /* the parts after merge_below: p = 0, bpe.end[p], ... */
} merger;

static uint32_t rank_of(const merger *mg, const uint8_t *s, size_t n)
{
    int32_t r = glmq_tkmap_find(mg->map, mg->pv, s, n);
    return r < 0 ? UINT32_MAX : (uint32_t)r;
}

static uint32_t rank_cb(const void *mg, const uint8_t *s, size_t n) { return rank_of(mg, s, n); }

/* Merge s[0..n) (n >= 2) with ranks below max_rank; afterwards the parts are p = 0,
 * bpe.end[p], ... until n. */
static glmq_status merge_below(merger *mg, const uint8_t *s, uint32_t n, uint32_t max_rank,
                               glmq_err *err)
{
    return glmq_bpe_merge(&mg->bpe, rank_cb, mg, s, n, max_rank, err);
}

static glmq_status add_bpe(glmq_gguf_writer *w, const glmq_config *cfg, const glmq_tokenizer *tok,
                           const glmq_tok_info *info, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    strtab names = {0}, merges = {0}, raw = {0};
    glmq_tkmap map = {0};
    merger mg = {0};
    const int64_t nv = cfg->vocab;
    const int32_t nb = info->n_base;
    int32_t *types = malloc((size_t)nv * sizeof *types);
    GLMQ_FAIL_IF_G(!types, err, GLMQ_E_NOMEM, "gguf vocabulary: out of memory");

    /* the raw rank bytes in a pool of our own, and the map bytes -> rank over it */
    for (int32_t r = 0; r < nb; r++) {
        size_t len;
        const char *s = glmq_tokenizer_piece(tok, r, &len);
        GLMQ_FAIL_IF_G(!s || !len, err, GLMQ_E_INTERNAL, "gguf vocabulary: no rank %d", (int)r);
        GLMQ_TRY_G(strtab_add(&raw, s, len, err));
    }
    glmq_tkpool pv = {raw.pool.p, raw.off, raw.len};
    GLMQ_TRY_G(glmq_tkmap_init(&map, (uint32_t)nb, err));
    for (int32_t r = 0; r < nb; r++) glmq_tkmap_insert(&map, &pv, r); /* distinct (load) */
    mg.map = &map;
    mg.pv = &pv;

    for (int64_t id = 0; id < nv; id++) {
        if (id < nb) {
            const uint8_t *s = raw.pool.p + raw.off[id];
            uint32_t len = raw.len[id];
            GLMQ_TRY_G(strtab_open(&names, err));
            GLMQ_TRY_G(strtab_put_bytelevel(&names, s, len, err));
            types[id] = TT_NORMAL;
            if (len < 2) continue;
            GLMQ_TRY_G(merge_below(&mg, s, len, (uint32_t)id, err));
            uint32_t parts = 0;
            GLMQ_TRY_G(strtab_open(&merges, err));
            for (uint32_t p = 0; p < len; p = mg.bpe.end[p], parts++) {
                if (p) GLMQ_TRY_G(strtab_put(&merges, " ", 1, err));
                GLMQ_TRY_G(strtab_put_bytelevel(&merges, s + p, mg.bpe.end[p] - p, err));
            }
            GLMQ_FAIL_IF_G(parts < 2, err, GLMQ_E_INTERNAL,
                           "gguf vocabulary: rank %lld is reachable from lower ranks alone",
                           (long long)id);
            /* every other split of the token into two tokens (tiktoken merges any adjacent
             * pair whose bytes together are a token, by that token's rank) */
            for (uint32_t k = 1; k < len; k++) {
                if (parts == 2 && k == mg.bpe.end[0]) continue; /* the entry above */
                if (rank_of(&mg, s, k) == UINT32_MAX || rank_of(&mg, s + k, len - k) == UINT32_MAX)
                    continue;
                GLMQ_TRY_G(strtab_open(&merges, err));
                GLMQ_TRY_G(strtab_put_bytelevel(&merges, s, k, err));
                GLMQ_TRY_G(strtab_put(&merges, " ", 1, err));
                GLMQ_TRY_G(strtab_put_bytelevel(&merges, s + k, len - k, err));
            }
        } else if (id < info->n_vocab) {
            size_t len;
            const char *s = glmq_tokenizer_piece(tok, (int32_t)id, &len);
            GLMQ_FAIL_IF_G(!s, err, GLMQ_E_INTERNAL, "gguf vocabulary: no special %lld",
                           (long long)id);
            GLMQ_TRY_G(strtab_add(&names, s, len, err));
            types[id] = TT_CONTROL;
        } else {
            GLMQ_TRY_G(strtab_add_pad(&names, id, err));
            types[id] = TT_UNUSED;
        }
    }
    GLMQ_TRY_G(strtab_check_unique(&names, err));

    int32_t eot = -1, eos_txt = -1;
    glmq_err e2;
    if (glmq_tokenizer_special(tok, "<|endoftext|>", &eos_txt, &e2) != GLMQ_OK) eos_txt = -1;
    if (glmq_tokenizer_special(tok, "<|user|>", &eot, &e2) != GLMQ_OK) eot = -1;
    int64_t eos = cfg->tok_eos >= 0 && cfg->tok_eos < nv ? cfg->tok_eos : eos_txt;

    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", err));
    /* not the converter's "chatglm-bpe": same regex, but whole-chunk look-up (gguf_vocab.h) */
    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "tokenizer.ggml.pre", "llama-bpe", err));
    GLMQ_TRY_G(strtab_write(&names, w, "tokenizer.ggml.tokens", err));
    GLMQ_TRY_G(
        glmq_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", (uint64_t)nv, types, err));
    GLMQ_TRY_G(strtab_write(&merges, w, "tokenizer.ggml.merges", err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.padding_token_id", cfg->tok_pad, nv, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.eos_token_id", eos, nv, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.eot_token_id", eot, nv, err));
    GLMQ_TRY_G(add_id(w, "tokenizer.ggml.unknown_token_id", eos_txt, nv, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0, err));
fail:
    strtab_free(&names);
    strtab_free(&merges);
    strtab_free(&raw);
    glmq_tkmap_free(&map);
    glmq_bpe_free(&mg.bpe);
    free(types);
    return st;
}

/* ------------------------------------------------------------------------------------------ */

glmq_status glmq_gguf_add_vocab(glmq_gguf_writer *w, const glmq_config *cfg,
                                const glmq_tokenizer *tok, char *warn, size_t warn_size,
                                glmq_err *err)
{
    GLMQ_FAIL_IF(!w || !cfg || !tok || (!warn && warn_size), err, GLMQ_E_INVALID,
                 "gguf vocabulary: NULL argument");
    if (warn_size) warn[0] = 0;
    glmq_tok_info info;
    glmq_tokenizer_info(tok, &info);
    GLMQ_FAIL_IF(cfg->arch != GLMQ_ARCH_CHATGLM2 || info.family == GLMQ_TOK_CHATGLM1, err,
                 GLMQ_E_UNSUPPORTED,
                 "gguf vocabulary: ChatGLM-6B (v1) has no llama.cpp architecture");
    GLMQ_FAIL_IF(info.id_offset != 0, err, GLMQ_E_UNSUPPORTED,
                 "gguf vocabulary: a tokenizer with an id offset (%d image tokens) has no "
                 "llama.cpp vocabulary",
                 (int)info.id_offset);
    GLMQ_FAIL_IF(cfg->vocab < info.n_vocab || cfg->vocab > INT32_MAX, err, GLMQ_E_INVALID,
                 "gguf vocabulary: the config's vocabulary (%lld) is smaller than the "
                 "tokenizer's (%d ids)",
                 (long long)cfg->vocab, (int)info.n_vocab);
    glmq_status st = info.model == GLMQ_TOK_TIKTOKEN
                         ? add_bpe(w, cfg, tok, &info, err)
                         : add_spm(w, cfg, tok, &info, warn, warn_size, err);
    if (st != GLMQ_OK && warn_size) warn[0] = 0;
    return st;
}
