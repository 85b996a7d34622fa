/*
 * check_vocab_peer.c - formats/gguf_vocab.c judged by the real llama.cpp: a vocab-only GGUF
 * (architecture chatglm, glmq_gguf_add_vocab's tokenizer.ggml.* keys) is loaded by llama.cpp,
 * which tokenizes texts (node-llama-cpp through tests/peer/llama_tokenize.mjs: no BOS, special
 * text not parsed) and renders every id as a piece (llama_token_to_piece of the prebuilt
 * libllama, loaded with dlopen). Both are compared with glmq's own tokenizer:
 *   (a) the real ChatGLM3-6B tokenizer.model (identity normalizer): ids equal on every text;
 *   (b) the real GLM-4-9B-chat rank file (BPE vocabulary and merges derived from the ranks):
 *       ids equal on every text (llama.cpp's detokenization is not compared: its BPE
 *       "clean_spaces" pass drops the space of " ." " ," " 's" ..., which GLM-4 keeps);
 *   (c) glm2-tiny's own SentencePiece model: whatever llama.cpp does is reported; where it
 *       differs, glmq_gguf_add_vocab must have warned.
 * Pieces: for every id, llama.cpp's piece (special = true) equals what glmq's decoder puts out
 * for it (SentencePiece: the piece with U+2581 as a space, a byte piece's byte; tiktoken: the
 * rank's bytes), control tokens their text, padding ids nothing.
 *
 * Inputs: GLMQ_UPSTREAM (the real tokenizers and configs, shared/upstream beside the checkout;
 * the cases that need it are skipped with a message when it is absent, as in check_tokenizer),
 * GLMQ_SAMPLES, and the peer (GLMQ_PEER_LIBDIR, GLMQ_NODE, GLMQ_PEER_SCRIPTS,
 * GLMQ_PEER_NODE_MODULES; this file is built only when CMake found it).
 */
#include "testutil.h"
#include "glm4_tiny.h"
#include "core/atomic.h"
#include "formats/config.h"
#include "formats/gguf_vocab.h"
#include "formats/tokenizer.h"
#include "formats/tok_common.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* the peer's C API (include/llama.h of the pinned release), resolved with dlopen              */

/* struct llama_model_params of the pinned llama.cpp; checked against its defaults below. */
typedef struct {
    void *devices;
    const void *tensor_buft_overrides;
    int32_t n_gpu_layers;
    int32_t split_mode;
    int32_t load_mode;
    int32_t lazy_mode;
    int32_t main_gpu;
    const float *tensor_split;
    void *progress_callback;
    void *progress_callback_user_data;
    const void *kv_overrides;
    bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
} peer_model_params;
_Static_assert(sizeof(peer_model_params) == 80, "llama_model_params is 80 bytes on LP64");

typedef struct {
    void *lib;
    void (*backend_init)(void);
    void (*log_set)(void (*cb)(int, const char *, void *), void *ud);
    peer_model_params (*default_params)(void);
    void *(*load)(const char *path, peer_model_params p);
    void (*model_free)(void *m);
    const void *(*get_vocab)(const void *m);
    int32_t (*n_tokens)(const void *v);
    int32_t (*to_piece)(const void *v, int32_t id, char *buf, int32_t len, int32_t lstrip,
                        bool special);
} peer_api;

static void quiet_log(int level, const char *text, void *ud)
{
    (void)level;
    (void)text;
    (void)ud;
}

static void peer_open(peer_api *a)
{
    const char *dir = getenv("GLMQ_PEER_LIBDIR");
    ck_assert_msg(dir != NULL, "GLMQ_PEER_LIBDIR is not set");
    char *p = tu_path(dir, "libllama.v0.5.0.so");
    memset(a, 0, sizeof *a);
    a->lib = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(a->lib != NULL, "dlopen %s: %s", p, dlerror());
    free(p);
#define SYM(f, name)                                                                           \
    do {                                                                                       \
        *(void **)&a->f = dlsym(a->lib, name);                                                 \
        ck_assert_msg(a->f != NULL, "libllama has no %s", name);                               \
    } while (0)
    SYM(backend_init, "llama_backend_init");
    SYM(log_set, "llama_log_set");
    SYM(default_params, "llama_model_default_params");
    SYM(load, "llama_model_load_from_file");
    SYM(model_free, "llama_model_free");
    SYM(get_vocab, "llama_model_get_vocab");
    SYM(n_tokens, "llama_vocab_n_tokens");
    SYM(to_piece, "llama_token_to_piece");
#undef SYM
    a->log_set(quiet_log, NULL);
    a->backend_init();
}

/* Load a GGUF vocabulary-only; the struct layout is checked through the library's defaults. */
static void *peer_load_vocab(const peer_api *a, const char *path)
{
    peer_model_params mp = a->default_params();
    ck_assert_msg(mp.n_gpu_layers == -1 && mp.split_mode == 1 && mp.load_mode == -1 &&
                      mp.lazy_mode == 1 && mp.main_gpu == 0 && !mp.vocab_only &&
                      mp.use_extra_bufts && !mp.no_alloc,
                  "llama_model_params of the peer does not have the expected layout");
    mp.vocab_only = true;
    void *m = a->load(path, mp);
    ck_assert_msg(m != NULL, "llama.cpp refused to load %s", path);
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* fixtures: a model's config + tokenizer, and the vocab-only GGUF of it                       */

typedef struct {
    glmq_config cfg;
    glmq_tokenizer *tok;
    glmq_tok_info info;
} model_tok;

/* family: GLMQ_TOK_CHATGLM3 (what glmq loads for ChatGLM2/3), GLMQ_TOK_GLM4, or GLMQ_TOK_PLAIN
 * for the test models of tests/data/tokenizer (whose own control pieces would collide with the
 * family specials); vocab: 0 = the config's. */
static void load_model_tok(const char *dir, const char *tok_path, glmq_tok_family family,
                           int64_t vocab, model_tok *mt)
{
    glmq_err err = {0};
    char *cp = tu_path(dir, "config.json");
    char *tp = tok_path ? strdup(tok_path) : tu_path(dir, "tokenizer.model");
    size_t n;
    uint8_t *json = tu_read_file(cp, &n);
    ck_assert_msg(json != NULL, "cannot read %s", cp);
    ck_assert_msg(glmq_config_parse((const char *)json, n, NULL, 0, cp, &mt->cfg, &err) == GLMQ_OK,
                  "%s", err.msg);
    glmq_tok_glm g;
    glmq_tok_glm_init(&g, family);
    ck_assert_msg(glmq_tokenizer_open(tp, &g, &mt->tok, &err) == GLMQ_OK, "%s", err.msg);
    glmq_tokenizer_info(mt->tok, &mt->info);
    glmq_config_set_special(&mt->cfg, mt->info.n_base, family == GLMQ_TOK_GLM4);
    if (vocab) mt->cfg.vocab = vocab;
    free(json);
    free(cp);
    free(tp);
}

/* Write `path`: general.architecture chatglm, the usual chatglm hyper-parameters, and the
 * vocabulary. Returns glmq_gguf_add_vocab's status; warn receives its warning. */
static glmq_status write_vocab_gguf(const char *path, const model_tok *mt, char *warn,
                                    size_t warn_size, glmq_err *err)
{
    const glmq_config *c = &mt->cfg;
    glmq_gguf_writer *w = NULL;
    glmq_atomic_file *af = NULL;
    glmq_status st;
    GLMQ_TRY_G(glmq_gguf_writer_new(GLMQ_GGUF_DEFAULT_ALIGNMENT, &w, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", err));
    GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "general.name", "glmq vocabulary test", err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.context_length", (uint32_t)c->seq_length, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.embedding_length", (uint32_t)c->hidden, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.feed_forward_length", (uint32_t)c->ffn, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.block_count", (uint32_t)c->n_layers, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count", (uint32_t)c->n_heads,
                                        err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count_kv",
                                        (uint32_t)c->n_kv_groups, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_f32(w, "chatglm.attention.layer_norm_rms_epsilon",
                                        (float)c->norm_eps, err));
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "chatglm.rope.dimension_count",
                                        (uint32_t)(c->head_dim / 2), err));
    GLMQ_TRY_G(glmq_gguf_add_vocab(w, c, mt->tok, warn, warn_size, err));
    GLMQ_TRY_G(glmq_atomic_open(path, &af, err));
    GLMQ_TRY_G(glmq_gguf_writer_begin(w, af, err));
    GLMQ_TRY_G(glmq_gguf_writer_end(w, err));
    st = glmq_atomic_commit(af, err);
    af = NULL;
fail:
    glmq_atomic_discard(af);
    glmq_gguf_writer_free(w);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* the texts                                                                                   */

typedef struct {
    char **s;
    size_t *n;
    size_t count, cap;
} texts;

static void texts_add(texts *t, const char *s, size_t n)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->s = realloc(t->s, t->cap * sizeof *t->s);
        t->n = realloc(t->n, t->cap * sizeof *t->n);
    }
    t->s[t->count] = malloc(n + 1);
    memcpy(t->s[t->count], s, n);
    t->s[t->count][n] = 0;
    t->n[t->count++] = n;
}

static void texts_free(texts *t)
{
    for (size_t i = 0; i < t->count; i++) free(t->s[i]);
    free(t->s);
    free(t->n);
}

/* A sample text whole, line by line, and in chunks of about `chunk` bytes (cut at a UTF-8
 * character boundary, so mid-word and mid-line). */
static void add_file(texts *t, const char *base, const char *name, size_t chunk)
{
    char *dir = strcmp(base, tu_samples()) ? strdup(base) : tu_path(base, "text");
    char *p = tu_path(dir, name);
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    ck_assert_msg(b != NULL, "cannot read %s", p);
    texts_add(t, (const char *)b, n);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && b[j] != '\n') j++;
        if (j > i) texts_add(t, (const char *)b + i, j - i);
        i = j + 1;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + chunk < n ? i + chunk : n;
        while (j < n && (b[j] & 0xC0) == 0x80) j++;
        texts_add(t, (const char *)b + i, j - i);
        i = j;
    }
    free(b);
    free(p);
    free(dir);
}

static void make_texts(texts *t)
{
    static const char *const extra[] = {
        "Hello world",
        " Hello  world ",
        "你好，世界！今天天气很好。",
        "我想在apple工作1314151天～",
        "日本語のテキストと한국어 텍스트",
        "🦙🚀 emoji 😶\u200d🌫️ ✅ 👨\u200d👩\u200d👧",
        "   ",
        " ",
        "\n",
        "\n\n\n",
        "\t\ttabs\tand   spaces    ",
        "a  b   c    d     e",
        "line one\nline two\r\nline three\n\n  indented",
        "don't I'll WE'VE they'RE it'S she'D",
        "3 33 333 3333 33333 3.14159 1,000,000",
        "------======= ''''''```````\"\"\"\"......!!!!!!??????",
        "<|user|> [gMASK] sop <eop> <unk> <s> </s>",
        "x",
        "ab",
        "\u00a0nbsp\u3000ideographic\u2002en-space",
        "caf\u00e9 nai\u0308ve \u00c5ngstr\u00f6m",
        "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３ ﬁ ﬂ ½ ①",
        "Ελληνικά русский العربية עברית हिन्दी ไทย",
        "people Aesop soprano isopropyl Europe geophysics peoples stop shop sopping eopxyz Sop EOP",
        "Geoplanar theopathy sopwith eopinion osop xeop zsop",
        "我在 北京 工作， 如果 因为 美国 公司 参考资料 内容简介 成立时间",
        "Visit 北京 and 上海 in 2024; 导演 演员 游戏 目录",
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        texts_add(t, extra[i], strlen(extra[i]));
    add_file(t, tu_samples(), "tricky.txt", 97);
    add_file(t, tu_samples(), "eval_en.txt", 701);
    add_file(t, tu_samples(), "eval_zh.txt", 401);
    add_file(t, tu_testdata(), "tokenizer/eval.txt", 4001); /* held-out English + Chinese */
}

/* "Vocabulary soup": texts made of random pieces of the model's own vocabulary (those that are
 * whole UTF-8 on their own; U+2581 as a space), which puts every kind of token next to every
 * other - the merge orders of the two implementations meet on far more pairs than in prose. */
static void add_soup(texts *t, const glmq_tokenizer *tok, int32_t n_base, int n_texts,
                     int per_text)
{
    uint64_t seed = 0x736F7570u; /* "soup" */
    char *buf = malloc((size_t)per_text * 64 + 1);
    for (int k = 0; k < n_texts; k++) {
        size_t o = 0;
        for (int i = 0; i < per_text;) {
            int32_t id = (int32_t)(tu_splitmix64(&seed) % (uint64_t)n_base);
            size_t l;
            const char *p = glmq_tokenizer_piece(tok, id, &l);
            if (!p || l == 0 || l > 60) continue;
            size_t j = 0, ok = 1;
            while (j < l && ok) { /* whole UTF-8 characters only, no byte pieces */
                size_t cl;
                ok = glmq_utf8_decode((const uint8_t *)p + j, l - j, &cl) != GLMQ_UTF8_INVALID;
                j += cl;
            }
            if (!ok || (l == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x')) continue;
            for (j = 0; j < l;) {
                if (j + 3 <= l && !memcmp(p + j, "\xE2\x96\x81", 3)) {
                    buf[o++] = ' ';
                    j += 3;
                } else {
                    buf[o++] = p[j++];
                }
            }
            i++;
        }
        texts_add(t, buf, o);
    }
    free(buf);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((uint8_t)s[i] & 0xC0) != 0x80;
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* the comparisons                                                                             */

typedef struct {
    size_t texts, chars, tokens;    /* compared */
    size_t id_mismatch;             /* texts whose ids differ */
    size_t ctl_only;                /* ... only by llama.cpp forming a family special from
                                       glmq's adjacent pieces (see canon_ctl) */
    size_t detok_mismatch;          /* texts whose llama.cpp detokenization != glmq's decoding */
    size_t pieces, piece_mismatch;  /* ids compared / differing */
    char first[512];                /* first id mismatch, described */
} report;

/* glmq's ids with every run of 2..4 adjacent pieces whose text together is a family special's
 * text ("e" "op" -> "eop") replaced by that special: what llama.cpp's SPM tokenizer does, as it
 * merges adjacent symbols into any vocabulary entry (the specials scored last, gguf_vocab.h). */
static void canon_ctl(const model_tok *mt, const glmq_ids *in, glmq_ids *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        int32_t hit = -1;
        size_t take = 1;
        for (size_t k = 2; k <= 4 && i + k <= in->n && hit < 0; k++) {
            char buf[64];
            size_t bl = 0, l;
            int ok = 1;
            for (size_t j = 0; j < k && ok; j++) {
                const char *p = glmq_tokenizer_piece(mt->tok, in->ids[i + j], &l);
                ok = p && bl + l < sizeof buf;
                if (ok) memcpy(buf + bl, p, l), bl += l;
            }
            for (int32_t sp = mt->info.n_base; ok && sp < mt->info.n_vocab; sp++) {
                const char *p = glmq_tokenizer_piece(mt->tok, sp, &l);
                if (l == bl && !memcmp(p, buf, l)) {
                    hit = sp;
                    take = k;
                    break;
                }
            }
        }
        glmq_ids_push(out, hit >= 0 ? hit : in->ids[i], NULL);
        i += take;
    }
}

/* Tokenize every text with llama.cpp (node) and with glmq; fill the counts. */
static void compare_tokenize(const char *gguf, const model_tok *mt, const texts *tx,
                             const char *dir, report *r)
{
    char *tb = tu_path(dir, "texts.bin");
    char *ob = tu_path(dir, "llama_ids.txt");
    FILE *f = fopen(tb, "wb");
    ck_assert(f != NULL);
    for (size_t i = 0; i < tx->count; i++) {
        uint8_t len[4] = {(uint8_t)tx->n[i], (uint8_t)(tx->n[i] >> 8), (uint8_t)(tx->n[i] >> 16),
                          (uint8_t)(tx->n[i] >> 24)};
        ck_assert(fwrite(len, 1, 4, f) == 4 && fwrite(tx->s[i], 1, tx->n[i], f) == tx->n[i]);
    }
    ck_assert(fclose(f) == 0);
    char *out = NULL;
    int rc = tu_run(&out, "'%s' '%s/llama_tokenize.mjs' '%s' '%s' '%s'", getenv("GLMQ_NODE"),
                    getenv("GLMQ_PEER_SCRIPTS"), gguf, tb, ob);
    ck_assert_msg(rc == 0, "llama_tokenize.mjs failed (%d): %s", rc, out ? out : "");
    free(out);
    size_t n;
    char *res = (char *)tu_read_file(ob, &n);
    ck_assert(res != NULL);

    char *line = res;
    for (size_t i = 0; i < tx->count; i++) {
        ck_assert_msg(line && *line, "llama_tokenize.mjs: no line for text %zu", i);
        char *eol = strchr(line, '\n');
        ck_assert(eol != NULL);
        *eol = 0;
        char *tab = strchr(line, '\t');
        ck_assert(tab != NULL);
        *tab = 0;
        /* llama.cpp's ids */
        glmq_ids lid = {0};
        for (char *p = line; *p;) {
            char *e;
            long v = strtol(p, &e, 10);
            ck_assert(e != p);
            glmq_ids_push(&lid, (int32_t)v, NULL);
            p = e;
            while (*p == ' ') p++;
        }
        /* glmq's ids */
        glmq_ids gid = {0};
        glmq_err err = {0};
        ck_assert_msg(glmq_tokenizer_encode(mt->tok, tx->s[i], tx->n[i], &gid, &err) == GLMQ_OK,
                      "%s", err.msg);
        r->texts++;
        r->chars += utf8_chars(tx->s[i], tx->n[i]);
        r->tokens += gid.n;
        int same = gid.n == lid.n && (gid.n == 0 || !memcmp(gid.ids, lid.ids, gid.n * 4));
        if (!same && mt->info.model != GLMQ_TOK_TIKTOKEN) {
            glmq_ids cid = {0};
            canon_ctl(mt, &gid, &cid);
            if (cid.n == lid.n && !memcmp(cid.ids, lid.ids, cid.n * 4)) r->ctl_only++;
            glmq_ids_free(&cid);
        }
        if (!same) {
            if (!r->id_mismatch) {
                size_t k = 0;
                while (k < gid.n && k < lid.n && gid.ids[k] == lid.ids[k]) k++;
                snprintf(r->first, sizeof r->first,
                         "text %zu (%zu bytes, '%.40s'): glmq %zu ids, llama.cpp %zu, first "
                         "difference at %zu: glmq %d, llama.cpp %d",
                         i, tx->n[i], tx->s[i], gid.n, lid.n, k, k < gid.n ? gid.ids[k] : -1,
                         k < lid.n ? lid.ids[k] : -1);
            }
            r->id_mismatch++;
            if (getenv("GLMQ_VOCAB_VERBOSE")) {
                fprintf(stderr, "mismatch text %zu '%.*s'\n glmq :", i, (int)tx->n[i], tx->s[i]);
                for (size_t k = 0; k < gid.n; k++) fprintf(stderr, " %d", gid.ids[k]);
                fprintf(stderr, "\n llama:");
                for (size_t k = 0; k < lid.n; k++) fprintf(stderr, " %d", lid.ids[k]);
                fprintf(stderr, "\n");
            }
        }
        /* llama.cpp's detokenization of its ids vs glmq's decoding of the same ids */
        size_t hl = strlen(tab + 1);
        char *dt = malloc(hl / 2 + 1);
        for (size_t k = 0; k < hl / 2; k++) {
            unsigned v;
            sscanf(tab + 1 + 2 * k, "%2x", &v);
            dt[k] = (char)v;
        }
        char *gd = NULL;
        size_t gl = 0;
        ck_assert_msg(glmq_tokenizer_decode(mt->tok, lid.ids, lid.n, &gd, &gl, &err) == GLMQ_OK,
                      "%s", err.msg);
        if (gl != hl / 2 || memcmp(gd, dt, gl)) r->detok_mismatch++;
        free(gd);
        free(dt);
        glmq_ids_free(&lid);
        glmq_ids_free(&gid);
        line = eol + 1;
    }
    free(res);
    free(tb);
    free(ob);
}

/* What glmq's decoder puts out for one id, as llama.cpp's token_to_piece(special = true)
 * renders it: see the top of the file. */
static size_t expected_piece(const model_tok *mt, int32_t id, char *buf, size_t cap)
{
    static const char *const k_renamed[3] = {"<unk>", "<bos>", "<eos>"};
    size_t len = 0;
    if (id >= mt->info.n_vocab) return 0; /* [PADn]: UNUSED, rendered as nothing */
    const char *s = glmq_tokenizer_piece(mt->tok, id, &len);
    ck_assert(s != NULL && len < cap);
    if (mt->info.model == GLMQ_TOK_TIKTOKEN || id >= mt->info.n_base) {
        memcpy(buf, s, len);
        return len;
    }
    float score;
    int type;
    ck_assert(glmq_tokenizer_sp_meta(mt->tok, id, &score, &type));
    switch (type) {
    case 6: { /* BYTE: <0xXX> */
        unsigned v;
        ck_assert(len == 6 && sscanf(s, "<0x%2X>", &v) == 1);
        buf[0] = (char)v;
        return 1;
    }
    case 2:
    case 3: /* UNKNOWN, CONTROL: their text (ids 0..2 as the converter renames them) */
        if (id < 3) s = k_renamed[id], len = strlen(s);
        memcpy(buf, s, len);
        return len;
    case 5: return 0; /* UNUSED */
    default: {        /* NORMAL, USER_DEFINED: U+2581 -> ' ' */
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            if (i + 3 <= len && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                buf[o++] = ' ';
                i += 3;
            } else {
                buf[o++] = s[i++];
            }
        }
        return o;
    }
    }
}

static void compare_pieces(const char *gguf, const model_tok *mt, report *r)
{
    peer_api a;
    peer_open(&a);
    void *m = peer_load_vocab(&a, gguf);
    const void *v = a.get_vocab(m);
    ck_assert_int_eq(a.n_tokens(v), (int)mt->cfg.vocab);
    char lp[1024], gp[1024];
    for (int32_t id = 0; id < (int32_t)mt->cfg.vocab; id++) {
        int32_t ln = a.to_piece(v, id, lp, (int32_t)sizeof lp, 0, true);
        ck_assert_msg(ln >= 0, "llama_token_to_piece(%d) = %d", id, ln);
        size_t gn = expected_piece(mt, id, gp, sizeof gp);
        r->pieces++;
        if ((size_t)ln != gn || memcmp(lp, gp, gn)) {
            if (r->piece_mismatch < 5)
                fprintf(stderr, "piece of id %d: llama.cpp '%.*s' (%d bytes), glmq '%.*s'\n", id,
                        ln, lp, ln, (int)gn, gp);
            r->piece_mismatch++;
        }
    }
    a.model_free(m);
    dlclose(a.lib);
}

static void print_report(const char *what, const report *r, const char *warn)
{
    fprintf(stderr,
            "%s: %zu texts, %zu characters, %zu glmq tokens compared; %zu texts with other ids "
            "(%zu of them only where llama.cpp forms a special token from plain text)%s%s; "
            "%zu texts whose llama.cpp detokenization differs from glmq's decoding; %zu/%zu "
            "pieces differ; export warning: %s\n",
            what, r->texts, r->chars, r->tokens, r->id_mismatch, r->ctl_only,
            r->id_mismatch ? ", first: " : "",
            r->id_mismatch ? r->first : "", r->detok_mismatch, r->piece_mismatch, r->pieces,
            warn[0] ? warn : "(none)");
}

/* Run the whole judgement on one model directory. */
static void judge(const char *what, const char *model_dir, const char *tok_path,
                  glmq_tok_family family, int64_t vocab, report *r, char *warn, size_t warn_size)
{
    model_tok mt;
    load_model_tok(model_dir, tok_path, family, vocab, &mt);
    char *dir = tu_mkdtemp();
    char *gguf = tu_path(dir, "vocab.gguf");
    glmq_err err = {0};
    ck_assert_msg(write_vocab_gguf(gguf, &mt, warn, warn_size, &err) == GLMQ_OK, "%s", err.msg);
    texts tx = {0};
    make_texts(&tx);
    add_soup(&tx, mt.tok, mt.info.n_base, 40, 300);
    memset(r, 0, sizeof *r);
    compare_tokenize(gguf, &mt, &tx, dir, r);
    compare_pieces(gguf, &mt, r);
    print_report(what, r, warn);
    texts_free(&tx);
    glmq_tokenizer_free(mt.tok);
    tu_rmtree(dir);
    free(gguf);
    free(dir);
}

static char *upstream(const char *model)
{
    const char *u = getenv("GLMQ_UPSTREAM");
    if (!u) return NULL;
    char *p = tu_path(u, model);
    char *t = tu_path(p, "tokenizer.model");
    int ok = tu_file_exists(t);
    free(t);
    if (!ok) {
        free(p);
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* tests                                                                                       */

START_TEST(test_chatglm3_real)
{
    char *d = upstream("chatglm3-6b");
    if (!d) {
        fprintf(stderr, "check_vocab_peer: GLMQ_UPSTREAM/chatglm3-6b absent, case (a) skipped\n");
        return;
    }
    report r;
    char warn[256];
    judge("ChatGLM3-6B tokenizer.model", d, NULL, GLMQ_TOK_CHATGLM3, 0, &r, warn, sizeof warn);
    ck_assert_msg(warn[0] == 0, "unexpected export warning: %s", warn);
    /* equal, except where the text spells a control token (tricky.txt's "sop <sop>") */
    ck_assert_msg(r.id_mismatch == r.ctl_only, "%zu texts tokenized differently; %s",
                  r.id_mismatch - r.ctl_only, r.first);
    ck_assert_msg(r.id_mismatch < r.texts / 10, "too many texts spell a special token");
    ck_assert_msg(r.detok_mismatch == 0, "%zu detokenizations differ", r.detok_mismatch);
    ck_assert_msg(r.piece_mismatch == 0, "%zu pieces differ", r.piece_mismatch);
    ck_assert(r.tokens > 2000);
    free(d);
}
END_TEST

START_TEST(test_glm4_real)
{
    char *d = upstream("glm-4-9b-chat");
    if (!d) {
        fprintf(stderr, "check_vocab_peer: GLMQ_UPSTREAM/glm-4-9b-chat absent, case (b) skipped\n");
        return;
    }
    report r;
    char warn[256];
    judge("GLM-4-9B-chat tokenizer.model", d, NULL, GLMQ_TOK_GLM4, 0, &r, warn, sizeof warn);
    ck_assert_msg(warn[0] == 0, "unexpected export warning: %s", warn);
    ck_assert_msg(r.id_mismatch == 0, "%zu texts tokenized differently; %s", r.id_mismatch,
                  r.first);
    ck_assert_msg(r.piece_mismatch == 0, "%zu pieces differ", r.piece_mismatch);
    ck_assert(r.tokens > 2000);
    free(d);
}
END_TEST

/* glm2-tiny's own model: identity-normalized BPE with byte fallback like ChatGLM2/3, so no
 * warning and the same result as (a). */
START_TEST(test_glm2_tiny)
{
    char *d = tu_sample_path("glm2-tiny", "st");
    report r;
    char warn[256];
    judge("glm2-tiny tokenizer.model", d, NULL, GLMQ_TOK_CHATGLM3, 0, &r, warn, sizeof warn);
    ck_assert_msg(r.id_mismatch == r.ctl_only || warn[0] != 0,
                  "llama.cpp tokenizes %zu texts differently and the export did not warn; %s",
                  r.id_mismatch - r.ctl_only, r.first);
    ck_assert_msg(r.piece_mismatch == 0, "%zu pieces differ", r.piece_mismatch);
    free(d);
}
END_TEST

/* An NFKC model (tests/data/tokenizer/sp_unigram.model: nmt_nfkc charsmap, UNIGRAM, ice_text
 * style): the export warns, and llama.cpp indeed tokenizes differently. */
START_TEST(test_nfkc_warns)
{
    char *d = tu_sample_path("glm2-tiny", "st");
    char *td = tu_path(tu_testdata(), "tokenizer");
    char *tp = tu_path(td, "sp_unigram.model");
    report r;
    char warn[256];
    judge("sp_unigram.model (nmt_nfkc)", d, tp, GLMQ_TOK_PLAIN, 2048, &r, warn, sizeof warn);
    ck_assert_msg(strstr(warn, "normalizer 'nmt_nfkc'") != NULL, "warning: '%s'", warn);
    ck_assert_msg(r.id_mismatch > r.ctl_only, "llama.cpp reproduced an NFKC model?");
    free(tp);
    free(td);
    free(d);
}
END_TEST

/* The warning of each SentencePiece setting llama.cpp cannot follow, and the refusals (no
 * peer needed: the metadata is written into a writer that is never begun). */
static void warn_of(const char *model, char *warn, size_t ws)
{
    model_tok mt;
    char *d = tu_sample_path("glm2-tiny", "st");
    char *td = tu_path(tu_testdata(), "tokenizer");
    char *tp = tu_path(td, model);
    load_model_tok(d, tp, GLMQ_TOK_PLAIN, 2048, &mt);
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert(glmq_gguf_writer_new(32, &w, &err) == GLMQ_OK);
    ck_assert_msg(glmq_gguf_add_vocab(w, &mt.cfg, mt.tok, warn, ws, &err) == GLMQ_OK, "%s",
                  err.msg);
    glmq_gguf_writer_free(w);
    glmq_tokenizer_free(mt.tok);
    free(tp);
    free(td);
    free(d);
}

START_TEST(test_warnings_and_refusals)
{
    char warn[256];
    warn_of("sp_bpe_noescape.model", warn, sizeof warn);
    ck_assert_msg(strstr(warn, "removes extra whitespace") != NULL, "%s", warn);
    warn_of("sp_bpe_suffix.model", warn, sizeof warn);
    ck_assert_msg(strstr(warn, "whitespace as a suffix") != NULL, "%s", warn);
    warn_of("sp_bpe.model", warn, sizeof warn);
    ck_assert_msg(strstr(warn, "2 user-defined pieces") != NULL, "%s", warn);
    warn_of("sp_tiny_ud.model", warn, sizeof warn);
    ck_assert_msg(strstr(warn, "UNIGRAM") != NULL, "%s", warn);
    warn_of("sp_tiny.model", warn, sizeof warn);
    ck_assert_msg(strstr(warn, "nmt_nfkc") != NULL, "%s", warn);

    /* the config's vocabulary must hold the tokenizer's; v1 has no llama.cpp architecture */
    model_tok mt;
    char *d = tu_sample_path("glm2-tiny", "st");
    load_model_tok(d, NULL, GLMQ_TOK_CHATGLM3, 0, &mt);
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert(glmq_gguf_writer_new(32, &w, &err) == GLMQ_OK);
    glmq_config c = mt.cfg;
    c.vocab = mt.info.n_vocab - 1;
    ck_assert_int_eq(glmq_gguf_add_vocab(w, &c, mt.tok, warn, sizeof warn, &err), GLMQ_E_INVALID);
    ck_assert_msg(strstr(err.msg, "smaller") != NULL, "%s", err.msg);
    c = mt.cfg;
    c.arch = GLMQ_ARCH_CHATGLM1;
    ck_assert_int_eq(glmq_gguf_add_vocab(w, &c, mt.tok, warn, sizeof warn, &err),
                     GLMQ_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "no llama.cpp architecture") != NULL, "%s", err.msg);
    /* the caller wrote a tokenizer key already: the writer refuses the duplicate */
    ck_assert(glmq_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", &err) == GLMQ_OK);
    ck_assert_int_ne(glmq_gguf_add_vocab(w, &mt.cfg, mt.tok, warn, sizeof warn, &err), GLMQ_OK);
    ck_assert_msg(strstr(err.msg, "tokenizer.ggml.model") != NULL, "%s", err.msg);
    glmq_gguf_writer_free(w);
    glmq_tokenizer_free(mt.tok);
    free(d);
}
END_TEST

/* GPT-2's byte <-> unicode map, rebuilt from its definition (printable bytes map to themselves,
 * the others to 256, 257, ... in byte order). */
START_TEST(test_byte_chars)
{
    uint32_t next = 256, seen[324] = {0};
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t want = printable ? (uint32_t)b : next++;
        ck_assert_uint_eq(glmq_gguf_byte_char((uint8_t)b), want);
        ck_assert(want < 324 && !seen[want]);
        seen[want] = 1;
    }
    ck_assert_uint_eq(next, 324);
    ck_assert_uint_eq(glmq_gguf_byte_char(' '), 0x120); /* 'Ġ' */
    ck_assert_uint_eq(glmq_gguf_byte_char('\n'), 0x10A); /* 'Ċ' */
}
END_TEST

/* tests/glm4_tiny.c's checkpoint: made twice with the same bytes; glmq converts it and runs ppl
 * and tokenize on the pack (tokenize: the ids of the real rank file). */
START_TEST(test_glm4_tiny)
{
    if (!getenv("GLMQ_GLM4_TOKENIZER")) {
        fprintf(stderr, "check_vocab_peer: GLMQ_GLM4_TOKENIZER absent, glm4-tiny skipped\n");
        return;
    }
    char *dir = tu_mkdtemp();
    char *ck = tu_path(dir, "glm4-tiny");
    glmq_err err = {0};
    ck_assert_msg(tu_make_glm4_tiny(ck, &err) == GLMQ_OK, "%s", err.msg);
    /* deterministic: a second run gives the same bytes */
    char *ck2 = tu_path(dir, "glm4-tiny-2");
    ck_assert_msg(tu_make_glm4_tiny(ck2, &err) == GLMQ_OK, "%s", err.msg);
    char *out = NULL;
    ck_assert_int_eq(tu_run(&out, "cmp '%s/model.safetensors' '%s/model.safetensors'", ck, ck2),
                     0);
    free(out);
    char *pack = tu_path(dir, "glm4-tiny.glmq");
    int rc = tu_run(&out, "'%s' convert '%s' -o '%s' --type int8 --threads 2 --quiet", tu_bin(),
                    ck, pack);
    ck_assert_msg(rc == 0, "convert: %s", out);
    free(out);
    char *tdir = tu_path(tu_samples(), "text");
    char *txt = tu_path(tdir, "eval_zh.txt");
    rc = tu_run(&out, "'%s' ppl '%s' --text '%s' --ctx 64 --chunks 2 --threads 2 --json", tu_bin(),
                pack, txt);
    ck_assert_msg(rc == 0 && strstr(out, "ppl"), "ppl: %s", out);
    free(out);
    rc = tu_run(&out, "'%s' tokenize '%s' --text '%s'", tu_bin(), pack, txt);
    ck_assert_msg(rc == 0, "tokenize: %s", out);
    /* the pack's tokenizer is GLM-4's: same ids as the real rank file gives */
    model_tok mt;
    load_model_tok(ck, NULL, GLMQ_TOK_GLM4, 0, &mt);
    ck_assert_int_eq(mt.cfg.vocab, TU_GLM4_VOCAB);
    size_t tn;
    char *text = (char *)tu_read_file(txt, &tn);
    glmq_ids ids = {0};
    ck_assert(glmq_tokenizer_encode(mt.tok, text, tn, &ids, &err) == GLMQ_OK);
    char *p = out;
    for (size_t i = 0; i < ids.n; i++) {
        char *e;
        long v = strtol(p, &e, 10);
        ck_assert_msg(e != p && v == ids.ids[i], "glmq tokenize differs at %zu", i);
        p = e;
    }
    free(out);
    glmq_ids_free(&ids);
    free(text);
    glmq_tokenizer_free(mt.tok);
    free(tdir);
    free(txt);
    free(pack);
    free(ck2);
    free(ck);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

Suite *vocab_peer_suite(void);
Suite *vocab_peer_suite(void)
{
    Suite *s = suite_create("vocab_peer");
    TCase *tc = tcase_create("llama.cpp");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_chatglm3_real);
    tcase_add_test(tc, test_glm4_real);
    tcase_add_test(tc, test_glm2_tiny);
    tcase_add_test(tc, test_nfkc_warns);
    suite_add_tcase(s, tc);
    TCase *tu = tcase_create("metadata");
    tcase_set_timeout(tu, 600);
    tcase_add_test(tu, test_warnings_and_refusals);
    tcase_add_test(tu, test_byte_chars);
    tcase_add_test(tu, test_glm4_tiny);
    suite_add_tcase(s, tu);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vocab_peer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
