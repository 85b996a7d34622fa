/*
 * check_safetensors.c - tests of formats/safetensors.c (GLM-SPEC D).
 *
 * Every file is built in C in a fresh temp dir: write_st() writes the 8-byte length, a header
 * string and data bytes. Valid files check names, dtypes, shapes, strides, offsets and the bytes
 * read back through glmq_src_read_rows_raw. Every rule of D.3 has a bad file that must fail with
 * the right status and a message naming the file and the problem; after a failure the set must
 * be exactly as it was before the call.
 */
#include "formats/source.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp; /* per-test temp dir (checked fixture) */

static void setup(void)
{
    tmp = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
    tu_rmtree(tmp);
    free(tmp);
    tmp = NULL;
}

/* Write tmp/<name> from raw bytes; returns the malloc'd path. */
static char *write_raw(const char *name, const void *bytes, size_t n)
{
    char *p = tu_path(tmp, name);
    ck_assert_int_eq(tu_write_file(p, bytes, n), 0);
    return p;
}

/* Write tmp/<name> as LE64(hlen) + header (hlen bytes; strlen when hlen is 0) + data. */
static char *write_st_n(const char *name, const char *hdr, size_t hlen, const void *data,
                        size_t n)
{
    if (!hlen) hlen = strlen(hdr);
    uint8_t *b = malloc(8 + hlen + n + 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    if (n) memcpy(b + 8 + hlen, data, n);
    char *p = write_raw(name, b, 8 + hlen + n);
    free(b);
    return p;
}

static char *write_st(const char *name, const char *hdr, const void *data, size_t n)
{
    return write_st_n(name, hdr, 0, data, n);
}

/* 256 bytes of a recognisable pattern for data sections. */
static const uint8_t *pattern(void)
{
    static uint8_t b[256];
    for (int i = 0; i < 256; i++) b[i] = (uint8_t)(i * 7 + 1);
    return b;
}

/* One tensor entry: T("a", "F32", "[2,3]", "0", "24"). */
#define T(name, dt, shape, b, e)                                                                \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

static const glmq_src_tensor *get(const glmq_src_set *s, const char *name)
{
    int64_t i = glmq_src_find(s, name);
    ck_assert_msg(i >= 0, "tensor '%s' missing", name);
    return &s->tensors[i];
}

/* Read all rows of t and compare them with the expected bytes. */
static void expect_bytes(glmq_src_set *s, const glmq_src_tensor *t, const uint8_t *want,
                         size_t n)
{
    uint8_t buf[256];
    glmq_err err = {0};
    ck_assert_uint_le(n, sizeof buf);
    ck_assert_uint_eq((uint64_t)t->nelem * glmq_dtype_size(t->dtype), n);
    glmq_status st = glmq_src_read_rows_raw(s, t, 0, glmq_src_rows(t), buf, &err);
    ck_assert_msg(st == GLMQ_OK, "%s", err.msg);
    if (n) ck_assert_mem_eq(buf, want, n);
}

/* Load a file that must fail: status, message substring, file name in the message, no trailing
 * period, and the set left untouched. */
static void expect_fail(const char *path, glmq_status code, const char *sub)
{
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    memset(&err, 0, sizeof err);
    glmq_status st = glmq_safetensors_load(&s, path, &err);
    ck_assert_msg(st == code, "status %d (want %d): %s", st, code, err.msg);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(strstr(err.msg, sub) != NULL, "message '%s' lacks '%s'", err.msg, sub);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    ck_assert_msg(strstr(err.msg, base) != NULL, "message '%s' lacks the file name", err.msg);
    size_t len = strlen(err.msg);
    ck_assert_msg(len > 0 && err.msg[len - 1] != '.', "message '%s' ends with a period",
                  err.msg);
    ck_assert_uint_eq(s.nfiles, 0);
    ck_assert_uint_eq(s.nstorages, 0);
    ck_assert_int_eq(s.ntensors, 0);
    /* and without an error buffer it must fail the same way */
    ck_assert_int_eq(glmq_safetensors_load(&s, path, NULL), code);
    glmq_src_set_free(&s);
}

/* ---- valid files --------------------------------------------------------------------------- */

/* A second name of a tensor: the same bytes and layout (still contiguous, so it can be mapped),
 * the renamed tensor marked, duplicates refused, and a rollback forgets it. */
START_TEST(test_alias)
{
    float f[6] = {0, 1, 2, 3, 4, 5};
    char *p = write_st("al.safetensors", "{" T("a", "F32", "[3,2]", "0", "24") "}", f, sizeof f);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_int_eq(glmq_safetensors_load(&s, p, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_src_add_alias(&s, 0, "b", &err), GLMQ_OK);
    const glmq_src_tensor *b = get(&s, "b");
    ck_assert_int_eq(b->contiguous, 1);
    ck_assert_int_eq(b->n_pieces, 0);
    ck_assert_int_eq(b->shape[0], 3);
    ck_assert_int_eq(b->shape[1], 2);
    expect_bytes(&s, b, (const uint8_t *)f, sizeof f);
    ck_assert_int_eq(s.tensors[0].used_as_piece, 1);
    ck_assert_int_eq(glmq_src_add_alias(&s, 0, "b", &err), GLMQ_E_FORMAT);
    ck_assert_int_eq(glmq_src_add_alias(&s, 5, "c", &err), GLMQ_E_INTERNAL);
    glmq_src_set_truncate(&s, s.nfiles, s.nstorages, 1);
    ck_assert_int_eq(s.tensors[0].used_as_piece, 0);
    ck_assert_int_lt(glmq_src_find(&s, "b"), 0);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

/* Composite tensors: q/k/v-style row stacking (with sub-ranges), column joins of shards, 1-D
 * joins, reads of any row window, and every refusal. */
START_TEST(test_composite)
{
    /* a: F32 [3,2] = 0..5, b: F32 [2,2] = 6..9, c: F32 [3,1] = 10..12, v: F32 [4] = 13..16,
     * h: F16 [3,2] */
    float f[17];
    for (int i = 0; i < 17; i++) f[i] = (float)i;
    uint8_t data[17 * 4 + 12];
    memcpy(data, f, sizeof f);
    memset(data + sizeof f, 0, 12);
    char *p = write_st("c.safetensors",
                       "{" T("a", "F32", "[3,2]", "0", "24") "," T("b", "F32", "[2,2]", "24", "40")
                       "," T("c", "F32", "[3,1]", "40", "52") "," T("v", "F32", "[4]", "52", "68")
                       "," T("h", "F16", "[3,2]", "68", "80") "}",
                       data, sizeof data);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_int_eq(glmq_safetensors_load(&s, p, &err), GLMQ_OK);
    int64_t a = glmq_src_find(&s, "a"), b = glmq_src_find(&s, "b"), c = glmq_src_find(&s, "c");
    int64_t v = glmq_src_find(&s, "v"), h = glmq_src_find(&s, "h");

    /* rows: a[1..3) then b then a[0..1) */
    glmq_src_piece rows[] = {{a, 1, 2}, {b, 0, 2}, {a, 0, 1}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "rows", 0, rows, 3, &err), GLMQ_OK);
    const glmq_src_tensor *t = get(&s, "rows");
    ck_assert_int_eq(t->shape[0], 5);
    ck_assert_int_eq(t->shape[1], 2);
    float want_rows[] = {2, 3, 4, 5, 6, 7, 8, 9, 0, 1};
    expect_bytes(&s, t, (const uint8_t *)want_rows, sizeof want_rows);
    float win[4];
    ck_assert_int_eq(glmq_src_read_rows_raw(&s, get(&s, "rows"), 1, 2, win, &err), GLMQ_OK);
    ck_assert_mem_eq(win, want_rows + 2, sizeof win);

    /* columns: a then c[:, 0] then a[:, 1] */
    glmq_src_piece cols[] = {{a, 0, 2}, {c, 0, 1}, {a, 1, 1}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "cols", 1, cols, 3, &err), GLMQ_OK);
    t = get(&s, "cols");
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[1], 4);
    float want_cols[] = {0, 1, 10, 1, 2, 3, 11, 3, 4, 5, 12, 5};
    expect_bytes(&s, t, (const uint8_t *)want_cols, sizeof want_cols);
    ck_assert_int_eq(glmq_src_read_rows_raw(&s, get(&s, "cols"), 2, 1, win, &err), GLMQ_OK);
    ck_assert_mem_eq(win, want_cols + 8, sizeof win);

    /* 1-D: v[2..4) then v[0..1) */
    glmq_src_piece vec[] = {{v, 2, 2}, {v, 0, 1}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "vec", 0, vec, 2, &err), GLMQ_OK);
    float want_vec[] = {15, 16, 13};
    expect_bytes(&s, get(&s, "vec"), (const uint8_t *)want_vec, sizeof want_vec);
    ck_assert_int_eq(s.tensors[a].used_as_piece, 1);
    ck_assert_int_eq(s.tensors[h].used_as_piece, 0);

    /* refusals: dtype, width, range, rank, duplicate name, nesting */
    glmq_src_piece bad_dt[] = {{a, 0, 3}, {h, 0, 3}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "x", 0, bad_dt, 2, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot be joined"));
    glmq_src_piece bad_w[] = {{a, 0, 3}, {c, 0, 3}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "x", 0, bad_w, 2, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "wide across"));
    glmq_src_piece bad_r[] = {{a, 2, 2}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "x", 0, bad_r, 1, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "outside"));
    glmq_src_piece bad_1d[] = {{v, 0, 1}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "x", 1, bad_1d, 1, &err), GLMQ_E_FORMAT);
    ck_assert_int_eq(glmq_src_add_composite(&s, "a", 0, rows, 1, &err), GLMQ_E_FORMAT);
    glmq_src_piece nest[] = {{glmq_src_find(&s, "rows"), 0, 1}};
    ck_assert_int_eq(glmq_src_add_composite(&s, "x", 0, nest, 1, &err), GLMQ_E_INTERNAL);
    ck_assert_int_lt(glmq_src_find(&s, "x"), 0);

    /* a rollback to before the composites drops them and their pieces */
    glmq_src_set_truncate(&s, s.nfiles, s.nstorages, 5);
    ck_assert_int_eq(s.npieces, 0);
    ck_assert_int_eq(s.tensors[a].used_as_piece, 0);
    ck_assert_int_lt(glmq_src_find(&s, "rows"), 0);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST


START_TEST(test_valid_multi)
{
    /* keys deliberately not in data order */
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      T("b.weight", "F32", "[2,3]", "0", "24") ","
                      T("a.weight", "BF16", "[4]", "24", "32") ","
                      T("c", "F16", "[2,2]", "32", "40") "}";
    const uint8_t *d = pattern();
    char *p = write_st("model.safetensors", hdr, d, 40);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    glmq_status st = glmq_safetensors_load(&s, p, &err);
    ck_assert_msg(st == GLMQ_OK, "%s", err.msg);

    ck_assert_uint_eq(s.nfiles, 1);
    ck_assert_uint_eq(s.nstorages, 1);
    ck_assert_uint_eq(s.storages[0].file, 0);
    ck_assert_uint_eq(s.storages[0].offset, 8 + strlen(hdr));
    ck_assert_uint_eq(s.storages[0].size, 40);
    ck_assert_uint_eq(s.storages[0].comp_size, 40);
    ck_assert_int_eq(s.storages[0].deflated, 0);
    ck_assert_str_eq(s.storages[0].label, "model.safetensors");
    ck_assert_int_eq(s.ntensors, 3);
    /* appended in data order */
    ck_assert_str_eq(s.tensors[0].name, "b.weight");
    ck_assert_str_eq(s.tensors[1].name, "a.weight");
    ck_assert_str_eq(s.tensors[2].name, "c");
    ck_assert_int_lt(glmq_src_find(&s, "__metadata__"), 0);

    const glmq_src_tensor *b = get(&s, "b.weight");
    ck_assert_int_eq(b->dtype, GLMQ_DT_F32);
    ck_assert_int_eq(b->ndim, 2);
    ck_assert_int_eq(b->shape[0], 2);
    ck_assert_int_eq(b->shape[1], 3);
    ck_assert_int_eq(b->stride[0], 3);
    ck_assert_int_eq(b->stride[1], 1);
    ck_assert_int_eq(b->nelem, 6);
    ck_assert_int_eq(b->contiguous, 1);
    ck_assert_uint_eq(b->storage, 0);
    ck_assert_uint_eq(b->byte_offset, 0);
    expect_bytes(&s, b, d, 24);
    /* row 1 alone */
    uint8_t row[12];
    ck_assert_int_eq(glmq_src_read_rows_raw(&s, b, 1, 1, row, &err), GLMQ_OK);
    ck_assert_mem_eq(row, d + 12, 12);

    const glmq_src_tensor *a = get(&s, "a.weight");
    ck_assert_int_eq(a->dtype, GLMQ_DT_BF16);
    ck_assert_int_eq(a->ndim, 1);
    ck_assert_int_eq(a->shape[0], 4);
    ck_assert_int_eq(a->stride[0], 1);
    ck_assert_uint_eq(a->byte_offset, 24);
    expect_bytes(&s, a, d + 24, 8);

    const glmq_src_tensor *c = get(&s, "c");
    ck_assert_int_eq(c->dtype, GLMQ_DT_F16);
    ck_assert_int_eq(c->stride[0], 2);
    ck_assert_uint_eq(c->byte_offset, 32);
    expect_bytes(&s, c, d + 32, 8);

    glmq_src_set_free(&s);
    free(p);
}
END_TEST

START_TEST(test_scalar_and_empty)
{
    const char *hdr = "{" T("s", "F32", "[]", "0", "4") ","
                      T("z", "F16", "[0,3]", "4", "4") ","
                      T("e", "I64", "[5,0]", "4", "4") ","
                      T("t", "U8", "[2]", "4", "6") ","
                      T("huge_empty", "BF16", "[0,281474976710655,1000]", "6", "6") "}";
    const uint8_t *d = pattern();
    char *p = write_st("x.safetensors", hdr, d, 6);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.ntensors, 5);

    const glmq_src_tensor *sc = get(&s, "s");
    ck_assert_int_eq(sc->ndim, 0);
    ck_assert_int_eq(sc->nelem, 1);
    ck_assert_int_eq(glmq_src_rows(sc), 1);
    expect_bytes(&s, sc, d, 4);

    const glmq_src_tensor *z = get(&s, "z");
    ck_assert_int_eq(z->ndim, 2);
    ck_assert_int_eq(z->nelem, 0);
    ck_assert_int_eq(glmq_src_rows(z), 0);
    ck_assert_uint_eq(z->byte_offset, 4);
    const glmq_src_tensor *e = get(&s, "e");
    ck_assert_int_eq(e->dtype, GLMQ_DT_I64);
    ck_assert_int_eq(e->nelem, 0);
    ck_assert_int_eq(get(&s, "huge_empty")->nelem, 0);

    const glmq_src_tensor *t = get(&s, "t");
    ck_assert_int_eq(t->dtype, GLMQ_DT_U8);
    expect_bytes(&s, t, d + 4, 2);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

/* An empty header and an all-empty data section are valid. */
START_TEST(test_empty_file)
{
    char *p = write_st("e.safetensors", "{}", NULL, 0);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.ntensors, 0);
    ck_assert_uint_eq(s.nstorages, 1);
    ck_assert_uint_eq(s.storages[0].size, 0);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

static const struct {
    const char *name;
    glmq_dtype dt;
    size_t size;
} accepted[] = {
    {"F16", GLMQ_DT_F16, 2}, {"BF16", GLMQ_DT_BF16, 2}, {"F32", GLMQ_DT_F32, 4},
    {"F64", GLMQ_DT_F64, 8}, {"I64", GLMQ_DT_I64, 8},   {"I32", GLMQ_DT_I32, 4},
    {"I16", GLMQ_DT_I16, 2}, {"I8", GLMQ_DT_I8, 1},     {"U8", GLMQ_DT_U8, 1},
    {"BOOL", GLMQ_DT_BOOL, 1},
};

START_TEST(test_dtypes)
{
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "{\"w\":{\"dtype\":\"%s\",\"shape\":[3,2],\"data_offsets\":[0,%zu]}}",
             accepted[_i].name, 6 * accepted[_i].size);
    const uint8_t *d = pattern();
    char *p = write_st("d.safetensors", hdr, d, 6 * accepted[_i].size);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.tensors[0].dtype, accepted[_i].dt);
    ck_assert_uint_eq(glmq_dtype_size(s.tensors[0].dtype), accepted[_i].size);
    ck_assert_str_eq(glmq_dtype_name(s.tensors[0].dtype), accepted[_i].name);
    expect_bytes(&s, &s.tensors[0], d, 6 * accepted[_i].size);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

static const char *const refused[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F4",
                                      "F6_E2M3", "C64",     "U16",     "U32",         "U64"};

START_TEST(test_refused_dtypes)
{
    char hdr[256], want[64];
    snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"%s\",\"shape\":[8],\"data_offsets\":[0,8]}}",
             refused[_i]);
    char *p = write_st("r.safetensors", hdr, pattern(), 8);
    snprintf(want, sizeof want, "tensor 'w': dtype '%s' is not supported", refused[_i]);
    expect_fail(p, GLMQ_E_UNSUPPORTED, want);
    free(p);
}
END_TEST

/* Trailing space padding (the reference writer aligns N to 8) and unknown fields are fine, even
 * ones holding floats: only shape and data_offsets must be plain integers. */
START_TEST(test_padding_and_extra_fields)
{
    const char *hdr = "{\"x\":{\"note\":1.5,\"dtype\":\"F32\",\"more\":{\"k\":[1e3,-2,0.0]},"
                      "\"shape\":[2],\"data_offsets\":[0,8],\"z\":-1.25},"
                      "\"__metadata__\":{\"format\":\"pt\",\"\\u00e9t\\u00e9\":\"caf\\u00e9\"},"
                      T("y", "F16", "[1]", "8", "10") "}      ";
    char *p = write_st("pad.safetensors", hdr, pattern(), 10);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.ntensors, 2);
    ck_assert_int_eq(get(&s, "x")->shape[0], 2);
    ck_assert_uint_eq(s.storages[0].offset, 8 + strlen(hdr));
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

/* UTF-8 names (escaped and raw) survive intact. */
START_TEST(test_utf8_names)
{
    const char *hdr = "{" T("caf\\u00e9", "U8", "[1]", "0", "1") ","
                      T("\xe6\xa8\xa1\xe5\x9e\x8b", "U8", "[1]", "1", "2") "}";
    char *p = write_st("u.safetensors", hdr, pattern(), 2);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_ge(glmq_src_find(&s, "caf\xc3\xa9"), 0);
    ck_assert_int_ge(glmq_src_find(&s, "\xe6\xa8\xa1\xe5\x9e\x8b"), 0);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

/* Shards accumulate in one set; a name repeated across shards fails and rolls back only the
 * failing file. */
START_TEST(test_shards_and_rollback)
{
    const uint8_t *d = pattern();
    char *p1 = write_st("model-00001-of-00003.safetensors", "{" T("a", "F32", "[1]", "0", "4") "}",
                        d, 4);
    char *p2 = write_st("model-00002-of-00003.safetensors", "{" T("b", "F16", "[2]", "0", "4") "}",
                        d + 4, 4);
    char *p3 = write_st("model-00003-of-00003.safetensors",
                        "{" T("c", "U8", "[1]", "0", "1") "," T("a", "U8", "[1]", "1", "2") "}",
                        d, 2);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p1, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_msg(glmq_safetensors_load(&s, p2, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_safetensors_load(&s, p3, &err), GLMQ_E_FORMAT);
    ck_assert_msg(strstr(err.msg, "duplicate tensor name 'a'") != NULL, "%s", err.msg);
    ck_assert_uint_eq(s.nfiles, 2);
    ck_assert_uint_eq(s.nstorages, 2);
    ck_assert_int_eq(s.ntensors, 2);
    ck_assert_int_lt(glmq_src_find(&s, "c"), 0);
    const glmq_src_tensor *b = get(&s, "b");
    ck_assert_uint_eq(b->storage, 1);
    ck_assert_uint_eq(s.storages[1].file, 1);
    expect_bytes(&s, get(&s, "a"), d, 4);
    expect_bytes(&s, b, d + 4, 4);
    glmq_src_set_free(&s);
    free(p1);
    free(p2);
    free(p3);
}
END_TEST

/* ---- bad files: one per D.3 rule and per extra check --------------------------------------- */

static const struct {
    const char *what;
    const char *hdr;
    size_t data; /* data section bytes (from pattern()) */
    glmq_status code;
    const char *sub;
} bad[] = {
    {"non-json header", "{not json}", 0, GLMQ_E_FORMAT, "header is not valid json"},
    {"truncated json", "{\"a\":", 0, GLMQ_E_FORMAT, "header is not valid json"},
    {"trailing comma", "{" T("a", "U8", "[1]", "0", "1") ",}", 1, GLMQ_E_FORMAT,
     "not valid json"},
    {"leading space", " {}", 0, GLMQ_E_FORMAT, "header does not start with '{' at byte 8"},
    {"array header", "[]", 0, GLMQ_E_FORMAT, "does not start with '{'"},
    {"newline after json", "{}\n", 0, GLMQ_E_FORMAT,
     "trailing bytes after the json object at byte 10"},
    {"second object", "{} {}", 0, GLMQ_E_FORMAT, "only spaces may follow"},
    {"duplicate key", "{" T("a", "F32", "[1]", "0", "4") "," T("a", "F32", "[1]", "4", "8") "}",
     8, GLMQ_E_FORMAT, "duplicate key 'a' in the header"},
    {"duplicate field",
     "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     GLMQ_E_FORMAT, "tensor 'a': duplicate key 'dtype'"},
    {"duplicate metadata key",
     "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0, GLMQ_E_FORMAT,
     "__metadata__: duplicate key 'format'"},
    {"duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, GLMQ_E_FORMAT,
     "duplicate key '__metadata__'"},
    {"duplicate nested key",
     "{\"a\":{\"x\":{\"k\":1,\"k\":2},\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
     GLMQ_E_FORMAT, "tensor 'a': duplicate key 'k'"},
    {"metadata value not string",
     "{\"__metadata__\":{\"format\":1}," T("a", "U8", "[1]", "0", "1") "}", 1, GLMQ_E_FORMAT,
     "__metadata__ value of 'format' is not a string"},
    {"metadata nested", "{\"__metadata__\":{\"format\":{\"x\":\"y\"}}}", 0, GLMQ_E_FORMAT,
     "__metadata__ value of 'format' is not a string"},
    {"metadata not object", "{\"__metadata__\":\"pt\"}", 0, GLMQ_E_FORMAT,
     "__metadata__ is not a json object"},
    {"unknown dtype", "{" T("a.weight", "FOO", "[1]", "0", "1") "}", 1, GLMQ_E_UNSUPPORTED,
     "tensor 'a.weight': unknown dtype 'FOO'"},
    {"lower-case dtype", "{" T("a", "f32", "[1]", "0", "4") "}", 4, GLMQ_E_UNSUPPORTED,
     "unknown dtype 'f32'"},
    {"dtype not string", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
     GLMQ_E_FORMAT, "tensor 'a': dtype is not a string"},
    {"entry not object", "{\"a\":5}", 0, GLMQ_E_FORMAT, "tensor 'a': entry is not a json object"},
    {"empty name", "{" T("", "U8", "[1]", "0", "1") "}", 1, GLMQ_E_FORMAT, "empty tensor name"},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, GLMQ_E_FORMAT,
     "tensor 'a': missing 'dtype'"},
    {"missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, GLMQ_E_FORMAT,
     "tensor 'a': missing 'shape'"},
    {"missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, GLMQ_E_FORMAT,
     "tensor 'a': missing 'data_offsets'"},
    {"shape not array", "{" T("a", "U8", "3", "0", "3") "}", 3, GLMQ_E_FORMAT,
     "tensor 'a': shape is not an array"},
    {"shape string element", "{" T("a", "U8", "[\"3\"]", "0", "3") "}", 3, GLMQ_E_FORMAT,
     "tensor 'a': shape[0] is not a number"},
    {"shape nested array", "{" T("a", "U8", "[[3]]", "0", "3") "}", 3, GLMQ_E_FORMAT,
     "shape[0] is not a number"},
    {"offsets three", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1,
     GLMQ_E_FORMAT, "data_offsets is not an array of 2 integers"},
    {"offsets null", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":null}}", 1,
     GLMQ_E_FORMAT, "data_offsets is not an array of 2 integers"},
    {"negative dim", "{" T("a", "U8", "[2,-3]", "0", "6") "}", 6, GLMQ_E_FORMAT,
     "tensor 'a': shape[1] is '-3' at byte "},
    {"float dim", "{" T("a", "U8", "[2.5]", "0", "2") "}", 2, GLMQ_E_FORMAT,
     "shape[0] is '2.5' at byte 36, not a non-negative integer"},
    {"integral float dim", "{" T("a", "U8", "[2.0]", "0", "2") "}", 2, GLMQ_E_FORMAT,
     "shape[0] is '2.0'"},
    {"exponent dim", "{" T("a", "U8", "[2e0]", "0", "2") "}", 2, GLMQ_E_FORMAT,
     "shape[0] is '2e0'"},
    {"leading zero dim", "{" T("a", "U8", "[02]", "0", "2") "}", 2, GLMQ_E_FORMAT,
     "shape[0] is '02'"},
    {"minus zero dim", "{" T("a", "U8", "[-0]", "0", "0") "}", 0, GLMQ_E_FORMAT,
     "shape[0] is '-0'"},
    {"float offset", "{" T("a", "U8", "[2]", "0.0", "2") "}", 2, GLMQ_E_FORMAT,
     "data_offsets[0] is '0.0'"},
    {"dim over 2^48-1", "{" T("a", "U8", "[281474976710656]", "0", "1") "}", 1, GLMQ_E_FORMAT,
     "shape[0] = 281474976710656 exceeds 2^48-1"},
    {"end out of range", "{" T("a", "U8", "[1]", "0", "1000000000000000") "}", 1,
     GLMQ_E_FORMAT, "data_offsets[1] = 1000000000000000 exceeds 2^48-1"},
    {"rank 5", "{" T("a", "U8", "[1,1,1,1,1]", "0", "1") "}", 1, GLMQ_E_UNSUPPORTED,
     "tensor 'a': shape has more than 4 dimensions"},
    {"overlap", "{" T("a", "F32", "[2]", "0", "8") "," T("b", "F32", "[2]", "4", "12") "}", 12,
     GLMQ_E_FORMAT, "tensor 'b': invalid offset: data_offsets [4, 12) overlap tensor 'a' at "
                    "[0, 8) (file byte "},
    {"alias", "{" T("a", "F32", "[1]", "0", "4") "," T("b", "F32", "[1]", "0", "4") "}", 4,
     GLMQ_E_FORMAT, "tensor 'b': invalid offset: data_offsets [0, 4) overlap tensor 'a'"},
    {"gap", "{" T("a", "F32", "[1]", "0", "4") "," T("b", "F32", "[1]", "8", "12") "}", 12,
     GLMQ_E_FORMAT, "tensor 'b': invalid offset: data_offsets [8, 12) leave a gap, data bytes "
                    "[4, 8)"},
    {"not from 0", "{" T("a", "F32", "[1]", "4", "8") "}", 8, GLMQ_E_FORMAT,
     "data bytes [0, 4)"},
    {"begin > end", "{" T("a", "F32", "[1]", "0", "4") "," T("b", "F32", "[1]", "8", "4") "}", 8,
     GLMQ_E_FORMAT, "tensor 'b': invalid offset: data_offsets [8, 4) end before they begin"},
    {"size mismatch", "{" T("a.weight", "F16", "[3,2]", "0", "10") "}", 10, GLMQ_E_FORMAT,
     "tensor 'a.weight': data_offsets [0, 10) do not match shape [3, 2] x F16 = 12 bytes "
     "(header ends at byte "},
    {"scalar mismatch", "{" T("s", "F32", "[]", "0", "2") "}", 2, GLMQ_E_FORMAT,
     "do not match shape [] x F32 = 4 bytes"},
    {"empty with bytes", "{" T("z", "F32", "[0]", "0", "4") "}", 4, GLMQ_E_FORMAT,
     "do not match shape [0] x F32 = 0 bytes"},
    {"shape overflow", "{" T("a", "F16", "[1099511627776,1099511627776]", "0", "0") "}", 0,
     GLMQ_E_FORMAT, "tensor 'a': shape [1099511627776, 1099511627776] x F16 overflows 64 bits"},
    {"bits overflow", "{" T("a", "F64", "[281474976710655,65536]", "0", "0") "}", 0,
     GLMQ_E_FORMAT, "overflows 64 bits"},
    {"empty stride overflow",
     "{" T("a", "F16", "[0,281474976710655,281474976710655]", "0", "0") "}", 0, GLMQ_E_FORMAT,
     "has no row-major strides in 64 bits"},
    {"truncated data", "{" T("a", "F32", "[4]", "0", "16") "}", 8, GLMQ_E_FORMAT,
     "data section is truncated: tensors end at byte "},
    {"end past file", "{" T("a", "F32", "[1]", "0", "4") "," T("b", "U8", "[100]", "4", "104")
     "}", 10, GLMQ_E_FORMAT, "data section is truncated"},
    {"trailing bytes", "{" T("a", "F32", "[1]", "0", "4") "}", 8, GLMQ_E_FORMAT,
     "4 trailing bytes after the last tensor"},
    {"data without tensors", "{}", 3, GLMQ_E_FORMAT, "3 trailing bytes after the last tensor"},
    {"control char in name", "{" T("a\nb", "U8", "[1]", "0", "1") "}", 1, GLMQ_E_FORMAT,
     "raw control character 0x0a inside a string at byte 11"},
    {"nul escape in name", "{" T("a\\u0000b", "U8", "[1]", "0", "1") "}", 1, GLMQ_E_FORMAT,
     "\\u0000 escape inside a string at byte 11"},
    {"lone surrogate", "{" T("a\\ud800", "U8", "[1]", "0", "1") "}", 1, GLMQ_E_FORMAT,
     "not valid json"},
};

START_TEST(test_bad_header)
{
    char *p = write_st("bad.safetensors", bad[_i].hdr, pattern(), bad[_i].data);
    expect_fail(p, bad[_i].code, bad[_i].sub);
    free(p);
}
END_TEST

/* ---- bad files built byte by byte ---------------------------------------------------------- */

START_TEST(test_too_small)
{
    char *p = write_raw("small.safetensors", "\x02\0\0\0\0", 5);
    expect_fail(p, GLMQ_E_FORMAT, "header too small: the file has 5 bytes");
    free(p);
    p = write_raw("empty.safetensors", "", 0);
    expect_fail(p, GLMQ_E_FORMAT, "header too small: the file has 0 bytes");
    free(p);
}
END_TEST

START_TEST(test_too_large)
{
    uint8_t b[16] = {0};
    glmq_wr_le64(b, 100000001); /* one over MAX_HEADER_SIZE */
    char *p = write_raw("large.safetensors", b, sizeof b);
    expect_fail(p, GLMQ_E_FORMAT, "header too large: length 100000001 at byte 0");
    free(p);
    glmq_wr_le64(b, UINT64_MAX);
    p = write_raw("huge.safetensors", b, sizeof b);
    expect_fail(p, GLMQ_E_FORMAT, "header too large: length 18446744073709551615");
    free(p);
}
END_TEST

START_TEST(test_header_past_eof)
{
    uint8_t b[8 + 20];
    memset(b, ' ', sizeof b);
    glmq_wr_le64(b, 100);
    b[8] = '{';
    char *p = write_raw("short.safetensors", b, sizeof b);
    expect_fail(p, GLMQ_E_FORMAT,
                "invalid header length: 8 + 100 bytes runs past the end of the file (28 bytes)");
    free(p);
}
END_TEST

/* N = 100,000,000 is still allowed by rule 2: the file then fails rule 3 instead. */
START_TEST(test_header_len_limit)
{
    uint8_t b[16] = {0};
    glmq_wr_le64(b, 100000000);
    char *p = write_raw("max.safetensors", b, sizeof b);
    expect_fail(p, GLMQ_E_FORMAT, "invalid header length: 8 + 100000000 bytes");
    free(p);
}
END_TEST

static const struct {
    const char *what;
    const char *hdr;
    size_t len;
    const char *sub;
} bad_utf8[] = {
    {"0xff", "{\"\xff\":1}", 7, "not valid utf-8 at byte 10 (byte 0xff)"},
    {"overlong nul", "{\"\xc0\x80\":1}", 8, "not valid utf-8 at byte 10 (byte 0xc0)"},
    {"overlong 3-byte", "{\"\xe0\x80\xaf\":1}", 9, "at byte 10"},
    {"surrogate", "{\"\xed\xa0\x80\":1}", 9, "at byte 10 (byte 0xed)"},
    {"above U+10FFFF", "{\"\xf4\x90\x80\x80\":1}", 10, "at byte 10 (byte 0xf4)"},
    {"lone continuation", "{\"a\x80\":1}", 7, "at byte 11 (byte 0x80)"},
    {"cut sequence at end", "{}  \xe6\xa8", 6, "at byte 12"},
    {"bad continuation", "{\"\xe6\x41\x41\":1}", 9, "at byte 10"},
};

START_TEST(test_bad_utf8)
{
    char *p = write_st_n("utf.safetensors", bad_utf8[_i].hdr, bad_utf8[_i].len, NULL, 0);
    expect_fail(p, GLMQ_E_FORMAT, bad_utf8[_i].sub);
    free(p);
}
END_TEST

START_TEST(test_nul_in_header)
{
    /* a raw NUL: inside a string, and after the object */
    char *p = write_st_n("nul1.safetensors", "{\"a\0b\":1}", 9, NULL, 0);
    expect_fail(p, GLMQ_E_FORMAT, "raw control character 0x00 inside a string at byte 11");
    free(p);
    p = write_st_n("nul2.safetensors", "{}\0", 3, NULL, 0);
    expect_fail(p, GLMQ_E_FORMAT, "trailing bytes after the json object at byte 10");
    free(p);
}
END_TEST

START_TEST(test_long_name)
{
    char name[300], hdr[512];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
             name);
    char *p = write_st("long.safetensors", hdr, pattern(), 1);
    expect_fail(p, GLMQ_E_UNSUPPORTED, "name of 299 bytes is longer than 255");
    free(p);
    /* 255 bytes is fine */
    name[255] = 0;
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
             name);
    p = write_st("ok.safetensors", hdr, pattern(), 1);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_msg(glmq_safetensors_load(&s, p, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_uint_eq(strlen(s.tensors[0].name), 255);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

/* glmq limits on hostile headers: tensors per file and JSON values (cJSON's tree size). */
START_TEST(test_limits)
{
    const size_t ntens = 16385, per = 64;
    char *hdr = malloc(ntens * per + 16);
    ck_assert_ptr_nonnull(hdr);
    size_t o = 0;
    hdr[o++] = '{';
    for (size_t i = 0; i < ntens; i++)
        o += (size_t)snprintf(hdr + o, per, "%s\"t%zu\":{\"dtype\":\"U8\",\"shape\":[0],"
                              "\"data_offsets\":[0,0]}", i ? "," : "", i);
    hdr[o++] = '}';
    hdr[o] = 0;
    char *p = write_st("many.safetensors", hdr, NULL, 0);
    expect_fail(p, GLMQ_E_UNSUPPORTED, "header lists 16385 tensors, more than glmq's limit");
    free(p);

    /* one tensor with an ignored field holding 2^20 numbers */
    const size_t nvals = (size_t)1 << 20;
    hdr = realloc(hdr, 2 * nvals + 128);
    ck_assert_ptr_nonnull(hdr);
    o = (size_t)sprintf(hdr, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],"
                             "\"x\":[");
    for (size_t i = 0; i < nvals; i++) {
        hdr[o++] = i ? ',' : '0';
        if (i) hdr[o++] = '0';
    }
    strcpy(hdr + o, "]}}");
    p = write_st("values.safetensors", hdr, NULL, 0);
    expect_fail(p, GLMQ_E_UNSUPPORTED, "json values, more than glmq's limit of 1048576");
    free(p);
    free(hdr);
}
END_TEST

START_TEST(test_not_a_file)
{
    char *p = tu_path(tmp, "missing.safetensors");
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err = {0};
    ck_assert_int_eq(glmq_safetensors_load(&s, p, &err), GLMQ_E_IO);
    ck_assert_msg(strstr(err.msg, "missing.safetensors") != NULL, "%s", err.msg);
    ck_assert_int_eq(glmq_safetensors_load(&s, tmp, &err), GLMQ_E_IO);
    ck_assert_uint_eq(s.nfiles, 0);
    glmq_src_set_free(&s);
    free(p);
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *ok = tcase_create("valid");
    tcase_add_checked_fixture(ok, setup, teardown);
    tcase_add_test(ok, test_valid_multi);
    tcase_add_test(ok, test_composite);
    tcase_add_test(ok, test_alias);
    tcase_add_test(ok, test_scalar_and_empty);
    tcase_add_test(ok, test_empty_file);
    tcase_add_loop_test(ok, test_dtypes, 0, (int)(sizeof accepted / sizeof accepted[0]));
    tcase_add_test(ok, test_padding_and_extra_fields);
    tcase_add_test(ok, test_utf8_names);
    tcase_add_test(ok, test_shards_and_rollback);
    suite_add_tcase(s, ok);

    TCase *ko = tcase_create("invalid");
    tcase_add_checked_fixture(ko, setup, teardown);
    tcase_add_loop_test(ko, test_refused_dtypes, 0, (int)(sizeof refused / sizeof refused[0]));
    tcase_add_loop_test(ko, test_bad_header, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(ko, test_too_small);
    tcase_add_test(ko, test_too_large);
    tcase_add_test(ko, test_header_past_eof);
    tcase_add_test(ko, test_header_len_limit);
    tcase_add_loop_test(ko, test_bad_utf8, 0, (int)(sizeof bad_utf8 / sizeof bad_utf8[0]));
    tcase_add_test(ko, test_nul_in_header);
    tcase_add_test(ko, test_long_name);
    tcase_add_test(ko, test_limits);
    tcase_add_test(ko, test_not_a_file);
    suite_add_tcase(s, ko);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(safetensors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
