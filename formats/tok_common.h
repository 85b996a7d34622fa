/*
 * tok_common.h - pieces shared by tokenizer.c (front end, GLM flavours), sentencepiece.c
 * and tiktoken.c: a growable byte buffer, a hash map and a byte trie over a string pool, UTF-8
 * helpers, and the two back ends' entry points. Never installed.
 *
 * String pools: both back ends keep every token's bytes in one pool and address token `i` as
 * pool[off[i] .. off[i] + len[i]). The map and the trie store token ids, never copies.
 */
#ifndef GLMQ_TOK_COMMON_H
#define GLMQ_TOK_COMMON_H

#include "core/internal.h"
#include "formats/tokenizer.h"

/* ---- byte buffer ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n;
    size_t cap;
} glmq_tkbuf;

/* Ensure room for `extra` more bytes (plus one spare byte for a NUL). */
glmq_status glmq_tkbuf_reserve(glmq_tkbuf *b, size_t extra, glmq_err *err);
glmq_status glmq_tkbuf_put(glmq_tkbuf *b, const void *data, size_t n, glmq_err *err);
void glmq_tkbuf_free(glmq_tkbuf *b);


/* ---- string pool views ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *pool; /* token bytes */
    const uint32_t *off; /* token i starts at pool + off[i] */
    const uint32_t *len; /* and has len[i] bytes */
} glmq_tkpool;

/* ---- hash map: token bytes -> token id (open addressing, ids stored in slots) ------------- */

typedef struct {
    int32_t *slots; /* -1 = empty */
    uint32_t mask;  /* capacity - 1, capacity a power of two >= 2 * count */
    uint32_t count;
} glmq_tkmap;

uint64_t glmq_tk_hash(const uint8_t *s, size_t n);
/* Capacity for up to `n` entries. */
glmq_status glmq_tkmap_init(glmq_tkmap *m, uint32_t n, glmq_err *err);
void glmq_tkmap_free(glmq_tkmap *m);
/* Insert id (its key is pool token `id`). Returns -1 when inserted, else the id already there
 * with the same bytes (the map is not changed). The map must have room (init with n). */
int32_t glmq_tkmap_insert(glmq_tkmap *m, const glmq_tkpool *p, int32_t id);
int32_t glmq_tkmap_find(const glmq_tkmap *m, const glmq_tkpool *p, const uint8_t *s, size_t n);

/*
 * Byte-pair merging by rank with a heap (tiktoken's encoder and the GGUF vocabulary's merge
 * derivation): s[0..n) starts as single bytes; repeatedly the adjacent pair whose concatenation
 * has the lowest rank below max_rank is merged, the leftmost on ties; rank(ctx, bytes, len) gives
 * a rank or UINT32_MAX for none. Afterwards the parts are p = 0, end[p], end[end[p]], ... until n.
 * The buffers are kept for the next call; n must be below UINT32_MAX.
 */
typedef uint32_t (*glmq_bpe_rank_fn)(const void *ctx, const uint8_t *s, size_t n);
typedef struct {
    uint32_t rank, left, mid, right;
} glmq_bpe_cand;
typedef struct {
    uint32_t *end; /* end[p] > p for a live part starting at p, else 0 (n + 1 entries) */
    uint32_t *prv; /* previous live part's start */
    size_t cap;
    glmq_bpe_cand *heap;
    size_t hn, hcap;
} glmq_bpe;
glmq_status glmq_bpe_merge(glmq_bpe *b, glmq_bpe_rank_fn rank, const void *ctx, const uint8_t *s,
                           size_t n, uint32_t max_rank, glmq_err *err);
void glmq_bpe_free(glmq_bpe *b); /* the buffers; the struct may be reused after */

/* ---- byte trie over a set of tokens ------------------------------------------------------ */

/* Node i: value (token id or -1), children in edges [first, first + count) sorted by label. */
typedef struct {
    int32_t value;
    uint32_t first;
    uint32_t count;
} glmq_tktrie_node;

typedef struct {
    glmq_tktrie_node *nodes; /* nodes[0] = root */
    uint8_t *labels;         /* edge labels, parallel to child: child of edge e = first + e */
    uint32_t n_nodes;
    uint32_t max_depth; /* longest key */
} glmq_tktrie;

/* Build over the tokens ids[0..n) (distinct byte strings). Children of a node are stored
 * contiguously: the child of edge e of node v is node (v.first + e). */
glmq_status glmq_tktrie_build(glmq_tktrie *t, const glmq_tkpool *p, const int32_t *ids, uint32_t n,
                              glmq_err *err);
void glmq_tktrie_free(glmq_tktrie *t);

/* Child of node v along byte c, or 0 when absent (the root is never a child). */
static inline uint32_t glmq_tktrie_child(const glmq_tktrie *t, uint32_t v, uint8_t c)
{
    const glmq_tktrie_node *nd = &t->nodes[v];
    uint32_t lo = 0, hi = nd->count;
    const uint8_t *lab = t->labels + nd->first;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (lab[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < nd->count && lab[lo] == c) ? nd->first + lo : 0;
}

/* Length of the longest key that is a prefix of s[0..n), 0 if none; its value in *value. */
size_t glmq_tktrie_longest(const glmq_tktrie *t, const uint8_t *s, size_t n, int32_t *value);

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* SentencePiece's OneCharLen: length from the lead byte only (1,1,..,2,2,3,4 by high nibble). */
static inline size_t glmq_utf8_lead_len(uint8_t c)
{
    static const uint8_t k[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return k[c >> 4];
}

#define GLMQ_UTF8_INVALID 0x110000u
/* Strict decode of one character at s (n >= 1 bytes available): shortest form, no surrogates,
 * <= U+10FFFF. Returns the code point and its length, or GLMQ_UTF8_INVALID with *len = 1
 * (SentencePiece's DecodeUTF8, except that it returns U+FFFD). */
uint32_t glmq_utf8_decode(const uint8_t *s, size_t n, size_t *len);
/* Append the UTF-8 encoding of cp (< 0x110000) to out; returns its length (1..4). */
size_t glmq_utf8_encode(uint32_t cp, uint8_t out[4]);

/* ---- SentencePiece back end (sentencepiece.c) ------------------------------------------- */

typedef struct glmq_sp_model glmq_sp_model;

glmq_status glmq_sp_load(const uint8_t *data, size_t size, glmq_sp_model **out, glmq_err *err);
/* Like glmq_sp_load, but every piece whose text is one of names[0..n_names) gets piece type
 * `type` (1..6) before the tables are built, as if the file said so. */
glmq_status glmq_sp_load_typed(const uint8_t *data, size_t size, const char *const *names,
                               size_t n_names, int type, glmq_sp_model **out, glmq_err *err);
void glmq_sp_free(glmq_sp_model *m);
int32_t glmq_sp_n_pieces(const glmq_sp_model *m);
void glmq_sp_info(const glmq_sp_model *m, glmq_tok_info *info);
/* PieceToId: reserved pieces first, then normal ones, else -1 (NOT unk, unlike SentencePiece). */
int32_t glmq_sp_piece_id(const glmq_sp_model *m, const char *s, size_t n);
const char *glmq_sp_piece(const glmq_sp_model *m, int32_t id, size_t *len);
/* Score and type (1..6, the ModelProto's) of piece id, which must be in [0, n_pieces). */
void glmq_sp_piece_meta(const glmq_sp_model *m, int32_t id, float *score, int *type);
/* The normalized form of text (GLM-SPEC F.4), appended to out. */
glmq_status glmq_sp_normalize(const glmq_sp_model *m, const uint8_t *text, size_t len,
                              glmq_tkbuf *out, glmq_err *err);
/* Append the ids of text, each plus `offset`. */
glmq_status glmq_sp_encode(const glmq_sp_model *m, const uint8_t *text, size_t len, int32_t offset,
                           glmq_ids *out, glmq_err *err);
/* Append the decoded text of piece ids (each in [0, n_pieces), checked by the caller). */
glmq_status glmq_sp_decode(const glmq_sp_model *m, const int32_t *ids, size_t n, glmq_tkbuf *out,
                           glmq_err *err);

/* ---- tiktoken back end (tiktoken.c) ----------------------------------------------------- */

typedef struct glmq_tt_model glmq_tt_model;

glmq_status glmq_tt_load(const uint8_t *data, size_t size, glmq_tt_model **out, glmq_err *err);
void glmq_tt_free(glmq_tt_model *m);
int32_t glmq_tt_n_ranks(const glmq_tt_model *m);
const char *glmq_tt_token(const glmq_tt_model *m, int32_t rank, size_t *len);
glmq_status glmq_tt_encode(const glmq_tt_model *m, const uint8_t *text, size_t len, glmq_ids *out,
                           glmq_err *err);

/* Character class of a code point for the pre-tokenizer: GLMQ_UC_* of unicode_tables.h
 * (0 other, 1 letter, 2 number, 3 White_Space); GLMQ_UTF8_INVALID is "other". */
int glmq_tt_class(uint32_t cp);
/* Length in bytes of the pre-tokenizer chunk starting at s[0] (n >= 1). */
size_t glmq_tt_chunk(const uint8_t *s, size_t n);
/* Byte-pair merge of one chunk (no whole-chunk lookup first), appending ranks to out, with
 * tiktoken's O(n^2) scan (use_heap = 0) or the O(n log n) heap (use_heap = 1); the two must
 * agree (tested). glmq_tt_encode uses the heap for chunks of 128 bytes or more. */
glmq_status glmq_tt_bpe(const glmq_tt_model *m, const uint8_t *s, size_t n, int use_heap,
                        glmq_ids *out, glmq_err *err);

#endif /* GLMQ_TOK_COMMON_H */
