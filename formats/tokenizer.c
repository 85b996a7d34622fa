/*
 * tokenizer.c - the tokenizer front end: GLM flavours on top of the SentencePiece and tiktoken
 * back ends (sentencepiece.c, tiktoken.c). The small containers all three use are in
 * tok_common.c, so the back ends depend on it and the front end on them, never in a circle.
 *
 * Flavours (GLM-SPEC A.8, B.7, C.3; glmq reference semantics 4):
 *   CHATGLM1  encode: "\n" -> "<n>", "\t" -> "<|tab|>", every run of r spaces -> r/80 copies of
 *             "<|blank_80|>" then "<|blank_(r%80)|>" (or one plain space when r%80 == 1), then
 *             SentencePiece, then + image_tokens. Prompt = ids + [gMASK] <sop> (a suffix).
 *             decode: drop ids < image_tokens, SentencePiece decode, reverse the replacements.
 *   CHATGLM2/3 specials numbered from n_pieces: [MASK] [gMASK] [sMASK] sop eop (+ 4 v3 roles);
 *             prompt = [gMASK] sop + ids.
 *   GLM4      specials numbered from n_ranks (14 of them); prompt = [gMASK] <sop> + ids.
 * Invariants: a glmq_tokenizer never changes after load; every id a flavour hands out lies in
 * [0, n_vocab); decode rejects ids outside it.
 */
#include "formats/tok_common.h"

#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------------ */
/* the tokenizer object                                                                        */

/* Family specials numbered after the file's ids (GLM-SPEC B.7, C.3). */
static const char *const k_specials_v3[] = {"[MASK]",   "[gMASK]",       "[sMASK]",
                                            "sop",      "eop",           "<|system|>",
                                            "<|user|>", "<|assistant|>", "<|observation|>"};
static const char *const k_specials_glm4[] = {"<|endoftext|>",
                                              "[MASK]",
                                              "[gMASK]",
                                              "[sMASK]",
                                              "<sop>",
                                              "<eop>",
                                              "<|system|>",
                                              "<|user|>",
                                              "<|assistant|>",
                                              "<|observation|>",
                                              "<|begin_of_image|>",
                                              "<|end_of_image|>",
                                              "<|begin_of_video|>",
                                              "<|end_of_video|>"};
/* v1: the four specials the config names, in glmq_tok_glm order. */
static const char *const k_v1_names[4] = {"[MASK]", "[gMASK]", "<sop>", "<eop>"};

/* Longest text accepted by one encode call; keeps every internal index within int32. */
#define TOK_MAX_TEXT ((size_t)1 << 28)

struct glmq_tokenizer {
    glmq_tok_model model;
    glmq_tok_glm cfg;
    glmq_sp_model *sp;
    glmq_sp_model *sp_special; /* v1: the same pieces with the 8 specials USER_DEFINED */
    glmq_tt_model *tt;
    int32_t n_base;    /* pieces or ranks */
    int32_t offset;    /* v1 image tokens */
    int32_t n_special; /* family specials after n_base */
    const char *const *specials;
    int32_t v1_ids[4]; /* v1 mask, gmask, sop, eop (final ids, -1 = none) */
    int32_t prefix[2];
    size_t n_prefix;
    int32_t suffix[2];
    size_t n_suffix;
};

void glmq_tok_glm_init(glmq_tok_glm *cfg, glmq_tok_family family)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->family = family;
    cfg->image_tokens = 0;
    cfg->mask_id = cfg->gmask_id = cfg->bos_id = cfg->eos_id = -1;
}

static int32_t n_vocab(const glmq_tokenizer *t) { return t->offset + t->n_base + t->n_special; }

static int32_t special_index(const glmq_tokenizer *t, const char *name)
{
    for (int32_t i = 0; i < t->n_special; i++)
        if (strcmp(t->specials[i], name) == 0) return i;
    return -1;
}

/* Resolve the flavour: specials, prefix/suffix, v1 ids. */
static glmq_status setup_flavour(glmq_tokenizer *t, const glmq_tok_glm *cfg, glmq_err *err)
{
    if (cfg)
        t->cfg = *cfg;
    else
        glmq_tok_glm_init(&t->cfg, GLMQ_TOK_PLAIN);
    cfg = &t->cfg;
    int is_sp = t->model != GLMQ_TOK_TIKTOKEN;
    switch (cfg->family) {
    case GLMQ_TOK_PLAIN: return GLMQ_OK;
    case GLMQ_TOK_CHATGLM1: {
        GLMQ_FAIL_IF(!is_sp, err, GLMQ_E_INVALID,
                     "tokenizer: ChatGLM-6B needs a SentencePiece model");
        GLMQ_FAIL_IF(cfg->image_tokens < 0 || cfg->image_tokens > INT32_MAX - t->n_base, err,
                     GLMQ_E_INVALID, "tokenizer: bad image_tokens %d", (int)cfg->image_tokens);
        t->offset = cfg->image_tokens;
        const int32_t given[4] = {cfg->mask_id, cfg->gmask_id, cfg->bos_id, cfg->eos_id};
        for (int i = 0; i < 4; i++) {
            int32_t id = given[i];
            if (id < 0) {
                int32_t pid = glmq_sp_piece_id(t->sp, k_v1_names[i], strlen(k_v1_names[i]));
                id = pid < 0 ? -1 : pid + t->offset;
            }
            GLMQ_FAIL_IF(id >= n_vocab(t), err, GLMQ_E_INVALID,
                         "tokenizer: %s id %d outside the vocabulary (%d)", k_v1_names[i], (int)id,
                         (int)n_vocab(t));
            GLMQ_FAIL_IF(id >= 0 && id < t->offset, err, GLMQ_E_INVALID,
                         "tokenizer: %s id %d is an image token", k_v1_names[i], (int)id);
            t->v1_ids[i] = id;
        }
        GLMQ_FAIL_IF(t->v1_ids[1] < 0 || t->v1_ids[2] < 0, err, GLMQ_E_INVALID,
                     "tokenizer: ChatGLM-6B model has no '[gMASK]'/'<sop>' piece and no ids "
                     "given (nor is it a March 2023 ice_text.model, which lacks all of the "
                     "special, tab, blank and byte pieces)");
        t->suffix[0] = t->v1_ids[1];
        t->suffix[1] = t->v1_ids[2];
        t->n_suffix = 2;
        return GLMQ_OK;
    }
    case GLMQ_TOK_CHATGLM2:
    case GLMQ_TOK_CHATGLM3:
        GLMQ_FAIL_IF(!is_sp, err, GLMQ_E_INVALID,
                     "tokenizer: ChatGLM2/3 need a SentencePiece model");
        t->specials = k_specials_v3;
        t->n_special = cfg->family == GLMQ_TOK_CHATGLM2 ? 5 : 9;
        GLMQ_FAIL_IF(t->n_base > INT32_MAX - t->n_special, err, GLMQ_E_INVALID,
                     "tokenizer: vocabulary too large");
        t->prefix[0] = t->n_base + 1; /* [gMASK] */
        t->prefix[1] = t->n_base + 3; /* sop */
        t->n_prefix = 2;
        return GLMQ_OK;
    case GLMQ_TOK_GLM4:
        GLMQ_FAIL_IF(is_sp, err, GLMQ_E_INVALID, "tokenizer: GLM-4 needs a tiktoken rank file");
        t->specials = k_specials_glm4;
        t->n_special = 14;
        GLMQ_FAIL_IF(t->n_base > INT32_MAX - t->n_special, err, GLMQ_E_INVALID,
                     "tokenizer: vocabulary too large");
        t->prefix[0] = t->n_base + 2; /* [gMASK] */
        t->prefix[1] = t->n_base + 4; /* <sop> */
        t->n_prefix = 2;
        return GLMQ_OK;
    }
    return glmq_fail(err, GLMQ_E_INVALID, "tokenizer: unknown family %d", (int)cfg->family);
}

static glmq_status tok_new(glmq_tokenizer **out, glmq_err *err)
{
    *out = calloc(1, sizeof **out);
    GLMQ_FAIL_IF(!*out, err, GLMQ_E_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < 4; i++) (*out)->v1_ids[i] = -1;
    return GLMQ_OK;
}

/*
 * ChatGLM-6B's ice_text.model of March 2023 holds only the 130000 text pieces; THUDM's tokenizer
 * of that time (SPTokenizer._configure_tokenizer over icetk's TextTokenizer) appended to the
 * ModelProto at load time, in this order and each with score 0: the 8 specials (CONTROL, or
 * USER_DEFINED in its special-token mode), "<|tab|>" and "<|blank_2|>".."<|blank_80|>"
 * (USER_DEFINED), then set trainer_spec.byte_fallback and appended "<0x00>".."<0xFF>" (BYTE).
 * The released file of April 2023 has these 344 pieces baked in at the same places. "<n>" is a
 * piece (id 4) of both files.
 */
static const char *const k_v1_specials[8] = {"[MASK]", "[gMASK]", "[sMASK]", "<unused_0>",
                                             "<sop>",  "<eop>",   "<ENC>",   "<dBLOCK>"};

static glmq_status pb_put_varint(glmq_tkbuf *o, uint64_t v, glmq_err *err)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return glmq_tkbuf_put(o, b, n, err);
}

/* One ModelProto.pieces entry: {1: piece, 2: score 0.0f, 3: type}. */
static glmq_status pb_put_piece(glmq_tkbuf *o, const char *piece, int type, glmq_err *err)
{
    size_t n = strlen(piece);
    static const uint8_t score0[5] = {0x15, 0, 0, 0, 0};
    uint8_t ty[2] = {0x18, (uint8_t)type};
    GLMQ_TRY(glmq_tkbuf_put(o, "\x0A", 1, err));
    GLMQ_TRY(pb_put_varint(o, 2 + n + sizeof score0 + sizeof ty, err));
    GLMQ_TRY(glmq_tkbuf_put(o, "\x0A", 1, err));
    GLMQ_TRY(pb_put_varint(o, n, err));
    GLMQ_TRY(glmq_tkbuf_put(o, piece, n, err));
    GLMQ_TRY(glmq_tkbuf_put(o, score0, sizeof score0, err));
    return glmq_tkbuf_put(o, ty, sizeof ty, err);
}

/* The early file plus the pieces the upstream code appended. Appended fields merge as protobuf
 * does: repeated pieces go after the file's, a second trainer_spec sets byte_fallback. */
static glmq_status v1_complete(const uint8_t *data, size_t size, glmq_tkbuf *o, glmq_err *err)
{
    char name[24];
    GLMQ_TRY(glmq_tkbuf_put(o, data, size, err));
    for (int i = 0; i < 8; i++) GLMQ_TRY(pb_put_piece(o, k_v1_specials[i], 3, err));
    GLMQ_TRY(pb_put_piece(o, "<|tab|>", 4, err));
    for (int k = 2; k <= 80; k++) {
        snprintf(name, sizeof name, "<|blank_%d|>", k);
        GLMQ_TRY(pb_put_piece(o, name, 4, err));
    }
    static const uint8_t byte_fallback[5] = {0x12, 0x03, 0x98, 0x02, 0x01}; /* field 35 = 1 */
    GLMQ_TRY(glmq_tkbuf_put(o, byte_fallback, sizeof byte_fallback, err));
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        GLMQ_TRY(pb_put_piece(o, name, 6, err));
    }
    return GLMQ_OK;
}

/* Load a v1 ice_text.model: as it is when it has the specials, completed as the March 2023
 * code did when it has none of the appended pieces, and as it is again when it has only some
 * of them (setup_flavour then refuses it for its missing '[gMASK]'). Also loads the
 * special-token variant (t->sp_special). */
static glmq_status v1_load(glmq_tokenizer *t, const uint8_t *data, size_t size, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    glmq_tkbuf full = {0};
    GLMQ_TRY(glmq_sp_load(data, size, &t->sp, err));
    if (glmq_sp_piece_id(t->sp, "[MASK]", 6) < 0) {
        char name[24];
        const char *have = NULL;
        for (int i = 0; i < 8 && !have; i++)
            if (glmq_sp_piece_id(t->sp, k_v1_specials[i], strlen(k_v1_specials[i])) >= 0)
                have = k_v1_specials[i];
        if (!have && glmq_sp_piece_id(t->sp, "<|tab|>", 7) >= 0) have = "<|tab|>";
        for (int k = 2; k <= 80 && !have; k++) {
            int l = snprintf(name, sizeof name, "<|blank_%d|>", k);
            if (glmq_sp_piece_id(t->sp, name, (size_t)l) >= 0) have = name;
        }
        glmq_tok_info info;
        glmq_sp_info(t->sp, &info);
        if (!have && info.byte_fallback) have = "<0x00>";
        if (have) /* neither layout: used as it is (setup_flavour names what is missing) */
            return glmq_sp_load_typed(data, size, k_v1_specials, 8, 4, &t->sp_special, err);
        glmq_sp_free(t->sp);
        t->sp = NULL;
        GLMQ_TRY_G(v1_complete(data, size, &full, err));
        data = full.p;
        size = full.n;
        GLMQ_TRY_G(glmq_sp_load(data, size, &t->sp, err));
    }
    GLMQ_TRY_G(glmq_sp_load_typed(data, size, k_v1_specials, 8, 4, &t->sp_special, err));
fail:
    glmq_tkbuf_free(&full);
    return st;
}

glmq_status glmq_tokenizer_load_sp(const void *data, size_t size, const glmq_tok_glm *cfg,
                                   glmq_tokenizer **out, glmq_err *err)
{
    glmq_status st;
    glmq_tokenizer *t = NULL;
    GLMQ_FAIL_IF(!out || (!data && size), err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    *out = NULL;
    GLMQ_TRY(tok_new(&t, err));
    if (cfg && cfg->family == GLMQ_TOK_CHATGLM1)
        GLMQ_TRY_G(v1_load(t, (const uint8_t *)data, size, err));
    else
        GLMQ_TRY_G(glmq_sp_load(data, size, &t->sp, err));
    glmq_tok_info info;
    glmq_sp_info(t->sp, &info);
    t->model = info.model;
    t->n_base = glmq_sp_n_pieces(t->sp);
    GLMQ_TRY_G(setup_flavour(t, cfg, err));
    *out = t;
    return GLMQ_OK;
fail:
    glmq_tokenizer_free(t);
    return st;
}

glmq_status glmq_tokenizer_load_tiktoken(const void *data, size_t size, const glmq_tok_glm *cfg,
                                         glmq_tokenizer **out, glmq_err *err)
{
    glmq_status st;
    glmq_tokenizer *t = NULL;
    GLMQ_FAIL_IF(!out || (!data && size), err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    *out = NULL;
    GLMQ_TRY(tok_new(&t, err));
    t->model = GLMQ_TOK_TIKTOKEN;
    GLMQ_TRY_G(glmq_tt_load(data, size, &t->tt, err));
    t->n_base = glmq_tt_n_ranks(t->tt);
    GLMQ_TRY_G(setup_flavour(t, cfg, err));
    *out = t;
    return GLMQ_OK;
fail:
    glmq_tokenizer_free(t);
    return st;
}

glmq_status glmq_tokenizer_open(const char *path, const glmq_tok_glm *cfg, glmq_tokenizer **out,
                                glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    uint8_t *buf = NULL;
    GLMQ_FAIL_IF(!path || !out, err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    GLMQ_FAIL_IF(!f, err, GLMQ_E_IO, "tokenizer: cannot open '%s'", path);
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    GLMQ_FAIL_IF_G(sz < 0 || fseek(f, 0, SEEK_SET) != 0, err, GLMQ_E_IO,
                   "tokenizer: cannot size '%s'", path);
    GLMQ_FAIL_IF_G((unsigned long)sz >= (1ul << 31), err, GLMQ_E_FORMAT,
                   "tokenizer: '%s' is too large (%ld bytes)", path, sz);
    buf = malloc((size_t)sz + 1);
    GLMQ_FAIL_IF_G(!buf, err, GLMQ_E_NOMEM, "tokenizer: out of memory reading '%s'", path);
    GLMQ_FAIL_IF_G(fread(buf, 1, (size_t)sz, f) != (size_t)sz, err, GLMQ_E_IO,
                   "tokenizer: short read on '%s'", path);
    /* a ModelProto starts with a length-delimited field 1..5 (pieces first in practice); a
     * rank file starts with a base64 character */
    if (sz > 0 && (buf[0] & 7) == 2 && buf[0] >= 0x0A && buf[0] <= 0x2A) {
        st = glmq_tokenizer_load_sp(buf, (size_t)sz, cfg, out, err);
        if (st == GLMQ_E_FORMAT) { /* a rank file starting with a blank line? */
            glmq_err e2;
            if (glmq_tokenizer_load_tiktoken(buf, (size_t)sz, cfg, out, &e2) == GLMQ_OK)
                st = GLMQ_OK;
        }
    } else {
        st = glmq_tokenizer_load_tiktoken(buf, (size_t)sz, cfg, out, err);
    }
    if (st != GLMQ_OK) glmq_err_prefix(err, st, "'%s': ", path);
fail:
    fclose(f);
    free(buf);
    return st;
}

void glmq_tokenizer_free(glmq_tokenizer *t)
{
    if (!t) return;
    glmq_sp_free(t->sp);
    glmq_sp_free(t->sp_special);
    glmq_tt_free(t->tt);
    free(t);
}

void glmq_tokenizer_info(const glmq_tokenizer *t, glmq_tok_info *info)
{
    memset(info, 0, sizeof *info);
    if (t->sp) {
        glmq_sp_info(t->sp, info);
    } else {
        info->model = GLMQ_TOK_TIKTOKEN;
        info->unk_id = info->bos_id = info->eos_id = info->pad_id = -1;
    }
    info->family = t->cfg.family;
    info->n_base = t->n_base;
    info->n_special = t->n_special;
    info->id_offset = t->offset;
    info->n_vocab = n_vocab(t);
}

int glmq_tokenizer_sp_meta(const glmq_tokenizer *t, int32_t id, float *score, int *type)
{
    if (!t->sp || id < 0 || id >= t->n_base) return 0;
    glmq_sp_piece_meta(t->sp, id, score, type);
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* encoding                                                                                    */

/* GLM-SPEC A.8 steps 1-3 on raw bytes (all three patterns are ASCII, so byte-level replacement
 * equals Python's str.replace on code points). */
static glmq_status v1_preprocess(const uint8_t *s, size_t n, glmq_tkbuf *o, glmq_err *err)
{
    GLMQ_TRY(glmq_tkbuf_reserve(o, n + n / 2 + 16, err));
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '\n') {
            GLMQ_TRY(glmq_tkbuf_put(o, "<n>", 3, err));
            i++;
        } else if (c == '\t') {
            GLMQ_TRY(glmq_tkbuf_put(o, "<|tab|>", 7, err));
            i++;
        } else if (c == ' ') {
            size_t r = 0;
            while (i + r < n && s[i + r] == ' ') r++;
            i += r;
            char tok[24];
            for (size_t k = 0; k < r / 80; k++)
                GLMQ_TRY(glmq_tkbuf_put(o, "<|blank_80|>", 12, err));
            size_t m = r % 80;
            if (m == 1) {
                GLMQ_TRY(glmq_tkbuf_put(o, " ", 1, err));
            } else if (m >= 2) {
                int k = snprintf(tok, sizeof tok, "<|blank_%zu|>", m);
                GLMQ_TRY(glmq_tkbuf_put(o, tok, (size_t)k, err));
            }
        } else {
            size_t j = i;
            while (j < n && s[j] != '\n' && s[j] != '\t' && s[j] != ' ') j++;
            GLMQ_TRY(glmq_tkbuf_put(o, s + i, j - i, err));
            i = j;
        }
    }
    return GLMQ_OK;
}

glmq_status glmq_tokenizer_encode(const glmq_tokenizer *t, const char *text, size_t len,
                                  glmq_ids *out, glmq_err *err)
{
    GLMQ_FAIL_IF(!t || !out || (!text && len), err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    GLMQ_FAIL_IF(len > TOK_MAX_TEXT, err, GLMQ_E_INVALID,
                 "tokenizer: text of %zu bytes exceeds the %zu-byte limit of one call", len,
                 TOK_MAX_TEXT);
    size_t n0 = out->n;
    glmq_status st;
    if (len == 0) return GLMQ_OK;
    if (t->tt) {
        st = glmq_tt_encode(t->tt, (const uint8_t *)text, len, out, err);
    } else if (t->cfg.family == GLMQ_TOK_CHATGLM1) {
        glmq_tkbuf pre = {0};
        st = v1_preprocess((const uint8_t *)text, len, &pre, err);
        if (st == GLMQ_OK) st = glmq_sp_encode(t->sp, pre.p, pre.n, t->offset, out, err);
        glmq_tkbuf_free(&pre);
    } else {
        st = glmq_sp_encode(t->sp, (const uint8_t *)text, len, 0, out, err);
    }
    if (st != GLMQ_OK) out->n = n0;
    return st;
}

/* Longest family special whose text starts at s[0..n), its index in *k; 0 when none. */
static size_t special_at(const glmq_tokenizer *t, const uint8_t *s, size_t n, int32_t *k)
{
    size_t best = 0;
    for (int32_t i = 0; i < t->n_special; i++) {
        const char *sp = t->specials[i];
        size_t l = strlen(sp);
        if ((uint8_t)sp[0] == s[0] && l <= n && l > best && memcmp(sp, s, l) == 0) {
            best = l;
            *k = i;
        }
    }
    return best;
}

/*
 * Special-token text (GLMQ_TOKENIZE_SPECIAL). ChatGLM2/3 and GLM-4: the text is split at the
 * leftmost occurrence of a family special (the longest at a position; none is a prefix of
 * another), which becomes its id, and the text between is encoded on its own (SentencePiece
 * adds its dummy prefix to each part) - ChatGLM3's SPTokenizer.tokenize(encode_special_tokens=
 * True) and Hugging Face's added-token split for GLM-4 (lstrip/rstrip false in its
 * tokenizer_config.json: no whitespace is removed around a special). ChatGLM-6B: one
 * SentencePiece pass over the model whose 8 specials are USER_DEFINED (the March 2023
 * SPTokenizer.encode(special_tokens=True)), after the usual preprocessing.
 */
static glmq_status encode_special(const glmq_tokenizer *t, const char *text, size_t len,
                                  glmq_ids *out, glmq_err *err)
{
    if (t->cfg.family == GLMQ_TOK_CHATGLM1) {
        glmq_tkbuf pre = {0};
        glmq_status st = v1_preprocess((const uint8_t *)text, len, &pre, err);
        if (st == GLMQ_OK) st = glmq_sp_encode(t->sp_special, pre.p, pre.n, t->offset, out, err);
        glmq_tkbuf_free(&pre);
        return st;
    }
    const uint8_t *s = (const uint8_t *)text;
    size_t seg = 0;
    for (size_t i = 0; i < len;) {
        int32_t k = -1;
        size_t l = special_at(t, s + i, len - i, &k);
        if (!l) {
            i++;
            continue;
        }
        if (i > seg) GLMQ_TRY(glmq_tokenizer_encode(t, text + seg, i - seg, out, err));
        GLMQ_TRY(glmq_ids_push(out, t->n_base + k, err));
        i += l;
        seg = i;
    }
    if (len > seg) GLMQ_TRY(glmq_tokenizer_encode(t, text + seg, len - seg, out, err));
    return GLMQ_OK;
}

glmq_status glmq_tokenizer_encode_ex(const glmq_tokenizer *t, const char *text, size_t len,
                                     unsigned flags, glmq_ids *out, glmq_err *err)
{
    GLMQ_FAIL_IF(!t || !out || (!text && len), err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    GLMQ_FAIL_IF(flags & ~(GLMQ_TOKENIZE_PROMPT | GLMQ_TOKENIZE_SPECIAL), err, GLMQ_E_INVALID,
                 "tokenizer: unknown flags 0x%x",
                 flags & ~(GLMQ_TOKENIZE_PROMPT | GLMQ_TOKENIZE_SPECIAL));
    GLMQ_FAIL_IF(len > TOK_MAX_TEXT, err, GLMQ_E_INVALID,
                 "tokenizer: text of %zu bytes exceeds the %zu-byte limit of one call", len,
                 TOK_MAX_TEXT);
    size_t n0 = out->n;
    glmq_status st = GLMQ_OK;
    if (flags & GLMQ_TOKENIZE_PROMPT)
        for (size_t i = 0; i < t->n_prefix; i++) GLMQ_TRY_G(glmq_ids_push(out, t->prefix[i], err));
    if (flags & GLMQ_TOKENIZE_SPECIAL)
        GLMQ_TRY_G(encode_special(t, text ? text : "", len, out, err));
    else
        GLMQ_TRY_G(glmq_tokenizer_encode(t, text ? text : "", len, out, err));
    if (flags & GLMQ_TOKENIZE_PROMPT)
        for (size_t i = 0; i < t->n_suffix; i++) GLMQ_TRY_G(glmq_ids_push(out, t->suffix[i], err));
    return GLMQ_OK;
fail:
    out->n = n0;
    return st;
}

glmq_status glmq_tokenizer_encode_prompt(const glmq_tokenizer *t, const char *text, size_t len,
                                         glmq_ids *out, glmq_err *err)
{
    GLMQ_FAIL_IF(!t || !out, err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    size_t n0 = out->n;
    glmq_status st = GLMQ_OK;
    for (size_t i = 0; i < t->n_prefix; i++) GLMQ_TRY_G(glmq_ids_push(out, t->prefix[i], err));
    GLMQ_TRY_G(glmq_tokenizer_encode(t, text, len, out, err));
    for (size_t i = 0; i < t->n_suffix; i++) GLMQ_TRY_G(glmq_ids_push(out, t->suffix[i], err));
    return GLMQ_OK;
fail:
    out->n = n0;
    return st;
}

const int32_t *glmq_tokenizer_prefix(const glmq_tokenizer *t, size_t *n)
{
    *n = t->n_prefix;
    return t->prefix;
}

const int32_t *glmq_tokenizer_suffix(const glmq_tokenizer *t, size_t *n)
{
    *n = t->n_suffix;
    return t->suffix;
}

glmq_status glmq_tokenizer_special(const glmq_tokenizer *t, const char *name, int32_t *id,
                                   glmq_err *err)
{
    GLMQ_FAIL_IF(!t || !name || !id, err, GLMQ_E_INVALID, "tokenizer: NULL argument");
    if (t->cfg.family == GLMQ_TOK_CHATGLM1) {
        for (int i = 0; i < 4; i++) {
            if (strcmp(name, k_v1_names[i]) == 0 && t->v1_ids[i] >= 0) {
                *id = t->v1_ids[i];
                return GLMQ_OK;
            }
        }
        int32_t pid = glmq_sp_piece_id(t->sp, name, strlen(name));
        if (pid >= 0) {
            *id = pid + t->offset;
            return GLMQ_OK;
        }
    } else {
        int32_t i = special_index(t, name);
        if (i >= 0) {
            *id = t->n_base + i;
            return GLMQ_OK;
        }
    }
    return glmq_fail(err, GLMQ_E_INVALID, "tokenizer: no special token '%s' in this flavour", name);
}

/* ------------------------------------------------------------------------------------------ */
/* decoding                                                                                    */

const char *glmq_tokenizer_piece(const glmq_tokenizer *t, int32_t id, size_t *len)
{
    *len = 0;
    if (id < t->offset || id >= n_vocab(t)) return NULL;
    int32_t b = id - t->offset;
    if (b >= t->n_base) {
        const char *s = t->specials[b - t->n_base];
        *len = strlen(s);
        return s;
    }
    return t->sp ? glmq_sp_piece(t->sp, b, len) : glmq_tt_token(t->tt, b, len);
}

/* Reverse of v1_preprocess (HF postprocess: <n>, <|tab|>, <|blank_2..80|>). The patterns never
 * overlap and their replacements are whitespace, so one left-to-right scan equals Python's
 * sequence of str.replace calls. */
static glmq_status v1_postprocess(const uint8_t *s, size_t n, glmq_tkbuf *o, glmq_err *err)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] == '<') {
            if (n - i >= 3 && memcmp(s + i, "<n>", 3) == 0) {
                GLMQ_TRY(glmq_tkbuf_put(o, "\n", 1, err));
                i += 3;
                continue;
            }
            if (n - i >= 7 && memcmp(s + i, "<|tab|>", 7) == 0) {
                GLMQ_TRY(glmq_tkbuf_put(o, "\t", 1, err));
                i += 7;
                continue;
            }
            if (n - i >= 11 && memcmp(s + i, "<|blank_", 8) == 0) {
                size_t j = i + 8, k = 0;
                while (j < n && j < i + 10 && s[j] >= '0' && s[j] <= '9')
                    k = k * 10 + (s[j++] - '0');
                /* decimal without leading zero, 2..80, then "|>" */
                if (j > i + 8 && s[i + 8] != '0' && k >= 2 && k <= 80 && n - j >= 2 &&
                    s[j] == '|' && s[j + 1] == '>') {
                    static const char sp[80] = "                                        "
                                               "                                        ";
                    GLMQ_TRY(glmq_tkbuf_put(o, sp, k, err));
                    i = j + 2;
                    continue;
                }
            }
        }
        size_t j = i + 1;
        while (j < n && s[j] != '<') j++;
        GLMQ_TRY(glmq_tkbuf_put(o, s + i, j - i, err));
        i = j;
    }
    return GLMQ_OK;
}

glmq_status glmq_tokenizer_decode(const glmq_tokenizer *t, const int32_t *ids, size_t n,
                                  char **text, size_t *len, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    glmq_tkbuf o = {0}, tmp = {0};
    int32_t *base = NULL;
    GLMQ_FAIL_IF(!t || !text || !len || (!ids && n), err, GLMQ_E_INVALID,
                 "tokenizer: NULL argument");
    *text = NULL;
    *len = 0;
    const int32_t nv = n_vocab(t);
    for (size_t i = 0; i < n; i++)
        GLMQ_FAIL_IF(ids[i] < 0 || ids[i] >= nv, err, GLMQ_E_VALUE,
                     "tokenizer: id %d at position %zu outside [0, %d)", (int)ids[i], i, (int)nv);
    /* Keep the file's own ids: drop v1 image tokens and family specials. */
    base = malloc((n ? n : 1) * sizeof *base);
    GLMQ_FAIL_IF_G(!base, err, GLMQ_E_NOMEM, "tokenizer: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t b = ids[i] - t->offset;
        if (b >= 0 && b < t->n_base) base[m++] = b;
    }
    if (t->tt) {
        for (size_t i = 0; i < m; i++) {
            size_t l;
            const char *s = glmq_tt_token(t->tt, base[i], &l);
            GLMQ_TRY_G(glmq_tkbuf_put(&o, s, l, err));
        }
    } else if (t->cfg.family == GLMQ_TOK_CHATGLM1) {
        GLMQ_TRY_G(glmq_sp_decode(t->sp, base, m, &tmp, err));
        GLMQ_TRY_G(v1_postprocess(tmp.p, tmp.n, &o, err));
    } else {
        GLMQ_TRY_G(glmq_sp_decode(t->sp, base, m, &o, err));
    }
    GLMQ_TRY_G(glmq_tkbuf_reserve(&o, 0, err));
    o.p[o.n] = 0;
    *text = (char *)o.p;
    *len = o.n;
    o.p = NULL;
fail:
    glmq_tkbuf_free(&o);
    glmq_tkbuf_free(&tmp);
    free(base);
    return st;
}
