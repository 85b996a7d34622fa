/*
 * sentencepiece.c - SentencePiece ModelProto files (ice_text.model, ChatGLM2/3 tokenizer.model):
 * a hand-written protobuf reader, the normalizer with its Darts-clone precompiled charsmap, BPE
 * and UNIGRAM encoding, and decoding. GLM-SPEC F; reference: google/sentencepiece 0.1.97, whose
 * Python binding produced the goldens in tests/data/tokenizer/.
 *
 * Exactness notes (each mirrors the C++ library):
 *   - The normalizer consumes one "prefix" at a time: a USER_DEFINED piece verbatim, else the
 *     longest charsmap key, else one UTF-8 character; a malformed byte becomes U+FFFD.
 *   - BPE merges the whole normalized string by piece score (max first, then leftmost), never
 *     across a USER_DEFINED symbol; merged UNUSED pieces are split back along the split recorded
 *     when their candidate was (last) pushed.
 *   - UNIGRAM is the optimized Viterbi of unigram_model.cc. Scores are floats but a candidate
 *     path score is formed and compared in double, then stored as float (the C++ `auto` types);
 *     the unknown candidate is a float sum. max_score starts at FLT_MIN (not -FLT_MAX), so the
 *     USER_DEFINED bonus is length * max(FLT_MIN, best NORMAL score) - 0.1.
 *   - Unknown pieces: byte fallback emits <0xXX> per byte, otherwise runs merge into one id.
 *   - Decoding follows the current DecodeIds: one leading U+2581 is dropped (all leading ones
 *     with remove_extra_whitespaces), byte runs are regrouped into UTF-8 with U+FFFD per bad
 *     byte, CONTROL pieces are invisible, the unknown id prints unk_surface, and a
 *     denormalizer_spec charsmap (if any) is applied to the result.
 * Hostile files: every length is checked against its enclosing message, the charsmap double
 * array is bounds-checked on every step, and the rules of ModelInterface::InitializePieces are
 * enforced at load. Deviations (stricter, documented): a known field with an unexpected wire
 * type, an out-of-range piece type or model_type, and group wire types are format errors (the
 * C++ parser would keep them as unknown fields).
 */
#include "formats/tok_common.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>

enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_USER = 4, SP_UNUSED = 5, SP_BYTE = 6 };

/* ------------------------------------------------------------------------------------------ */
/* protobuf wire format (GLM-SPEC F.1)                                                         */

typedef struct {
    const uint8_t *base; /* start of the file, for offsets in messages */
    const uint8_t *p;
    const uint8_t *end;
} pb_reader;

typedef struct {
    uint32_t num;
    int wire;
    uint64_t u;          /* wire 0, 1, 5 */
    const uint8_t *data; /* wire 2 */
    size_t len;
    size_t at; /* file offset of the key */
} pb_field;

#define PB_AT(r) ((size_t)((r)->p - (r)->base))

static glmq_status pb_varint(pb_reader *r, uint64_t *v, glmq_err *err)
{
    uint64_t x = 0;
    size_t at = PB_AT(r);
    for (int i = 0; i < 10; i++) {
        GLMQ_FAIL_IF(r->p >= r->end, err, GLMQ_E_FORMAT,
                     "sentencepiece model: truncated varint at byte %zu", at);
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7F) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return GLMQ_OK;
        }
    }
    return glmq_fail(err, GLMQ_E_FORMAT,
                     "sentencepiece model: varint longer than 10 bytes at byte %zu", at);
}

static glmq_status pb_next(pb_reader *r, pb_field *f, glmq_err *err)
{
    uint64_t key = 0;
    f->at = PB_AT(r);
    GLMQ_TRY(pb_varint(r, &key, err));
    GLMQ_FAIL_IF((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF, err, GLMQ_E_FORMAT,
                 "sentencepiece model: bad field number %llu at byte %zu",
                 (unsigned long long)(key >> 3), f->at);
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    size_t left;
    switch (f->wire) {
    case 0: return pb_varint(r, &f->u, err);
    case 1:
    case 5: {
        size_t w = f->wire == 1 ? 8 : 4;
        GLMQ_FAIL_IF((size_t)(r->end - r->p) < w, err, GLMQ_E_FORMAT,
                     "sentencepiece model: truncated fixed%zu field %u at byte %zu", w * 8, f->num,
                     f->at);
        f->u = w == 8 ? glmq_rd_le64(r->p) : glmq_rd_le32(r->p);
        r->p += w;
        return GLMQ_OK;
    }
    case 2:
        GLMQ_TRY(pb_varint(r, &f->u, err));
        left = (size_t)(r->end - r->p);
        GLMQ_FAIL_IF(
            f->u > left, err, GLMQ_E_FORMAT,
            "sentencepiece model: field %u at byte %zu has length %llu past the end of its "
            "message (%zu bytes left)",
            f->num, f->at, (unsigned long long)f->u, left);
        f->data = r->p;
        f->len = (size_t)f->u;
        r->p += f->len;
        return GLMQ_OK;
    case 3:
    case 4:
        return glmq_fail(err, GLMQ_E_FORMAT,
                         "sentencepiece model: group field %u at byte %zu is not supported", f->num,
                         f->at);
    default:
        return glmq_fail(err, GLMQ_E_FORMAT, "sentencepiece model: bad wire type %d at byte %zu",
                         f->wire, f->at);
    }
}

static glmq_status pb_want(const pb_field *f, int wire, const char *what, glmq_err *err)
{
    GLMQ_FAIL_IF(f->wire != wire, err, GLMQ_E_FORMAT,
                 "sentencepiece model: %s (field %u) at byte %zu has wire type %d, expected %d",
                 what, f->num, f->at, f->wire, wire);
    return GLMQ_OK;
}

static pb_reader pb_sub(const pb_reader *parent, const pb_field *f)
{
    pb_reader r = {parent->base, f->data, f->data + f->len};
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* model                                                                                       */

typedef struct {
    const uint8_t *p; /* into the caller's bytes during load only */
    size_t n;
    int has;
} pb_bytes;

/* Raw NormalizerSpec fields (proto2 defaults applied). */
typedef struct {
    pb_bytes name, charsmap;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} norm_spec;

/* A ready normalizer: flags + the decoded precompiled charsmap. */
typedef struct {
    int present;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    int treat_ws_as_suffix;
    uint32_t *units; /* Darts-clone double array, host order */
    size_t n_units;
    uint8_t *strs; /* replacement strings, NUL-terminated, plus one guard NUL */
    size_t n_strs;
    size_t charsmap_size;
    char name[32];
} sp_norm;

struct glmq_sp_model {
    int model_type; /* 1 UNIGRAM, 2 BPE */
    int32_t n;      /* pieces */
    uint8_t *pool;
    uint32_t *off, *len;
    float *score;
    uint8_t *type;
    glmq_tkpool pv;      /* view of pool/off/len */
    glmq_tkmap normal;   /* NORMAL, USER_DEFINED, UNUSED */
    glmq_tkmap reserved; /* UNKNOWN, CONTROL, BYTE */
    int32_t unk_id;
    int32_t bos_id, eos_id, pad_id;
    int byte_fallback;
    int32_t byte_id[256];
    uint8_t *byte_val; /* n entries: the byte of a BYTE piece */
    glmq_tktrie user;  /* USER_DEFINED pieces (empty if none) */
    int32_t n_user;
    glmq_tktrie trie; /* every `normal` piece (UNIGRAM lattice; both: chunk boundaries) */
    float min_score, max_score;
    sp_norm norm, denorm;
    uint8_t *unk_surface;
    size_t unk_surface_len;
    /* BPE: no mergeable piece holds the whitespace symbol (U+2581, or ' ' without escaping)
     * after its first byte, so no merge crosses the start of a symbol beginning with it and
     * the merge loop can run word by word (same result, smaller heaps). */
    int bpe_word_split;
    int32_t n_unused; /* UNUSED pieces (BPE with any of them is encoded in one piece, below) */
    /* some string is both a reserved and a normal piece (PieceToId prefers the reserved one) */
    int cross_dup;
};

/* Pieces are at most this long (SentencePiece's kMaxPieceSize). */
#define SP_MAX_PIECE 8000

static const uint8_t k_space_sym[3] = {0xE2, 0x96, 0x81}; /* U+2581 */

/* Printable, truncated rendering of a piece for messages. */
static const char *piece_str(const uint8_t *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
        }
    }
    if (o >= cap) o = cap - 1;
    buf[o] = 0;
    return buf;
}

typedef struct {
    /* growable piece arrays during parsing */
    size_t cap, pool_cap, pool_n;
    /* trainer spec */
    int64_t model_type;
    int byte_fallback, treat_ws_suffix;
    pb_bytes unk_surface, unk_piece, bos_piece, eos_piece, pad_piece;
    norm_spec norm, denorm;
    int has_denorm;
} sp_parse;

static void norm_spec_default(norm_spec *s)
{
    memset(s, 0, sizeof *s);
    s->add_dummy_prefix = s->remove_extra_whitespaces = s->escape_whitespaces = 1;
}

static glmq_status parse_piece(glmq_sp_model *m, sp_parse *ps, const pb_reader *top,
                               const pb_field *pf, glmq_err *err)
{
    pb_reader r = pb_sub(top, pf);
    pb_bytes piece = {0};
    float score = 0.0f;
    uint64_t type = SP_NORMAL;
    while (r.p < r.end) {
        pb_field f;
        GLMQ_TRY(pb_next(&r, &f, err));
        if (f.num == 1) {
            GLMQ_TRY(pb_want(&f, 2, "piece", err));
            piece.p = f.data;
            piece.n = f.len;
        } else if (f.num == 2) {
            GLMQ_TRY(pb_want(&f, 5, "score", err));
            uint32_t u = (uint32_t)f.u;
            memcpy(&score, &u, 4);
        } else if (f.num == 3) {
            GLMQ_TRY(pb_want(&f, 0, "type", err));
            type = f.u;
            GLMQ_FAIL_IF(type < 1 || type > 6, err, GLMQ_E_FORMAT,
                         "sentencepiece model: piece %d has unknown type %llu (byte %zu)",
                         (int)m->n, (unsigned long long)type, f.at);
        }
    }
    GLMQ_FAIL_IF(m->n == INT32_MAX - 64, err, GLMQ_E_FORMAT,
                 "sentencepiece model: too many pieces");
    if ((size_t)m->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 1024;
        uint32_t *off = realloc(m->off, cap * sizeof *off);
        if (off) m->off = off;
        uint32_t *len = realloc(m->len, cap * sizeof *len);
        if (len) m->len = len;
        float *sc = realloc(m->score, cap * sizeof *sc);
        if (sc) m->score = sc;
        uint8_t *ty = realloc(m->type, cap);
        if (ty) m->type = ty;
        GLMQ_FAIL_IF(!off || !len || !sc || !ty, err, GLMQ_E_NOMEM,
                     "sentencepiece model: out of memory (%zu pieces)", cap);
        ps->cap = cap;
    }
    if (ps->pool_n + piece.n + 1 > ps->pool_cap) {
        size_t cap = ps->pool_cap ? ps->pool_cap : 4096;
        while (cap < ps->pool_n + piece.n + 1) cap *= 2;
        uint8_t *pool = realloc(m->pool, cap);
        GLMQ_FAIL_IF(!pool, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");
        m->pool = pool;
        ps->pool_cap = cap;
    }
    if (piece.n) memcpy(m->pool + ps->pool_n, piece.p, piece.n);
    m->pool[ps->pool_n + piece.n] = 0;
    m->off[m->n] = (uint32_t)ps->pool_n;
    m->len[m->n] = (uint32_t)piece.n;
    m->score[m->n] = score;
    m->type[m->n] = (uint8_t)type;
    ps->pool_n += piece.n + 1;
    m->n++;
    return GLMQ_OK;
}

static glmq_status parse_trainer(sp_parse *ps, const pb_reader *top, const pb_field *pf,
                                 glmq_err *err)
{
    pb_reader r = pb_sub(top, pf);
    while (r.p < r.end) {
        pb_field f;
        GLMQ_TRY(pb_next(&r, &f, err));
        pb_bytes *str = NULL;
        switch (f.num) {
        case 3:
            GLMQ_TRY(pb_want(&f, 0, "trainer_spec.model_type", err));
            ps->model_type = (int32_t)f.u;
            break;
        case 24:
            GLMQ_TRY(pb_want(&f, 0, "trainer_spec.treat_whitespace_as_suffix", err));
            ps->treat_ws_suffix = f.u != 0;
            break;
        case 35:
            GLMQ_TRY(pb_want(&f, 0, "trainer_spec.byte_fallback", err));
            ps->byte_fallback = f.u != 0;
            break;
        case 44: str = &ps->unk_surface; break;
        case 45: str = &ps->unk_piece; break;
        case 46: str = &ps->bos_piece; break;
        case 47: str = &ps->eos_piece; break;
        case 48: str = &ps->pad_piece; break;
        default: break; /* vocab_size, unk_id, ...: not needed to encode */
        }
        if (str) {
            GLMQ_TRY(pb_want(&f, 2, "trainer_spec string", err));
            str->p = f.data;
            str->n = f.len;
            str->has = 1;
        }
    }
    return GLMQ_OK;
}

static glmq_status parse_normalizer(norm_spec *s, const pb_reader *top, const pb_field *pf,
                                    glmq_err *err)
{
    pb_reader r = pb_sub(top, pf);
    while (r.p < r.end) {
        pb_field f;
        GLMQ_TRY(pb_next(&r, &f, err));
        switch (f.num) {
        case 1:
        case 2: {
            GLMQ_TRY(
                pb_want(&f, 2, f.num == 1 ? "normalizer_spec.name" : "precompiled_charsmap", err));
            pb_bytes *b = f.num == 1 ? &s->name : &s->charsmap;
            b->p = f.data;
            b->n = f.len;
            b->has = 1;
            break;
        }
        case 3:
        case 4:
        case 5: {
            GLMQ_TRY(pb_want(&f, 0, "normalizer_spec flag", err));
            int v = f.u != 0;
            if (f.num == 3) s->add_dummy_prefix = v;
            if (f.num == 4) s->remove_extra_whitespaces = v;
            if (f.num == 5) s->escape_whitespaces = v;
            break;
        }
        default: break;
        }
    }
    return GLMQ_OK;
}

/* Decode the precompiled charsmap blob: u32 LE trie size, the double array, the strings. */
static glmq_status build_norm(sp_norm *nm, const norm_spec *s, int suffix, const char *what,
                              glmq_err *err)
{
    memset(nm, 0, sizeof *nm);
    nm->present = 1;
    nm->add_dummy_prefix = s->add_dummy_prefix;
    nm->remove_extra_whitespaces = s->remove_extra_whitespaces;
    nm->escape_whitespaces = s->escape_whitespaces;
    nm->treat_ws_as_suffix = suffix;
    size_t nl = s->name.n < sizeof nm->name - 1 ? s->name.n : sizeof nm->name - 1;
    if (nl) memcpy(nm->name, s->name.p, nl);
    nm->name[nl] = 0;
    if (!s->charsmap.n) return GLMQ_OK;
    const uint8_t *b = s->charsmap.p;
    size_t n = s->charsmap.n;
    nm->charsmap_size = n;
    GLMQ_FAIL_IF(n <= 4, err, GLMQ_E_FORMAT,
                 "sentencepiece model: %s charsmap of %zu bytes is broken", what, n);
    uint32_t trie_size = glmq_rd_le32(b);
    GLMQ_FAIL_IF((uint64_t)trie_size + 4 > n, err, GLMQ_E_FORMAT,
                 "sentencepiece model: %s charsmap trie size %u exceeds the blob (%zu bytes)", what,
                 trie_size, n);
    nm->n_units = trie_size / 4;
    GLMQ_FAIL_IF(nm->n_units == 0, err, GLMQ_E_FORMAT,
                 "sentencepiece model: %s charsmap trie is empty", what);
    nm->units = malloc(nm->n_units * sizeof *nm->units);
    nm->n_strs = n - 4 - trie_size;
    nm->strs = malloc(nm->n_strs + 1);
    GLMQ_FAIL_IF(!nm->units || !nm->strs, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");
    for (size_t i = 0; i < nm->n_units; i++) nm->units[i] = glmq_rd_le32(b + 4 + 4 * i);
    if (nm->n_strs) memcpy(nm->strs, b + 4 + trie_size, nm->n_strs);
    nm->strs[nm->n_strs] = 0; /* guard: every value offset below n_strs reaches a NUL */
    return GLMQ_OK;
}

static void free_norm(sp_norm *nm)
{
    free(nm->units);
    free(nm->strs);
    memset(nm, 0, sizeof *nm);
}

void glmq_sp_free(glmq_sp_model *m)
{
    if (!m) return;
    free(m->pool);
    free(m->off);
    free(m->len);
    free(m->score);
    free(m->type);
    free(m->byte_val);
    glmq_tkmap_free(&m->normal);
    glmq_tkmap_free(&m->reserved);
    glmq_tktrie_free(&m->user);
    glmq_tktrie_free(&m->trie);
    free_norm(&m->norm);
    free_norm(&m->denorm);
    free(m->unk_surface);
    free(m);
}

static int is_normal_type(int t) { return t == SP_NORMAL || t == SP_USER || t == SP_UNUSED; }

/* "<0xHH>" with uppercase hex -> HH, else -1 (SentencePiece's PieceToByte). */
static int piece_to_byte(const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *a = memchr(hex, s[3], 16), *b = memchr(hex, s[4], 16);
    if (!a || !b || !s[3] || !s[4]) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

/* CONTROL piece named `name` (or `def`), as SentencePieceProcessor::bos_id() etc., else -1. */
static int32_t control_id(const glmq_sp_model *m, const pb_bytes *name, const char *def)
{
    const uint8_t *s = name->has && name->n ? name->p : (const uint8_t *)def;
    size_t n = name->has && name->n ? name->n : strlen(def);
    int32_t id = glmq_tkmap_find(&m->reserved, &m->pv, s, n);
    if (id < 0) id = glmq_tkmap_find(&m->normal, &m->pv, s, n);
    return (id >= 0 && m->type[id] == SP_CONTROL) ? id : -1;
}

static glmq_status build_tables(glmq_sp_model *m, sp_parse *ps, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    int32_t *list = NULL;
    char b1[96];
    m->pv.pool = m->pool;
    m->pv.off = m->off;
    m->pv.len = m->len;
    m->byte_fallback = ps->byte_fallback;
    m->unk_id = -1;
    for (int i = 0; i < 256; i++) m->byte_id[i] = -1;

    int32_t n_norm = 0, n_res = 0;
    for (int32_t i = 0; i < m->n; i++) {
        if (is_normal_type(m->type[i]))
            n_norm++;
        else
            n_res++;
    }
    GLMQ_TRY(glmq_tkmap_init(&m->normal, (uint32_t)n_norm, err));
    GLMQ_TRY(glmq_tkmap_init(&m->reserved, (uint32_t)n_res, err));
    m->byte_val = calloc((size_t)(m->n ? m->n : 1), 1);
    list = malloc((size_t)(m->n ? m->n : 1) * sizeof *list);
    GLMQ_FAIL_IF_G(!m->byte_val || !list, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");

    int32_t n_user = 0;
    for (int32_t i = 0; i < m->n; i++) {
        const uint8_t *s = m->pool + m->off[i];
        size_t n = m->len[i];
        int t = m->type[i];
        GLMQ_FAIL_IF_G(n == 0, err, GLMQ_E_FORMAT, "sentencepiece model: piece %d is empty",
                       (int)i);
        GLMQ_FAIL_IF_G(n >= SP_MAX_PIECE, err, GLMQ_E_FORMAT,
                       "sentencepiece model: piece %d is too long (%zu bytes)", (int)i, n);
        GLMQ_FAIL_IF_G(memchr(s, 0, n) != NULL, err, GLMQ_E_FORMAT,
                       "sentencepiece model: piece %d contains a NUL byte", (int)i);
        int32_t dup = glmq_tkmap_insert(is_normal_type(t) ? &m->normal : &m->reserved, &m->pv, i);
        GLMQ_FAIL_IF_G(dup >= 0, err, GLMQ_E_FORMAT,
                       "sentencepiece model: piece %d '%s' is already defined as piece %d", (int)i,
                       piece_str(s, n, b1, sizeof b1), (int)dup);
        if (t == SP_USER) list[n_user++] = i;
        if (t == SP_UNKNOWN) {
            GLMQ_FAIL_IF_G(m->unk_id >= 0, err, GLMQ_E_FORMAT,
                           "sentencepiece model: second unknown piece %d (first %d)", (int)i,
                           (int)m->unk_id);
            m->unk_id = i;
        }
        if (t == SP_BYTE) {
            GLMQ_FAIL_IF_G(
                !ps->byte_fallback, err, GLMQ_E_FORMAT,
                "sentencepiece model: byte piece %d '%s' although byte_fallback is false", (int)i,
                piece_str(s, n, b1, sizeof b1));
            int b = piece_to_byte(s, n);
            GLMQ_FAIL_IF_G(b < 0, err, GLMQ_E_FORMAT,
                           "sentencepiece model: byte piece %d '%s' is invalid", (int)i,
                           piece_str(s, n, b1, sizeof b1));
            m->byte_val[i] = (uint8_t)b;
            if (m->byte_id[b] < 0) m->byte_id[b] = i;
        }
    }
    GLMQ_FAIL_IF_G(m->unk_id < 0, err, GLMQ_E_FORMAT,
                   "sentencepiece model: no unknown (<unk>) piece");
    if (ps->byte_fallback) {
        for (int b = 0; b < 256; b++)
            GLMQ_FAIL_IF_G(
                m->byte_id[b] < 0, err, GLMQ_E_FORMAT,
                "sentencepiece model: byte_fallback is true but piece <0x%02X> is missing", b);
    }
    m->n_user = n_user;
    if (n_user) GLMQ_TRY_G(glmq_tktrie_build(&m->user, &m->pv, list, (uint32_t)n_user, err));

    if (m->model_type == 2) {
        int32_t k = 0;
        for (int32_t i = 0; i < m->n; i++) {
            if (is_normal_type(m->type[i])) list[k++] = i;
            if (m->type[i] == SP_UNUSED) m->n_unused++;
        }
        if (k) GLMQ_TRY_G(glmq_tktrie_build(&m->trie, &m->pv, list, (uint32_t)k, err));
    }
    if (m->model_type == 1) {
        m->min_score = FLT_MAX;
        m->max_score = FLT_MIN; /* sic: unigram_model.cc */
        int32_t k = 0;
        for (int32_t i = 0; i < m->n; i++) {
            if (m->type[i] == SP_NORMAL) {
                if (m->score[i] < m->min_score) m->min_score = m->score[i];
                if (m->score[i] > m->max_score) m->max_score = m->score[i];
            }
            if (is_normal_type(m->type[i])) list[k++] = i;
        }
        GLMQ_FAIL_IF_G(k == 0, err, GLMQ_E_FORMAT,
                       "sentencepiece model: unigram model has no pieces");
        GLMQ_TRY_G(glmq_tktrie_build(&m->trie, &m->pv, list, (uint32_t)k, err));
    }

    for (int32_t i = 0; i < m->n && !m->cross_dup; i++)
        if (!is_normal_type(m->type[i]) &&
            glmq_tkmap_find(&m->normal, &m->pv, m->pool + m->off[i], m->len[i]) >= 0)
            m->cross_dup = 1;
    if (m->model_type == 2) {
        const uint8_t *sym = ps->norm.escape_whitespaces ? k_space_sym : (const uint8_t *)" ";
        size_t sl = ps->norm.escape_whitespaces ? 3 : 1;
        m->bpe_word_split = 1;
        for (int32_t i = 0; i < m->n && m->bpe_word_split; i++) {
            if (!is_normal_type(m->type[i])) continue;
            const uint8_t *s = m->pool + m->off[i];
            for (size_t k = 1; k + sl <= m->len[i]; k++) {
                if (memcmp(s + k, sym, sl) == 0) {
                    m->bpe_word_split = 0;
                    break;
                }
            }
        }
    }

    m->bos_id = control_id(m, &ps->bos_piece, "<s>");
    m->eos_id = control_id(m, &ps->eos_piece, "</s>");
    m->pad_id = control_id(m, &ps->pad_piece, "<pad>");
    if (ps->unk_surface.has) {
        /* the C++ decoder reads it with c_str(): it ends at the first NUL */
        const uint8_t *z = memchr(ps->unk_surface.p, 0, ps->unk_surface.n);
        m->unk_surface_len = z ? (size_t)(z - ps->unk_surface.p) : ps->unk_surface.n;
        m->unk_surface = malloc(m->unk_surface_len + 1);
        GLMQ_FAIL_IF_G(!m->unk_surface, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");
        if (m->unk_surface_len) memcpy(m->unk_surface, ps->unk_surface.p, m->unk_surface_len);
    } else {
        static const char def[] = " \xE2\x81\x87 ";
        m->unk_surface_len = sizeof def - 1;
        m->unk_surface = malloc(sizeof def);
        GLMQ_FAIL_IF_G(!m->unk_surface, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");
        memcpy(m->unk_surface, def, sizeof def);
    }
    GLMQ_TRY_G(build_norm(&m->norm, &ps->norm, ps->treat_ws_suffix, "normalizer", err));
    if (ps->has_denorm && ps->denorm.charsmap.n)
        GLMQ_TRY_G(build_norm(&m->denorm, &ps->denorm, 0, "denormalizer", err));
fail:
    free(list);
    return st;
}

glmq_status glmq_sp_load(const uint8_t *data, size_t size, glmq_sp_model **out, glmq_err *err)
{
    return glmq_sp_load_typed(data, size, NULL, 0, 0, out, err);
}

glmq_status glmq_sp_load_typed(const uint8_t *data, size_t size, const char *const *names,
                               size_t n_names, int type, glmq_sp_model **out, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    *out = NULL;
    GLMQ_FAIL_IF(size >= ((size_t)1 << 31), err, GLMQ_E_FORMAT,
                 "sentencepiece model: %zu bytes is too large", size);
    glmq_sp_model *m = calloc(1, sizeof *m);
    GLMQ_FAIL_IF(!m, err, GLMQ_E_NOMEM, "sentencepiece model: out of memory");
    sp_parse ps;
    memset(&ps, 0, sizeof ps);
    ps.model_type = 1;
    norm_spec_default(&ps.norm);
    norm_spec_default(&ps.denorm);

    pb_reader r = {data, data, data + size};
    while (r.p < r.end) {
        pb_field f;
        GLMQ_TRY_G(pb_next(&r, &f, err));
        switch (f.num) {
        case 1:
            GLMQ_TRY_G(pb_want(&f, 2, "pieces", err));
            GLMQ_TRY_G(parse_piece(m, &ps, &r, &f, err));
            break;
        case 2:
            GLMQ_TRY_G(pb_want(&f, 2, "trainer_spec", err));
            GLMQ_TRY_G(parse_trainer(&ps, &r, &f, err));
            break;
        case 3:
            GLMQ_TRY_G(pb_want(&f, 2, "normalizer_spec", err));
            GLMQ_TRY_G(parse_normalizer(&ps.norm, &r, &f, err));
            break;
        case 5:
            GLMQ_TRY_G(pb_want(&f, 2, "denormalizer_spec", err));
            GLMQ_TRY_G(parse_normalizer(&ps.denorm, &r, &f, err));
            ps.has_denorm = 1;
            break;
        default: /* 4 self_test_data and unknown fields: skipped */ break;
        }
    }
    if (ps.model_type == 3 || ps.model_type == 4) {
        st = glmq_fail(err, GLMQ_E_UNSUPPORTED, "sentencepiece model: %s models are not supported",
                       ps.model_type == 3 ? "WORD" : "CHAR");
        goto fail;
    }
    GLMQ_FAIL_IF_G(ps.model_type != 1 && ps.model_type != 2, err, GLMQ_E_FORMAT,
                   "sentencepiece model: unknown model_type %lld", (long long)ps.model_type);
    m->model_type = (int)ps.model_type;
    /* retype the named pieces before the tables are built (ChatGLM-6B's special-token mode) */
    for (size_t k = 0; k < n_names; k++) {
        size_t nl = strlen(names[k]);
        for (int32_t i = 0; i < m->n; i++)
            if (m->len[i] == nl && memcmp(m->pool + m->off[i], names[k], nl) == 0)
                m->type[i] = (uint8_t)type;
    }
    GLMQ_TRY_G(build_tables(m, &ps, err));
    *out = m;
    return GLMQ_OK;
fail:
    glmq_sp_free(m);
    return st;
}

int32_t glmq_sp_n_pieces(const glmq_sp_model *m) { return m->n; }

void glmq_sp_info(const glmq_sp_model *m, glmq_tok_info *info)
{
    info->model = m->model_type == 2 ? GLMQ_TOK_SP_BPE : GLMQ_TOK_SP_UNIGRAM;
    info->n_base = m->n;
    info->unk_id = m->unk_id;
    info->bos_id = m->bos_id;
    info->eos_id = m->eos_id;
    info->pad_id = m->pad_id;
    info->byte_fallback = m->byte_fallback;
    info->add_dummy_prefix = m->norm.add_dummy_prefix;
    info->remove_extra_whitespaces = m->norm.remove_extra_whitespaces;
    info->escape_whitespaces = m->norm.escape_whitespaces;
    info->treat_whitespace_as_suffix = m->norm.treat_ws_as_suffix;
    info->n_user_defined = m->n_user;
    info->charsmap_size = m->norm.charsmap_size;
    info->denorm_charsmap_size = m->denorm.charsmap_size;
    memcpy(info->normalizer_name, m->norm.name, sizeof info->normalizer_name);
}

void glmq_sp_piece_meta(const glmq_sp_model *m, int32_t id, float *score, int *type)
{
    *score = m->score[id];
    *type = m->type[id];
}

int32_t glmq_sp_piece_id(const glmq_sp_model *m, const char *s, size_t n)
{
    int32_t id = glmq_tkmap_find(&m->reserved, &m->pv, (const uint8_t *)s, n);
    return id >= 0 ? id : glmq_tkmap_find(&m->normal, &m->pv, (const uint8_t *)s, n);
}

const char *glmq_sp_piece(const glmq_sp_model *m, int32_t id, size_t *len)
{
    if (id < 0 || id >= m->n) {
        *len = 0;
        return NULL;
    }
    *len = m->len[id];
    return (const char *)m->pool + m->off[id];
}

/* PieceToId: reserved first, then normal, else unk. */
static int32_t piece_to_id(const glmq_sp_model *m, const uint8_t *s, size_t n)
{
    int32_t id = glmq_tkmap_find(&m->reserved, &m->pv, s, n);
    if (id >= 0) return id;
    id = glmq_tkmap_find(&m->normal, &m->pv, s, n);
    return id >= 0 ? id : m->unk_id;
}

/* ------------------------------------------------------------------------------------------ */
/* normalizer (GLM-SPEC F.4)                                                                   */

/* Longest charsmap key that prefixes s[0..n): Darts-clone commonPrefixSearch, bounds-checked.
 * Returns the key length (0 = none) and the string offset in *value. */
static size_t charsmap_match(const sp_norm *nm, const uint8_t *s, size_t n, uint32_t *value)
{
    const uint32_t *u = nm->units;
    size_t best = 0;
#define DA_OFFSET(x) (((x) >> 10) << (((x) & (1u << 9)) >> 6))
    uint32_t pos = DA_OFFSET(u[0]);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= nm->n_units) break;
        uint32_t unit = u[pos];
        if ((unit & 0x800000FFu) != s[i]) break;
        pos ^= DA_OFFSET(unit);
        if ((unit >> 8) & 1) {
            if (pos >= nm->n_units) break;
            best = i + 1;
            *value = u[pos] & 0x7FFFFFFFu;
        }
    }
#undef DA_OFFSET
    return best;
}

typedef struct {
    const uint8_t *rep; /* replacement bytes */
    size_t rep_len;
    size_t consumed; /* input bytes */
} norm_prefix;

static glmq_status normalize_prefix(const glmq_sp_model *m, const sp_norm *nm, int use_user,
                                    const uint8_t *s, size_t n, norm_prefix *p, glmq_err *err)
{
    static const uint8_t k_fffd[3] = {0xEF, 0xBF, 0xBD};
    if (use_user && m->n_user) {
        size_t l = glmq_tktrie_longest(&m->user, s, n, NULL);
        if (l) {
            p->rep = s;
            p->rep_len = p->consumed = l;
            return GLMQ_OK;
        }
    }
    if (nm->units) {
        uint32_t v = 0;
        size_t l = charsmap_match(nm, s, n, &v);
        if (l) {
            GLMQ_FAIL_IF(v >= nm->n_strs, err, GLMQ_E_FORMAT,
                         "sentencepiece model: charsmap replacement offset %u outside the %zu-byte "
                         "string table",
                         v, nm->n_strs);
            p->rep = nm->strs + v;
            p->rep_len = strlen((const char *)p->rep);
            p->consumed = l;
            return GLMQ_OK;
        }
    }
    size_t l;
    if (glmq_utf8_decode(s, n, &l) == GLMQ_UTF8_INVALID) {
        p->rep = k_fffd;
        p->rep_len = 3;
        p->consumed = 1;
    } else {
        p->rep = s;
        p->rep_len = p->consumed = l;
    }
    return GLMQ_OK;
}

static glmq_status add_ws(const sp_norm *nm, glmq_tkbuf *o, glmq_err *err)
{
    return nm->escape_whitespaces ? glmq_tkbuf_put(o, k_space_sym, 3, err)
                                  : glmq_tkbuf_put(o, " ", 1, err);
}

/* Normalizer::Normalize (offsets not kept). Appends to o. */
static glmq_status normalize(const glmq_sp_model *m, const sp_norm *nm, int use_user,
                             const uint8_t *s, size_t n, glmq_tkbuf *o, glmq_err *err)
{
    norm_prefix p;
    if (n == 0) return GLMQ_OK;
    const size_t o0 = o->n;
    if (nm->remove_extra_whitespaces) {
        while (n) {
            GLMQ_TRY(normalize_prefix(m, nm, use_user, s, n, &p, err));
            if (!(p.rep_len == 1 && p.rep[0] == ' ')) break;
            s += p.consumed;
            n -= p.consumed;
        }
    }
    if (n == 0) return GLMQ_OK;
    GLMQ_TRY(glmq_tkbuf_reserve(o, n + n / 2 + 8, err));
    if (!nm->treat_ws_as_suffix && nm->add_dummy_prefix) GLMQ_TRY(add_ws(nm, o, err));
    int is_prev_space = nm->remove_extra_whitespaces;
    while (n) {
        GLMQ_TRY(normalize_prefix(m, nm, use_user, s, n, &p, err));
        const uint8_t *r = p.rep;
        size_t rl = p.rep_len;
        while (is_prev_space && rl && r[0] == ' ') {
            r++;
            rl--;
        }
        if (rl) {
            GLMQ_TRY(glmq_tkbuf_reserve(o, 3 * rl, err));
            for (size_t k = 0; k < rl; k++) {
                if (nm->escape_whitespaces && r[k] == ' ') {
                    memcpy(o->p + o->n, k_space_sym, 3);
                    o->n += 3;
                } else {
                    o->p[o->n++] = r[k];
                }
            }
            is_prev_space = r[rl - 1] == ' ';
        }
        s += p.consumed;
        n -= p.consumed;
        if (!nm->remove_extra_whitespaces) is_prev_space = 0;
    }
    if (nm->remove_extra_whitespaces) {
        const uint8_t *sym = nm->escape_whitespaces ? k_space_sym : (const uint8_t *)" ";
        size_t sl = nm->escape_whitespaces ? 3 : 1;
        while (o->n - o0 >= sl && memcmp(o->p + o->n - sl, sym, sl) == 0) o->n -= sl;
    }
    if (nm->treat_ws_as_suffix && nm->add_dummy_prefix) GLMQ_TRY(add_ws(nm, o, err));
    return GLMQ_OK;
}

glmq_status glmq_sp_normalize(const glmq_sp_model *m, const uint8_t *text, size_t len,
                              glmq_tkbuf *out, glmq_err *err)
{
    return normalize(m, &m->norm, 1, text, len, out, err);
}

/* ------------------------------------------------------------------------------------------ */
/* output: unknown handling of SentencePieceProcessor::PopulateSentencePieceText (F.5 step 5)  */

typedef struct {
    const glmq_sp_model *m;
    glmq_ids *out;
    int32_t offset;
    int prev_unk;
} emitter;

static glmq_status emit(emitter *e, const uint8_t *s, size_t n, int32_t id, glmq_err *err)
{
    const glmq_sp_model *m = e->m;
    int is_unk = id == m->unk_id;
    if (is_unk && m->byte_fallback) {
        for (size_t k = 0; k < n; k++)
            GLMQ_TRY(glmq_ids_push(e->out, m->byte_id[s[k]] + e->offset, err));
    } else if (!(is_unk && e->prev_unk)) {
        GLMQ_TRY(glmq_ids_push(e->out, id + e->offset, err));
    }
    e->prev_unk = is_unk;
    return GLMQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* BPE (GLM-SPEC F.5, bpe_model.cc SampleEncode without dropout)                               */

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
    int32_t id; /* the merged piece */
} bpe_cand;

/* max-heap order: higher score, then smaller left index */
static int cand_before(const bpe_cand *a, const bpe_cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    bpe_cand *v;
    size_t n, cap;
} cand_heap;

static glmq_status heap_push(cand_heap *h, bpe_cand c, glmq_err *err)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        bpe_cand *v = realloc(h->v, cap * sizeof *v);
        GLMQ_FAIL_IF(!v, err, GLMQ_E_NOMEM, "sentencepiece: out of memory (bpe heap)");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return GLMQ_OK;
}

static bpe_cand heap_pop(cand_heap *h)
{
    bpe_cand top = h->v[0];
    bpe_cand last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        const bpe_cand *bv = &last;
        if (l < h->n && cand_before(&h->v[l], bv)) {
            b = l;
            bv = &h->v[l];
        }
        if (r < h->n && cand_before(&h->v[r], bv)) b = r;
        if (b == i) break;
        h->v[i] = h->v[b];
        i = b;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* id -> left length of the last pushed split of an UNUSED piece (open addressing) */
typedef struct {
    int32_t *key;
    uint32_t *val;
    uint32_t mask, count;
} rev_map;

static glmq_status rev_put(rev_map *r, int32_t id, uint32_t left, glmq_err *err)
{
    if (2 * (r->count + 1) > r->mask + 1 || !r->key) {
        uint32_t cap = r->key ? 2 * (r->mask + 1) : 64;
        int32_t *k = malloc(cap * sizeof *k);
        uint32_t *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return glmq_fail(err, GLMQ_E_NOMEM, "sentencepiece: out of memory");
        }
        memset(k, 0xFF, cap * sizeof *k);
        uint32_t old = r->key ? r->mask + 1 : 0;
        for (uint32_t i = 0; i < old; i++) {
            if (r->key[i] < 0) continue;
            uint32_t j = ((uint32_t)r->key[i] * 2654435761u) & (cap - 1);
            while (k[j] >= 0) j = (j + 1) & (cap - 1);
            k[j] = r->key[i];
            v[j] = r->val[i];
        }
        free(r->key);
        free(r->val);
        r->key = k;
        r->val = v;
        r->mask = cap - 1;
    }
    uint32_t j = ((uint32_t)id * 2654435761u) & r->mask;
    while (r->key[j] >= 0 && r->key[j] != id) j = (j + 1) & r->mask;
    if (r->key[j] < 0) r->count++;
    r->key[j] = id;
    r->val[j] = left;
    return GLMQ_OK;
}

static int rev_get(const rev_map *r, int32_t id, uint32_t *left)
{
    if (!r->key) return 0;
    uint32_t j = ((uint32_t)id * 2654435761u) & r->mask;
    while (r->key[j] >= 0) {
        if (r->key[j] == id) {
            *left = r->val[j];
            return 1;
        }
        j = (j + 1) & r->mask;
    }
    return 0;
}

typedef struct {
    uint32_t *start, *len;
    int32_t *prev, *next;
    int32_t *id; /* piece of a merged symbol, -1 for an initial one */
    uint8_t *freeze;
} bpe_syms;

static glmq_status bpe_maybe_add(const glmq_sp_model *m, const uint8_t *nb, bpe_syms *sy,
                                 cand_heap *h, rev_map *rev, int32_t l, int32_t r, glmq_err *err)
{
    if (l < 0 || r < 0 || sy->freeze[l] || sy->freeze[r]) return GLMQ_OK;
    uint32_t size = sy->len[l] + sy->len[r];
    int32_t id = glmq_tkmap_find(&m->normal, &m->pv, nb + sy->start[l], size);
    if (id < 0) return GLMQ_OK;
    bpe_cand c = {m->score[id], l, r, size, id};
    GLMQ_TRY(heap_push(h, c, err));
    if (m->type[id] == SP_UNUSED) GLMQ_TRY(rev_put(rev, id, sy->len[l], err));
    return GLMQ_OK;
}

static glmq_status syms_grow(bpe_syms *sy, size_t *cap, glmq_err *err)
{
    size_t c = *cap ? 2 * *cap : 256;
    uint32_t *a = realloc(sy->start, c * sizeof *a);
    if (a) sy->start = a;
    uint32_t *b = realloc(sy->len, c * sizeof *b);
    if (b) sy->len = b;
    int32_t *p = realloc(sy->prev, c * sizeof *p);
    if (p) sy->prev = p;
    int32_t *q = realloc(sy->next, c * sizeof *q);
    if (q) sy->next = q;
    int32_t *d = realloc(sy->id, c * sizeof *d);
    if (d) sy->id = d;
    uint8_t *f = realloc(sy->freeze, c);
    if (f) sy->freeze = f;
    GLMQ_FAIL_IF(!a || !b || !p || !q || !d || !f, err, GLMQ_E_NOMEM,
                 "sentencepiece: out of memory (%zu symbols)", c);
    *cap = c;
    return GLMQ_OK;
}

/*
 * Merging runs word by word when bpe_word_split holds (a word = the symbols from one starting
 * with the whitespace symbol to the next; no merge can cross that start), else over the whole
 * string. Either way the result equals one pass over the whole string: merges in different
 * words never interact and keep their relative order. The final symbols of every word are kept
 * (start, length, merged piece) and emitted at the end, because SentencePiece re-splits UNUSED
 * pieces along the LAST split recorded for them anywhere in the string.
 */
static glmq_status encode_bpe(const glmq_sp_model *m, const uint8_t *nb, size_t n, emitter *e,
                              glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    bpe_syms sy = {0}, fin = {0};
    size_t cap = 0, fin_cap = 0, nfin = 0;
    cand_heap h = {0};
    rev_map rev = {0};
    uint32_t *stack = NULL;
    const uint8_t *sym = m->norm.escape_whitespaces ? k_space_sym : (const uint8_t *)" ";
    const size_t sl = m->norm.escape_whitespaces ? 3 : 1;

    for (size_t pos = 0; pos < n;) {
        /* 1. initial symbols of one word: a USER_DEFINED match (frozen) or one UTF-8 char */
        int32_t ns = 0;
        while (pos < n) {
            if (ns > 0 && m->bpe_word_split && n - pos >= sl && memcmp(nb + pos, sym, sl) == 0)
                break;
            if ((size_t)ns == cap) GLMQ_TRY_G(syms_grow(&sy, &cap, err));
            size_t l = m->n_user ? glmq_tktrie_longest(&m->user, nb + pos, n - pos, NULL) : 0;
            sy.freeze[ns] = l > 0;
            if (!l) {
                l = glmq_utf8_lead_len(nb[pos]);
                if (l > n - pos) l = n - pos;
            }
            sy.start[ns] = (uint32_t)pos;
            sy.len[ns] = (uint32_t)l;
            sy.id[ns] = -1;
            sy.prev[ns] = ns - 1;
            sy.next[ns] = ns + 1;
            pos += l;
            ns++;
        }
        sy.next[ns - 1] = -1;
        /* 2. all bigrams; 3. merge best-first, skipping stale candidates */
        for (int32_t i = 1; i < ns; i++)
            GLMQ_TRY_G(bpe_maybe_add(m, nb, &sy, &h, &rev, i - 1, i, err));
        while (h.n) {
            bpe_cand c = heap_pop(&h);
            if (sy.len[c.left] == 0 || sy.len[c.right] == 0 ||
                sy.len[c.left] + sy.len[c.right] != c.size)
                continue;
            sy.len[c.left] += sy.len[c.right];
            sy.id[c.left] = c.id;
            sy.next[c.left] = sy.next[c.right];
            if (sy.next[c.right] >= 0) sy.prev[sy.next[c.right]] = c.left;
            sy.len[c.right] = 0;
            GLMQ_TRY_G(bpe_maybe_add(m, nb, &sy, &h, &rev, sy.prev[c.left], c.left, err));
            GLMQ_TRY_G(bpe_maybe_add(m, nb, &sy, &h, &rev, c.left, sy.next[c.left], err));
        }
        for (int32_t i = 0; i != -1; i = sy.next[i]) {
            if (nfin == fin_cap) GLMQ_TRY_G(syms_grow(&fin, &fin_cap, err));
            fin.start[nfin] = sy.start[i];
            fin.len[nfin] = sy.len[i];
            fin.id[nfin] = sy.id[i];
            nfin++;
        }
    }
    /* 4. emit, splitting UNUSED pieces back (explicit stack instead of recursion) */
    size_t stack_cap = 64;
    stack = malloc(stack_cap * 2 * sizeof *stack);
    GLMQ_FAIL_IF_G(!stack, err, GLMQ_E_NOMEM, "sentencepiece: out of memory");
    for (size_t i = 0; i < nfin; i++) {
        size_t sp = 1;
        stack[0] = fin.start[i];
        stack[1] = fin.len[i];
        int32_t known = m->cross_dup ? -1 : fin.id[i]; /* PieceToId of a merged piece */
        while (sp) {
            sp--;
            uint32_t s0 = stack[2 * sp], l0 = stack[2 * sp + 1];
            int32_t id = known >= 0 ? known : piece_to_id(m, nb + s0, l0);
            known = -1;
            uint32_t left;
            if (m->type[id] != SP_UNUSED || !rev_get(&rev, id, &left) || left == 0 || left >= l0) {
                GLMQ_TRY_G(emit(e, nb + s0, l0, id, err));
                continue;
            }
            if (sp + 2 > stack_cap) {
                stack_cap *= 2;
                uint32_t *ns2 = realloc(stack, stack_cap * 2 * sizeof *stack);
                GLMQ_FAIL_IF_G(!ns2, err, GLMQ_E_NOMEM, "sentencepiece: out of memory");
                stack = ns2;
            }
            stack[2 * sp] = s0 + left; /* right half, processed second */
            stack[2 * sp + 1] = l0 - left;
            stack[2 * sp + 2] = s0;
            stack[2 * sp + 3] = left;
            sp += 2;
        }
    }
fail:
    free(sy.start);
    free(sy.len);
    free(sy.prev);
    free(sy.next);
    free(sy.id);
    free(sy.freeze);
    free(fin.start);
    free(fin.len);
    free(fin.prev);
    free(fin.next);
    free(fin.id);
    free(fin.freeze);
    free(h.v);
    free(rev.key);
    free(rev.val);
    free(stack);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* UNIGRAM (GLM-SPEC F.6, unigram_model.cc EncodeOptimized)                                    */

static glmq_status encode_unigram(const glmq_sp_model *m, const uint8_t *nb, size_t n, emitter *e,
                                  float *carry, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    float *best = malloc((n + 1) * sizeof *best);
    int32_t *from = malloc((n + 1) * sizeof *from);
    int32_t *bid = malloc((n + 1) * sizeof *bid);
    uint32_t *path = NULL;
    GLMQ_FAIL_IF_G(!best || !from || !bid, err, GLMQ_E_NOMEM, "sentencepiece: out of memory (%zu)",
                   n);
    for (size_t i = 0; i <= n; i++) {
        best[i] = 0.0f;
        from[i] = -1;
        bid[i] = -1;
    }
    best[0] = *carry; /* the path score up to this chunk, exactly as one lattice has it */
    const float unk_score = m->min_score - 10.0f; /* kUnkPenalty */
    const glmq_tktrie *tr = &m->trie;
    for (size_t start = 0; start < n;) {
        const float base = best[start];
        size_t mblen = glmq_utf8_lead_len(nb[start]);
        if (mblen > n - start) mblen = n - start;
        int has_single = 0;
        uint32_t v = 0;
        for (size_t k = start; k < n;) {
            v = glmq_tktrie_child(tr, v, nb[k]);
            k++;
            if (!v) break;
            int32_t id = tr->nodes[v].value;
            if (id < 0 || m->type[id] == SP_UNUSED) continue;
            size_t length = k - start;
            double score = m->type[id] == SP_USER ? (double)((float)length * m->max_score) - 0.1
                                                  : (double)m->score[id];
            double cand = score + (double)base;
            if (from[k] == -1 || cand > (double)best[k]) {
                best[k] = (float)cand;
                from[k] = (int32_t)start;
                bid[k] = id;
            }
            if (!has_single && length == mblen) has_single = 1;
        }
        if (!has_single) {
            size_t k = start + mblen;
            float cand = unk_score + base;
            if (from[k] == -1 || cand > best[k]) {
                best[k] = cand;
                from[k] = (int32_t)start;
                bid[k] = m->unk_id;
            }
        }
        start += mblen;
    }
    *carry = best[n];
    /* backtrack, then emit left to right */
    size_t np = 0;
    for (size_t end = n; end > 0; end = (size_t)from[end]) {
        GLMQ_FAIL_IF_G(from[end] < 0 || (size_t)from[end] >= end, err, GLMQ_E_INTERNAL,
                       "sentencepiece: broken unigram lattice at %zu", end);
        np++;
    }
    path = malloc((np ? np : 1) * sizeof *path);
    GLMQ_FAIL_IF_G(!path, err, GLMQ_E_NOMEM, "sentencepiece: out of memory");
    size_t k = np;
    for (size_t end = n; end > 0; end = (size_t)from[end]) path[--k] = (uint32_t)end;
    size_t prev = 0;
    for (size_t i = 0; i < np; i++) {
        size_t end = path[i];
        GLMQ_TRY_G(emit(e, nb + prev, end - prev, bid[end], err));
        prev = end;
    }
fail:
    free(best);
    free(from);
    free(bid);
    free(path);
    return st;
}

/*
 * Chunks. The normalized text is encoded in pieces of about SP_CHUNK bytes cut at a position B
 * that (1) is a symbol start of the left-to-right scan both algorithms begin with (UNIGRAM: a
 * character start; BPE: a character or USER_DEFINED match) and (2) lies inside no occurrence of
 * a `normal` piece that starts at a symbol start before B. Then the result equals that of one
 * pass over the whole text:
 *   - UNIGRAM: every lattice edge starts at a character start and is a piece or one unknown
 *     character, so none crosses B; every path passes through node B, the nodes after B are
 *     written only by edges starting at or after B, and each chunk starts from the exact float
 *     best[B] of the previous one (carry), so every score, comparison and back-pointer is the
 *     one-pass one. Backtracking from the end passes through B.
 *   - BPE: a merged symbol is a piece made of adjacent symbols, so none spans B and no
 *     candidate pairs a symbol left of B with one right of it. The candidates of the two sides
 *     never interact; the one-pass heap pops the best (score, then leftmost) of all, and its
 *     pops restricted to one side are in the order a heap over that side alone gives. UNUSED
 *     pieces are re-split along the last split recorded for them anywhere in the text, which
 *     depends on the global order, so a BPE model with UNUSED pieces is encoded in one pass.
 * Emission (unknown merging) continues across chunks through the one emitter. Pieces are at
 * most trie.max_depth bytes long, so only symbols in the last max_depth bytes before a
 * candidate B can cross it. A text with no such B (a long run of spaces for a model with
 * "▁▁" pieces) stays one chunk.
 */
#define SP_CHUNK ((size_t)1 << 12)

static size_t sp_symbol_len(const glmq_sp_model *m, const uint8_t *s, size_t n)
{
    size_t l = (m->model_type == 2 && m->n_user) ? glmq_tktrie_longest(&m->user, s, n, NULL) : 0;
    if (!l) {
        l = glmq_utf8_lead_len(s[0]);
        if (l > n) l = n;
    }
    return l;
}

static size_t sp_next_cut(const glmq_sp_model *m, const uint8_t *nb, size_t n, size_t cs)
{
    if (n - cs <= 2 * SP_CHUNK || !m->trie.nodes) return n;
    const size_t target = cs + SP_CHUNK, depth = m->trie.max_depth;
    const size_t window = target > cs + depth ? target - depth : cs;
    size_t reach = 0; /* end of the longest piece starting at a symbol start in the window */
    for (size_t pos = cs; pos < n; pos += sp_symbol_len(m, nb + pos, n - pos)) {
        if (pos >= target && pos >= reach) return pos;
        if (pos >= window) {
            size_t l = glmq_tktrie_longest(&m->trie, nb + pos, n - pos, NULL);
            if (pos + l > reach) reach = pos + l;
        }
    }
    return n;
}

glmq_status glmq_sp_encode(const glmq_sp_model *m, const uint8_t *text, size_t len, int32_t offset,
                           glmq_ids *out, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    glmq_tkbuf nb = {0};
    GLMQ_TRY_G(normalize(m, &m->norm, 1, text, len, &nb, err));
    GLMQ_FAIL_IF_G(nb.n >= (size_t)INT32_MAX / 2, err, GLMQ_E_INVALID,
                   "sentencepiece: normalized text of %zu bytes is too long", nb.n);
    emitter e = {m, out, offset, 0};
    float carry = 0.0f;
    const int whole = m->model_type == 2 && m->n_unused;
    for (size_t cs = 0; cs < nb.n && st == GLMQ_OK;) {
        size_t ce = whole ? nb.n : sp_next_cut(m, nb.p, nb.n, cs);
        if (m->model_type == 2)
            st = encode_bpe(m, nb.p + cs, ce - cs, &e, err);
        else
            st = encode_unigram(m, nb.p + cs, ce - cs, &e, &carry, err);
        cs = ce;
    }
fail:
    glmq_tkbuf_free(&nb);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* decoding (GLM-SPEC F.7, SentencePieceProcessor::Decode)                                     */

/* Regroup a run of byte-piece bytes into UTF-8; each invalid byte becomes U+FFFD. */
static glmq_status flush_bytes(const uint8_t *b, size_t n, glmq_tkbuf *o, glmq_err *err)
{
    static const uint8_t k_fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0;
    while (i < n) {
        size_t l;
        if (glmq_utf8_decode(b + i, n - i, &l) == GLMQ_UTF8_INVALID) {
            GLMQ_TRY(glmq_tkbuf_put(o, k_fffd, 3, err));
            i += 1;
        } else {
            GLMQ_TRY(glmq_tkbuf_put(o, b + i, l, err));
            i += l;
        }
    }
    return GLMQ_OK;
}

/* Append piece text with every U+2581 turned into a space. */
static glmq_status put_unescaped(const uint8_t *s, size_t n, glmq_tkbuf *o, glmq_err *err)
{
    GLMQ_TRY(glmq_tkbuf_reserve(o, n, err));
    size_t i = 0;
    while (i < n) {
        if (n - i >= 3 && memcmp(s + i, k_space_sym, 3) == 0) {
            o->p[o->n++] = ' ';
            i += 3;
        } else {
            o->p[o->n++] = s[i++];
        }
    }
    return GLMQ_OK;
}

glmq_status glmq_sp_decode(const glmq_sp_model *m, const int32_t *ids, size_t n, glmq_tkbuf *out,
                           glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    glmq_tkbuf t = {0}, bytes = {0};
    int is_bos_ws = 1, bos_ws_seen = 0;
    const int strip = m->norm.add_dummy_prefix || m->norm.remove_extra_whitespaces;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        int ty = m->type[id];
        if (ty == SP_BYTE) {
            GLMQ_TRY_G(glmq_tkbuf_put(&bytes, &m->byte_val[id], 1, err));
            continue;
        }
        GLMQ_TRY_G(flush_bytes(bytes.p, bytes.n, &t, err));
        bytes.n = 0;
        if (bos_ws_seen || t.n) is_bos_ws = 0;
        if (ty == SP_CONTROL) {
            bos_ws_seen = 0;
        } else if (ty == SP_UNKNOWN) {
            GLMQ_TRY_G(glmq_tkbuf_put(&t, m->unk_surface, m->unk_surface_len, err));
            bos_ws_seen = 0;
        } else {
            const uint8_t *s = m->pool + m->off[id];
            size_t l = m->len[id];
            int has = 0;
            if (is_bos_ws && strip && l >= 3 && memcmp(s, k_space_sym, 3) == 0) {
                s += 3;
                l -= 3;
                has = !m->norm.remove_extra_whitespaces;
            }
            GLMQ_TRY_G(put_unescaped(s, l, &t, err));
            bos_ws_seen = has;
        }
    }
    GLMQ_TRY_G(flush_bytes(bytes.p, bytes.n, &t, err));
    if (m->denorm.units)
        GLMQ_TRY_G(normalize(m, &m->denorm, 0, t.p, t.n, out, err));
    else
        GLMQ_TRY_G(glmq_tkbuf_put(out, t.p, t.n, err));
fail:
    glmq_tkbuf_free(&t);
    glmq_tkbuf_free(&bytes);
    return st;
}
