/*
 * check_npy.c - the .npy writer (formats/npy.h) against the NumPy format 1.0 specification
 * (numpy/lib/format.py): the 10-byte preamble, the header dict byte for byte, space padding to a
 * multiple of 64 bytes including the closing newline, then little-endian float32 in C order.
 * Expected bytes are spelled out here from the specification (one header is a literal), and the
 * file is also read back with the independent reader of testutil.c.
 */
#include "formats/npy.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

static const struct {
    int64_t rows, cols;
} shapes[] = {{1, 1}, {3, 5}, {2, 1216}, {0, 7}, {7, 0}, {1, 65024}, {1000, 3}};

/* The element at index i: a mix of edge values (±0, ±inf, NaN, denormals, extremes). */
static float value(int64_t i)
{
    static const uint32_t bits[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                    0x7fc00001u, 0x00000001u, 0x807fffffu, 0x7f7fffffu,
                                    0x3f800000u, 0xc0490fdbu};
    uint32_t u = i < 10 ? bits[i]
                        : (uint32_t)(0x3c000000u + (uint32_t)i * 2654435761u % 0x4000000u);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

START_TEST(header_and_payload)
{
    const int64_t R = shapes[_i].rows, C = shapes[_i].cols;
    float *x = malloc((size_t)(R * C + 1) * sizeof *x);
    for (int64_t i = 0; i < R * C; i++) x[i] = value(i);
    char *path = tu_path(tmpdir, "a.npy");
    glmq_err err = {0};
    ck_assert_int_eq(glmq_npy_write_f32(path, x, R, C, &err), GLMQ_OK);
    size_t n = 0;
    uint8_t *b = tu_read_file(path, &n);
    ck_assert_ptr_nonnull(b);

    /* preamble: magic, version 1.0, HEADER_LEN little-endian */
    ck_assert_uint_ge(n, 10);
    ck_assert_mem_eq(b, "\x93NUMPY", 6);
    ck_assert_uint_eq(b[6], 1);
    ck_assert_uint_eq(b[7], 0);
    size_t hlen = (size_t)b[8] | ((size_t)b[9] << 8);
    ck_assert_uint_eq((10 + hlen) % 64, 0);
    ck_assert_uint_ge(n, 10 + hlen);

    /* header: the dict, then spaces, then exactly one '\n' as the last byte */
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                                         "(%lld, %lld), }",
                      (long long)R, (long long)C);
    ck_assert_uint_gt(hlen, (size_t)dl);
    ck_assert_mem_eq(b + 10, dict, (size_t)dl);
    for (size_t k = 10 + (size_t)dl; k < 10 + hlen - 1; k++)
        ck_assert_msg(b[k] == ' ', "byte %zu of the header is 0x%02x, not a space", k, b[k]);
    ck_assert_uint_eq(b[10 + hlen - 1], '\n');
    /* the smallest padding: no whole 64-byte block of spaces */
    ck_assert_uint_lt(hlen - 1 - (size_t)dl, 64);

    /* payload: R*C little-endian float32 */
    ck_assert_uint_eq(n, 10 + hlen + (size_t)(R * C) * 4);
    for (int64_t i = 0; i < R * C; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        const uint8_t *p = b + 10 + hlen + 4 * i;
        uint32_t got = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
        ck_assert_msg(got == u, "element %lld: %08x != %08x", (long long)i, got, u);
    }

    /* the independent reader agrees */
    char dt[8];
    int nd = 0;
    int64_t sh[4] = {0};
    size_t nb = 0;
    float *y = tu_npy_load(path, dt, &nd, sh, &nb);
    if (R * C > 0) {
        ck_assert_ptr_nonnull(y);
        ck_assert_str_eq(dt, "<f4");
        ck_assert_int_eq(nd, 2);
        ck_assert_int_eq(sh[0], R);
        ck_assert_int_eq(sh[1], C);
        ck_assert_uint_eq(nb, (size_t)(R * C) * 4);
        ck_assert_mem_eq(y, x, nb);
    }
    free(y);
    free(b);
    free(path);
    free(x);
}
END_TEST

/* One header spelled out in full: shape (3, 5) gives a 59-byte dict, 58 spaces, '\n' and
 * HEADER_LEN 118 (0x76), so the data starts at byte 128. */
START_TEST(literal_header)
{
    static const char want[] =
        "\x93NUMPY\x01\x00\x76\x00"
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }"
        "                                                          \n";
    ck_assert_uint_eq(sizeof want - 1, 128);
    float x[15] = {0};
    char *path = tu_path(tmpdir, "b.npy");
    glmq_err err = {0};
    ck_assert_int_eq(glmq_npy_write_f32(path, x, 3, 5, &err), GLMQ_OK);
    size_t n = 0;
    uint8_t *b = tu_read_file(path, &n);
    ck_assert_uint_eq(n, 128 + 60);
    ck_assert_mem_eq(b, want, 128);
    free(b);
    free(path);
}
END_TEST

/* Bad shapes and unwritable paths fail with the path in the message and leave nothing; an
 * existing file survives a failed write. */
START_TEST(errors)
{
    float x[4] = {1, 2, 3, 4};
    char *path = tu_path(tmpdir, "c.npy");
    glmq_err err = {0};
    ck_assert_int_eq(glmq_npy_write_f32(path, x, -1, 4, &err), GLMQ_E_INVALID);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s", err.msg);
    ck_assert_int_eq(glmq_npy_write_f32(path, x, INT64_MAX / 2, 4, &err), GLMQ_E_INVALID);
    ck_assert_msg(strstr(err.msg, "too large") != NULL, "%s", err.msg);
    ck_assert_int_eq(tu_count_entries(tmpdir), 0);
    char *missing = tu_path(tmpdir, "nodir/c.npy");
    ck_assert_int_eq(glmq_npy_write_f32(missing, x, 2, 2, &err), GLMQ_E_IO);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
    /* a directory in the way of the rename: the old entry stays */
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(glmq_npy_write_f32(path, x, 2, 2, &err), GLMQ_E_IO);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(tu_count_entries(tmpdir), 1);
    free(missing);
    free(path);
}
END_TEST

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, header_and_payload, 0, (int)(sizeof shapes / sizeof shapes[0]));
    tcase_add_test(tc, literal_header);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(npy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
