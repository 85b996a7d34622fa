/*
 * fuzz_gguf_open.c - feed arbitrary bytes to glmq_gguf_open_mem and walk everything it accepts:
 * every metadata entry (and its value through every typed getter), every element of every
 * string array, every tensor's first and last data byte.
 *
 * The input is opened from memory (the same parser as a mapped file). Beyond "no crash, no leak,
 * no UB", the target checks the reader's contract and traps on a breach:
 *   - failure: *out == NULL, err.code == the status, a non-empty NUL-terminated message naming
 *     the label for format and version errors;
 *   - success: version 2 or 3, a power-of-two alignment, an aligned data offset inside the
 *     input (when there are tensors); each key and value lies inside the input, at its offset,
 *     and is found again by its key; string-array elements lie inside the input; each tensor
 *     has a name of at most 64 bytes, a known type, 1..4 dims with the unused ones 1,
 *     rows/row_bytes/size consistent with its ne, an aligned offset at or after the data
 *     section with its bytes inside the input, its info record (re-read here at info_offset)
 *     saying the same, and is found by its name; no two tensors overlap.
 * The corpus (corpus/gguf_open/) is written by gen_gguf_corpus.c.
 */
#include "formats/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static volatile uint8_t sink;

static int inside(const uint8_t *base, size_t size, const void *p, uint64_t n)
{
    const uint8_t *q = p;
    return q >= base && (uint64_t)(q - base) <= size && n <= size - (uint64_t)(q - base);
}

static void walk_kv(const glmq_gguf *g, const uint8_t *in, size_t size, int64_t i)
{
    const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
    CHECK(kv != NULL);
    CHECK(kv->key.len >= 1 && inside(in, size, kv->key.ptr, kv->key.len));
    CHECK(kv->type < GLMQ_GGUF_VTYPE_COUNT && kv->arr_type < GLMQ_GGUF_VTYPE_COUNT);
    CHECK(kv->arr_type != GLMQ_GGUF_ARRAY);
    CHECK(kv->type == GLMQ_GGUF_ARRAY || (kv->arr_type == kv->type && kv->arr_n == 1));
    CHECK(kv->value == in + kv->offset && kv->offset <= size);
    const size_t esz = glmq_gguf_vtype_size(kv->arr_type);
    if (esz) {
        CHECK(kv->arr_n <= (size - kv->offset) / esz);
        if (kv->arr_n) sink ^= kv->value[kv->arr_n * esz - 1];
    }
    for (uint64_t k = 0; kv->arr_type == GLMQ_GGUF_STRING && k < kv->arr_n; k++) {
        const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, k);
        CHECK(inside(in, size, s.ptr, s.len));
        if (s.len) sink ^= (uint8_t)(s.ptr[0] ^ s.ptr[s.len - 1]);
    }
    /* found again by its key (keys are unique) when it has no NUL */
    if (kv->key.len < 4096 && !memchr(kv->key.ptr, 0, (size_t)kv->key.len)) {
        char key[4096];
        memcpy(key, kv->key.ptr, (size_t)kv->key.len);
        key[kv->key.len] = 0;
        CHECK(glmq_gguf_find(g, key) == kv);
        /* every getter: no crash, a message on failure */
        glmq_err err = {0};
        uint64_t u;
        int64_t s;
        float f;
        int b;
        glmq_gguf_str str;
        const uint8_t *d;
        uint64_t n;
        if (glmq_gguf_get_u64(g, key, 1, &u, &err) != GLMQ_OK) CHECK(err.msg[0]);
        if (glmq_gguf_get_i64(g, key, 1, &s, &err) != GLMQ_OK) CHECK(err.msg[0]);
        if (glmq_gguf_get_f32(g, key, 1, &f, &err) != GLMQ_OK) CHECK(err.msg[0]);
        if (glmq_gguf_get_bool(g, key, 1, &b, &err) != GLMQ_OK) CHECK(err.msg[0]);
        if (glmq_gguf_get_str(g, key, 1, &str, &err) == GLMQ_OK)
            CHECK(inside(in, size, str.ptr, str.len));
        if (glmq_gguf_get_arr(g, key, 1, kv->arr_type, &d, &n, &err) == GLMQ_OK)
            CHECK(d == kv->value && n == kv->arr_n && kv->type == GLMQ_GGUF_ARRAY);
    }
}

static void walk_tensor(const glmq_gguf *g, const uint8_t *in, size_t size, int64_t i)
{
    const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
    CHECK(t != NULL && t->name != NULL);
    const size_t nl = strlen(t->name);
    CHECK(nl <= 64); /* may be 0 */
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t->type);
    CHECK(ti != NULL);
    CHECK(t->n_dims >= 1 && t->n_dims <= GLMQ_GGUF_MAX_DIMS);
    /* the info record, re-read independently */
    const uint64_t io = t->info_offset;
    CHECK(io <= size && size - io >= 8 + nl + 4 + 8 * (uint64_t)t->n_dims + 12);
    CHECK(glmq_rd_le64(in + io) == nl && memcmp(in + io + 8, t->name, nl) == 0);
    CHECK(glmq_rd_le32(in + io + 8 + nl) == t->n_dims);
    int64_t rows = 1;
    for (uint32_t d = 0; d < GLMQ_GGUF_MAX_DIMS; d++) {
        CHECK(t->ne[d] >= 1);
        if (d < t->n_dims)
            CHECK((uint64_t)t->ne[d] == glmq_rd_le64(in + io + 8 + nl + 4 + 8 * d));
        else
            CHECK(t->ne[d] == 1);
        if (d > 0) CHECK(!__builtin_mul_overflow(rows, t->ne[d], &rows));
    }
    const uint8_t *tail = in + io + 8 + nl + 4 + 8 * t->n_dims;
    CHECK(glmq_rd_le32(tail) == t->type);
    CHECK(t->offset == glmq_gguf_data_offset(g) + glmq_rd_le64(tail + 4));
    CHECK(t->rows == rows && t->ne[0] % ti->block == 0);
    CHECK(t->row_bytes == (uint64_t)(t->ne[0] / ti->block) * (uint64_t)ti->block_bytes);
    CHECK(t->size == (uint64_t)rows * t->row_bytes && t->size > 0);
    CHECK(t->offset % glmq_gguf_alignment(g) == 0 && t->offset >= glmq_gguf_data_offset(g));
    CHECK(t->data == in + t->offset && inside(in, size, t->data, t->size));
    sink ^= (uint8_t)(t->data[0] ^ t->data[t->size - 1]);
    CHECK(glmq_gguf_find_tensor(g, t->name) == t);
    for (int64_t j = 0; j < i; j++) { /* no overlap (quadratic: fuzz inputs are small) */
        const glmq_gguf_tensor *u = glmq_gguf_tensor_at(g, j);
        CHECK(u->offset + u->size <= t->offset || t->offset + t->size <= u->offset);
        if (j + 64 < i) j = i - 64; /* bound the work on inputs with many tensors */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    glmq_gguf *g = (glmq_gguf *)(uintptr_t)1; /* must be reset to NULL on failure */
    glmq_err err = {0};
    const glmq_status st = glmq_gguf_open_mem(data, size, "fuzz.gguf", &g, &err);
    if (st != GLMQ_OK) {
        CHECK(g == NULL);
        CHECK(err.code == st && err.msg[0] != 0 && memchr(err.msg, 0, sizeof err.msg));
        if (st == GLMQ_E_FORMAT || st == GLMQ_E_UNSUPPORTED)
            CHECK(strstr(err.msg, "'fuzz.gguf'") != NULL);
        return 0;
    }
    CHECK(g != NULL && size >= 24);
    CHECK(glmq_gguf_version(g) == 2 || glmq_gguf_version(g) == 3);
    const uint64_t a = glmq_gguf_alignment(g);
    CHECK(a > 0 && (a & (a - 1)) == 0 && glmq_gguf_data_offset(g) % a == 0);
    CHECK(glmq_gguf_file_size(g) == size);
    CHECK((uint64_t)glmq_gguf_kv_count(g) == glmq_rd_le64(data + 16));
    CHECK((uint64_t)glmq_gguf_tensor_count(g) == glmq_rd_le64(data + 8));
    if (glmq_gguf_tensor_count(g) > 0) CHECK(glmq_gguf_data_offset(g) <= size);
    for (int64_t i = 0; i < glmq_gguf_kv_count(g); i++) walk_kv(g, data, size, i);
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) walk_tensor(g, data, size, i);
    CHECK(glmq_gguf_kv_at(g, -1) == NULL && glmq_gguf_kv_at(g, glmq_gguf_kv_count(g)) == NULL);
    CHECK(glmq_gguf_tensor_at(g, glmq_gguf_tensor_count(g)) == NULL);
    CHECK(glmq_gguf_find(g, "no such key \x01") == NULL);
    CHECK(glmq_gguf_find_tensor(g, "no such tensor \x01") == NULL);
    glmq_gguf_close(g);
    return 0;
}
