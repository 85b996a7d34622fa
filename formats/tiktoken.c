/*
 * tiktoken.c - GLM-4's tokenizer: a tiktoken rank file, the cl100k-style pre-tokenizer as a
 * hand-written matcher, and byte-pair merging by lowest rank (GLM-SPEC C.3; tiktoken
 * CoreBPE::encode_ordinary).
 *
 * Pre-tokenizer: the regex
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+
 * is matched by glmq_tt_chunk() with the six rules of GLM-SPEC C.3 (first alternative wins,
 * backtracking semantics). Classes come from formats/unicode_tables.h (Unicode 14.0 via Python's
 * unicodedata; White_Space from PropList). (?i) case folding: 's' also matches U+017F LATIN
 * SMALL LETTER LONG S (simple case folding); the other letters fold only to their ASCII pair.
 * Invalid UTF-8 (impossible in tiktoken, whose input is a Rust &str) is read one byte at a time
 * as a character of class "other".
 *
 * Merging: a chunk that is itself a token gives that rank; otherwise start from single bytes
 * (all 256 are tokens - checked at load) and repeatedly merge the adjacent pair whose
 * concatenation has the lowest rank, leftmost on ties. Short chunks use tiktoken's O(n^2) scan,
 * long ones an equivalent heap keyed by (rank, left byte offset).
 */
#include "formats/tok_common.h"
#include "formats/unicode_tables.h"

#include <stdatomic.h>
#include <stdlib.h>

struct glmq_tt_model {
    int32_t n;     /* ranks 0..n-1 */
    uint8_t *pool; /* token bytes */
    uint32_t *off, *len;
    glmq_tkpool pv;
    glmq_tkmap map; /* bytes -> rank */
    /* A byte trie of every token, for cutting chunks of TT_CUT_MIN bytes or more (below). Built
     * on first need and published once with a compare-exchange (a losing builder frees its
     * copy), so the model stays shareable between threads; ordinary text never builds it. */
    _Atomic(glmq_tktrie *) trie;
};

/* Chunks of at least TT_CUT_MIN bytes are merged in pieces of about TT_CUT bytes. */
#define TT_CUT ((size_t)1 << 12)
#define TT_CUT_MIN (2 * TT_CUT)

/* Chunks at least this long use the heap merge. */
#define TT_HEAP_MIN 128

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                     */

static int b64_val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict standard base64 (length % 4 == 0, '=' only as final padding). Returns the decoded
 * length or -1. out needs 3 * n / 4 bytes. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) return -1; /* data after '=' */
                v[k] = b64_val(s[i + k]);
                if (v[k] < 0) return -1;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
        /* like Python's b64decode, non-zero bits under the padding are ignored */
    }
    return (long)o;
}

static int is_space_byte(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

void glmq_tt_free(glmq_tt_model *m)
{
    if (!m) return;
    free(m->pool);
    free(m->off);
    free(m->len);
    glmq_tkmap_free(&m->map);
    glmq_tktrie *t = atomic_load(&m->trie);
    if (t) {
        glmq_tktrie_free(t);
        free(t);
    }
    free(m);
}

glmq_status glmq_tt_load(const uint8_t *data, size_t size, glmq_tt_model **out, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    uint8_t *seen = NULL;
    *out = NULL;
    GLMQ_FAIL_IF(size >= ((size_t)1 << 31), err, GLMQ_E_FORMAT,
                 "tiktoken file: %zu bytes is too large", size);
    glmq_tt_model *m = calloc(1, sizeof *m);
    GLMQ_FAIL_IF(!m, err, GLMQ_E_NOMEM, "tiktoken file: out of memory");

    /* pass 1: count non-empty lines (an upper bound on entries) */
    size_t lines = 0;
    for (size_t i = 0; i < size;) {
        size_t j = i;
        while (j < size && data[j] != '\n' && data[j] != '\r') j++;
        if (j > i) lines++;
        i = j + 1;
    }
    GLMQ_FAIL_IF_G(lines == 0, err, GLMQ_E_FORMAT, "tiktoken file: no tokens");
    GLMQ_FAIL_IF_G(lines >= (size_t)INT32_MAX / 2, err, GLMQ_E_FORMAT,
                   "tiktoken file: too many lines");
    m->off = malloc(lines * sizeof *m->off);
    m->len = malloc(lines * sizeof *m->len);
    m->pool = malloc(size / 4 * 3 + 4);
    seen = calloc(lines, 1);
    GLMQ_FAIL_IF_G(!m->off || !m->len || !m->pool || !seen, err, GLMQ_E_NOMEM,
                   "tiktoken file: out of memory");

    /* pass 2: parse "<base64> <rank>" per line (Python: bytes.splitlines(), line.split()) */
    size_t pool_n = 0, lineno = 0, entries = 0;
    for (size_t i = 0; i < size;) {
        size_t j = i;
        while (j < size && data[j] != '\n' && data[j] != '\r') j++;
        lineno++;
        if (j == i) {
            i = j + 1;
            continue;
        }
        const uint8_t *f[3];
        size_t fl[3], nf = 0;
        for (size_t k = i; k < j;) {
            while (k < j && is_space_byte(data[k])) k++;
            if (k == j) break;
            size_t e = k;
            while (e < j && !is_space_byte(data[e])) e++;
            if (nf < 3) {
                f[nf] = data + k;
                fl[nf] = e - k;
            }
            nf++;
            k = e;
        }
        GLMQ_FAIL_IF_G(nf != 2, err, GLMQ_E_FORMAT,
                       "tiktoken file: line %zu has %zu fields, expected '<base64> <rank>'", lineno,
                       nf);
        uint64_t rank = 0;
        GLMQ_FAIL_IF_G(fl[1] > 10, err, GLMQ_E_FORMAT, "tiktoken file: line %zu: bad rank", lineno);
        for (size_t k = 0; k < fl[1]; k++) {
            GLMQ_FAIL_IF_G(f[1][k] < '0' || f[1][k] > '9', err, GLMQ_E_FORMAT,
                           "tiktoken file: line %zu: bad rank", lineno);
            rank = rank * 10 + (uint64_t)(f[1][k] - '0');
        }
        GLMQ_FAIL_IF_G(rank >= lines, err, GLMQ_E_FORMAT,
                       "tiktoken file: line %zu: rank %llu is not below the token count %zu (ranks "
                       "must be 0..n-1)",
                       lineno, (unsigned long long)rank, lines);
        GLMQ_FAIL_IF_G(seen[rank], err, GLMQ_E_FORMAT,
                       "tiktoken file: line %zu: rank %llu repeated", lineno,
                       (unsigned long long)rank);
        long bl = b64_decode(f[0], fl[0], m->pool + pool_n);
        GLMQ_FAIL_IF_G(bl <= 0, err, GLMQ_E_FORMAT, "tiktoken file: line %zu: bad base64 token",
                       lineno);
        seen[rank] = 1;
        m->off[rank] = (uint32_t)pool_n;
        m->len[rank] = (uint32_t)bl;
        pool_n += (size_t)bl;
        entries++;
        i = j + 1;
    }
    GLMQ_FAIL_IF_G(entries != lines, err, GLMQ_E_INTERNAL, "tiktoken file: line count mismatch");
    m->n = (int32_t)entries;
    m->pv.pool = m->pool;
    m->pv.off = m->off;
    m->pv.len = m->len;
    GLMQ_TRY_G(glmq_tkmap_init(&m->map, (uint32_t)m->n, err));
    for (int32_t r = 0; r < m->n; r++) {
        int32_t dup = glmq_tkmap_insert(&m->map, &m->pv, r);
        GLMQ_FAIL_IF_G(dup >= 0, err, GLMQ_E_FORMAT,
                       "tiktoken file: ranks %d and %d have the same bytes", (int)dup, (int)r);
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        GLMQ_FAIL_IF_G(glmq_tkmap_find(&m->map, &m->pv, &c, 1) < 0, err, GLMQ_E_FORMAT,
                       "tiktoken file: no token for the single byte 0x%02X", b);
    }
    free(seen);
    *out = m;
    return GLMQ_OK;
fail:
    free(seen);
    glmq_tt_free(m);
    return st;
}

int32_t glmq_tt_n_ranks(const glmq_tt_model *m) { return m->n; }

const char *glmq_tt_token(const glmq_tt_model *m, int32_t rank, size_t *len)
{
    if (rank < 0 || rank >= m->n) {
        *len = 0;
        return NULL;
    }
    *len = m->len[rank];
    return (const char *)m->pool + m->off[rank];
}

/* ------------------------------------------------------------------------------------------ */
/* pre-tokenizer                                                                               */

int glmq_tt_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return GLMQ_UC_L;
        if (cp >= '0' && cp <= '9') return GLMQ_UC_N;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return GLMQ_UC_WS;
        return GLMQ_UC_OTHER;
    }
    size_t lo = 0, hi = sizeof glmq_uc_ranges / sizeof glmq_uc_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (glmq_uc_ranges[mid][1] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof glmq_uc_ranges / sizeof glmq_uc_ranges[0] && glmq_uc_ranges[lo][0] <= cp)
        return (int)glmq_uc_ranges[lo][2];
    return GLMQ_UC_OTHER;
}

/* Class and length of the character at s[i] (i < n). */
static int cls_at(const uint8_t *s, size_t n, size_t i, size_t *l, uint32_t *cp)
{
    uint32_t c = glmq_utf8_decode(s + i, n - i, l);
    if (cp) *cp = c;
    return c == GLMQ_UTF8_INVALID ? GLMQ_UC_OTHER : glmq_tt_class(c);
}

/* Bytes of the maximal run of class k starting at s[i]. */
static size_t run_of(const uint8_t *s, size_t n, size_t i, int k)
{
    size_t j = i, l;
    while (j < n && cls_at(s, n, j, &l, NULL) == k) j += l;
    return j - i;
}

/* Bytes of the character at s[0] if it case-folds to the ASCII letter `want`, else 0. */
static size_t fold_len(const uint8_t *s, size_t n, char want)
{
    if (n >= 1 && (s[0] == (uint8_t)want || s[0] == (uint8_t)(want - 'a' + 'A'))) return 1;
    if (want == 's' && n >= 2 && s[0] == 0xC5 && s[1] == 0xBF) return 2; /* U+017F */
    return 0;
}

/* Rule 1: "'" followed by s|t|re|ve|m|ll|d (case-insensitive); bytes after the apostrophe. */
static size_t contraction(const uint8_t *s, size_t n)
{
    static const char *const sufs[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    for (size_t k = 0; k < sizeof sufs / sizeof sufs[0]; k++) {
        size_t at = 0;
        const char *p = sufs[k];
        for (; *p; p++) {
            size_t l = fold_len(s + at, n - at, *p);
            if (!l) break;
            at += l;
        }
        if (!*p) return at;
    }
    return 0;
}

size_t glmq_tt_chunk(const uint8_t *s, size_t n)
{
    size_t l0, l1;
    uint32_t c0;
    int k0 = cls_at(s, n, 0, &l0, &c0);
    /* 1. contractions */
    if (c0 == '\'' && n > 1) {
        size_t m = contraction(s + 1, n - 1);
        if (m) return 1 + m;
    }
    /* 2. [^\r\n\p{L}\p{N}]?\p{L}+ with the optional character present */
    if (c0 != '\r' && c0 != '\n' && k0 != GLMQ_UC_L && k0 != GLMQ_UC_N && l0 < n &&
        cls_at(s, n, l0, &l1, NULL) == GLMQ_UC_L)
        return l0 + run_of(s, n, l0, GLMQ_UC_L);
    /* 3. \p{L}+ */
    if (k0 == GLMQ_UC_L) return run_of(s, n, 0, GLMQ_UC_L);
    /* 4. \p{N}{1,3} */
    if (k0 == GLMQ_UC_N) {
        size_t j = l0;
        for (int k = 1; k < 3 && j < n && cls_at(s, n, j, &l1, NULL) == GLMQ_UC_N; k++) j += l1;
        return j;
    }
    /* 5.  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = c0 == ' ' ? 1 : 0;
    if (j < n && cls_at(s, n, j, &l1, NULL) == GLMQ_UC_OTHER) {
        size_t k = j + run_of(s, n, j, GLMQ_UC_OTHER);
        while (k < n && (s[k] == '\r' || s[k] == '\n')) k++;
        return k;
    }
    /* 6. s[0] is White_Space: \s*[\r\n]+ | \s+(?!\S) | \s+ */
    size_t w = 0, last_nl_end = 0, last_char = 0, nchars = 0;
    while (w < n && cls_at(s, n, w, &l1, NULL) == GLMQ_UC_WS) {
        if (s[w] == '\r' || s[w] == '\n') last_nl_end = w + 1;
        last_char = w;
        nchars++;
        w += l1;
    }
    if (w == 0) return l0; /* not reached: s[0] is whitespace here */
    if (last_nl_end) return last_nl_end;
    if (w == n) return w;
    if (nchars >= 2) return last_char;
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* byte-pair merge                                                                             */

static uint32_t rank_of(const glmq_tt_model *m, const uint8_t *s, size_t n)
{
    int32_t r = glmq_tkmap_find(&m->map, &m->pv, s, n);
    return r < 0 ? UINT32_MAX : (uint32_t)r;
}

/* tiktoken's _byte_pair_merge: parts[i] = (start, rank of the pair starting there). */
static glmq_status bpe_scan(const glmq_tt_model *m, const uint8_t *s, size_t n, glmq_ids *out,
                            glmq_err *err)
{
    uint32_t stack_buf[2 * (TT_HEAP_MIN + 2)];
    uint32_t *start = stack_buf, *rank = stack_buf + (TT_HEAP_MIN + 2);
    uint32_t *heap_buf = NULL;
    if (n + 1 > TT_HEAP_MIN + 2) {
        heap_buf = malloc(2 * (n + 1) * sizeof *heap_buf);
        GLMQ_FAIL_IF(!heap_buf, err, GLMQ_E_NOMEM, "tiktoken: out of memory");
        start = heap_buf;
        rank = heap_buf + n + 1;
    }
    size_t np = n + 1;
    for (size_t i = 0; i + 1 < n; i++) {
        start[i] = (uint32_t)i;
        rank[i] = rank_of(m, s + i, 2);
    }
    start[n - 1] = (uint32_t)(n - 1);
    rank[n - 1] = UINT32_MAX;
    start[n] = (uint32_t)n;
    rank[n] = UINT32_MAX;
    for (;;) {
        uint32_t best = UINT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < np; i++) {
            if (rank[i] < best) {
                best = rank[i];
                bi = i;
            }
        }
        if (best == UINT32_MAX) break;
        /* the pairs that now start at bi-1 and bi span three old parts */
        if (bi > 0)
            rank[bi - 1] = bi + 2 < np
                               ? rank_of(m, s + start[bi - 1], start[bi + 2] - start[bi - 1])
                               : UINT32_MAX;
        rank[bi] = bi + 3 < np ? rank_of(m, s + start[bi], start[bi + 3] - start[bi]) : UINT32_MAX;
        memmove(start + bi + 1, start + bi + 2, (np - bi - 2) * sizeof *start);
        memmove(rank + bi + 1, rank + bi + 2, (np - bi - 2) * sizeof *rank);
        np--;
    }
    glmq_status st = GLMQ_OK;
    for (size_t i = 0; i + 1 < np && st == GLMQ_OK; i++)
        st = glmq_ids_push(out, (int32_t)rank_of(m, s + start[i], start[i + 1] - start[i]), err);
    free(heap_buf);
    return st;
}

/* Heap variant: parts are identified by their start byte; end[p] > p for a live part start,
 * 0 otherwise; prv[p] is the previous live part's start. Entries (rank, left, mid, right). */
static uint32_t rank_cb(const void *m, const uint8_t *s, size_t n) { return rank_of(m, s, n); }

/* The heap merge (tok_common.c): O(n log n) for long pieces. */
static glmq_status bpe_heap(const glmq_tt_model *m, const uint8_t *s, size_t n, glmq_ids *out,
                            glmq_err *err)
{
    glmq_bpe b = {0};
    glmq_status st = glmq_bpe_merge(&b, rank_cb, m, s, n, UINT32_MAX, err);
    for (uint32_t p = 0; st == GLMQ_OK && p < n; p = b.end[p])
        st = glmq_ids_push(out, (int32_t)rank_of(m, s + p, b.end[p] - p), err);
    glmq_bpe_free(&b);
    return st;
}

glmq_status glmq_tt_bpe(const glmq_tt_model *m, const uint8_t *s, size_t n, int use_heap,
                        glmq_ids *out, glmq_err *err)
{
    if (n == 0) return GLMQ_OK;
    if (n == 1) return glmq_ids_push(out, (int32_t)rank_of(m, s, 1), err);
    return use_heap ? bpe_heap(m, s, n, out, err) : bpe_scan(m, s, n, out, err);
}

static glmq_status tt_trie(const glmq_tt_model *mc, const glmq_tktrie **out, glmq_err *err)
{
    glmq_tt_model *m = (glmq_tt_model *)mc; /* only the cache field is written */
    glmq_tktrie *t = atomic_load_explicit(&m->trie, memory_order_acquire);
    if (!t) {
        glmq_status st = GLMQ_OK;
        int32_t *ids = malloc((size_t)m->n * sizeof *ids);
        t = calloc(1, sizeof *t);
        GLMQ_FAIL_IF_G(!ids || !t, err, GLMQ_E_NOMEM, "tiktoken: out of memory");
        for (int32_t i = 0; i < m->n; i++) ids[i] = i;
        GLMQ_TRY_G(glmq_tktrie_build(t, &m->pv, ids, (uint32_t)m->n, err));
        glmq_tktrie *expected = NULL;
        if (!atomic_compare_exchange_strong_explicit(&m->trie, &expected, t,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            glmq_tktrie_free(t);
            free(t);
            t = expected;
        }
    fail:
        free(ids);
        if (st != GLMQ_OK) {
            free(t);
            return st;
        }
    }
    *out = t;
    return GLMQ_OK;
}

/*
 * Cutting a long chunk. Merging starts from single bytes and only ever joins adjacent parts
 * into a token, so if no token occurs in the chunk across byte position B (as s[a..b) with
 * a < B < b), no part ever spans B and no candidate pair straddles it: the two sides merge
 * independently, and the pops of the one-pass merge (lowest rank, then leftmost) restricted to
 * one side come in the order a merge of that side alone makes. So merging the pieces between
 * such cuts gives the one-pass parts. Only tokens starting in the last max_depth bytes before
 * B can cross it. The search gives up TT_CUT bytes past its target (a long run of spaces has
 * no such B: "  " is a token), and the rest of the chunk is merged in one piece.
 */
static size_t tt_next_cut(const glmq_tktrie *tr, const uint8_t *s, size_t n, size_t cs)
{
    if (n - cs <= TT_CUT_MIN) return n;
    const size_t target = cs + TT_CUT, depth = tr->max_depth;
    const size_t stop = n - target > TT_CUT ? target + TT_CUT : n;
    size_t reach = 0;
    for (size_t pos = target > cs + depth ? target - depth : cs; pos < stop; pos++) {
        if (pos >= target && pos >= reach) return pos;
        size_t l = glmq_tktrie_longest(tr, s + pos, n - pos, NULL);
        if (pos + l > reach) reach = pos + l;
    }
    return n;
}

glmq_status glmq_tt_encode(const glmq_tt_model *m, const uint8_t *text, size_t len, glmq_ids *out,
                           glmq_err *err)
{
    size_t pos = 0;
    while (pos < len) {
        size_t cl = glmq_tt_chunk(text + pos, len - pos);
        int32_t r = glmq_tkmap_find(&m->map, &m->pv, text + pos, cl);
        if (r >= 0) {
            GLMQ_TRY(glmq_ids_push(out, r, err));
        } else if (cl < TT_CUT_MIN) {
            GLMQ_TRY(glmq_tt_bpe(m, text + pos, cl, cl >= TT_HEAP_MIN, out, err));
        } else {
            const glmq_tktrie *tr;
            GLMQ_TRY(tt_trie(m, &tr, err));
            for (size_t cs = 0, ce; cs < cl; cs = ce) {
                ce = tt_next_cut(tr, text + pos, cl, cs);
                GLMQ_TRY(glmq_tt_bpe(m, text + pos + cs, ce - cs, ce - cs >= TT_HEAP_MIN, out,
                                     err));
            }
        }
        pos += cl;
    }
    return GLMQ_OK;
}
