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

/* A placeholder array is zeros until patched; patching writes the element in place. */
START_TEST(writer_placeholder)
{
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
                       "1 bytes of tensor data past the end", "2 tensors");
            EXPECT_ERR(glmq_gguf_writer_end(w, &err), GLMQ_E_INVALID, "past the end");
        }
        glmq_atomic_discard(af);
        glmq_gguf_writer_free(w);
    }
    ck_assert(!tu_file_exists(path));
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
    tcase_add_test(tc, writer_placeholder);
    tcase_add_test(tc, writer_empty);
    tcase_add_test(tc, writer_errors_declare);
    tcase_add_test(tc, writer_errors_data);
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
