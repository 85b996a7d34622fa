/*
 * gguf.c - the GGUF reader (versions 2 and 3, little-endian; layout at the top of formats/gguf.h).
 *
 * Nothing in the file is trusted. The reader walks the header, the metadata and the tensor infos
 * once, with a cursor that checks every read against the bytes left, and validates everything
 * before a pointer into the file is handed out:
 *   - version 2 or 3; version 1 (32-bit counts) and byte-swapped versions (big-endian files) are
 *     refused by name;
 *   - every count against the bytes left before anything is allocated for it (a metadata record
 *     takes at least 13 bytes, a tensor info 32, an array element its size or 8 for a string),
 *     so a hostile count costs nothing; every string length against the bytes left;
 *   - value types known, arrays not nested, keys 1..65535 bytes and unique, general.alignment a
 *     u32 power of two;
 *   - tensor names of at most 64 bytes without NUL (an empty name is allowed, as ggml allows it;
 *     a NUL would make the name ambiguous, ggml would cut it there) and unique, n_dims 1..4,
 *     every ne in 1..INT64_MAX with an element count that does not overflow, the type known by
 *     number (undecodable known types such as IQ2_XXS stay readable: decoding them is refused
 *     elsewhere, by name), ne[0] a multiple of the type's block, the byte size without
 *     overflow, offsets aligned, data inside the file, no two tensors overlapping.
 * Every error names the file, the field (the key or tensor name, or "metadata #i" / "tensor
 * info #i" before the name is known) and the byte offset of what is wrong.
 *
 * String arrays are indexed at open (one u64 per element, bounded by the file size / 8), so
 * element i is O(1). Lookups by key and by tensor name are binary searches over sorted indexes
 * that the uniqueness checks build anyway.
 */
#include "formats/gguf.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEY_LEN 65535u
#define MAX_NAME_LEN 64u
#define MIN_KV_BYTES 13u     /* u64 key length + 1 key byte + u32 type + 1 value byte */
#define MIN_TINFO_BYTES 32u  /* u64 name length + u32 n_dims + u64 ne + u32 type + u64 offset */

static const struct {
    const char *name;
    size_t size;
} vtypes[GLMQ_GGUF_VTYPE_COUNT] = {
    [GLMQ_GGUF_U8] = {"uint8", 1},      [GLMQ_GGUF_I8] = {"int8", 1},
    [GLMQ_GGUF_U16] = {"uint16", 2},    [GLMQ_GGUF_I16] = {"int16", 2},
    [GLMQ_GGUF_U32] = {"uint32", 4},    [GLMQ_GGUF_I32] = {"int32", 4},
    [GLMQ_GGUF_F32] = {"float32", 4},   [GLMQ_GGUF_BOOL] = {"bool", 1},
    [GLMQ_GGUF_STRING] = {"string", 0}, [GLMQ_GGUF_ARRAY] = {"array", 0},
    [GLMQ_GGUF_U64] = {"uint64", 8},    [GLMQ_GGUF_I64] = {"int64", 8},
    [GLMQ_GGUF_F64] = {"float64", 8},
};

const char *glmq_gguf_vtype_name(uint32_t t)
{
    return t < GLMQ_GGUF_VTYPE_COUNT ? vtypes[t].name : NULL;
}

size_t glmq_gguf_vtype_size(uint32_t t) { return t < GLMQ_GGUF_VTYPE_COUNT ? vtypes[t].size : 0; }

struct glmq_gguf {
    char *path; /* the file name or the label of open_mem */
    const uint8_t *buf;
    uint64_t size;
    void *map; /* the mapping, when opened from a file */
    uint32_t version;
    uint64_t alignment, data_offset;
    glmq_gguf_kv *kv;
    int64_t nkv;
    uint64_t **stroff; /* per kv: offsets of each string element's u64 length, or NULL */
    int64_t *kv_sorted;
    glmq_gguf_tensor *t;
    int64_t nt;
    int64_t *t_sorted;
};

/* ---- the cursor ---- */

typedef struct {
    const glmq_gguf *g;
    uint64_t pos;
    char what[160]; /* the field being read, for messages */
} cursor;

static uint64_t left(const cursor *c) { return c->g->size - c->pos; }

static glmq_status need(const cursor *c, uint64_t n, const char *item, glmq_err *err)
{
    GLMQ_FAIL_IF(left(c) < n, err, GLMQ_E_FORMAT,
                 "'%s': %s: %s at byte %llu needs %llu bytes, %llu left (truncated file?)",
                 c->g->path, c->what, item, (unsigned long long)c->pos, (unsigned long long)n,
                 (unsigned long long)left(c));
    return GLMQ_OK;
}

static glmq_status rd32(cursor *c, const char *item, uint32_t *v, glmq_err *err)
{
    GLMQ_TRY(need(c, 4, item, err));
    *v = glmq_rd_le32(c->g->buf + c->pos);
    c->pos += 4;
    return GLMQ_OK;
}

static glmq_status rd64(cursor *c, const char *item, uint64_t *v, glmq_err *err)
{
    GLMQ_TRY(need(c, 8, item, err));
    *v = glmq_rd_le64(c->g->buf + c->pos);
    c->pos += 8;
    return GLMQ_OK;
}

/* A string: u64 length + bytes, the length checked against the bytes left. */
static glmq_status rdstr(cursor *c, const char *item, glmq_gguf_str *s, glmq_err *err)
{
    const uint64_t at = c->pos;
    uint64_t n;
    GLMQ_TRY(rd64(c, item, &n, err));
    GLMQ_FAIL_IF(n > left(c), err, GLMQ_E_FORMAT,
                 "'%s': %s: %s at byte %llu has length %llu, more than the %llu bytes left",
                 c->g->path, c->what, item, (unsigned long long)at, (unsigned long long)n,
                 (unsigned long long)left(c));
    s->ptr = (const char *)c->g->buf + c->pos;
    s->len = n;
    c->pos += n;
    return GLMQ_OK;
}

/* ---- metadata ---- */

static int cmp_str(glmq_gguf_str a, glmq_gguf_str b)
{
    const uint64_t n = a.len < b.len ? a.len : b.len;
    const int r = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* qsort has no context argument: the arrays being sorted are only ever sorted by one thread of
 * a single open, so the index sort is a small merge sort with an explicit context instead. */
typedef int (*cmp_fn)(const glmq_gguf *g, int64_t a, int64_t b);

static void msort(const glmq_gguf *g, int64_t *v, int64_t *tmp, int64_t n, cmp_fn cmp)
{
    if (n < 2) return;
    const int64_t h = n / 2;
    msort(g, v, tmp, h, cmp);
    msort(g, v + h, tmp, n - h, cmp);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(g, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, (size_t)n * sizeof *v);
}

static int cmp_kv(const glmq_gguf *g, int64_t a, int64_t b)
{
    return cmp_str(g->kv[a].key, g->kv[b].key);
}

static int cmp_tname(const glmq_gguf *g, int64_t a, int64_t b)
{
    return strcmp(g->t[a].name, g->t[b].name);
}

static int cmp_toff(const glmq_gguf *g, int64_t a, int64_t b)
{
    const uint64_t x = g->t[a].offset, y = g->t[b].offset;
    return x < y ? -1 : x > y;
}

static glmq_status sorted_index(const glmq_gguf *g, int64_t n, cmp_fn cmp, int64_t **out,
                                glmq_err *err)
{
    int64_t *v = malloc((size_t)(n + 1) * sizeof *v), *tmp = malloc((size_t)(n + 1) * sizeof *v);
    if (!v || !tmp) {
        free(v);
        free(tmp);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) v[i] = i;
    msort(g, v, tmp, n, cmp);
    free(tmp);
    *out = v;
    return GLMQ_OK;
}

/* One metadata record at c->pos (index i). */
static glmq_status read_kv(glmq_gguf *g, cursor *c, int64_t i, glmq_err *err)
{
    glmq_gguf_kv *kv = &g->kv[i];
    const uint64_t at = c->pos;
    snprintf(c->what, sizeof c->what, "metadata #%lld", (long long)i);
    GLMQ_TRY(rdstr(c, "key", &kv->key, err));
    GLMQ_FAIL_IF(kv->key.len == 0 || kv->key.len > MAX_KEY_LEN, err, GLMQ_E_FORMAT,
                 "'%s': metadata #%lld at byte %llu: key of %llu bytes (1 to 65535 allowed)",
                 g->path, (long long)i, (unsigned long long)at, (unsigned long long)kv->key.len);
    snprintf(c->what, sizeof c->what, "metadata key '%.*s'",
             (int)(kv->key.len > 96 ? 96 : kv->key.len), kv->key.ptr);
    const uint64_t tat = c->pos;
    GLMQ_TRY(rd32(c, "value type", &kv->type, err));
    GLMQ_FAIL_IF(kv->type >= GLMQ_GGUF_VTYPE_COUNT, err, GLMQ_E_FORMAT,
                 "'%s': %s: unknown value type %u at byte %llu", g->path, c->what, kv->type,
                 (unsigned long long)tat);
    kv->arr_type = kv->type;
    kv->arr_n = 1;
    if (kv->type == GLMQ_GGUF_ARRAY) {
        const uint64_t eat = c->pos;
        GLMQ_TRY(rd32(c, "array element type", &kv->arr_type, err));
        GLMQ_FAIL_IF(kv->arr_type == GLMQ_GGUF_ARRAY, err, GLMQ_E_FORMAT,
                     "'%s': %s: nested array (element type 'array' at byte %llu) is not "
                     "supported",
                     g->path, c->what, (unsigned long long)eat);
        GLMQ_FAIL_IF(kv->arr_type >= GLMQ_GGUF_VTYPE_COUNT, err, GLMQ_E_FORMAT,
                     "'%s': %s: unknown array element type %u at byte %llu", g->path, c->what,
                     kv->arr_type, (unsigned long long)eat);
        const uint64_t nat = c->pos;
        GLMQ_TRY(rd64(c, "array length", &kv->arr_n, err));
        const uint64_t unit = kv->arr_type == GLMQ_GGUF_STRING ? 8 : vtypes[kv->arr_type].size;
        GLMQ_FAIL_IF(kv->arr_n > left(c) / unit, err, GLMQ_E_FORMAT,
                     "'%s': %s: array length %llu at byte %llu: %llu elements of %s cannot fit "
                     "in the %llu bytes left",
                     g->path, c->what, (unsigned long long)kv->arr_n, (unsigned long long)nat,
                     (unsigned long long)kv->arr_n, vtypes[kv->arr_type].name,
                     (unsigned long long)left(c));
    }
    kv->value = g->buf + c->pos;
    kv->offset = c->pos;
    if (kv->arr_type != GLMQ_GGUF_STRING) {
        const uint64_t bytes = kv->arr_n * vtypes[kv->arr_type].size; /* fits: checked above */
        GLMQ_TRY(need(c, bytes, "value", err));
        c->pos += bytes;
        return GLMQ_OK;
    }
    if (kv->type == GLMQ_GGUF_STRING) {
        glmq_gguf_str s;
        return rdstr(c, "string value", &s, err);
    }
    uint64_t *offs = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *offs);
    GLMQ_FAIL_IF(!offs, err, GLMQ_E_NOMEM, "'%s': %s: out of memory for %llu strings", g->path,
                 c->what, (unsigned long long)kv->arr_n);
    g->stroff[i] = offs;
    char item[48];
    for (uint64_t k = 0; k < kv->arr_n; k++) {
        glmq_gguf_str s;
        offs[k] = c->pos;
        snprintf(item, sizeof item, "string %llu", (unsigned long long)k);
        GLMQ_TRY(rdstr(c, item, &s, err));
    }
    return GLMQ_OK;
}

static glmq_status check_alignment(glmq_gguf *g, glmq_err *err)
{
    g->alignment = GLMQ_GGUF_DEFAULT_ALIGNMENT;
    const glmq_gguf_kv *kv = glmq_gguf_find(g, "general.alignment");
    if (!kv) return GLMQ_OK;
    GLMQ_FAIL_IF(kv->type != GLMQ_GGUF_U32, err, GLMQ_E_FORMAT,
                 "'%s': metadata key 'general.alignment' (value at byte %llu) is %s, expected "
                 "uint32",
                 g->path, (unsigned long long)kv->offset, vtypes[kv->type].name);
    const uint32_t a = glmq_rd_le32(kv->value);
    GLMQ_FAIL_IF(a == 0 || (a & (a - 1)) != 0, err, GLMQ_E_FORMAT,
                 "'%s': metadata key 'general.alignment' (value at byte %llu): %u is not a "
                 "power of two",
                 g->path, (unsigned long long)kv->offset, a);
    g->alignment = a;
    return GLMQ_OK;
}

/* ---- tensor infos ---- */

static glmq_status read_tensor(glmq_gguf *g, cursor *c, int64_t i, glmq_err *err)
{
    glmq_gguf_tensor *t = &g->t[i];
    t->info_offset = c->pos;
    snprintf(c->what, sizeof c->what, "tensor info #%lld", (long long)i);
    glmq_gguf_str name;
    GLMQ_TRY(rdstr(c, "name", &name, err));
    GLMQ_FAIL_IF(name.len > MAX_NAME_LEN, err, GLMQ_E_FORMAT,
                 "'%s': tensor info #%lld at byte %llu: name of %llu bytes (at most 64 allowed)",
                 g->path, (long long)i, (unsigned long long)t->info_offset,
                 (unsigned long long)name.len);
    GLMQ_FAIL_IF(memchr(name.ptr, 0, (size_t)name.len) != NULL, err, GLMQ_E_FORMAT,
                 "'%s': tensor info #%lld at byte %llu: name contains a NUL byte", g->path,
                 (long long)i, (unsigned long long)t->info_offset);
    char *nm = malloc((size_t)name.len + 1);
    GLMQ_FAIL_IF(!nm, err, GLMQ_E_NOMEM, "out of memory");
    memcpy(nm, name.ptr, (size_t)name.len);
    nm[name.len] = 0;
    t->name = nm;
    snprintf(c->what, sizeof c->what, "tensor '%s' (info at byte %llu)", nm,
             (unsigned long long)t->info_offset);
    uint64_t at = c->pos;
    GLMQ_TRY(rd32(c, "n_dims", &t->n_dims, err));
    GLMQ_FAIL_IF(t->n_dims < 1 || t->n_dims > GLMQ_GGUF_MAX_DIMS, err, GLMQ_E_FORMAT,
                 "'%s': %s: n_dims %u at byte %llu (1 to 4 allowed)", g->path, c->what,
                 t->n_dims, (unsigned long long)at);
    uint64_t elems = 1;
    for (uint32_t d = 0; d < GLMQ_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        at = c->pos;
        GLMQ_TRY(rd64(c, "ne", &ne, err));
        GLMQ_FAIL_IF(ne == 0 || ne > INT64_MAX, err, GLMQ_E_FORMAT,
                     "'%s': %s: ne[%u] = %llu at byte %llu (1 to 2^63-1 allowed)", g->path,
                     c->what, d, (unsigned long long)ne, (unsigned long long)at);
        GLMQ_FAIL_IF(!glmq_mul_u64(elems, ne, &elems) || elems > INT64_MAX, err, GLMQ_E_FORMAT,
                     "'%s': %s: the element count overflows at ne[%u] (byte %llu)", g->path,
                     c->what, d, (unsigned long long)at);
        t->ne[d] = (int64_t)ne;
    }
    at = c->pos;
    GLMQ_TRY(rd32(c, "type", &t->type, err));
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t->type);
    GLMQ_FAIL_IF(!ti, err, GLMQ_E_FORMAT, "'%s': %s: unknown ggml type %u at byte %llu", g->path,
                 c->what, t->type, (unsigned long long)at);
    GLMQ_FAIL_IF(t->ne[0] % ti->block != 0, err, GLMQ_E_FORMAT,
                 "'%s': %s: ne[0] = %lld is not a multiple of the %s block size %d", g->path,
                 c->what, (long long)t->ne[0], ti->name, ti->block);
    t->rows = t->ne[1] * t->ne[2] * t->ne[3]; /* <= elems: no overflow */
    t->row_bytes = glmq_ggml_row_bytes(t->type, t->ne[0]);
    GLMQ_FAIL_IF(t->row_bytes == 0 || !glmq_mul_u64((uint64_t)t->rows, t->row_bytes, &t->size),
                 err, GLMQ_E_FORMAT, "'%s': %s: the byte size of %s [%lld x %lld] overflows",
                 g->path, c->what, ti->name, (long long)t->ne[0], (long long)t->rows);
    GLMQ_TRY(rd64(c, "offset", &t->offset, err)); /* relative until check_data */
    return GLMQ_OK;
}

/* Offsets aligned, data inside the file, no overlap; offsets become absolute. */
static glmq_status check_data(glmq_gguf *g, glmq_err *err)
{
    for (int64_t i = 0; i < g->nt; i++) {
        glmq_gguf_tensor *t = &g->t[i];
        const uint64_t off_at = t->info_offset + 8 + strlen(t->name) + 4 + 8 * t->n_dims + 4;
        uint64_t abs, end;
        GLMQ_FAIL_IF(t->offset % g->alignment != 0, err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s': offset %llu (byte %llu) is not a multiple of the "
                     "alignment %llu",
                     g->path, t->name, (unsigned long long)t->offset, (unsigned long long)off_at,
                     (unsigned long long)g->alignment);
        GLMQ_FAIL_IF(!glmq_add_u64(g->data_offset, t->offset, &abs) ||
                         !glmq_add_u64(abs, t->size, &end) || end > g->size,
                     err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s': data at offset %llu (byte %llu) + %llu bytes ends past "
                     "the end of the file (%llu bytes, data section at byte %llu)",
                     g->path, t->name, (unsigned long long)t->offset, (unsigned long long)off_at,
                     (unsigned long long)t->size, (unsigned long long)g->size,
                     (unsigned long long)g->data_offset);
        t->offset = abs;
        t->data = g->buf + abs;
    }
    int64_t *ord = NULL;
    GLMQ_TRY(sorted_index(g, g->nt, cmp_toff, &ord, err));
    for (int64_t k = 1; k < g->nt; k++) {
        const glmq_gguf_tensor *a = &g->t[ord[k - 1]], *b = &g->t[ord[k]];
        if (b->offset < a->offset + a->size) {
            glmq_status st = glmq_fail(
                err, GLMQ_E_FORMAT,
                "'%s': tensor '%s' (info at byte %llu): data at byte %llu overlaps tensor '%s' "
                "(bytes %llu to %llu)",
                g->path, b->name, (unsigned long long)b->info_offset,
                (unsigned long long)b->offset, a->name, (unsigned long long)a->offset,
                (unsigned long long)(a->offset + a->size));
            free(ord);
            return st;
        }
    }
    free(ord);
    return GLMQ_OK;
}

static glmq_status parse(glmq_gguf *g, glmq_err *err)
{
    GLMQ_FAIL_IF(g->size < 4 || memcmp(g->buf, "GGUF", 4) != 0, err, GLMQ_E_FORMAT,
                 "'%s': not a GGUF file (no \"GGUF\" magic at byte 0)", g->path);
    GLMQ_FAIL_IF(g->size < 24, err, GLMQ_E_FORMAT,
                 "'%s': truncated GGUF header: %llu bytes, the header needs 24", g->path,
                 (unsigned long long)g->size);
    const uint32_t v = glmq_rd_le32(g->buf + 4);
    GLMQ_FAIL_IF(v == 1, err, GLMQ_E_UNSUPPORTED,
                 "'%s': GGUF version 1 (byte 4) is not supported: it is the 2023 draft with "
                 "32-bit counts; convert the model again with a current llama.cpp",
                 g->path);
    GLMQ_FAIL_IF(v == 0x02000000u || v == 0x03000000u, err, GLMQ_E_UNSUPPORTED,
                 "'%s': big-endian GGUF (version %u byte-swapped at byte 4) is not supported: "
                 "glmq reads little-endian GGUF files",
                 g->path, v >> 24);
    GLMQ_FAIL_IF(v != 2 && v != 3, err, GLMQ_E_UNSUPPORTED,
                 "'%s': GGUF version %u (byte 4); this glmq reads versions 2 and 3", g->path, v);
    g->version = v;
    cursor c = {.g = g, .pos = 8};
    snprintf(c.what, sizeof c.what, "header");
    const uint64_t nt = glmq_rd_le64(g->buf + 8), nkv = glmq_rd_le64(g->buf + 16);
    c.pos = 24;
    GLMQ_FAIL_IF(nkv > left(&c) / MIN_KV_BYTES, err, GLMQ_E_FORMAT,
                 "'%s': metadata count %llu (byte 16) cannot fit in the %llu bytes of the file "
                 "after the header",
                 g->path, (unsigned long long)nkv, (unsigned long long)left(&c));
    GLMQ_FAIL_IF(nt > left(&c) / MIN_TINFO_BYTES, err, GLMQ_E_FORMAT,
                 "'%s': tensor count %llu (byte 8) cannot fit in the %llu bytes of the file "
                 "after the header",
                 g->path, (unsigned long long)nt, (unsigned long long)left(&c));
    g->kv = calloc((size_t)nkv + 1, sizeof *g->kv);
    g->stroff = calloc((size_t)nkv + 1, sizeof *g->stroff);
    GLMQ_FAIL_IF(!g->kv || !g->stroff, err, GLMQ_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < nkv; i++) {
        GLMQ_TRY(read_kv(g, &c, (int64_t)i, err));
        g->nkv++;
    }
    GLMQ_TRY(sorted_index(g, g->nkv, cmp_kv, &g->kv_sorted, err));
    for (int64_t k = 1; k < g->nkv; k++) {
        const glmq_gguf_kv *a = &g->kv[g->kv_sorted[k - 1]], *b = &g->kv[g->kv_sorted[k]];
        const glmq_gguf_kv *first = a->offset < b->offset ? a : b, *second = first == a ? b : a;
        GLMQ_FAIL_IF(cmp_str(a->key, b->key) == 0, err, GLMQ_E_FORMAT,
                     "'%s': duplicate metadata key '%.*s' (values at bytes %llu and %llu)",
                     g->path, (int)(a->key.len > 96 ? 96 : a->key.len), a->key.ptr,
                     (unsigned long long)first->offset, (unsigned long long)second->offset);
    }
    GLMQ_TRY(check_alignment(g, err));

    GLMQ_FAIL_IF(nt > left(&c) / MIN_TINFO_BYTES, err, GLMQ_E_FORMAT,
                 "'%s': tensor count %llu (byte 8) cannot fit in the %llu bytes left after the "
                 "metadata (byte %llu)",
                 g->path, (unsigned long long)nt, (unsigned long long)left(&c),
                 (unsigned long long)c.pos);
    g->t = calloc((size_t)nt + 1, sizeof *g->t);
    GLMQ_FAIL_IF(!g->t, err, GLMQ_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < nt; i++) {
        g->nt++; /* counted first so that close frees a name read before an error */
        GLMQ_TRY(read_tensor(g, &c, (int64_t)i, err));
    }
    GLMQ_TRY(sorted_index(g, g->nt, cmp_tname, &g->t_sorted, err));
    for (int64_t k = 1; k < g->nt; k++) {
        const glmq_gguf_tensor *a = &g->t[g->t_sorted[k - 1]], *b = &g->t[g->t_sorted[k]];
        const glmq_gguf_tensor *second = a->info_offset > b->info_offset ? a : b;
        GLMQ_FAIL_IF(strcmp(a->name, b->name) == 0, err, GLMQ_E_FORMAT,
                     "'%s': duplicate tensor name '%s' (tensor info at byte %llu)", g->path,
                     a->name, (unsigned long long)second->info_offset);
    }
    /* c.pos <= size and alignment <= 2^31: no overflow */
    g->data_offset = glmq_align_up(c.pos, g->alignment);
    return check_data(g, err);
}

/* ---- open / close ---- */

static glmq_status open_buf(const void *buf, size_t size, const char *label, void *map,
                            glmq_gguf **out, glmq_err *err)
{
    glmq_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map) munmap(map, size);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    static const uint8_t none[1];
    g->buf = buf ? buf : none;
    g->size = buf ? size : 0;
    g->map = map;
    g->path = glmq_strdup(label ? label : "(memory)");
    glmq_status st = g->path ? parse(g, err) : glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    if (st != GLMQ_OK) {
        glmq_gguf_close(g);
        return st;
    }
    *out = g;
    return GLMQ_OK;
}

glmq_status glmq_gguf_open_mem(const void *buf, size_t size, const char *label, glmq_gguf **out,
                               glmq_err *err)
{
    *out = NULL;
    return open_buf(buf, size, label, NULL, out, err);
}

glmq_status glmq_gguf_open(const char *path, glmq_gguf **out, glmq_err *err)
{
    return glmq_gguf_open_load(path, 0, out, err);
}

glmq_status glmq_gguf_open_load(const char *path, int load, glmq_gguf **out, glmq_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    GLMQ_FAIL_IF(fd < 0, err, GLMQ_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return glmq_fail(err, GLMQ_E_IO, "'%s' is not a regular file", path);
    }
    const uint64_t size = (uint64_t)sb.st_size;
    if (size == 0 || size > SIZE_MAX) { /* nothing to map: the parser names the problem */
        close(fd);
        GLMQ_FAIL_IF(size > SIZE_MAX, err, GLMQ_E_IO, "'%s' is too large to map", path);
        return open_buf(NULL, 0, path, NULL, out, err);
    }
    void *m = NULL;
    const glmq_status st = glmq_file_view(fd, path, size, load, &m, err);
    close(fd);
    if (st != GLMQ_OK) return st;
    return open_buf(m, (size_t)size, path, m, out, err);
}

void glmq_gguf_close(glmq_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; i < g->nkv; i++) free(g->stroff[i]);
    if (g->stroff && g->kv) free(g->stroff[g->nkv]); /* the record that failed midway */
    for (int64_t i = 0; i < g->nt; i++) free((char *)g->t[i].name);
    free(g->stroff);
    free(g->kv);
    free(g->kv_sorted);
    free(g->t);
    free(g->t_sorted);
    if (g->map) munmap(g->map, (size_t)g->size);
    free(g->path);
    free(g);
}

/* ---- accessors ---- */

const char *glmq_gguf_path(const glmq_gguf *g) { return g->path; }
uint32_t glmq_gguf_version(const glmq_gguf *g) { return g->version; }
uint64_t glmq_gguf_alignment(const glmq_gguf *g) { return g->alignment; }
uint64_t glmq_gguf_file_size(const glmq_gguf *g) { return g->size; }
uint64_t glmq_gguf_data_offset(const glmq_gguf *g) { return g->data_offset; }
int64_t glmq_gguf_kv_count(const glmq_gguf *g) { return g->nkv; }
int64_t glmq_gguf_tensor_count(const glmq_gguf *g) { return g->nt; }

const glmq_gguf_kv *glmq_gguf_kv_at(const glmq_gguf *g, int64_t i)
{
    return i >= 0 && i < g->nkv ? &g->kv[i] : NULL;
}

const glmq_gguf_tensor *glmq_gguf_tensor_at(const glmq_gguf *g, int64_t i)
{
    return i >= 0 && i < g->nt ? &g->t[i] : NULL;
}

const glmq_gguf_kv *glmq_gguf_find(const glmq_gguf *g, const char *key)
{
    if (!g->kv_sorted || !key) return NULL;
    const glmq_gguf_str k = {key, strlen(key)};
    int64_t lo = 0, hi = g->nkv;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int r = cmp_str(g->kv[g->kv_sorted[mid]].key, k);
        if (r == 0) return &g->kv[g->kv_sorted[mid]];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const glmq_gguf_tensor *glmq_gguf_find_tensor(const glmq_gguf *g, const char *name)
{
    if (!g->t_sorted || !name) return NULL;
    int64_t lo = 0, hi = g->nt;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int r = strcmp(g->t[g->t_sorted[mid]].name, name);
        if (r == 0) return &g->t[g->t_sorted[mid]];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

glmq_gguf_str glmq_gguf_arr_str(const glmq_gguf *g, const glmq_gguf_kv *kv, uint64_t i)
{
    glmq_gguf_str s = {"", 0};
    if (!kv || kv < g->kv || kv >= g->kv + g->nkv || kv->arr_type != GLMQ_GGUF_STRING ||
        i >= kv->arr_n)
        return s;
    const uint64_t off = kv->type == GLMQ_GGUF_ARRAY ? g->stroff[kv - g->kv][i] : kv->offset;
    s.len = glmq_rd_le64(g->buf + off);
    s.ptr = (const char *)g->buf + off + 8;
    return s;
}

/* ---- typed getters ---- */

/* The entry of `key`; *kv NULL when absent (an error only when required). */
static glmq_status lookup(const glmq_gguf *g, const char *key, int required,
                          const glmq_gguf_kv **kv, glmq_err *err)
{
    *kv = glmq_gguf_find(g, key);
    GLMQ_FAIL_IF(!*kv && required, err, GLMQ_E_FORMAT, "'%s': metadata key '%s' is missing",
                 g->path, key);
    return GLMQ_OK;
}

static glmq_status wrong_type(const glmq_gguf *g, const glmq_gguf_kv *kv, const char *key,
                              const char *want, glmq_err *err)
{
    if (kv->type == GLMQ_GGUF_ARRAY)
        return glmq_fail(err, GLMQ_E_FORMAT,
                         "'%s': metadata key '%s' (value at byte %llu) is an array of %s, "
                         "expected %s",
                         g->path, key, (unsigned long long)kv->offset, vtypes[kv->arr_type].name,
                         want);
    return glmq_fail(err, GLMQ_E_FORMAT,
                     "'%s': metadata key '%s' (value at byte %llu) is %s, expected %s", g->path,
                     key, (unsigned long long)kv->offset, vtypes[kv->type].name, want);
}

/* An integer scalar: *neg = 1 and *mag = -v for a negative value. 0 if not an integer type. */
static int int_value(const glmq_gguf_kv *kv, int *neg, uint64_t *mag)
{
    const uint8_t *p = kv->value;
    int64_t s;
    *neg = 0;
    switch (kv->type) {
    case GLMQ_GGUF_U8: *mag = p[0]; return 1;
    case GLMQ_GGUF_U16: *mag = glmq_rd_le16(p); return 1;
    case GLMQ_GGUF_U32: *mag = glmq_rd_le32(p); return 1;
    case GLMQ_GGUF_U64: *mag = glmq_rd_le64(p); return 1;
    case GLMQ_GGUF_I8: s = (int8_t)p[0]; break;
    case GLMQ_GGUF_I16: s = (int16_t)glmq_rd_le16(p); break;
    case GLMQ_GGUF_I32: s = (int32_t)glmq_rd_le32(p); break;
    case GLMQ_GGUF_I64: s = (int64_t)glmq_rd_le64(p); break;
    default: return 0;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 1;
}

glmq_status glmq_gguf_get_u64(const glmq_gguf *g, const char *key, int required, uint64_t *out,
                              glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    int neg;
    uint64_t mag;
    if (!int_value(kv, &neg, &mag)) return wrong_type(g, kv, key, "an unsigned integer", err);
    GLMQ_FAIL_IF(neg, err, GLMQ_E_FORMAT,
                 "'%s': metadata key '%s' (value at byte %llu): -%llu is negative", g->path, key,
                 (unsigned long long)kv->offset, (unsigned long long)mag);
    *out = mag;
    return GLMQ_OK;
}

glmq_status glmq_gguf_get_i64(const glmq_gguf *g, const char *key, int required, int64_t *out,
                              glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    int neg;
    uint64_t mag;
    if (!int_value(kv, &neg, &mag)) return wrong_type(g, kv, key, "an integer", err);
    GLMQ_FAIL_IF(!neg && mag > (uint64_t)INT64_MAX, err, GLMQ_E_FORMAT,
                 "'%s': metadata key '%s' (value at byte %llu): %llu does not fit in int64",
                 g->path, key, (unsigned long long)kv->offset, (unsigned long long)mag);
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return GLMQ_OK;
}

glmq_status glmq_gguf_get_f32(const glmq_gguf *g, const char *key, int required, float *out,
                              glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    double d;
    if (kv->type == GLMQ_GGUF_F32) {
        const uint32_t u = glmq_rd_le32(kv->value);
        float f;
        memcpy(&f, &u, 4);
        d = f;
    } else if (kv->type == GLMQ_GGUF_F64) {
        const uint64_t u = glmq_rd_le64(kv->value);
        memcpy(&d, &u, 8);
    } else {
        return wrong_type(g, kv, key, "float32 or float64", err);
    }
    GLMQ_FAIL_IF(!isfinite(d) || fabs(d) > FLT_MAX, err, GLMQ_E_FORMAT,
                 "'%s': metadata key '%s' (value at byte %llu): %g is not a finite float32",
                 g->path, key, (unsigned long long)kv->offset, d);
    *out = (float)d;
    return GLMQ_OK;
}

glmq_status glmq_gguf_get_bool(const glmq_gguf *g, const char *key, int required, int *out,
                               glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    if (kv->type != GLMQ_GGUF_BOOL) return wrong_type(g, kv, key, "bool", err);
    GLMQ_FAIL_IF(kv->value[0] > 1, err, GLMQ_E_FORMAT,
                 "'%s': metadata key '%s' (value at byte %llu): bool byte %u is neither 0 nor 1",
                 g->path, key, (unsigned long long)kv->offset, kv->value[0]);
    *out = kv->value[0];
    return GLMQ_OK;
}

glmq_status glmq_gguf_get_str(const glmq_gguf *g, const char *key, int required,
                              glmq_gguf_str *out, glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    if (kv->type != GLMQ_GGUF_STRING) return wrong_type(g, kv, key, "string", err);
    *out = glmq_gguf_arr_str(g, kv, 0);
    return GLMQ_OK;
}

glmq_status glmq_gguf_get_arr(const glmq_gguf *g, const char *key, int required,
                              uint32_t elem_type, const uint8_t **data, uint64_t *n,
                              glmq_err *err)
{
    const glmq_gguf_kv *kv;
    GLMQ_TRY(lookup(g, key, required, &kv, err));
    if (!kv) return GLMQ_OK;
    if (kv->type != GLMQ_GGUF_ARRAY || kv->arr_type != elem_type) {
        char want[48];
        snprintf(want, sizeof want, "an array of %s",
                 glmq_gguf_vtype_name(elem_type) ? glmq_gguf_vtype_name(elem_type) : "?");
        return wrong_type(g, kv, key, want, err);
    }
    *data = kv->value;
    *n = kv->arr_n;
    return GLMQ_OK;
}
