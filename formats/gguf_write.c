/*
 * gguf_write.c - the streaming GGUF writer (version 3; layout at the top of formats/gguf.h).
 *
 * The caller declares everything first (metadata in the order it wants it in the file, then the
 * tensor table), so every offset is known before a byte is written: begin writes the header,
 * the metadata, the tensor infos and the zero padding up to the data section in one piece;
 * tensor_data then appends each tensor's bytes followed by zeros up to the next multiple of the
 * alignment (after the last tensor too, as ggml's own writers do, so the file size is a multiple
 * of it). Placeholders (a u64 array of zeros) are filled later with pwrite at their fixed offset.
 *
 * Invariants:
 *   - metadata keys and tensor names are unique; keys are 1..65535 bytes, tensor names 1..63
 *     bytes without NUL (llama.cpp refuses names of GGML_MAX_NAME = 64 bytes and more);
 *   - with an alignment other than 32 the first key is general.alignment (u32), emitted by
 *     glmq_gguf_writer_new;
 *   - a declaration the writer refuses leaves it unchanged (the call fails, nothing is added);
 *     once begin has run, the first error (I/O, or data past or short of the table) is sticky
 *     and every later call returns it;
 *   - every padding byte is zero; nothing but the atomic file is written, and it is never
 *     committed here (the caller commits or discards it).
 */
#include "formats/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_KEY_LEN 65535u
#define MAX_NAME_LEN 63u

typedef struct {
    char *key;
    uint32_t type, arr_type;
    uint64_t n;       /* element count (1 for a scalar) */
    uint64_t val_pos; /* position of the value in w->meta */
    int placeholder;
} wkv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GLMQ_GGUF_MAX_DIMS];
    uint64_t size;   /* bytes of data */
    uint64_t offset; /* relative to the data section */
} wtensor;

struct glmq_gguf_writer {
    uint64_t alignment;
    uint8_t *meta; /* the metadata section, serialized as it is declared */
    size_t meta_len, meta_cap;
    wkv *kv;
    int64_t nkv, kv_cap;
    wtensor *t;
    int64_t nt, t_cap;
    uint64_t info_len;  /* bytes of the tensor infos */
    uint64_t data_size; /* sum of the padded tensor sizes */
    /* streaming state */
    glmq_atomic_file *af;
    int begun;
    uint64_t data_offset; /* absolute start of the data section, fixed by begin */
    int64_t cur;          /* tensor being written */
    uint64_t cur_done;    /* its bytes written so far */
    glmq_sticky sk; /* the first error, returned by every later call */
};

/* ---- the metadata buffer ---- */

static int meta_reserve(glmq_gguf_writer *w, uint64_t more)
{
    uint64_t need;
    if (!glmq_add_u64(w->meta_len, more, &need) || need > SIZE_MAX / 2) return -1;
    if (need <= w->meta_cap) return 0;
    size_t cap = w->meta_cap ? w->meta_cap : 4096;
    while (cap < need) cap *= 2;
    uint8_t *m = realloc(w->meta, cap);
    if (!m) return -1;
    w->meta = m;
    w->meta_cap = cap;
    return 0;
}

/* Callers reserve first: these never fail. */
static void put(glmq_gguf_writer *w, const void *p, size_t n)
{
    if (n) memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
}
static void put_u32(glmq_gguf_writer *w, uint32_t v)
{
    glmq_wr_le32(w->meta + w->meta_len, v);
    w->meta_len += 4;
}
static void put_u64(glmq_gguf_writer *w, uint64_t v)
{
    glmq_wr_le64(w->meta + w->meta_len, v);
    w->meta_len += 8;
}
static void put_str(glmq_gguf_writer *w, const char *s, uint64_t n)
{
    put_u64(w, n);
    put(w, s, (size_t)n);
}

/* ---- declarations ---- */

static glmq_status check_open(const glmq_gguf_writer *w, const char *what, const char *name,
                              glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    GLMQ_FAIL_IF(w->begun, err, GLMQ_E_INVALID,
                 "GGUF writer: %s '%s' declared after the header was written", what, name);
    return GLMQ_OK;
}

/* Validate `key` and reserve a kv slot plus `value_bytes` of metadata for it. */
static glmq_status kv_begin(glmq_gguf_writer *w, const char *key, uint64_t value_bytes,
                            glmq_err *err)
{
    GLMQ_FAIL_IF(!key, err, GLMQ_E_INVALID, "GGUF writer: metadata key is NULL");
    GLMQ_TRY(check_open(w, "metadata key", key, err));
    const size_t kl = strlen(key);
    GLMQ_FAIL_IF(kl == 0 || kl > MAX_KEY_LEN, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.64s' has %zu bytes (1 to 65535 allowed)", key, kl);
    for (int64_t i = 0; i < w->nkv; i++)
        GLMQ_FAIL_IF(!strcmp(w->kv[i].key, key), err, GLMQ_E_INVALID,
                     "GGUF writer: duplicate metadata key '%s'", key);
    if (w->nkv == w->kv_cap) {
        int64_t cap = w->kv_cap ? 2 * w->kv_cap : 32;
        wkv *k = realloc(w->kv, (size_t)cap * sizeof *k);
        GLMQ_FAIL_IF(!k, err, GLMQ_E_NOMEM, "out of memory");
        w->kv = k;
        w->kv_cap = cap;
    }
    uint64_t total;
    GLMQ_FAIL_IF(!glmq_add_u64(value_bytes, 8 + (uint64_t)kl + 4, &total) ||
                     meta_reserve(w, total) != 0,
                 err, GLMQ_E_NOMEM, "GGUF writer: metadata key '%s': out of memory (%llu bytes)",
                 key, (unsigned long long)value_bytes);
    wkv *k = &w->kv[w->nkv];
    memset(k, 0, sizeof *k);
    k->key = glmq_strdup(key);
    GLMQ_FAIL_IF(!k->key, err, GLMQ_E_NOMEM, "out of memory");
    return GLMQ_OK;
}

/* Serialize key + type after kv_begin; returns the slot. */
static wkv *kv_commit(glmq_gguf_writer *w, uint32_t type, uint32_t arr_type, uint64_t n)
{
    wkv *k = &w->kv[w->nkv++];
    k->type = type;
    k->arr_type = arr_type;
    k->n = n;
    put_str(w, k->key, strlen(k->key));
    put_u32(w, type);
    if (type == GLMQ_GGUF_ARRAY) {
        put_u32(w, arr_type);
        put_u64(w, n);
    }
    k->val_pos = w->meta_len;
    return k;
}

/* Native value of a fixed-size type -> little-endian bytes. */
static void put_elem(glmq_gguf_writer *w, uint32_t type, const void *v)
{
    uint8_t *d = w->meta + w->meta_len;
    switch (glmq_gguf_vtype_size(type)) {
    case 1: memcpy(d, v, 1); break;
    case 2: {
        uint16_t u;
        memcpy(&u, v, 2);
        glmq_wr_le16(d, u);
        break;
    }
    case 4: {
        uint32_t u;
        memcpy(&u, v, 4);
        glmq_wr_le32(d, u);
        break;
    }
    case 8: {
        uint64_t u;
        memcpy(&u, v, 8);
        glmq_wr_le64(d, u);
        break;
    }
    }
    w->meta_len += glmq_gguf_vtype_size(type);
}

glmq_status glmq_gguf_writer_add_val(glmq_gguf_writer *w, const char *key, uint32_t type,
                                     const void *v, glmq_err *err)
{
    const size_t sz = glmq_gguf_vtype_size(type);
    GLMQ_FAIL_IF(sz == 0, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.200s': value type %u is not a fixed-size scalar",
                 key ? key : "(null)", type);
    GLMQ_FAIL_IF(type == GLMQ_GGUF_BOOL && *(const uint8_t *)v > 1, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.200s': bool value %u", key ? key : "(null)",
                 *(const uint8_t *)v);
    GLMQ_TRY(kv_begin(w, key, sz, err));
    kv_commit(w, type, type, 1);
    put_elem(w, type, v);
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_add_arr(glmq_gguf_writer *w, const char *key, uint32_t elem_type,
                                     uint64_t n, const void *v, glmq_err *err)
{
    const size_t sz = glmq_gguf_vtype_size(elem_type);
    GLMQ_FAIL_IF(sz == 0, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.200s': array element type %u is not a fixed-size "
                 "scalar",
                 key ? key : "(null)", elem_type);
    GLMQ_FAIL_IF(n > 0 && !v, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.200s': no elements given", key ? key : "(null)");
    uint64_t bytes;
    GLMQ_FAIL_IF(!glmq_mul_u64(n, sz, &bytes) || !glmq_add_u64(bytes, 12, &bytes), err,
                 GLMQ_E_INVALID, "GGUF writer: metadata key '%.200s': %llu elements overflow",
                 key ? key : "(null)", (unsigned long long)n);
    if (elem_type == GLMQ_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            GLMQ_FAIL_IF(((const uint8_t *)v)[i] > 1, err, GLMQ_E_INVALID,
                         "GGUF writer: metadata key '%.200s': bool element %llu is %u", key,
                         (unsigned long long)i, ((const uint8_t *)v)[i]);
    GLMQ_TRY(kv_begin(w, key, bytes, err));
    kv_commit(w, GLMQ_GGUF_ARRAY, elem_type, n);
    if (sz == 1) {
        put(w, v, (size_t)n);
    } else {
        for (uint64_t i = 0; i < n; i++) put_elem(w, elem_type, (const uint8_t *)v + i * sz);
    }
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_add_u32(glmq_gguf_writer *w, const char *key, uint32_t v,
                                     glmq_err *err)
{
    return glmq_gguf_writer_add_val(w, key, GLMQ_GGUF_U32, &v, err);
}
glmq_status glmq_gguf_writer_add_i32(glmq_gguf_writer *w, const char *key, int32_t v,
                                     glmq_err *err)
{
    return glmq_gguf_writer_add_val(w, key, GLMQ_GGUF_I32, &v, err);
}
glmq_status glmq_gguf_writer_add_u64(glmq_gguf_writer *w, const char *key, uint64_t v,
                                     glmq_err *err)
{
    return glmq_gguf_writer_add_val(w, key, GLMQ_GGUF_U64, &v, err);
}
glmq_status glmq_gguf_writer_add_f32(glmq_gguf_writer *w, const char *key, float v,
                                     glmq_err *err)
{
    return glmq_gguf_writer_add_val(w, key, GLMQ_GGUF_F32, &v, err);
}
glmq_status glmq_gguf_writer_add_bool(glmq_gguf_writer *w, const char *key, int v, glmq_err *err)
{
    const uint8_t b = v != 0;
    return glmq_gguf_writer_add_val(w, key, GLMQ_GGUF_BOOL, &b, err);
}

glmq_status glmq_gguf_writer_add_str(glmq_gguf_writer *w, const char *key, const char *v,
                                     glmq_err *err)
{
    GLMQ_FAIL_IF(!v, err, GLMQ_E_INVALID, "GGUF writer: metadata key '%.200s': string is NULL",
                 key ? key : "(null)");
    const size_t n = strlen(v);
    GLMQ_TRY(kv_begin(w, key, 8 + (uint64_t)n, err));
    kv_commit(w, GLMQ_GGUF_STRING, GLMQ_GGUF_STRING, 1);
    put_str(w, v, n);
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_add_arr_str(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const char *const *s, const uint64_t *len,
                                         glmq_err *err)
{
    const char *k = key ? key : "(null)";
    GLMQ_FAIL_IF(n > 0 && !s, err, GLMQ_E_INVALID,
                 "GGUF writer: metadata key '%.200s': no strings given", k);
    uint64_t bytes = 12;
    for (uint64_t i = 0; i < n; i++) {
        GLMQ_FAIL_IF(!s[i] && (!len || len[i] > 0), err, GLMQ_E_INVALID,
                     "GGUF writer: metadata key '%.200s': string %llu is NULL", k,
                     (unsigned long long)i);
        const uint64_t l = len ? len[i] : strlen(s[i]);
        GLMQ_FAIL_IF(!glmq_add_u64(bytes, 8, &bytes) || !glmq_add_u64(bytes, l, &bytes), err,
                     GLMQ_E_INVALID, "GGUF writer: metadata key '%.200s': strings overflow", k);
    }
    GLMQ_TRY(kv_begin(w, key, bytes, err));
    kv_commit(w, GLMQ_GGUF_ARRAY, GLMQ_GGUF_STRING, n);
    for (uint64_t i = 0; i < n; i++) put_str(w, s[i], len ? len[i] : strlen(s[i]));
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_add_arr_f32(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const float *v, glmq_err *err)
{
    return glmq_gguf_writer_add_arr(w, key, GLMQ_GGUF_F32, n, v, err);
}
glmq_status glmq_gguf_writer_add_arr_i32(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const int32_t *v, glmq_err *err)
{
    return glmq_gguf_writer_add_arr(w, key, GLMQ_GGUF_I32, n, v, err);
}
glmq_status glmq_gguf_writer_add_arr_u8(glmq_gguf_writer *w, const char *key, uint64_t n,
                                        const uint8_t *v, glmq_err *err)
{
    return glmq_gguf_writer_add_arr(w, key, GLMQ_GGUF_U8, n, v, err);
}

glmq_status glmq_gguf_writer_add_u64_placeholder(glmq_gguf_writer *w, const char *key, uint64_t n,
                                                 glmq_err *err)
{
    uint64_t bytes;
    GLMQ_FAIL_IF(!glmq_mul_u64(n, 8, &bytes) || !glmq_add_u64(bytes, 12, &bytes), err,
                 GLMQ_E_INVALID, "GGUF writer: metadata key '%.200s': %llu elements overflow",
                 key ? key : "(null)", (unsigned long long)n);
    GLMQ_TRY(kv_begin(w, key, bytes, err));
    wkv *k = kv_commit(w, GLMQ_GGUF_ARRAY, GLMQ_GGUF_U64, n);
    k->placeholder = 1;
    if (n) memset(w->meta + w->meta_len, 0, (size_t)(n * 8));
    w->meta_len += (size_t)(n * 8);
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_add_tensor(glmq_gguf_writer *w, const char *name, uint32_t type,
                                        uint32_t n_dims, const int64_t *ne, glmq_err *err)
{
    GLMQ_FAIL_IF(!name, err, GLMQ_E_INVALID, "GGUF writer: tensor name is NULL");
    GLMQ_TRY(check_open(w, "tensor", name, err));
    const size_t nl = strlen(name);
    GLMQ_FAIL_IF(nl == 0 || nl > MAX_NAME_LEN, err, GLMQ_E_INVALID,
                 "GGUF writer: tensor name '%.80s' has %zu bytes (1 to 63 allowed)", name, nl);
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(type);
    GLMQ_FAIL_IF(!ti, err, GLMQ_E_INVALID, "GGUF writer: tensor '%s': unknown ggml type %u", name,
                 type);
    GLMQ_FAIL_IF(n_dims < 1 || n_dims > GLMQ_GGUF_MAX_DIMS || !ne, err, GLMQ_E_INVALID,
                 "GGUF writer: tensor '%s': %u dimensions (1 to 4 allowed)", name, n_dims);
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        GLMQ_FAIL_IF(ne[d] < 1, err, GLMQ_E_INVALID, "GGUF writer: tensor '%s': ne[%u] = %lld",
                     name, d, (long long)ne[d]);
        if (d > 0)
            GLMQ_FAIL_IF(!glmq_mul_u64(rows, (uint64_t)ne[d], &rows) || rows > INT64_MAX, err,
                         GLMQ_E_INVALID, "GGUF writer: tensor '%s': shape overflows", name);
    }
    GLMQ_FAIL_IF(ne[0] % ti->block != 0, err, GLMQ_E_INVALID,
                 "GGUF writer: tensor '%s': ne[0] = %lld is not a multiple of the %s block (%d)",
                 name, (long long)ne[0], ti->name, ti->block);
    const uint64_t rb = glmq_ggml_row_bytes(type, ne[0]);
    uint64_t size, padded, end, info;
    GLMQ_FAIL_IF(rb == 0 || !glmq_mul_u64(rows, rb, &size) ||
                     !glmq_add_u64(size, w->alignment - 1, &padded) ||
                     !glmq_add_u64(w->data_size, padded / w->alignment * w->alignment, &end),
                 err, GLMQ_E_INVALID, "GGUF writer: tensor '%s': size overflows", name);
    for (int64_t i = 0; i < w->nt; i++)
        GLMQ_FAIL_IF(!strcmp(w->t[i].name, name), err, GLMQ_E_INVALID,
                     "GGUF writer: duplicate tensor name '%s'", name);
    if (w->nt == w->t_cap) {
        int64_t cap = w->t_cap ? 2 * w->t_cap : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        GLMQ_FAIL_IF(!t, err, GLMQ_E_NOMEM, "out of memory");
        w->t = t;
        w->t_cap = cap;
    }
    wtensor *t = &w->t[w->nt];
    memset(t, 0, sizeof *t);
    t->name = glmq_strdup(name);
    GLMQ_FAIL_IF(!t->name, err, GLMQ_E_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GLMQ_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->size = size;
    t->offset = w->data_size;
    info = 8 + nl + 4 + 8 * (uint64_t)n_dims + 4 + 8;
    w->info_len += info;
    w->data_size = end;
    w->nt++;
    return GLMQ_OK;
}

/* ---- life cycle ---- */

glmq_status glmq_gguf_writer_new(uint64_t alignment, glmq_gguf_writer **out, glmq_err *err)
{
    *out = NULL;
    GLMQ_FAIL_IF(alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > UINT32_MAX,
                 err, GLMQ_E_INVALID,
                 "GGUF writer: alignment %llu is not a power of two that fits in 32 bits",
                 (unsigned long long)alignment);
    glmq_gguf_writer *w = calloc(1, sizeof *w);
    GLMQ_FAIL_IF(!w, err, GLMQ_E_NOMEM, "out of memory");
    w->alignment = alignment;
    if (alignment != GLMQ_GGUF_DEFAULT_ALIGNMENT) {
        glmq_status st = glmq_gguf_writer_add_u32(w, "general.alignment", (uint32_t)alignment, err);
        if (st != GLMQ_OK) {
            glmq_gguf_writer_free(w);
            return st;
        }
    }
    *out = w;
    return GLMQ_OK;
}

void glmq_gguf_writer_free(glmq_gguf_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->nkv; i++) free(w->kv[i].key);
    for (int64_t i = 0; i < w->nt; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->meta);
    free(w);
}

static uint64_t header_end(const glmq_gguf_writer *w)
{
    return 24 + (uint64_t)w->meta_len + w->info_len;
}

uint64_t glmq_gguf_writer_file_size(const glmq_gguf_writer *w)
{
    return glmq_align_up(header_end(w), w->alignment) + w->data_size;
}

uint64_t glmq_gguf_writer_data_offset(const glmq_gguf_writer *w)
{
    return glmq_align_up(header_end(w), w->alignment);
}

/* Zeros up to the next multiple of the alignment after `pos` bytes of the data section. */
static glmq_status write_pad(glmq_gguf_writer *w, uint64_t pos, glmq_err *err)
{
    static const uint8_t zeros[4096];
    uint64_t pad = glmq_align_up(pos, w->alignment) - pos;
    while (pad > 0) {
        const size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        glmq_err e = {0};
        GLMQ_TRY(glmq_sticky_keep(&w->sk, glmq_atomic_write(w->af, zeros, n, &e), &e, err));
        pad -= n;
    }
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_begin(glmq_gguf_writer *w, glmq_atomic_file *af, glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    GLMQ_FAIL_IF(w->begun, err, GLMQ_E_INVALID, "GGUF writer: begin called twice");
    GLMQ_FAIL_IF(!af, err, GLMQ_E_INVALID, "GGUF writer: no output file");
    const uint64_t hend = header_end(w);
    GLMQ_FAIL_IF(hend > SIZE_MAX, err, GLMQ_E_NOMEM, "GGUF writer: header too large");
    uint8_t *h = malloc((size_t)hend);
    GLMQ_FAIL_IF(!h, err, GLMQ_E_NOMEM, "out of memory (GGUF header of %llu bytes)",
                 (unsigned long long)hend);
    memcpy(h, "GGUF", 4);
    glmq_wr_le32(h + 4, 3);
    glmq_wr_le64(h + 8, (uint64_t)w->nt);
    glmq_wr_le64(h + 16, (uint64_t)w->nkv);
    if (w->meta_len) memcpy(h + 24, w->meta, w->meta_len);
    uint8_t *p = h + 24 + w->meta_len;
    for (int64_t i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        const size_t nl = strlen(t->name);
        glmq_wr_le64(p, nl);
        memcpy(p + 8, t->name, nl);
        p += 8 + nl;
        glmq_wr_le32(p, t->n_dims);
        p += 4;
        for (uint32_t d = 0; d < t->n_dims; d++, p += 8) glmq_wr_le64(p, (uint64_t)t->ne[d]);
        glmq_wr_le32(p, t->type);
        glmq_wr_le64(p + 4, t->offset);
        p += 12;
    }
    w->af = af;
    w->begun = 1;
    w->data_offset = glmq_align_up(hend, w->alignment);
    glmq_err e = {0};
    glmq_status st = glmq_atomic_write(af, h, (size_t)hend, &e);
    free(h);
    GLMQ_TRY(glmq_sticky_keep(&w->sk, st, &e, err));
    return write_pad(w, hend, err); /* zeros up to the data section */
}

glmq_status glmq_gguf_writer_tensor_data(glmq_gguf_writer *w, const void *data, size_t n,
                                         glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    if (!w->begun)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INVALID,
                               "GGUF writer: tensor data before begin");
    const uint8_t *p = data;
    while (n > 0) {
        if (w->cur >= w->nt)
            return glmq_sticky_set(&w->sk, err, GLMQ_E_INVALID,
                              "GGUF writer: %zu bytes of tensor data past the end of the table "
                              "(%lld tensors, the last '%s')",
                              n, (long long)w->nt, w->nt ? w->t[w->nt - 1].name : "");
        const wtensor *t = &w->t[w->cur];
        const uint64_t left = t->size - w->cur_done;
        const size_t k = left < n ? (size_t)left : n;
        glmq_err e = {0};
        GLMQ_TRY(glmq_sticky_keep(&w->sk, glmq_atomic_write(w->af, p, k, &e), &e, err));
        p += k;
        n -= k;
        w->cur_done += k;
        if (w->cur_done == t->size) {
            GLMQ_TRY(write_pad(w, t->offset + t->size, err));
            w->cur++;
            w->cur_done = 0;
        }
    }
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_patch_u64(glmq_gguf_writer *w, const char *key, uint64_t i,
                                       uint64_t v, glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    const wkv *k = NULL;
    for (int64_t j = 0; j < w->nkv && key; j++)
        if (!strcmp(w->kv[j].key, key)) k = &w->kv[j];
    GLMQ_FAIL_IF(!k || !k->placeholder, err, GLMQ_E_INVALID,
                 "GGUF writer: '%.200s' is not a placeholder key", key ? key : "(null)");
    GLMQ_FAIL_IF(i >= k->n, err, GLMQ_E_INVALID,
                 "GGUF writer: placeholder '%.200s': element %llu of %llu", key,
                 (unsigned long long)i, (unsigned long long)k->n);
    GLMQ_FAIL_IF(!w->begun, err, GLMQ_E_INVALID,
                 "GGUF writer: placeholder '%.200s' patched before begin", key);
    uint8_t b[8];
    glmq_wr_le64(b, v);
    glmq_wr_le64(w->meta + k->val_pos + 8 * i, v); /* keep the in-memory copy in step */
    uint64_t off = 24 + k->val_pos + 8 * i;
    size_t done = 0;
    while (done < 8) {
        ssize_t r = pwrite(glmq_atomic_fd(w->af), b + done, 8 - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return glmq_sticky_set(&w->sk, err, GLMQ_E_IO,
                                   "'%s': write of 8 bytes at byte %llu failed: %s",
                                   glmq_atomic_path(w->af), (unsigned long long)(off + done),
                                   strerror(r < 0 ? errno : EIO));
        done += (size_t)r;
    }
    return GLMQ_OK;
}

glmq_status glmq_gguf_writer_end(glmq_gguf_writer *w, glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    if (!w->begun)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INVALID, "GGUF writer: end before begin");
    if (w->cur < w->nt)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INVALID,
                          "GGUF writer: tensor '%s' is short: %llu of %llu bytes written (%lld "
                          "of %lld tensors complete)",
                          w->t[w->cur].name, (unsigned long long)w->cur_done,
                          (unsigned long long)w->t[w->cur].size, (long long)w->cur,
                          (long long)w->nt);
    return GLMQ_OK;
}
