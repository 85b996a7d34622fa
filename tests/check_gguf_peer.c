/*
 * check_gguf_peer.c - the GGUF reader and writer judged by the real llama.cpp: ggml's own GGUF
 * code (gguf_* in libggml-base.so of the pinned node-llama-cpp package, loaded with dlopen from
 * GLMQ_PEER_LIBDIR; see tests/CMakeLists.txt).
 *
 *   - same_bytes: the same metadata (every value type, arrays of each, a string array) and the
 *     same tensors (several ggml types, 1-4 dims) written by ggml's writer and by glmq's give
 *     byte-identical files (ggml writes n_dims without trailing dimensions of 1, so the tensors
 *     here are declared that way);
 *   - peer_reads_ours / ours_reads_peer: each reader returns every value of the other's file;
 *   - corpus: every file of the fuzz corpus (tests/fuzz/corpus/gguf_open) opened by both: when
 *     glmq accepts a file whose tensors lie back to back (ggml requires that layout) with names
 *     of at most 63 bytes, ggml accepts it with the same contents; when ggml accepts a file whose
 *     tensors have elements and lie inside the file (ggml checks neither without loading), glmq
 *     accepts it too;
 *   - deliberate_differences: the two things glmq refuses and ggml reads (a NUL inside a tensor
 *     name, n_dims = 0), found by a differential fuzzing run of both readers; an empty name
 *     (found the same way) is read by both.
 * Only the peer's C ABI is declared here (opaque contexts, the two parameter structs); no peer
 * code is used beyond calling the shared library.
 */
#include "core/atomic.h"
#include "formats/gguf.h"
#include "testutil.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the peer's ABI (ggml.h / gguf.h of the pinned release) ---- */
struct ggml_context;
struct ggml_tensor;
struct gguf_context;
struct ggml_init_params {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
};
struct gguf_init_params {
    bool no_alloc;
    struct ggml_context **ctx;
};
typedef void (*log_cb)(int level, const char *text, void *user);

static struct {
    void *lib;
    void (*log_set)(log_cb, void *);
    struct ggml_context *(*ggml_init)(struct ggml_init_params);
    void (*ggml_free)(struct ggml_context *);
    struct ggml_tensor *(*new_tensor)(struct ggml_context *, int, int, const int64_t *);
    struct ggml_tensor *(*set_name)(struct ggml_tensor *, const char *);
    void *(*get_data)(const struct ggml_tensor *);
    size_t (*nbytes)(const struct ggml_tensor *);
    struct gguf_context *(*init_empty)(void);
    struct gguf_context *(*init_from_file)(const char *, struct gguf_init_params);
    void (*free)(struct gguf_context *);
    uint32_t (*version)(const struct gguf_context *);
    size_t (*alignment)(const struct gguf_context *);
    size_t (*data_offset)(const struct gguf_context *);
    int64_t (*n_kv)(const struct gguf_context *);
    const char *(*key)(const struct gguf_context *, int64_t);
    int (*kv_type)(const struct gguf_context *, int64_t);
    int (*arr_type)(const struct gguf_context *, int64_t);
    size_t (*arr_n)(const struct gguf_context *, int64_t);
    const void *(*arr_data)(const struct gguf_context *, int64_t);
    const char *(*arr_str)(const struct gguf_context *, int64_t, size_t);
    const void *(*val_data)(const struct gguf_context *, int64_t);
    const char *(*val_str)(const struct gguf_context *, int64_t);
    int64_t (*n_tensors)(const struct gguf_context *);
    const char *(*tensor_name)(const struct gguf_context *, int64_t);
    int (*tensor_type)(const struct gguf_context *, int64_t);
    size_t (*tensor_offset)(const struct gguf_context *, int64_t);
    size_t (*tensor_size)(const struct gguf_context *, int64_t);
    void (*set_u8)(struct gguf_context *, const char *, uint8_t);
    void (*set_i8)(struct gguf_context *, const char *, int8_t);
    void (*set_u16)(struct gguf_context *, const char *, uint16_t);
    void (*set_i16)(struct gguf_context *, const char *, int16_t);
    void (*set_u32)(struct gguf_context *, const char *, uint32_t);
    void (*set_i32)(struct gguf_context *, const char *, int32_t);
    void (*set_f32)(struct gguf_context *, const char *, float);
    void (*set_u64)(struct gguf_context *, const char *, uint64_t);
    void (*set_i64)(struct gguf_context *, const char *, int64_t);
    void (*set_f64)(struct gguf_context *, const char *, double);
    void (*set_bool)(struct gguf_context *, const char *, bool);
    void (*set_str)(struct gguf_context *, const char *, const char *);
    void (*set_arr_data)(struct gguf_context *, const char *, int, const void *, size_t);
    void (*set_arr_str)(struct gguf_context *, const char *, const char **, size_t);
    void (*add_tensor)(struct gguf_context *, const struct ggml_tensor *);
    bool (*write_to_file)(const struct gguf_context *, const char *, bool);
} P;

static void quiet(int level, const char *text, void *user)
{
    (void)level;
    (void)text;
    (void)user;
}

static void *sym(const char *name)
{
    void *p = dlsym(P.lib, name);
    ck_assert_msg(p != NULL, "peer symbol %s: %s", name, dlerror());
    return p;
}

#define LOAD(field, name) *(void **)(&P.field) = sym(name)

static char *tmpdir;

static void setup(void)
{
    tmpdir = tu_mkdtemp();
    if (P.lib) return;
    const char *dir = getenv("GLMQ_PEER_LIBDIR");
    ck_assert_msg(dir && *dir, "GLMQ_PEER_LIBDIR is not set (the peer tests need llama.cpp)");
    char path[4096];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    P.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(P.lib != NULL, "dlopen %s: %s", path, dlerror());
    LOAD(log_set, "ggml_log_set");
    LOAD(ggml_init, "ggml_init");
    LOAD(ggml_free, "ggml_free");
    LOAD(new_tensor, "ggml_new_tensor");
    LOAD(set_name, "ggml_set_name");
    LOAD(get_data, "ggml_get_data");
    LOAD(nbytes, "ggml_nbytes");
    LOAD(init_empty, "gguf_init_empty");
    LOAD(init_from_file, "gguf_init_from_file");
    LOAD(free, "gguf_free");
    LOAD(version, "gguf_get_version");
    LOAD(alignment, "gguf_get_alignment");
    LOAD(data_offset, "gguf_get_data_offset");
    LOAD(n_kv, "gguf_get_n_kv");
    LOAD(key, "gguf_get_key");
    LOAD(kv_type, "gguf_get_kv_type");
    LOAD(arr_type, "gguf_get_arr_type");
    LOAD(arr_n, "gguf_get_arr_n");
    LOAD(arr_data, "gguf_get_arr_data");
    LOAD(arr_str, "gguf_get_arr_str");
    LOAD(val_data, "gguf_get_val_data");
    LOAD(val_str, "gguf_get_val_str");
    LOAD(n_tensors, "gguf_get_n_tensors");
    LOAD(tensor_name, "gguf_get_tensor_name");
    LOAD(tensor_type, "gguf_get_tensor_type");
    LOAD(tensor_offset, "gguf_get_tensor_offset");
    LOAD(tensor_size, "gguf_get_tensor_size");
    LOAD(set_u8, "gguf_set_val_u8");
    LOAD(set_i8, "gguf_set_val_i8");
    LOAD(set_u16, "gguf_set_val_u16");
    LOAD(set_i16, "gguf_set_val_i16");
    LOAD(set_u32, "gguf_set_val_u32");
    LOAD(set_i32, "gguf_set_val_i32");
    LOAD(set_f32, "gguf_set_val_f32");
    LOAD(set_u64, "gguf_set_val_u64");
    LOAD(set_i64, "gguf_set_val_i64");
    LOAD(set_f64, "gguf_set_val_f64");
    LOAD(set_bool, "gguf_set_val_bool");
    LOAD(set_str, "gguf_set_val_str");
    LOAD(set_arr_data, "gguf_set_arr_data");
    LOAD(set_arr_str, "gguf_set_arr_str");
    LOAD(add_tensor, "gguf_add_tensor");
    LOAD(write_to_file, "gguf_write_to_file");
    P.log_set(quiet, NULL); /* the peer logs every refusal; the test checks the results */
}

static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* ---- one content, written by both ---- */

static const uint8_t v_u8 = 250, v_bool = 1;
static const int8_t v_i8 = -100;
static const uint16_t v_u16 = 60000;
static const int16_t v_i16 = -30000;
static const uint32_t v_u32 = 3000000000u;
static const int32_t v_i32 = -123456789;
static const float v_f32 = 0.1f;
static const uint64_t v_u64 = 0xfedcba9876543210ull;
static const int64_t v_i64 = -0x123456789abcdefll;
static const double v_f64 = -2.5e-300;
static const char *const toks[] = {"<unk>", "", "\xe2\x96\x81hello", "\xe4\xb8\xad", "<0x0A>"};

typedef struct {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
} tdecl;
static const tdecl tensors[] = {
    {"token_embd.weight", GLMQ_GGML_F16, 2, {64, 5, 1, 1}},
    {"blk.0.attn_qkv.weight", GLMQ_GGML_Q4_0, 2, {64, 3, 1, 1}},
    {"blk.0.attn_norm.weight", GLMQ_GGML_F32, 1, {7, 1, 1, 1}},
    {"blk.0.ffn_down.weight", GLMQ_GGML_Q8_0, 3, {32, 2, 2, 1}},
    {"blk.0.k", GLMQ_GGML_Q4_K, 4, {256, 1, 2, 2}},
    {"blk.0.b", GLMQ_GGML_BF16, 2, {3, 3, 1, 1}},
    {"blk.0.iq", GLMQ_GGML_IQ2_XXS, 2, {256, 2, 1, 1}},
    {"output.weight", GLMQ_GGML_Q6_K, 2, {256, 2, 1, 1}},
};
#define NT (sizeof tensors / sizeof tensors[0])

static uint8_t arr_pat[6 * 8];

static uint64_t tensor_bytes(const tdecl *t)
{
    return glmq_ggml_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

/* Deterministic tensor bytes: byte k of tensor i. */
static uint8_t tbyte(size_t i, uint64_t k) { return (uint8_t)(k * 131 + i * 17 + 5); }

static void write_glmq(const char *path)
{
    for (int i = 0; i < 48; i++) arr_pat[i] = (uint8_t)(i * 53 + 1);
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.u8", GLMQ_GGUF_U8, &v_u8, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.i8", GLMQ_GGUF_I8, &v_i8, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.u16", GLMQ_GGUF_U16, &v_u16, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.i16", GLMQ_GGUF_I16, &v_i16, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u32(w, "v.u32", v_u32, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_i32(w, "v.i32", v_i32, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_f32(w, "v.f32", v_f32, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u64(w, "v.u64", v_u64, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.i64", GLMQ_GGUF_I64, &v_i64, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "v.f64", GLMQ_GGUF_F64, &v_f64, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_bool(w, "v.bool", v_bool, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_str(w, "v.str", "\xe4\xbd\xa0\xe5\xa5\xbd", &err),
                     GLMQ_OK);
    char key[32];
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!glmq_gguf_vtype_size(t) || t == GLMQ_GGUF_BOOL) continue;
        snprintf(key, sizeof key, "a.%s", glmq_gguf_vtype_name(t));
        ck_assert_int_eq(glmq_gguf_writer_add_arr(w, key, t, 6, arr_pat, &err), GLMQ_OK);
    }
    ck_assert_int_eq(glmq_gguf_writer_add_arr_str(w, "a.tokens", 5, toks, NULL, &err), GLMQ_OK);
    for (size_t i = 0; i < NT; i++)
        ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, tensors[i].name, tensors[i].type,
                                                     tensors[i].n_dims, tensors[i].ne, &err),
                         GLMQ_OK);
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    for (size_t i = 0; i < NT; i++) {
        const uint64_t n = tensor_bytes(&tensors[i]);
        uint8_t *d = malloc((size_t)n);
        for (uint64_t k = 0; k < n; k++) d[k] = tbyte(i, k);
        ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, d, (size_t)n, &err), GLMQ_OK);
        free(d);
    }
    ck_assert_int_eq(glmq_gguf_writer_end(w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    glmq_gguf_writer_free(w);
}

static void write_peer(const char *path)
{
    struct gguf_context *g = P.init_empty();
    ck_assert_ptr_nonnull(g);
    P.set_str(g, "general.architecture", "chatglm");
    P.set_u8(g, "v.u8", v_u8);
    P.set_i8(g, "v.i8", v_i8);
    P.set_u16(g, "v.u16", v_u16);
    P.set_i16(g, "v.i16", v_i16);
    P.set_u32(g, "v.u32", v_u32);
    P.set_i32(g, "v.i32", v_i32);
    P.set_f32(g, "v.f32", v_f32);
    P.set_u64(g, "v.u64", v_u64);
    P.set_i64(g, "v.i64", v_i64);
    P.set_f64(g, "v.f64", v_f64);
    P.set_bool(g, "v.bool", v_bool);
    P.set_str(g, "v.str", "\xe4\xbd\xa0\xe5\xa5\xbd");
    char key[32];
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!glmq_gguf_vtype_size(t) || t == GLMQ_GGUF_BOOL) continue;
        snprintf(key, sizeof key, "a.%s", glmq_gguf_vtype_name(t));
        P.set_arr_data(g, key, (int)t, arr_pat, 6); /* native = little-endian here */
    }
    P.set_arr_str(g, "a.tokens", (const char **)toks, 5);
    struct ggml_init_params ip = {NT * 1024 + (1 << 16), NULL, false};
    struct ggml_context *ctx = P.ggml_init(ip);
    ck_assert_ptr_nonnull(ctx);
    for (size_t i = 0; i < NT; i++) {
        struct ggml_tensor *t =
            P.new_tensor(ctx, (int)tensors[i].type, (int)tensors[i].n_dims, tensors[i].ne);
        ck_assert_ptr_nonnull(t);
        P.set_name(t, tensors[i].name);
        ck_assert_uint_eq(P.nbytes(t), tensor_bytes(&tensors[i]));
        uint8_t *d = P.get_data(t);
        for (uint64_t k = 0; k < tensor_bytes(&tensors[i]); k++) d[k] = tbyte(i, k);
        P.add_tensor(g, t);
    }
    ck_assert(P.write_to_file(g, path, false));
    P.free(g);
    P.ggml_free(ctx);
}

START_TEST(same_bytes)
{
    char *a = tu_path(tmpdir, "glmq.gguf"), *b = tu_path(tmpdir, "peer.gguf");
    write_glmq(a);
    write_peer(b);
    size_t na = 0, nb = 0;
    uint8_t *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(na, nb);
    for (size_t i = 0; i < na; i++)
        ck_assert_msg(x[i] == y[i], "byte %zu: glmq %02x, llama.cpp %02x", i, x[i], y[i]);
    free(x);
    free(y);
    free(a);
    free(b);
}
END_TEST

/* Every kv and tensor of the file at path, as both readers see it, must agree. */
static void compare_readers(const char *path, const glmq_gguf *g, const struct gguf_context *p)
{
    ck_assert_uint_eq(P.version(p), glmq_gguf_version(g));
    ck_assert_uint_eq(P.alignment(p), glmq_gguf_alignment(g));
    ck_assert_int_eq(P.n_kv(p), glmq_gguf_kv_count(g));
    ck_assert_int_eq(P.n_tensors(p), glmq_gguf_tensor_count(g));
    if (P.n_tensors(p) > 0) ck_assert_uint_eq(P.data_offset(p), glmq_gguf_data_offset(g));
    for (int64_t i = 0; i < P.n_kv(p); i++) {
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        const char *k = P.key(p, i);
        ck_assert_msg(kv->key.len == strlen(k) && memcmp(kv->key.ptr, k, kv->key.len) == 0,
                      "%s: key %lld", path, (long long)i);
        const int pt = P.kv_type(p, i);
        ck_assert_int_eq(pt, (int)kv->type);
        if (pt == GLMQ_GGUF_ARRAY) {
            ck_assert_int_eq(P.arr_type(p, i), (int)kv->arr_type);
            ck_assert_uint_eq(P.arr_n(p, i), kv->arr_n);
            if (kv->arr_type == GLMQ_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, j);
                    const char *ps = P.arr_str(p, i, (size_t)j);
                    /* the peer's C string ends at an embedded NUL */
                    const size_t cmp = strlen(ps);
                    ck_assert_msg(cmp <= s.len && memcmp(ps, s.ptr, cmp) == 0 &&
                                      (cmp == s.len || s.ptr[cmp] == 0),
                                  "%s: %s[%llu]", path, k, (unsigned long long)j);
                }
            } else if (kv->arr_n) {
                const size_t sz = glmq_gguf_vtype_size(kv->arr_type);
                if (kv->arr_type == GLMQ_GGUF_BOOL) { /* the peer stores C++ bools */
                    const uint8_t *pb = P.arr_data(p, i);
                    for (uint64_t j = 0; j < kv->arr_n; j++)
                        ck_assert_int_eq(pb[j] != 0, kv->value[j] != 0);
                } else {
                    ck_assert(memcmp(P.arr_data(p, i), kv->value, (size_t)kv->arr_n * sz) == 0);
                }
            }
        } else if (pt == GLMQ_GGUF_STRING) {
            const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, 0);
            const char *ps = P.val_str(p, i);
            ck_assert(strlen(ps) <= s.len && memcmp(ps, s.ptr, strlen(ps)) == 0);
        } else if (pt == GLMQ_GGUF_BOOL) {
            ck_assert_int_eq(*(const uint8_t *)P.val_data(p, i) != 0, kv->value[0] != 0);
        } else {
            ck_assert(memcmp(P.val_data(p, i), kv->value, glmq_gguf_vtype_size(kv->type)) == 0);
        }
    }
    for (int64_t i = 0; i < P.n_tensors(p); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        ck_assert_str_eq(P.tensor_name(p, i), t->name);
        ck_assert_int_eq(P.tensor_type(p, i), (int)t->type);
        ck_assert_uint_eq(P.tensor_offset(p, i) + P.data_offset(p), t->offset);
        ck_assert_uint_eq(P.tensor_size(p, i), t->size);
    }
}

START_TEST(readers_agree_on_both_writers)
{
    char *a = tu_path(tmpdir, "glmq.gguf"), *b = tu_path(tmpdir, "peer.gguf");
    write_glmq(a);
    write_peer(b);
    const char *files[2] = {a, b};
    for (int f = 0; f < 2; f++) {
        glmq_gguf *g = NULL;
        glmq_err err = {0};
        ck_assert_msg(glmq_gguf_open(files[f], &g, &err) == GLMQ_OK, "%s", err.msg);
        struct gguf_init_params ip = {true, NULL};
        struct gguf_context *p = P.init_from_file(files[f], ip);
        ck_assert_ptr_nonnull(p);
        compare_readers(files[f], g, p);
        /* and the values are the declared ones */
        uint64_t u = 0;
        int64_t s = 0;
        ck_assert_int_eq(glmq_gguf_get_u64(g, "v.u64", 1, &u, &err), GLMQ_OK);
        ck_assert_uint_eq(u, v_u64);
        ck_assert_int_eq(glmq_gguf_get_i64(g, "v.i64", 1, &s, &err), GLMQ_OK);
        ck_assert_int_eq(s, v_i64);
        const glmq_gguf_tensor *t = glmq_gguf_find_tensor(g, "blk.0.k");
        ck_assert(t && t->type == GLMQ_GGML_Q4_K && t->ne[2] == 2 && t->ne[3] == 2 &&
                  t->n_dims == 4);
        for (uint64_t k = 0; k < t->size; k++) ck_assert_uint_eq(t->data[k], tbyte(4, k));
        P.free(p);
        glmq_gguf_close(g);
    }
    free(a);
    free(b);
}
END_TEST

/* Do glmq's tensors lie back to back in table order, each padded to the alignment (ggml's only
 * layout), with names ggml accepts? */
static int ggml_layout(const glmq_gguf *g)
{
    uint64_t next = glmq_gguf_data_offset(g);
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        if (t->offset != next || strlen(t->name) >= 64) return 0;
        next += glmq_align_up(t->size, glmq_gguf_alignment(g));
    }
    return 1;
}

/* Do the peer's tensors have elements and lie inside the file (what glmq checks at open and
 * ggml only when it loads)? */
static int peer_in_bounds(const struct gguf_context *p, uint64_t file_size)
{
    for (int64_t i = 0; i < P.n_tensors(p); i++) {
        const uint64_t off = (uint64_t)P.data_offset(p) + P.tensor_offset(p, i);
        const uint64_t sz = P.tensor_size(p, i);
        if (sz == 0 || off > file_size || sz > file_size - off) return 0;
    }
    return 1;
}

START_TEST(corpus_agreement)
{
    char *dir = tu_path(tu_testdata(), "../fuzz/corpus/gguf_open");
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    struct dirent *e;
    int files = 0, both = 0, compared = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *path = tu_path(dir, e->d_name);
        size_t n = 0;
        uint8_t *bytes = tu_read_file(path, &n);
        ck_assert_ptr_nonnull(bytes);
        glmq_gguf *g = NULL;
        glmq_err err = {0};
        const glmq_status st = glmq_gguf_open(path, &g, &err);
        struct gguf_init_params ip = {true, NULL};
        struct gguf_context *p = P.init_from_file(path, ip);
        if (st == GLMQ_OK && ggml_layout(g)) {
            ck_assert_msg(p != NULL, "%s: glmq reads it, llama.cpp refuses it", e->d_name);
            compare_readers(path, g, p);
            compared++;
        }
        if (p && peer_in_bounds(p, n))
            ck_assert_msg(st == GLMQ_OK, "%s: llama.cpp reads it, glmq refuses it: %s", e->d_name,
                          err.msg);
        both += st == GLMQ_OK && p;
        files++;
        if (p) P.free(p);
        glmq_gguf_close(g);
        free(bytes);
        free(path);
    }
    closedir(d);
    ck_assert_int_gt(files, 100);
    ck_assert_int_gt(compared, 10);
    fprintf(stderr, "corpus: %d files, %d read by both, %d compared\n", files, both, compared);
    free(dir);
}
END_TEST

/* One tensor info (name, n_dims, ne = {32, 1, ...}, f32, offset 0) after a header without
 * metadata, then the data section: a file ggml accepts. */
static uint8_t *one_tensor(const char *name, size_t nlen, uint32_t n_dims, size_t *n)
{
    uint8_t *b = calloc(1, 512);
    size_t k = 0;
    memcpy(b, "GGUF", 4);
    glmq_wr_le32(b + 4, 3);
    glmq_wr_le64(b + 8, 1);
    glmq_wr_le64(b + 16, 0);
    k = 24;
    glmq_wr_le64(b + k, nlen);
    memcpy(b + k + 8, name, nlen);
    k += 8 + nlen;
    glmq_wr_le32(b + k, n_dims);
    k += 4;
    for (uint32_t d = 0; d < n_dims; d++, k += 8) glmq_wr_le64(b + k, d == 0 ? 32 : 1);
    glmq_wr_le32(b + k, GLMQ_GGML_F32);
    glmq_wr_le64(b + k + 4, 0);
    k = glmq_align_up(k + 12, 32) + 128; /* 32 f32 (n_dims 0: ggml counts 1 element) */
    *n = k;
    return b;
}

/* Where glmq is stricter than ggml, on purpose: a NUL inside a tensor name (ggml cuts the name
 * there, so two different names could become one) and n_dims = 0 (the header's rule 1..4).
 * An empty name is accepted by both. */
START_TEST(deliberate_differences)
{
    const struct {
        const char *name;
        size_t len;
        uint32_t n_dims;
        const char *glmq_msg; /* NULL: glmq accepts */
    } cases[] = {
        {"", 0, 1, NULL},
        {"a\0b", 3, 1, "name contains a NUL byte"},
        {"w", 1, 0, "n_dims 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        uint8_t *b = one_tensor(cases[i].name, cases[i].len, cases[i].n_dims, &n);
        char *path = tu_path(tmpdir, "d.gguf");
        ck_assert_int_eq(tu_write_file(path, b, n), 0);
        struct gguf_init_params ip = {true, NULL};
        struct gguf_context *p = P.init_from_file(path, ip);
        ck_assert_msg(p != NULL, "case %zu: llama.cpp refuses it", i);
        glmq_gguf *g = NULL;
        glmq_err err = {0};
        const glmq_status st = glmq_gguf_open(path, &g, &err);
        if (cases[i].glmq_msg) {
            ck_assert_int_eq(st, GLMQ_E_FORMAT);
            ck_assert_msg(strstr(err.msg, cases[i].glmq_msg) != NULL, "%s", err.msg);
        } else {
            ck_assert_msg(st == GLMQ_OK, "%s", err.msg);
            compare_readers(path, g, p);
            glmq_gguf_close(g);
        }
        P.free(p);
        free(path);
        free(b);
    }
}
END_TEST

Suite *gguf_peer_suite(void);
Suite *gguf_peer_suite(void)
{
    Suite *s = suite_create("gguf_peer");
    TCase *tc = tcase_create("peer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, same_bytes);
    tcase_add_test(tc, readers_agree_on_both_writers);
    tcase_add_test(tc, corpus_agreement);
    tcase_add_test(tc, deliberate_differences);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gguf_peer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
