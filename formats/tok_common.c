/*
 * tok_common.c - the small containers shared by the tokenizer front end (tokenizer.c) and its
 * back ends (sentencepiece.c, tiktoken.c): byte buffer, id vector, hash map over a piece pool,
 * byte trie, UTF-8 decoding and encoding. Declared in tok_common.h.
 */
#include "formats/tok_common.h"

#include <stdlib.h>

/* ------------------------------------------------------------------------------------------ */
/* byte buffer, id vector                                                                      */

glmq_status glmq_tkbuf_reserve(glmq_tkbuf *b, size_t extra, glmq_err *err)
{
    GLMQ_FAIL_IF(extra > SIZE_MAX / 2 - b->n, err, GLMQ_E_NOMEM, "tokenizer: buffer too large");
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return GLMQ_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return GLMQ_OK;
}

glmq_status glmq_tkbuf_put(glmq_tkbuf *b, const void *data, size_t n, glmq_err *err)
{
    if (n == 0) return GLMQ_OK;
    GLMQ_TRY(glmq_tkbuf_reserve(b, n, err));
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return GLMQ_OK;
}

void glmq_tkbuf_free(glmq_tkbuf *b)
{
    if (!b) return;
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

glmq_status glmq_ids_push(glmq_ids *v, int32_t id, glmq_err *err)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        GLMQ_FAIL_IF(cap > SIZE_MAX / sizeof(int32_t), err, GLMQ_E_NOMEM,
                     "tokenizer: too many ids");
        int32_t *p = realloc(v->ids, cap * sizeof(int32_t));
        GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return GLMQ_OK;
}

void glmq_ids_free(glmq_ids *v)
{
    if (!v) return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* hash map over a string pool                                                                 */

uint64_t glmq_tk_hash(const uint8_t *s, size_t n)
{
    /* 8 bytes per step, multiply-xorshift mixing; good enough for token tables. */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

glmq_status glmq_tkmap_init(glmq_tkmap *m, uint32_t n, glmq_err *err)
{
    uint32_t cap = 16;
    while (cap < 2u * n + 2u) {
        GLMQ_FAIL_IF(cap >= (1u << 30), err, GLMQ_E_NOMEM, "tokenizer: map too large");
        cap *= 2;
    }
    m->slots = malloc((size_t)cap * sizeof(int32_t));
    GLMQ_FAIL_IF(!m->slots, err, GLMQ_E_NOMEM, "tokenizer: out of memory (map of %u)", cap);
    memset(m->slots, 0xFF, (size_t)cap * sizeof(int32_t));
    m->mask = cap - 1;
    m->count = 0;
    return GLMQ_OK;
}

void glmq_tkmap_free(glmq_tkmap *m)
{
    if (!m) return;
    free(m->slots);
    m->slots = NULL;
    m->mask = m->count = 0;
}

static int pool_eq(const glmq_tkpool *p, int32_t id, const uint8_t *s, size_t n)
{
    return p->len[id] == n && memcmp(p->pool + p->off[id], s, n) == 0;
}

int32_t glmq_tkmap_insert(glmq_tkmap *m, const glmq_tkpool *p, int32_t id)
{
    const uint8_t *s = p->pool + p->off[id];
    size_t n = p->len[id];
    uint32_t i = (uint32_t)glmq_tk_hash(s, n) & m->mask;
    while (m->slots[i] >= 0) {
        if (pool_eq(p, m->slots[i], s, n)) return m->slots[i];
        i = (i + 1) & m->mask;
    }
    m->slots[i] = id;
    m->count++;
    return -1;
}

int32_t glmq_tkmap_find(const glmq_tkmap *m, const glmq_tkpool *p, const uint8_t *s, size_t n)
{
    if (!m->slots) return -1;
    uint32_t i = (uint32_t)glmq_tk_hash(s, n) & m->mask;
    while (m->slots[i] >= 0) {
        if (pool_eq(p, m->slots[i], s, n)) return m->slots[i];
        i = (i + 1) & m->mask;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* byte trie                                                                                   */

typedef struct {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
} trie_key;

static int trie_key_cmp(const void *a, const void *b)
{
    const trie_key *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

glmq_status glmq_tktrie_build(glmq_tktrie *t, const glmq_tkpool *p, const int32_t *ids, uint32_t n,
                              glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    trie_key *keys = NULL;
    uint32_t *lo = NULL, *hi = NULL, *depth = NULL;
    memset(t, 0, sizeof *t);

    uint64_t total = 1;
    for (uint32_t i = 0; i < n; i++) total += p->len[ids[i]];
    GLMQ_FAIL_IF_G(total >= (1u << 31), err, GLMQ_E_NOMEM, "tokenizer: trie too large");
    keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    t->nodes = malloc((size_t)total * sizeof *t->nodes);
    t->labels = malloc((size_t)total);
    lo = malloc((size_t)total * sizeof *lo);
    hi = malloc((size_t)total * sizeof *hi);
    depth = malloc((size_t)total * sizeof *depth);
    GLMQ_FAIL_IF_G(!keys || !t->nodes || !t->labels || !lo || !hi || !depth, err, GLMQ_E_NOMEM,
                   "tokenizer: out of memory (trie of %llu nodes)", (unsigned long long)total);
    for (uint32_t i = 0; i < n; i++) {
        keys[i].p = p->pool + p->off[ids[i]];
        keys[i].len = p->len[ids[i]];
        keys[i].id = ids[i];
        if (keys[i].len > t->max_depth) t->max_depth = keys[i].len;
    }
    if (n > 1) qsort(keys, n, sizeof *keys, trie_key_cmp);

    /* Breadth-first: the children of node v occupy a contiguous run of node indices, so an edge
     * needs no child pointer. Node v covers the sorted keys [lo, hi) sharing depth[v] bytes. */
    t->n_nodes = 1;
    t->labels[0] = 0;
    lo[0] = 0;
    hi[0] = n;
    depth[0] = 0;
    for (uint32_t v = 0; v < t->n_nodes; v++) {
        uint32_t a = lo[v], b = hi[v], d = depth[v];
        t->nodes[v].value = -1;
        while (a < b && keys[a].len == d) { /* the key equal to this prefix sorts first */
            if (t->nodes[v].value < 0) t->nodes[v].value = keys[a].id;
            a++;
        }
        t->nodes[v].first = t->n_nodes;
        t->nodes[v].count = 0;
        while (a < b) {
            uint8_t c = keys[a].p[d];
            uint32_t e = a;
            while (e < b && keys[e].p[d] == c) e++;
            uint32_t child = t->n_nodes++;
            t->labels[child] = c;
            lo[child] = a;
            hi[child] = e;
            depth[child] = d + 1;
            t->nodes[v].count++;
            a = e;
        }
    }
    goto done;
fail:
    glmq_tktrie_free(t);
done:
    free(keys);
    free(lo);
    free(hi);
    free(depth);
    return st;
}

void glmq_tktrie_free(glmq_tktrie *t)
{
    if (!t) return;
    free(t->nodes);
    free(t->labels);
    memset(t, 0, sizeof *t);
}

size_t glmq_tktrie_longest(const glmq_tktrie *t, const uint8_t *s, size_t n, int32_t *value)
{
    size_t best = 0;
    uint32_t v = 0;
    if (!t->nodes) return 0;
    for (size_t i = 0; i < n; i++) {
        v = glmq_tktrie_child(t, v, s[i]);
        if (!v) break;
        if (t->nodes[v].value >= 0) {
            best = i + 1;
            if (value) *value = t->nodes[v].value;
        }
    }
    return best;
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                       */

uint32_t glmq_utf8_decode(const uint8_t *s, size_t n, size_t *len)
{
    uint8_t c = s[0];
    *len = 1;
    if (c < 0x80) return c;
    if ((c & 0xE0) == 0xC0 && n >= 2 && (s[1] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        if (cp >= 0x80) {
            *len = 2;
            return cp;
        }
    } else if ((c & 0xF0) == 0xE0 && n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
            *len = 3;
            return cp;
        }
    } else if ((c & 0xF8) == 0xF0 && n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
               (s[3] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            *len = 4;
            return cp;
        }
    }
    return GLMQ_UTF8_INVALID;
}

size_t glmq_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}


/* ---- heap byte-pair merging ---------------------------------------------------------------- */

static int bpe_before(const glmq_bpe_cand *a, const glmq_bpe_cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static glmq_status bpe_push(glmq_bpe *b, glmq_bpe_cand c, glmq_err *err)
{
    if (b->hn == b->hcap) {
        size_t cap = b->hcap ? 2 * b->hcap : 64;
        glmq_bpe_cand *v = realloc(b->heap, cap * sizeof *v);
        GLMQ_FAIL_IF(!v, err, GLMQ_E_NOMEM, "byte-pair merge: out of memory (heap)");
        b->heap = v;
        b->hcap = cap;
    }
    size_t i = b->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bpe_before(&c, &b->heap[p])) break;
        b->heap[i] = b->heap[p];
        i = p;
    }
    b->heap[i] = c;
    return GLMQ_OK;
}

static glmq_bpe_cand bpe_pop(glmq_bpe *b)
{
    glmq_bpe_cand top = b->heap[0], last = b->heap[--b->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const glmq_bpe_cand *mv = &last;
        if (l < b->hn && bpe_before(&b->heap[l], mv)) {
            m = l;
            mv = &b->heap[l];
        }
        if (r < b->hn && bpe_before(&b->heap[r], mv)) m = r;
        if (m == i) break;
        b->heap[i] = b->heap[m];
        i = m;
    }
    if (b->hn) b->heap[i] = last;
    return top;
}

glmq_status glmq_bpe_merge(glmq_bpe *b, glmq_bpe_rank_fn rank, const void *ctx, const uint8_t *s,
                           size_t n, uint32_t max_rank, glmq_err *err)
{
    GLMQ_FAIL_IF(n >= UINT32_MAX, err, GLMQ_E_INVALID, "byte-pair merge: %zu bytes in one piece",
                 n);
    if (n + 1 > b->cap) {
        size_t cap = n + 1 > 2 * b->cap ? n + 1 : 2 * b->cap;
        uint32_t *e = realloc(b->end, cap * sizeof *e);
        if (e) b->end = e;
        uint32_t *p = realloc(b->prv, cap * sizeof *p);
        if (p) b->prv = p;
        GLMQ_FAIL_IF(!e || !p, err, GLMQ_E_NOMEM, "byte-pair merge: out of memory (%zu bytes)", n);
        b->cap = cap;
    }
    uint32_t *end = b->end, *prv = b->prv;
    b->hn = 0;
    for (uint32_t i = 0; i < n; i++) {
        end[i] = i + 1;
        prv[i] = i ? i - 1 : UINT32_MAX;
    }
    end[n] = 0;
    for (uint32_t i = 0; i + 1 < n; i++) {
        uint32_t r = rank(ctx, s + i, 2);
        if (r < max_rank) GLMQ_TRY(bpe_push(b, (glmq_bpe_cand){r, i, i + 1, i + 2}, err));
    }
    while (b->hn) {
        glmq_bpe_cand c = bpe_pop(b);
        if (end[c.left] != c.mid || end[c.mid] != c.right) continue; /* stale */
        end[c.left] = c.right;
        end[c.mid] = 0;
        if (c.right < n) prv[c.right] = c.left;
        if (c.left > 0) {
            uint32_t p = prv[c.left];
            uint32_t r = rank(ctx, s + p, c.right - p);
            if (r < max_rank) GLMQ_TRY(bpe_push(b, (glmq_bpe_cand){r, p, c.left, c.right}, err));
        }
        if (c.right < n) {
            uint32_t e = end[c.right];
            uint32_t r = rank(ctx, s + c.left, e - c.left);
            if (r < max_rank) GLMQ_TRY(bpe_push(b, (glmq_bpe_cand){r, c.left, c.right, e}, err));
        }
    }
    return GLMQ_OK;
}

void glmq_bpe_free(glmq_bpe *b)
{
    free(b->end);
    free(b->prv);
    free(b->heap);
    memset(b, 0, sizeof *b);
}
