/*
 * check_gguf.c - the GGUF reader and writer (formats/gguf.h) and `glmq info FILE.gguf`.
 *
 * The reference bytes come from the specification (ggml's docs/gguf.md), assembled here field by
 * field with a tiny byte builder that shares no code with the writer: magic "GGUF", u32 version,
 * u64 tensor count, u64 metadata count, then (string key, u32 type, value) records, then
 * (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset) records, zero padding to the
 * alignment, and each tensor's data at its offset, padded to the alignment.
 */
#include "core/atomic.h"
#include "formats/gguf.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* ---- a byte builder (the spec, by hand) ---- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} bb;

static void bb_put(bb *x, const void *p, size_t n)
{
    if (x->n + n > x->cap) {
        x->cap = (x->n + n) * 2 + 64;
        x->b = realloc(x->b, x->cap);
        ck_assert_ptr_nonnull(x->b);
    }
    if (n) memcpy(x->b + x->n, p, n);
    x->n += n;
}
static void bb_le(bb *x, uint64_t v, int bytes)
{
    uint8_t t[8];
    for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
    bb_put(x, t, (size_t)bytes);
}
static void bb_u8(bb *x, uint8_t v) { bb_le(x, v, 1); }
static void bb_u32(bb *x, uint32_t v) { bb_le(x, v, 4); }
static void bb_u64(bb *x, uint64_t v) { bb_le(x, v, 8); }
static void bb_f32(bb *x, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_u32(x, u);
}
static void bb_str(bb *x, const char *s, size_t n)
{
    bb_u64(x, n);
    bb_put(x, s, n);
}
static void bb_cstr(bb *x, const char *s) { bb_str(x, s, strlen(s)); }
static void bb_pad(bb *x, size_t align)
{
    while (x->n % align) bb_u8(x, 0);
}

/* Tensor data of the reference file: "a" f32 [4], "b" q8_0 ne {32, 2}. */
static void ref_data(uint8_t a[16], uint8_t b[68])
{
    const float av[4] = {1.0f, -2.5f, 0.0f, 3.25f};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &av[i], 4);
        for (int k = 0; k < 4; k++) a[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    for (int r = 0; r < 2; r++) {
        uint8_t *blk = b + 34 * r;
        blk[0] = 0x00; /* d = fp16 0x3c00 = 1.0 (little-endian) */
        blk[1] = 0x3c;
        for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)(int8_t)(i - 16 + r);
    }
}

/* The reference file. With align 64 it starts with general.alignment = 64 (u32). */
static bb ref_file(size_t align)
{
    bb x = {0};
    bb_put(&x, "GGUF", 4);
    bb_u32(&x, 3);
    bb_u64(&x, 2);                  /* tensors */
    bb_u64(&x, align != 32 ? 6 : 5); /* metadata */
    if (align != 32) {
        bb_cstr(&x, "general.alignment");
        bb_u32(&x, 4); /* uint32 */
        bb_u32(&x, (uint32_t)align);
    }
    bb_cstr(&x, "general.architecture");
    bb_u32(&x, 8); /* string */
    bb_cstr(&x, "chatglm");
    bb_cstr(&x, "test.u32");
    bb_u32(&x, 4);
    bb_u32(&x, 0xdeadbeefu);
    bb_cstr(&x, "test.f32");
    bb_u32(&x, 6);
    bb_f32(&x, 1.5f);
    bb_cstr(&x, "test.arr");
    bb_u32(&x, 9); /* array */
    bb_u32(&x, 5); /* of int32 */
    bb_u64(&x, 3);
    bb_u32(&x, 1);
    bb_u32(&x, (uint32_t)-2);
    bb_u32(&x, 3);
    bb_cstr(&x, "test.strs");
    bb_u32(&x, 9);
    bb_u32(&x, 8); /* of string */
    bb_u64(&x, 3);
    bb_cstr(&x, "x");
    bb_str(&x, "", 0);
    bb_str(&x, "a\0b", 3);
    /* tensor infos */
    bb_cstr(&x, "a");
    bb_u32(&x, 1);
    bb_u64(&x, 4);
    bb_u32(&x, 0); /* f32 */
    bb_u64(&x, 0);
    bb_cstr(&x, "b");
    bb_u32(&x, 2);
    bb_u64(&x, 32);
    bb_u64(&x, 2);
    bb_u32(&x, 8);                  /* q8_0 */
    bb_u64(&x, align > 16 ? align : 16); /* "a" has 16 bytes */
    bb_pad(&x, align);
    uint8_t a[16], b[68];
    ref_data(a, b);
    bb_put(&x, a, 16);
    bb_pad(&x, align);
    bb_put(&x, b, 68);
    bb_pad(&x, align);
    return x;
}

/* The same through the writer: metadata and tensors declared in the same order. */
static void ref_declare(glmq_gguf_writer *w)
{
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", &err),
                     GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u32(w, "test.u32", 0xdeadbeefu, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_f32(w, "test.f32", 1.5f, &err), GLMQ_OK);
    const int32_t arr[3] = {1, -2, 3};
    ck_assert_int_eq(glmq_gguf_writer_add_arr_i32(w, "test.arr", 3, arr, &err), GLMQ_OK);
    const char *s[3] = {"x", "", "a\0b"};
    const uint64_t l[3] = {1, 0, 3};
    ck_assert_int_eq(glmq_gguf_writer_add_arr_str(w, "test.strs", 3, s, l, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, "a", GLMQ_GGML_F32, 1, (int64_t[]){4}, &err),
                     GLMQ_OK);
    ck_assert_int_eq(
        glmq_gguf_writer_add_tensor(w, "b", GLMQ_GGML_Q8_0, 2, (int64_t[]){32, 2}, &err),
        GLMQ_OK);
}

/* begin + the reference data in chunks of `chunk` bytes + end + commit into `path`. */
static void write_ref(glmq_gguf_writer *w, const char *path, size_t chunk)
{
    glmq_err err = {0};
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    uint8_t data[16 + 68];
    ref_data(data, data + 16);
    for (size_t i = 0; i < sizeof data; i += chunk) {
        const size_t n = sizeof data - i < chunk ? sizeof data - i : chunk;
        ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, data + i, n, &err), GLMQ_OK);
    }
    ck_assert_msg(glmq_gguf_writer_end(w, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
}

static void assert_file_eq(const char *path, const bb *want)
{
    size_t n = 0;
    uint8_t *got = tu_read_file(path, &n);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(n, want->n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want->b[i], "byte %zu: %02x, want %02x", i, got[i], want->b[i]);
    free(got);
}

/* The writer reproduces the hand-built file byte for byte: default alignment and 64, data in
 * several chunkings (whole, 1 byte, 7 bytes, split across the tensor boundary). */
static const size_t chunks[] = {84, 1, 7, 10, 16, 17};

START_TEST(writer_bytes)
{
    for (int ai = 0; ai < 2; ai++) {
        const size_t align = ai ? 64 : 32;
        bb want = ref_file(align);
        glmq_gguf_writer *w = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_gguf_writer_new(align, &w, &err), GLMQ_OK);
        ref_declare(w);
        ck_assert_uint_eq(glmq_gguf_writer_file_size(w), want.n);
        ck_assert_uint_eq(glmq_gguf_writer_data_offset(w) % align, 0);
        char *path = tu_path(tmpdir, "ref.gguf");
        write_ref(w, path, chunks[_i]);
        assert_file_eq(path, &want);
        glmq_gguf_writer_free(w);
        free(path);
        free(want.b);
    }
}
END_TEST

/* A placeholder array is zeros until patched; patching writes the element in place. Loop
 * index 1 forces the atomic writer's named-temporary path (pwrite into a named file). */
START_TEST(writer_placeholder)
{
    if (_i)
        setenv("GLMQ_NO_O_TMPFILE", "1", 1);
    else
        unsetenv("GLMQ_NO_O_TMPFILE");
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u32(w, "k.first", 7, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u64_placeholder(w, "k.sums", 3, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, "t", GLMQ_GGML_F16, 1, (int64_t[]){3}, &err),
                     GLMQ_OK);
    char *path = tu_path(tmpdir, "ph.gguf");
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, "\x01\x02\x03\x04\x05\x06", 6, &err),
                     GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_patch_u64(w, "k.sums", 0, 0x1122334455667788ull, &err),
                     GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_patch_u64(w, "k.sums", 2, 42, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_end(w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);

    bb want = {0};
    bb_put(&want, "GGUF", 4);
    bb_u32(&want, 3);
    bb_u64(&want, 1);
    bb_u64(&want, 2);
    bb_cstr(&want, "k.first");
    bb_u32(&want, 4);
    bb_u32(&want, 7);
    bb_cstr(&want, "k.sums");
    bb_u32(&want, 9);
    bb_u32(&want, 10); /* uint64 */
    bb_u64(&want, 3);
    bb_u64(&want, 0x1122334455667788ull);
    bb_u64(&want, 0);
    bb_u64(&want, 42);
    bb_cstr(&want, "t");
    bb_u32(&want, 1);
    bb_u64(&want, 3);
    bb_u32(&want, 1); /* f16 */
    bb_u64(&want, 0);
    bb_pad(&want, 32);
    bb_put(&want, "\x01\x02\x03\x04\x05\x06", 6);
    bb_pad(&want, 32);
    assert_file_eq(path, &want);
    free(want.b);
    free(path);
    glmq_gguf_writer_free(w);
    unsetenv("GLMQ_NO_O_TMPFILE");
}
END_TEST

/* An empty file: header, no metadata, no tensors, padded to the alignment. */
START_TEST(writer_empty)
{
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
    char *path = tu_path(tmpdir, "empty.gguf");
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_end(w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    bb want = {0};
    bb_put(&want, "GGUF", 4);
    bb_u32(&want, 3);
    bb_u64(&want, 0);
    bb_u64(&want, 0);
    bb_pad(&want, 32);
    assert_file_eq(path, &want);
    free(want.b);
    free(path);
    glmq_gguf_writer_free(w);
}
END_TEST

/* ---- every writer error: the call fails with the code, the message names the key/tensor ---- */

#define EXPECT_ERR(call, code, ...)                                                             \
    do {                                                                                        \
        glmq_status st_ = (call);                                                               \
        ck_assert_msg(st_ == (code), "%s: status %d, want %d (%s)", #call, st_, (code),          \
                      err.msg);                                                                 \
        const char *subs_[] = {__VA_ARGS__, NULL};                                              \
        for (int k_ = 0; subs_[k_]; k_++)                                                       \
            ck_assert_msg(strstr(err.msg, subs_[k_]) != NULL, "'%s' not in: %s", subs_[k_],     \
                          err.msg);                                                             \
        memset(&err, 0, sizeof err);                                                            \
    } while (0)

START_TEST(writer_errors_declare)
{
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    EXPECT_ERR(glmq_gguf_writer_new(0, &w, &err), GLMQ_E_INVALID, "alignment 0");
    ck_assert_ptr_null(w);
    EXPECT_ERR(glmq_gguf_writer_new(48, &w, &err), GLMQ_E_INVALID, "alignment 48");
    EXPECT_ERR(glmq_gguf_writer_new(1ull << 32, &w, &err), GLMQ_E_INVALID, "alignment");
    ck_assert_int_eq(glmq_gguf_writer_new(64, &w, &err), GLMQ_OK);
    /* the writer emitted general.alignment itself */
    EXPECT_ERR(glmq_gguf_writer_add_u32(w, "general.alignment", 64, &err), GLMQ_E_INVALID,
               "duplicate", "general.alignment");
    ck_assert_int_eq(glmq_gguf_writer_add_u32(w, "a.key", 1, &err), GLMQ_OK);
    EXPECT_ERR(glmq_gguf_writer_add_str(w, "a.key", "v", &err), GLMQ_E_INVALID, "duplicate",
               "'a.key'");
    EXPECT_ERR(glmq_gguf_writer_add_u32(w, "", 1, &err), GLMQ_E_INVALID, "0 bytes");
    char *longkey = malloc(70000);
    memset(longkey, 'k', 69999);
    longkey[69999] = 0;
    EXPECT_ERR(glmq_gguf_writer_add_u32(w, longkey, 1, &err), GLMQ_E_INVALID, "69999 bytes");
    free(longkey);
    EXPECT_ERR(glmq_gguf_writer_add_val(w, "a.str", GLMQ_GGUF_STRING, "x", &err), GLMQ_E_INVALID,
               "'a.str'", "type 8");
    EXPECT_ERR(glmq_gguf_writer_add_val(w, "a.bad", 13, "x", &err), GLMQ_E_INVALID, "'a.bad'");
    EXPECT_ERR(glmq_gguf_writer_add_arr(w, "a.nest", GLMQ_GGUF_ARRAY, 1, "x", &err),
               GLMQ_E_INVALID, "'a.nest'");
    EXPECT_ERR(glmq_gguf_writer_add_val(w, "a.bool", GLMQ_GGUF_BOOL, "\x02", &err),
               GLMQ_E_INVALID, "'a.bool'");
    EXPECT_ERR(glmq_gguf_writer_add_arr(w, "a.huge", GLMQ_GGUF_U64, UINT64_MAX / 4, "x", &err),
               GLMQ_E_INVALID, "'a.huge'", "overflow");

    const int64_t ne[5] = {32, 2, 1, 1, 1};
    ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, "t0", GLMQ_GGML_Q4_0, 2, ne, &err), GLMQ_OK);
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t0", GLMQ_GGML_F32, 1, ne, &err), GLMQ_E_INVALID,
               "duplicate", "'t0'");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_F32, 0, ne, &err), GLMQ_E_INVALID,
               "'t1'", "0 dimensions");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_F32, 5, ne, &err), GLMQ_E_INVALID,
               "'t1'", "5 dimensions");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_Q4_0, 1, (int64_t[]){48}, &err),
               GLMQ_E_INVALID, "'t1'", "ne[0] = 48", "q4_0");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_Q4_K, 1, (int64_t[]){32}, &err),
               GLMQ_E_INVALID, "'t1'", "q4_K", "(256)");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", 4, 1, ne, &err), GLMQ_E_INVALID, "'t1'",
               "unknown ggml type 4");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_TYPE_LIMIT, 1, ne, &err),
               GLMQ_E_INVALID, "'t1'", "unknown ggml type 40");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_F32, 2, (int64_t[]){4, 0}, &err),
               GLMQ_E_INVALID, "'t1'", "ne[1] = 0");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "t1", GLMQ_GGML_F32, 3,
                                           (int64_t[]){4, INT64_MAX / 2, 4}, &err),
               GLMQ_E_INVALID, "'t1'", "overflow");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "", GLMQ_GGML_F32, 1, ne, &err), GLMQ_E_INVALID,
               "0 bytes");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(
                   w, "0123456789012345678901234567890123456789012345678901234567890123",
                   GLMQ_GGML_F32, 1, ne, &err),
               GLMQ_E_INVALID, "64 bytes");
    /* refused declarations left nothing behind: the file has the one tensor and two keys */
    ck_assert_uint_eq(glmq_gguf_writer_file_size(w), glmq_gguf_writer_data_offset(w) + 64);

    /* patching: only placeholders, only in range, only after begin */
    ck_assert_int_eq(glmq_gguf_writer_add_u64_placeholder(w, "a.sums", 2, &err), GLMQ_OK);
    EXPECT_ERR(glmq_gguf_writer_patch_u64(w, "a.sums", 0, 1, &err), GLMQ_E_INVALID, "'a.sums'",
               "before begin");
    char *path = tu_path(tmpdir, "e.gguf");
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    EXPECT_ERR(glmq_gguf_writer_begin(w, af, &err), GLMQ_E_INVALID, "twice");
    EXPECT_ERR(glmq_gguf_writer_add_u32(w, "late.key", 1, &err), GLMQ_E_INVALID, "'late.key'",
               "after the header");
    EXPECT_ERR(glmq_gguf_writer_add_tensor(w, "late", GLMQ_GGML_F32, 1, ne, &err),
               GLMQ_E_INVALID, "'late'", "after the header");
    EXPECT_ERR(glmq_gguf_writer_patch_u64(w, "a.key", 0, 1, &err), GLMQ_E_INVALID, "'a.key'",
               "not a placeholder");
    EXPECT_ERR(glmq_gguf_writer_patch_u64(w, "no.such", 0, 1, &err), GLMQ_E_INVALID,
               "'no.such'");
    EXPECT_ERR(glmq_gguf_writer_patch_u64(w, "a.sums", 2, 1, &err), GLMQ_E_INVALID, "'a.sums'",
               "element 2 of 2");
    glmq_atomic_discard(af);
    glmq_gguf_writer_free(w);
    free(path);
}
END_TEST

/* Data past the table, or short of it at end: sticky errors naming the tensor. */
START_TEST(writer_errors_data)
{
    glmq_err err = {0};
    char *path = tu_path(tmpdir, "d.gguf");
    for (int k = 0; k < 3; k++) {
        glmq_gguf_writer *w = NULL;
        ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
        ck_assert_int_eq(
            glmq_gguf_writer_add_tensor(w, "w.one", GLMQ_GGML_F32, 1, (int64_t[]){2}, &err),
            GLMQ_OK);
        ck_assert_int_eq(
            glmq_gguf_writer_add_tensor(w, "w.two", GLMQ_GGML_F32, 1, (int64_t[]){3}, &err),
            GLMQ_OK);
        const uint8_t buf[32] = {0};
        if (k == 0) EXPECT_ERR(glmq_gguf_writer_tensor_data(w, buf, 4, &err), GLMQ_E_INVALID,
                               "before begin");
        glmq_atomic_file *af = NULL;
        ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
        if (k == 0) { /* the sticky error survives */
            EXPECT_ERR(glmq_gguf_writer_begin(w, af, &err), GLMQ_E_INVALID, "before begin");
        } else if (k == 1) {
            ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
            ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, buf, 12, &err), GLMQ_OK);
            EXPECT_ERR(glmq_gguf_writer_end(w, &err), GLMQ_E_INVALID, "'w.two'", "short",
                       "4 of 12 bytes");
            EXPECT_ERR(glmq_gguf_writer_tensor_data(w, buf, 8, &err), GLMQ_E_INVALID, "'w.two'");
        } else {
            ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
            EXPECT_ERR(glmq_gguf_writer_tensor_data(w, buf, 21, &err), GLMQ_E_INVALID,
                       "1 bytes of tensor data past the end", "2 tensors",
                       "'w.two'");
            EXPECT_ERR(glmq_gguf_writer_end(w, &err), GLMQ_E_INVALID, "past the end");
        }
        glmq_atomic_discard(af);
        glmq_gguf_writer_free(w);
    }
    ck_assert(!tu_file_exists(path));
    free(path);
}
END_TEST

/* ---- the reader ---- */

static glmq_gguf *open_ok(const bb *x)
{
    glmq_gguf *g = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_gguf_open_mem(x->b, x->n, "mem.gguf", &g, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(g);
    return g;
}

static void check_ref(const glmq_gguf *g, size_t align, const bb *x)
{
    glmq_err err = {0};
    ck_assert_uint_eq(glmq_gguf_version(g), 3);
    ck_assert_uint_eq(glmq_gguf_alignment(g), align);
    ck_assert_uint_eq(glmq_gguf_file_size(g), x->n);
    ck_assert_int_eq(glmq_gguf_kv_count(g), align != 32 ? 6 : 5);
    ck_assert_int_eq(glmq_gguf_tensor_count(g), 2);
    const glmq_gguf_kv *k0 = glmq_gguf_kv_at(g, 0);
    ck_assert_ptr_nonnull(k0);
    ck_assert_ptr_null(glmq_gguf_kv_at(g, -1));
    ck_assert_ptr_null(glmq_gguf_kv_at(g, glmq_gguf_kv_count(g)));
    /* keys in file order */
    const char *keys[] = {"general.alignment", "general.architecture", "test.u32", "test.f32",
                          "test.arr", "test.strs"};
    for (int64_t i = 0; i < glmq_gguf_kv_count(g); i++) {
        const char *want = keys[i + (align != 32 ? 0 : 1)];
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        ck_assert_uint_eq(kv->key.len, strlen(want));
        ck_assert(memcmp(kv->key.ptr, want, kv->key.len) == 0);
        ck_assert_ptr_eq(glmq_gguf_find(g, want), kv);
        ck_assert_int_eq(kv->value[0], x->b[kv->offset]);
    }
    ck_assert_ptr_null(glmq_gguf_find(g, "test"));
    ck_assert_ptr_null(glmq_gguf_find(g, "test.u32x"));
    glmq_gguf_str s = {0};
    ck_assert_int_eq(glmq_gguf_get_str(g, "general.architecture", 1, &s, &err), GLMQ_OK);
    ck_assert_uint_eq(s.len, 7);
    ck_assert(memcmp(s.ptr, "chatglm", 7) == 0);
    uint64_t u = 0;
    ck_assert_int_eq(glmq_gguf_get_u64(g, "test.u32", 1, &u, &err), GLMQ_OK);
    ck_assert_uint_eq(u, 0xdeadbeefu);
    float f = 0;
    ck_assert_int_eq(glmq_gguf_get_f32(g, "test.f32", 1, &f, &err), GLMQ_OK);
    ck_assert(f == 1.5f);
    const uint8_t *d = NULL;
    uint64_t n = 0;
    ck_assert_int_eq(glmq_gguf_get_arr(g, "test.arr", 1, GLMQ_GGUF_I32, &d, &n, &err), GLMQ_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq((int32_t)glmq_rd_le32(d + 4), -2);
    const glmq_gguf_kv *sa = glmq_gguf_find(g, "test.strs");
    ck_assert_uint_eq(sa->type, GLMQ_GGUF_ARRAY);
    ck_assert_uint_eq(sa->arr_type, GLMQ_GGUF_STRING);
    ck_assert_uint_eq(sa->arr_n, 3);
    s = glmq_gguf_arr_str(g, sa, 0);
    ck_assert(s.len == 1 && s.ptr[0] == 'x');
    s = glmq_gguf_arr_str(g, sa, 1);
    ck_assert_uint_eq(s.len, 0);
    s = glmq_gguf_arr_str(g, sa, 2);
    ck_assert(s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0);
    s = glmq_gguf_arr_str(g, sa, 3); /* out of range: empty */
    ck_assert_uint_eq(s.len, 0);

    const uint64_t doff = glmq_gguf_data_offset(g);
    ck_assert_uint_eq(doff % align, 0);
    uint8_t a[16], b[68];
    ref_data(a, b);
    const glmq_gguf_tensor *ta = glmq_gguf_tensor_at(g, 0), *tb = glmq_gguf_tensor_at(g, 1);
    ck_assert_ptr_null(glmq_gguf_tensor_at(g, 2));
    ck_assert_str_eq(ta->name, "a");
    ck_assert_uint_eq(ta->type, GLMQ_GGML_F32);
    ck_assert_uint_eq(ta->n_dims, 1);
    ck_assert(ta->ne[0] == 4 && ta->ne[1] == 1 && ta->ne[2] == 1 && ta->ne[3] == 1);
    ck_assert(ta->rows == 1 && ta->row_bytes == 16 && ta->size == 16);
    ck_assert_uint_eq(ta->offset, doff);
    ck_assert(memcmp(ta->data, a, 16) == 0);
    ck_assert_str_eq(tb->name, "b");
    ck_assert_uint_eq(tb->type, GLMQ_GGML_Q8_0);
    ck_assert(tb->n_dims == 2 && tb->ne[0] == 32 && tb->ne[1] == 2 && tb->ne[2] == 1);
    ck_assert(tb->rows == 2 && tb->row_bytes == 34 && tb->size == 68);
    ck_assert_uint_eq(tb->offset, doff + (align > 16 ? align : 16));
    ck_assert(memcmp(tb->data, b, 68) == 0);
    ck_assert_ptr_eq(glmq_gguf_find_tensor(g, "b"), tb);
    ck_assert_ptr_eq(glmq_gguf_find_tensor(g, "a"), ta);
    ck_assert_ptr_null(glmq_gguf_find_tensor(g, "c"));
    ck_assert_ptr_null(glmq_gguf_find_tensor(g, ""));
    /* the tensor info records: "b" starts where "a"'s ends */
    ck_assert_uint_eq(tb->info_offset, ta->info_offset + 8 + 1 + 4 + 8 + 4 + 8);
}

/* The hand-built file (spec) is accepted, from memory and from disk, with its values. */
START_TEST(reader_spec_file)
{
    for (int ai = 0; ai < 2; ai++) {
        const size_t align = ai ? 64 : 32;
        bb x = ref_file(align);
        glmq_gguf *g = open_ok(&x);
        ck_assert_str_eq(glmq_gguf_path(g), "mem.gguf");
        check_ref(g, align, &x);
        glmq_gguf_close(g);
        char *path = tu_path(tmpdir, "spec.gguf");
        ck_assert_int_eq(tu_write_file(path, x.b, x.n), 0);
        glmq_err err = {0};
        g = NULL;
        ck_assert_int_eq(glmq_gguf_open(path, &g, &err), GLMQ_OK);
        ck_assert_str_eq(glmq_gguf_path(g), path);
        size_t n = 0;
        uint8_t *copy = tu_read_file(path, &n);
        bb y = {copy, n, n};
        check_ref(g, align, &y); /* compares values, not addresses: the mapping is g's */
        glmq_gguf_close(g);
        free(copy);
        /* version 2 has the same layout */
        x.b[4] = 2;
        g = open_ok(&x);
        ck_assert_uint_eq(glmq_gguf_version(g), 2);
        glmq_gguf_close(g);
        free(path);
        free(x.b);
    }
}
END_TEST

/* Writer -> reader: every scalar type, arrays of every fixed type, string arrays with empty
 * strings and NUL bytes, an empty array; the typed getters' conversions and refusals. */
START_TEST(roundtrip_all_types)
{
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
    const uint8_t v_u8 = 200, v_b = 1;
    const int8_t v_i8 = -5;
    const uint16_t v_u16 = 65000;
    const int16_t v_i16 = -32000;
    const uint32_t v_u32 = 4000000000u;
    const int32_t v_i32 = -2000000000;
    const float v_f32 = -0.375f;
    const uint64_t v_u64 = UINT64_MAX;
    const int64_t v_i64 = INT64_MIN;
    const double v_f64 = 1e-300;
    const void *vals[] = {&v_u8, &v_i8, &v_u16, &v_i16, &v_u32, &v_i32, &v_f32, &v_b,
                          NULL,  NULL,  &v_u64, &v_i64, &v_f64};
    char key[32];
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!vals[t]) continue;
        snprintf(key, sizeof key, "s.%s", glmq_gguf_vtype_name(t));
        ck_assert_int_eq(glmq_gguf_writer_add_val(w, key, t, vals[t], &err), GLMQ_OK);
    }
    /* arrays: 5 elements of each fixed type from a byte pattern (bools 0/1) */
    uint8_t pat[5 * 8];
    for (int i = 0; i < 40; i++) pat[i] = (uint8_t)(i * 37 + 11);
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!vals[t]) continue;
        snprintf(key, sizeof key, "a.%s", glmq_gguf_vtype_name(t));
        uint8_t bools[5] = {1, 0, 0, 1, 1};
        ck_assert_int_eq(
            glmq_gguf_writer_add_arr(w, key, t, 5, t == GLMQ_GGUF_BOOL ? bools : pat, &err),
            GLMQ_OK);
    }
    ck_assert_int_eq(glmq_gguf_writer_add_arr(w, "a.empty", GLMQ_GGUF_F32, 0, NULL, &err),
                     GLMQ_OK);
    const char *strs[] = {"", "hello", "nul\0inside", "\xe4\xb8\xad", ""};
    const uint64_t lens[] = {0, 5, 10, 3, 0};
    ck_assert_int_eq(glmq_gguf_writer_add_arr_str(w, "a.str", 5, strs, lens, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_arr_str(w, "a.str0", 0, NULL, NULL, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_str(w, "s.str", "", &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_bool(w, "s.false", 0, &err), GLMQ_OK);
    const float fa[2] = {1.0f, -2.0f};
    ck_assert_int_eq(glmq_gguf_writer_add_arr_f32(w, "a.f", 2, fa, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_arr_u8(w, "a.u", 2, (const uint8_t *)"\x07\xff", &err),
                     GLMQ_OK);
    /* one tensor of each known type, 2-4 dims */
    int nt = 0;
    uint64_t total_data = 0;
    for (uint32_t t = 0; t < GLMQ_GGML_TYPE_LIMIT; t++) {
        const glmq_ggml_type_info *ti = glmq_ggml_type_get(t);
        if (!ti) continue;
        snprintf(key, sizeof key, "t.%s", ti->name);
        const int64_t ne[4] = {ti->block * 2, 3, 1 + (int64_t)(t % 2), 2};
        ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, key, t, 2 + t % 3, ne, &err), GLMQ_OK);
        int64_t rows = 1;
        for (uint32_t d = 1; d < 2 + t % 3; d++) rows *= ne[d];
        total_data += glmq_ggml_row_bytes(t, ne[0]) * (uint64_t)rows;
        nt++;
    }
    char *path = tu_path(tmpdir, "rt.gguf");
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(path, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_begin(w, af, &err), GLMQ_OK);
    /* all tensor bytes: a deterministic stream in 1000-byte chunks that split tensors */
    uint64_t seed = 7;
    uint8_t chunk[1000];
    while (total_data > 0) {
        const size_t k = total_data < sizeof chunk ? (size_t)total_data : sizeof chunk;
        for (size_t i = 0; i < k; i++) chunk[i] = (uint8_t)tu_splitmix64(&seed);
        ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, chunk, k, &err), GLMQ_OK);
        total_data -= k;
    }
    ck_assert_int_eq(glmq_gguf_writer_end(w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    glmq_gguf_writer_free(w);

    glmq_gguf *g = NULL;
    ck_assert_msg(glmq_gguf_open(path, &g, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_gguf_tensor_count(g), nt);
    /* scalars: bytes back */
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!vals[t]) continue;
        snprintf(key, sizeof key, "s.%s", glmq_gguf_vtype_name(t));
        const glmq_gguf_kv *kv = glmq_gguf_find(g, key);
        ck_assert_ptr_nonnull(kv);
        ck_assert_uint_eq(kv->type, t);
        ck_assert_uint_eq(kv->arr_n, 1);
        const size_t sz = glmq_gguf_vtype_size(t);
        uint8_t le[8];
        uint64_t v = 0;
        memcpy(&v, vals[t], sz); /* little-endian host (x86-64/aarch64) */
        for (size_t i = 0; i < sz; i++) le[i] = (uint8_t)(v >> (8 * i));
        ck_assert(memcmp(kv->value, le, sz) == 0);
        snprintf(key, sizeof key, "a.%s", glmq_gguf_vtype_name(t));
        kv = glmq_gguf_find(g, key);
        ck_assert(kv && kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == t && kv->arr_n == 5);
        if (t != GLMQ_GGUF_BOOL)
            for (size_t e = 0; e < 5; e++) { /* element e read little-endian = native */
                uint64_t want = 0, got = 0;
                memcpy(&want, pat + e * sz, sz);
                for (size_t i = 0; i < sz; i++) got |= (uint64_t)kv->value[e * sz + i] << (8 * i);
                ck_assert_uint_eq(got, want);
            }
        else
            ck_assert(memcmp(kv->value, "\x01\x00\x00\x01\x01", 5) == 0);
    }
    uint64_t u = 0;
    int64_t i64 = 0;
    float f = 0;
    int bo = -1;
    ck_assert_int_eq(glmq_gguf_get_u64(g, "s.uint8", 1, &u, &err), GLMQ_OK);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(glmq_gguf_get_u64(g, "s.uint64", 1, &u, &err), GLMQ_OK);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(glmq_gguf_get_i64(g, "s.int8", 1, &i64, &err), GLMQ_OK);
    ck_assert_int_eq(i64, -5);
    ck_assert_int_eq(glmq_gguf_get_i64(g, "s.int16", 1, &i64, &err), GLMQ_OK);
    ck_assert_int_eq(i64, -32000);
    ck_assert_int_eq(glmq_gguf_get_i64(g, "s.int64", 1, &i64, &err), GLMQ_OK);
    ck_assert(i64 == INT64_MIN);
    ck_assert_int_eq(glmq_gguf_get_i64(g, "s.uint32", 1, &i64, &err), GLMQ_OK);
    ck_assert_int_eq(i64, 4000000000ll);
    ck_assert_int_eq(glmq_gguf_get_u64(g, "s.uint16", 1, &u, &err), GLMQ_OK);
    ck_assert_uint_eq(u, 65000);
    ck_assert_int_eq(glmq_gguf_get_i64(g, "s.int32", 1, &i64, &err), GLMQ_OK);
    ck_assert_int_eq(i64, -2000000000);
    ck_assert_int_eq(glmq_gguf_get_f32(g, "s.float32", 1, &f, &err), GLMQ_OK);
    ck_assert(f == -0.375f);
    ck_assert_int_eq(glmq_gguf_get_f32(g, "s.float64", 1, &f, &err), GLMQ_OK);
    ck_assert(f == (float)1e-300);
    ck_assert_int_eq(glmq_gguf_get_bool(g, "s.bool", 1, &bo, &err), GLMQ_OK);
    ck_assert_int_eq(bo, 1);
    ck_assert_int_eq(glmq_gguf_get_bool(g, "s.false", 1, &bo, &err), GLMQ_OK);
    ck_assert_int_eq(bo, 0);
    glmq_gguf_str s = {"x", 1};
    ck_assert_int_eq(glmq_gguf_get_str(g, "s.str", 1, &s, &err), GLMQ_OK);
    ck_assert_uint_eq(s.len, 0);
    const uint8_t *d = NULL;
    uint64_t n = 9;
    ck_assert_int_eq(glmq_gguf_get_arr(g, "a.empty", 1, GLMQ_GGUF_F32, &d, &n, &err), GLMQ_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(glmq_gguf_get_arr(g, "a.f", 1, GLMQ_GGUF_F32, &d, &n, &err), GLMQ_OK);
    ck_assert(n == 2 && glmq_rd_le32(d + 4) == 0xc0000000u);
    ck_assert_int_eq(glmq_gguf_get_arr(g, "a.u", 1, GLMQ_GGUF_U8, &d, &n, &err), GLMQ_OK);
    ck_assert(n == 2 && d[1] == 0xff);
    const glmq_gguf_kv *sa = glmq_gguf_find(g, "a.str");
    ck_assert(sa && sa->arr_type == GLMQ_GGUF_STRING && sa->arr_n == 5);
    for (uint64_t i = 0; i < 5; i++) {
        s = glmq_gguf_arr_str(g, sa, i);
        ck_assert_uint_eq(s.len, lens[i]);
        ck_assert(lens[i] == 0 || memcmp(s.ptr, strs[i], lens[i]) == 0);
    }
    ck_assert_uint_eq(glmq_gguf_find(g, "a.str0")->arr_n, 0);

    /* getters: absent and optional leaves *out alone; required names the key; wrong types and
     * out-of-range values name the key and the value's byte offset */
    u = 77;
    ck_assert_int_eq(glmq_gguf_get_u64(g, "no.key", 0, &u, &err), GLMQ_OK);
    ck_assert_uint_eq(u, 77);
    char off[64];
#define GETTER_FAILS(call, key_, ...)                                                           \
    do {                                                                                        \
        memset(&err, 0, sizeof err);                                                            \
        ck_assert_int_eq((call), GLMQ_E_FORMAT);                                                \
        ck_assert_msg(strstr(err.msg, "'" key_ "'") != NULL, "%s", err.msg);                    \
        ck_assert_msg(strstr(err.msg, path) != NULL, "%s", err.msg);                            \
        const glmq_gguf_kv *kv_ = glmq_gguf_find(g, key_);                                      \
        if (kv_) {                                                                              \
            snprintf(off, sizeof off, "byte %llu", (unsigned long long)kv_->offset);            \
            ck_assert_msg(strstr(err.msg, off) != NULL, "%s lacks %s", err.msg, off);           \
        }                                                                                       \
        const char *subs_[] = {__VA_ARGS__, NULL};                                              \
        for (int k_ = 0; subs_[k_]; k_++)                                                       \
            ck_assert_msg(strstr(err.msg, subs_[k_]) != NULL, "'%s' not in: %s", subs_[k_],     \
                          err.msg);                                                             \
    } while (0)
    GETTER_FAILS(glmq_gguf_get_u64(g, "no.key", 1, &u, &err), "no.key", "missing");
    GETTER_FAILS(glmq_gguf_get_u64(g, "s.int8", 1, &u, &err), "s.int8", "negative");
    GETTER_FAILS(glmq_gguf_get_i64(g, "s.uint64", 1, &i64, &err), "s.uint64", "int64");
    GETTER_FAILS(glmq_gguf_get_u64(g, "s.str", 1, &u, &err), "s.str", "is string");
    GETTER_FAILS(glmq_gguf_get_i64(g, "s.float32", 1, &i64, &err), "s.float32", "float32");
    GETTER_FAILS(glmq_gguf_get_f32(g, "s.uint32", 1, &f, &err), "s.uint32", "is uint32");
    GETTER_FAILS(glmq_gguf_get_bool(g, "s.uint8", 1, &bo, &err), "s.uint8", "expected bool");
    GETTER_FAILS(glmq_gguf_get_str(g, "a.str", 1, &s, &err), "a.str", "array of string");
    GETTER_FAILS(glmq_gguf_get_arr(g, "a.f", 1, GLMQ_GGUF_I32, &d, &n, &err), "a.f",
                 "array of float32", "expected an array of int32");
    GETTER_FAILS(glmq_gguf_get_arr(g, "s.uint32", 1, GLMQ_GGUF_U32, &d, &n, &err), "s.uint32",
                 "is uint32");
#undef GETTER_FAILS

    /* tensors: every known type readable (decodable or not), data where the table says */
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        const glmq_ggml_type_info *ti = glmq_ggml_type_get(t->type);
        ck_assert_ptr_nonnull(ti);
        snprintf(key, sizeof key, "t.%s", ti->name);
        ck_assert_str_eq(t->name, key);
        ck_assert_uint_eq(t->n_dims, 2 + t->type % 3);
        ck_assert_int_eq(t->ne[0], ti->block * 2);
        ck_assert_uint_eq(t->row_bytes, 2 * (uint64_t)ti->block_bytes);
        ck_assert_uint_eq(t->size, t->row_bytes * (uint64_t)t->rows);
        ck_assert_uint_eq(t->offset % 32, 0);
        ck_assert_ptr_eq(glmq_gguf_find_tensor(g, t->name), t);
    }
    glmq_gguf_close(g);
    free(path);
}
END_TEST

/* Every truncation of the spec file before the end of its last tensor is a format error naming
 * the file (never a crash); truncations in the trailing padding still open. */
START_TEST(reader_truncations)
{
    bb x = ref_file(32);
    glmq_gguf *g = open_ok(&x);
    const glmq_gguf_tensor *last = glmq_gguf_tensor_at(g, 1);
    const size_t end = (size_t)(last->offset + last->size);
    glmq_gguf_close(g);
    for (size_t n = 0; n <= x.n; n++) {
        /* a fresh copy of exactly n bytes so that ASan sees any read past it */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, x.b, n);
        glmq_err err = {0};
        g = (glmq_gguf *)(uintptr_t)1;
        glmq_status st = glmq_gguf_open_mem(cut, n, "cut.gguf", &g, &err);
        if (n < end) {
            ck_assert_msg(st == GLMQ_E_FORMAT, "%zu bytes: status %d (%s)", n, st, err.msg);
            ck_assert_ptr_null(g);
            ck_assert_msg(strstr(err.msg, "'cut.gguf'") != NULL, "%s", err.msg);
        } else {
            ck_assert_msg(st == GLMQ_OK, "%zu bytes: %s", n, err.msg);
            glmq_gguf_close(g);
        }
        free(cut);
    }
    free(x.b);
}
END_TEST

/* ---- hostile files, each built by hand: status, and the message names the field and the byte
 * offset ---- */

static void expect_refused(const bb *x, glmq_status code, const char *const *subs)
{
    glmq_gguf *g = (glmq_gguf *)(uintptr_t)1;
    glmq_err err = {0};
    uint8_t *copy = malloc(x->n ? x->n : 1);
    memcpy(copy, x->b, x->n);
    glmq_status st = glmq_gguf_open_mem(copy, x->n, "hostile.gguf", &g, &err);
    ck_assert_msg(st == code, "status %d, want %d: %s", st, code, err.msg);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(err.msg, "'hostile.gguf'") != NULL, "%s", err.msg);
    for (int k = 0; subs[k]; k++)
        ck_assert_msg(strstr(err.msg, subs[k]) != NULL, "'%s' not in: %s", subs[k], err.msg);
    free(copy);
}
#define REFUSED(x, code, ...) expect_refused(&(x), code, (const char *const[]){__VA_ARGS__, NULL})

static char at_buf[8][48];
/* "byte N" for message checks (a few slots so that several can be used in one call) */
static const char *at(int slot, size_t n)
{
    snprintf(at_buf[slot], sizeof at_buf[slot], "byte %zu", n);
    return at_buf[slot];
}

static void hdr(bb *x, uint32_t version, uint64_t nt, uint64_t nkv)
{
    x->n = 0;
    bb_put(x, "GGUF", 4);
    bb_u32(x, version);
    bb_u64(x, nt);
    bb_u64(x, nkv);
}

START_TEST(hostile_header)
{
    bb x = {0};
    hdr(&x, 3, 0, 0);
    x.b[0] = 'g';
    REFUSED(x, GLMQ_E_FORMAT, "not a GGUF file", "byte 0");
    x.n = 0;
    REFUSED(x, GLMQ_E_FORMAT, "not a GGUF file");
    hdr(&x, 1, 0, 0);
    REFUSED(x, GLMQ_E_UNSUPPORTED, "version 1", "byte 4");
    hdr(&x, 0x03000000u, 0, 0);
    REFUSED(x, GLMQ_E_UNSUPPORTED, "big-endian", "byte 4");
    hdr(&x, 0x02000000u, 0, 0);
    REFUSED(x, GLMQ_E_UNSUPPORTED, "big-endian");
    hdr(&x, 4, 0, 0);
    REFUSED(x, GLMQ_E_UNSUPPORTED, "version 4", "byte 4");
    hdr(&x, 3, 0, 0);
    x.n = 23;
    REFUSED(x, GLMQ_E_FORMAT, "truncated", "23 bytes");
    /* counts that cannot fit in the bytes left: refused before any allocation */
    hdr(&x, 3, 0, UINT64_MAX);
    REFUSED(x, GLMQ_E_FORMAT, "metadata count 18446744073709551615", "byte 16");
    hdr(&x, 3, UINT64_MAX / 2, 0);
    bb_put(&x, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    REFUSED(x, GLMQ_E_FORMAT, "tensor count 9223372036854775807", "byte 8");
    /* 2 tensors promised, metadata eats the room: counted again after the metadata */
    hdr(&x, 3, 2, 1);
    bb_cstr(&x, "k");
    bb_u32(&x, GLMQ_GGUF_ARRAY);
    bb_u32(&x, GLMQ_GGUF_U8);
    bb_u64(&x, 40);
    for (int i = 0; i < 40; i++) bb_u8(&x, 0);
    bb_put(&x, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    REFUSED(x, GLMQ_E_FORMAT, "tensor count 2", "after the metadata", at(0, x.n - 20));
    free(x.b);
}
END_TEST

START_TEST(hostile_metadata)
{
    bb x = {0};
    size_t p;
    /* key length beyond the file */
    hdr(&x, 3, 0, 1);
    bb_u64(&x, 1000);
    bb_put(&x, "abcdefgh", 8);
    REFUSED(x, GLMQ_E_FORMAT, "metadata #0", "key", "byte 24", "length 1000");
    /* empty key */
    hdr(&x, 3, 0, 1);
    bb_u64(&x, 0);
    bb_u32(&x, GLMQ_GGUF_U8);
    bb_u8(&x, 0);
    REFUSED(x, GLMQ_E_FORMAT, "metadata #0", "byte 24", "key of 0 bytes");
    /* unknown value type */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "my.key");
    p = x.n;
    bb_u32(&x, 13);
    bb_u64(&x, 0);
    REFUSED(x, GLMQ_E_FORMAT, "'my.key'", "unknown value type 13", at(0, p));
    /* nested array */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "nest");
    bb_u32(&x, GLMQ_GGUF_ARRAY);
    p = x.n;
    bb_u32(&x, GLMQ_GGUF_ARRAY);
    bb_u64(&x, 1);
    bb_u32(&x, GLMQ_GGUF_U8);
    bb_u64(&x, 1);
    bb_u8(&x, 0);
    REFUSED(x, GLMQ_E_FORMAT, "'nest'", "nested array", at(0, p));
    /* unknown element type */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "arr");
    bb_u32(&x, GLMQ_GGUF_ARRAY);
    p = x.n;
    bb_u32(&x, 99);
    bb_u64(&x, 0);
    REFUSED(x, GLMQ_E_FORMAT, "'arr'", "element type 99", at(0, p));
    /* array lengths that cannot fit: u32 elements, string elements */
    for (int str = 0; str < 2; str++) {
        hdr(&x, 3, 0, 1);
        bb_cstr(&x, "arr");
        bb_u32(&x, GLMQ_GGUF_ARRAY);
        bb_u32(&x, str ? GLMQ_GGUF_STRING : GLMQ_GGUF_U32);
        p = x.n;
        bb_u64(&x, str ? 3 : (1ull << 62) + 1); /* * 4 wraps to 4 */
        bb_put(&x, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        REFUSED(x, GLMQ_E_FORMAT, "'arr'", "array length", at(0, p), "16 bytes left");
    }
    /* a string value longer than the file */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "s");
    bb_u32(&x, GLMQ_GGUF_STRING);
    p = x.n;
    bb_u64(&x, UINT64_MAX);
    bb_put(&x, "xy", 2);
    REFUSED(x, GLMQ_E_FORMAT, "'s'", "string value", at(0, p), "length 18446744073709551615");
    /* a string array element longer than the bytes left */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "toks");
    bb_u32(&x, GLMQ_GGUF_ARRAY);
    bb_u32(&x, GLMQ_GGUF_STRING);
    bb_u64(&x, 2);
    bb_cstr(&x, "ok");
    p = x.n;
    bb_u64(&x, 9);
    bb_put(&x, "12345678", 8);
    REFUSED(x, GLMQ_E_FORMAT, "'toks'", "string 1", at(0, p), "length 9");
    /* a scalar cut short */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "u");
    bb_u32(&x, GLMQ_GGUF_U64);
    p = x.n;
    bb_u32(&x, 0);
    REFUSED(x, GLMQ_E_FORMAT, "'u'", "value", at(0, p), "needs 8 bytes, 4 left");
    /* duplicate key */
    hdr(&x, 3, 0, 3);
    bb_cstr(&x, "dup");
    bb_u32(&x, GLMQ_GGUF_U8);
    const size_t p1 = x.n;
    bb_u8(&x, 1);
    bb_cstr(&x, "other");
    bb_u32(&x, GLMQ_GGUF_U8);
    bb_u8(&x, 1);
    bb_cstr(&x, "dup");
    bb_u32(&x, GLMQ_GGUF_U8);
    p = x.n;
    bb_u8(&x, 2);
    char both[64];
    snprintf(both, sizeof both, "bytes %zu and %zu", p1, p);
    REFUSED(x, GLMQ_E_FORMAT, "duplicate metadata key 'dup'", both);
    /* general.alignment: not u32, zero, not a power of two */
    hdr(&x, 3, 0, 1);
    bb_cstr(&x, "general.alignment");
    bb_u32(&x, GLMQ_GGUF_U64);
    p = x.n;
    bb_u64(&x, 32);
    REFUSED(x, GLMQ_E_FORMAT, "'general.alignment'", "uint64", "expected uint32", at(0, p));
    const uint32_t bad[2] = {0, 48};
    for (int i = 0; i < 2; i++) {
        hdr(&x, 3, 0, 1);
        bb_cstr(&x, "general.alignment");
        bb_u32(&x, GLMQ_GGUF_U32);
        p = x.n;
        bb_u32(&x, bad[i]);
        REFUSED(x, GLMQ_E_FORMAT, "'general.alignment'", "not a power of two", at(0, p));
    }
    free(x.b);
}
END_TEST

/* A file with one metadata key and `nt` tensor infos follows; tinfo() appends one info. */
static size_t tinfo(bb *x, const char *name, size_t nlen, uint32_t n_dims, const uint64_t *ne,
                    uint32_t type, uint64_t off, size_t *pos_dims, size_t *pos_ne, size_t *pos_type)
{
    const size_t start = x->n;
    bb_str(x, name, nlen);
    if (pos_dims) *pos_dims = x->n;
    bb_u32(x, n_dims);
    if (pos_ne) *pos_ne = x->n;
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(x, ne[d]);
    if (pos_type) *pos_type = x->n;
    bb_u32(x, type);
    bb_u64(x, off);
    return start;
}

static void data_section(bb *x, size_t bytes)
{
    bb_pad(x, 32);
    for (size_t i = 0; i < bytes; i++) bb_u8(x, (uint8_t)i);
}

START_TEST(hostile_tensors)
{
    bb x = {0};
    size_t p, pd, pn, pt;
    const uint64_t ne4[5] = {32, 2, 1, 1, 1}; /* the fifth for the n_dims = 5 case */
    /* name longer than the bytes left */
    hdr(&x, 3, 1, 0);
    bb_u64(&x, 500);
    bb_put(&x, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
    REFUSED(x, GLMQ_E_FORMAT, "tensor info #0", "name", "byte 24", "length 500");
    /* an empty name is allowed (ggml allows it); a name of 65 bytes or with a NUL is not */
    hdr(&x, 3, 1, 0);
    tinfo(&x, "", 0, 1, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    data_section(&x, 128);
    glmq_gguf *ge = open_ok(&x);
    ck_assert_str_eq(glmq_gguf_tensor_at(ge, 0)->name, "");
    ck_assert_ptr_eq(glmq_gguf_find_tensor(ge, ""), glmq_gguf_tensor_at(ge, 0));
    glmq_gguf_close(ge);
    hdr(&x, 3, 1, 0);
    char longname[65];
    memset(longname, 'n', 65);
    tinfo(&x, longname, 65, 1, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor info #0", "name of 65 bytes");
    hdr(&x, 3, 1, 0);
    tinfo(&x, "a\0b", 3, 1, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor info #0", "NUL");
    /* n_dims 0 and 5 */
    for (uint32_t nd = 0; nd <= 5; nd += 5) {
        hdr(&x, 3, 1, 0);
        tinfo(&x, "w.bad", 5, nd, ne4, GLMQ_GGML_F32, 0, &pd, NULL, NULL);
        data_section(&x, 64);
        char want[32];
        snprintf(want, sizeof want, "n_dims %u", nd);
        REFUSED(x, GLMQ_E_FORMAT, "tensor 'w.bad'", want, at(0, pd), "info at byte 24");
    }
    /* ne 0, ne > INT64_MAX, element count overflow */
    const uint64_t ne_zero[2] = {32, 0}, ne_big[2] = {32, 1ull << 63},
                   ne_ovf[3] = {1ull << 40, 1ull << 20, 1ull << 10};
    hdr(&x, 3, 1, 0);
    tinfo(&x, "z", 1, 2, ne_zero, GLMQ_GGML_F32, 0, NULL, &pn, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'z'", "ne[1] = 0", at(0, pn + 8));
    hdr(&x, 3, 1, 0);
    tinfo(&x, "z", 1, 2, ne_big, GLMQ_GGML_F32, 0, NULL, &pn, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'z'", "ne[1] = 9223372036854775808", at(0, pn + 8));
    hdr(&x, 3, 1, 0);
    tinfo(&x, "z", 1, 3, ne_ovf, GLMQ_GGML_F32, 0, NULL, &pn, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'z'", "overflows", "ne[2]", at(0, pn + 16));
    /* the byte size overflows although the element count does not */
    const uint64_t ne_bytes[2] = {1ull << 31, 1ull << 31};
    hdr(&x, 3, 1, 0);
    tinfo(&x, "z", 1, 2, ne_bytes, GLMQ_GGML_F64, 0, NULL, NULL, NULL);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'z'", "byte size", "overflows");
    /* unknown types: retired (4 = Q4_2), and past the table */
    const uint32_t unk[3] = {4, 31, GLMQ_GGML_TYPE_LIMIT};
    for (int i = 0; i < 3; i++) {
        hdr(&x, 3, 1, 0);
        tinfo(&x, "u", 1, 2, ne4, unk[i], 0, NULL, NULL, &pt);
        data_section(&x, 256);
        char want[48];
        snprintf(want, sizeof want, "unknown ggml type %u", unk[i]);
        REFUSED(x, GLMQ_E_FORMAT, "tensor 'u'", want, at(0, pt));
    }
    /* ne[0] not a multiple of the block */
    const uint64_t ne_odd[2] = {48, 2};
    hdr(&x, 3, 1, 0);
    tinfo(&x, "q", 1, 2, ne_odd, GLMQ_GGML_Q4_0, 0, NULL, NULL, NULL);
    data_section(&x, 256);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'q'", "ne[0] = 48", "q4_0 block size 32", "info at byte 24");
    /* a known type that glmq cannot decode stays readable */
    const uint64_t ne_iq[2] = {256, 2};
    hdr(&x, 3, 1, 0);
    tinfo(&x, "iq", 2, 2, ne_iq, GLMQ_GGML_IQ2_XXS, 0, NULL, NULL, NULL);
    data_section(&x, 2 * 66);
    glmq_gguf *g = open_ok(&x);
    ck_assert_uint_eq(glmq_gguf_tensor_at(g, 0)->type, GLMQ_GGML_IQ2_XXS);
    ck_assert_uint_eq(glmq_gguf_tensor_at(g, 0)->size, 132);
    glmq_gguf_close(g);
    /* misaligned offset, data past the end, offset overflow */
    hdr(&x, 3, 1, 0);
    tinfo(&x, "m", 1, 2, ne4, GLMQ_GGML_F32, 16, NULL, NULL, &pt);
    data_section(&x, 512);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'm'", "offset 16", at(0, pt + 4), "alignment 32");
    hdr(&x, 3, 1, 0);
    tinfo(&x, "m", 1, 2, ne4, GLMQ_GGML_F32, 0, NULL, NULL, &pt);
    data_section(&x, 255);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'm'", "past the end", at(0, pt + 4), "256 bytes");
    hdr(&x, 3, 1, 0);
    tinfo(&x, "m", 1, 2, ne4, GLMQ_GGML_F32, UINT64_MAX - 31, NULL, NULL, &pt);
    data_section(&x, 256);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'm'", "past the end", at(0, pt + 4));
    /* overlap: b starts inside a */
    hdr(&x, 3, 2, 0);
    tinfo(&x, "a", 1, 2, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    p = tinfo(&x, "b", 1, 2, ne4, GLMQ_GGML_F32, 128, NULL, NULL, NULL);
    data_section(&x, 512);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'b'", "overlaps tensor 'a'", at(0, p));
    /* two tensors at the same offset, listed in the other order */
    hdr(&x, 3, 2, 0);
    tinfo(&x, "b", 1, 2, ne4, GLMQ_GGML_F32, 256, NULL, NULL, NULL);
    tinfo(&x, "a", 1, 2, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    data_section(&x, 512);
    g = open_ok(&x); /* adjacent, not overlapping */
    glmq_gguf_close(g);
    /* duplicate tensor name */
    hdr(&x, 3, 2, 0);
    tinfo(&x, "same", 4, 2, ne4, GLMQ_GGML_F32, 0, NULL, NULL, NULL);
    p = tinfo(&x, "same", 4, 2, ne4, GLMQ_GGML_F32, 256, NULL, NULL, NULL);
    data_section(&x, 512);
    REFUSED(x, GLMQ_E_FORMAT, "duplicate tensor name 'same'", at(0, p));
    /* with general.alignment = 64 an offset of 32 is misaligned */
    hdr(&x, 3, 1, 1);
    bb_cstr(&x, "general.alignment");
    bb_u32(&x, GLMQ_GGUF_U32);
    bb_u32(&x, 64);
    tinfo(&x, "m", 1, 1, ne4, GLMQ_GGML_F32, 32, NULL, NULL, NULL);
    data_section(&x, 256);
    REFUSED(x, GLMQ_E_FORMAT, "tensor 'm'", "offset 32", "alignment 64");
    free(x.b);
}
END_TEST

/* ---- glmq info FILE.gguf ---- */

/* The reference file plus a 400-element string array and 64-bit extremes. */
static char *info_file(void)
{
    glmq_gguf_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gguf_writer_new(32, &w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_u64(w, "x.u64max", UINT64_MAX, &err), GLMQ_OK);
    const int64_t i64min = INT64_MIN;
    ck_assert_int_eq(glmq_gguf_writer_add_val(w, "x.i64min", GLMQ_GGUF_I64, &i64min, &err),
                     GLMQ_OK);
    ck_assert_int_eq(glmq_gguf_writer_add_str(w, "x.quote", "say \"hi\"\n", &err), GLMQ_OK);
    char tok[400][16];
    const char *toks[400];
    for (int i = 0; i < 400; i++) {
        snprintf(tok[i], sizeof tok[i], "tok%03d", i);
        toks[i] = tok[i];
    }
    ck_assert_int_eq(glmq_gguf_writer_add_arr_str(w, "x.tokens", 400, toks, NULL, &err), GLMQ_OK);
    ref_declare(w);
    char *path = tu_path(tmpdir, "info.gguf");
    write_ref(w, path, 84);
    glmq_gguf_writer_free(w);
    return path;
}

static const cJSON *md_entry(const cJSON *o, const char *key)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "metadata"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, key)) return e;
    }
    return NULL;
}

START_TEST(cli_info_text)
{
    char *path = info_file();
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s' info '%s'", tu_bin(), path), 0);
    const char *want[] = {"GGUF version 3", "alignment 32", "data at byte ",
                          "general.architecture", "\"chatglm\"", "test.u32", "3735928559",
                          "test.f32", "1.5", "int32[3]: 1, -2, 3",
                          "string[3]: \"x\", \"\", \"a\\x00b\"", "18446744073709551615",
                          "-9223372036854775808", "\"say \\\"hi\\\"\\n\"",
                          "string[400]: \"tok000\", \"tok001\"", "\"tok007\", ... (392 more)",
                          "q8_0", "32, 2", "summary:        2 tensors, 84 bytes", "1 f32",
                          "1 q8_0", NULL};
    for (int i = 0; want[i]; i++)
        ck_assert_msg(strstr(t, want[i]) != NULL, "'%s' not in:\n%s", want[i], t);
    ck_assert(strstr(t, "tok008") == NULL);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' info --verbose '%s'", tu_bin(), path), 0);
    ck_assert_msg(strstr(t, "\"tok299\", ... (100 more)") != NULL, "%s", t);
    free(t);
    /* a hostile GGUF: exit 1 and the reader's message */
    size_t n = 0;
    uint8_t *b = tu_read_file(path, &n);
    glmq_wr_le32(b + 4, 1);
    char *bad = tu_path(tmpdir, "bad.gguf");
    ck_assert_int_eq(tu_write_file(bad, b, n), 0);
    ck_assert_int_eq(tu_run(&t, "'%s' info '%s'", tu_bin(), bad), 1);
    ck_assert_msg(strstr(t, "glmq: error: ") && strstr(t, "version 1") && strstr(t, bad), "%s",
                  t);
    free(t);
    free(b);
    free(bad);
    free(path);
}
END_TEST

START_TEST(cli_info_json)
{
    char *path = info_file();
    for (int verbose = 0; verbose < 2; verbose++) {
        char *t = NULL;
        ck_assert_int_eq(
            tu_run(&t, "'%s' info --json %s '%s' 2>&1", tu_bin(), verbose ? "--verbose" : "", path),
            0);
        cJSON *o = cJSON_Parse(t);
        ck_assert_msg(o != NULL, "not JSON: %s", t);
        ck_assert_str_eq(cJSON_GetObjectItem(o, "format")->valuestring, "gguf");
        ck_assert_int_eq(cJSON_GetObjectItem(o, "version")->valueint, 3);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "alignment")->valueint, 32);
        /* the file's data offset, from the reader of this test's build */
        glmq_gguf *g = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_gguf_open(path, &g, &err), GLMQ_OK);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "data_offset")->valuedouble,
                         (double)glmq_gguf_data_offset(g));
        const uint64_t doff = glmq_gguf_data_offset(g);
        glmq_gguf_close(g);
        /* integers are exact: check the printed text, not a double */
        ck_assert_msg(strstr(t, "18446744073709551615") && strstr(t, "-9223372036854775808"),
                      "%s", t);
        ck_assert_str_eq(cJSON_GetObjectItem(md_entry(o, "general.architecture"), "value")
                             ->valuestring,
                         "chatglm");
        ck_assert_double_eq(cJSON_GetObjectItem(md_entry(o, "test.u32"), "value")->valuedouble,
                            3735928559.0);
        ck_assert_double_eq(cJSON_GetObjectItem(md_entry(o, "test.f32"), "value")->valuedouble,
                            1.5);
        ck_assert_str_eq(cJSON_GetObjectItem(md_entry(o, "x.quote"), "value")->valuestring,
                         "say \"hi\"\n");
        const cJSON *tk = md_entry(o, "x.tokens");
        ck_assert_str_eq(cJSON_GetObjectItem(tk, "element_type")->valuestring, "string");
        ck_assert_int_eq(cJSON_GetObjectItem(tk, "count")->valueint, 400);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(tk, "values")), verbose ? 300 : 8);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(tk, "truncated")));
        ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(tk, "values"), 5)->valuestring,
                         "tok005");
        const cJSON *st = md_entry(o, "test.strs");
        ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(st, "truncated")));
        ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(st, "values"), 2)->valuestring,
                         "a\xef\xbf\xbd" "b"); /* NUL shown as U+FFFD */
        const cJSON *ts = cJSON_GetObjectItem(o, "tensors");
        ck_assert_int_eq(cJSON_GetArraySize(ts), 2);
        const cJSON *tb = cJSON_GetArrayItem(ts, 1);
        ck_assert_str_eq(cJSON_GetObjectItem(tb, "name")->valuestring, "b");
        ck_assert_str_eq(cJSON_GetObjectItem(tb, "type")->valuestring, "q8_0");
        ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(tb, "ne"), 0)->valueint, 32);
        ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(tb, "ne"), 1)->valueint, 2);
        ck_assert_int_eq(cJSON_GetObjectItem(tb, "offset")->valuedouble, (double)(doff + 32));
        ck_assert_int_eq(cJSON_GetObjectItem(tb, "bytes")->valueint, 68);
        const cJSON *sum = cJSON_GetObjectItem(o, "summary");
        ck_assert_int_eq(cJSON_GetObjectItem(sum, "tensor_count")->valueint, 2);
        ck_assert_int_eq(cJSON_GetObjectItem(sum, "total_bytes")->valueint, 84);
        const cJSON *ty = cJSON_GetObjectItem(sum, "types");
        ck_assert_int_eq(cJSON_GetArraySize(ty), 2);
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(ty, "q8_0"), "count")->valueint,
                         1);
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(ty, "f32"), "bytes")->valueint,
                         16);
        cJSON_Delete(o);
        free(t);
    }
    free(path);
}
END_TEST

Suite *gguf_suite(void);
Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, writer_bytes, 0, (int)(sizeof chunks / sizeof chunks[0]));
    tcase_add_loop_test(tc, writer_placeholder, 0, 2);
    tcase_add_test(tc, writer_empty);
    tcase_add_test(tc, writer_errors_declare);
    tcase_add_test(tc, writer_errors_data);
    suite_add_tcase(s, tc);
    tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reader_spec_file);
    tcase_add_test(tc, roundtrip_all_types);
    tcase_add_test(tc, reader_truncations);
    tcase_add_test(tc, hostile_header);
    tcase_add_test(tc, hostile_metadata);
    tcase_add_test(tc, hostile_tensors);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cli_info_text);
    tcase_add_test(tc, cli_info_json);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gguf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
