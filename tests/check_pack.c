/*
 * check_pack.c - the packed file writer and reader (formats/SPEC.md).
 *
 * Round trip with independently computed checksums (XXH3 called directly on the bytes the test
 * wrote), corruption of every region, hostile directories (re-signed with a correct header
 * checksum so that the structural checks themselves are exercised), truncation, and atomicity:
 * failed writes leave no file and never touch an existing output, including a full disk
 * (simulated with RLIMIT_FSIZE in a child process).
 */
#include "formats/pack.h"
#include "quant/quant.h"
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* Three tensors: f16 [3,5], int8 [4,70] with scales, int4 [2,130] with scales; two blobs. */
#define F16_BYTES (3 * 5 * 2)
static uint8_t f16data[F16_BYTES];
static uint8_t q8data[4 * 128];
static uint16_t q8scales[4] = {0x3c00, 0x3800, 0x0000, 0x4000};
static uint8_t q4data[2 * 128];
static uint16_t q4scales[2] = {0x2e66, 0x3555};
static const char meta_json[] = "{\"format\":\"glmq\",\"config\":{}}";

static void fill(void)
{
    for (int i = 0; i < F16_BYTES; i++) f16data[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof q8data; i++) q8data[i] = (uint8_t)((i % 128) < 70 ? i * 13 : 0);
    for (size_t i = 0; i < sizeof q4data; i++) q4data[i] = (uint8_t)(i * 29 + 3);
}

static char *write_pack(const char *name)
{
    fill();
    char *path = tu_path(tmpdir, name);
    glmq_pack_tensor_decl d[3] = {{"a.f16", GLMQ_TYPE_F16, 2, {3, 5}},
                                  {"b.int8", GLMQ_TYPE_INT8, 2, {4, 70}},
                                  {"c.int4", GLMQ_TYPE_INT4, 2, {2, 130}}};
    glmq_pack_blob_decl b[2] = {{"config.json", 5}, {"tokenizer.model", 3}};
    glmq_pack_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_writer_create(path, d, 3, b, 2, &w, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_blob(w, 0, "{abc}", &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_blob(w, 1, "tok", &err), GLMQ_OK);
    /* rows in two pieces to exercise streaming checksums */
    ck_assert_int_eq(glmq_pack_write_rows(w, 0, 0, 1, f16data, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_rows(w, 0, 1, 2, f16data + 10, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_rows(w, 1, 0, 4, q8data, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_scales(w, 1, q8scales, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_rows(w, 2, 0, 2, q4data, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_write_scales(w, 2, q4scales, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_writer_finish(w, meta_json, &err), GLMQ_OK);
    return path;
}

static uint64_t xxh_concat(const void *a, size_t na, const uint16_t *s, size_t ns)
{
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, a, na);
    for (size_t i = 0; i < ns; i++) {
        uint8_t le[2] = {(uint8_t)s[i], (uint8_t)(s[i] >> 8)};
        XXH3_64bits_update(h, le, 2);
    }
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

START_TEST(roundtrip)
{
    char *path = write_pack("a.glmq");
    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_open(path, &p, &err), GLMQ_OK);
    ck_assert_uint_eq(glmq_pack_version(p), 0x10000);
    ck_assert_str_eq(glmq_pack_metadata(p), meta_json);
    ck_assert_int_eq(glmq_pack_tensor_count(p), 3);
    glmq_tensor_info t;
    ck_assert_int_eq(glmq_pack_tensor(p, 0, &t, &err), GLMQ_OK);
    ck_assert_str_eq(t.name, "a.f16");
    ck_assert_int_eq(t.rows, 3);
    ck_assert_int_eq(t.cols, 5);
    ck_assert_int_eq(t.row_stride, 10);
    ck_assert_mem_eq(t.data, f16data, F16_BYTES);
    ck_assert_uint_eq(t.checksum, xxh_concat(f16data, F16_BYTES, NULL, 0));
    ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
    ck_assert_int_eq(glmq_pack_find(p, "b.int8", &t, &err), GLMQ_OK);
    ck_assert_int_eq(t.row_stride, 128);
    ck_assert_mem_eq(t.data, q8data, sizeof q8data);
    ck_assert_uint_eq(t.checksum, xxh_concat(q8data, sizeof q8data, q8scales, 4));
    ck_assert_uint_eq((uintptr_t)t.scales % 64, 0);
    float row[70];
    ck_assert_int_eq(glmq_tensor_row_f32(&t, 1, row, &err), GLMQ_OK);
    ck_assert_float_eq(row[1], (float)(int8_t)q8data[129] * 0.5f); /* scale 0x3800 = 0.5 */
    ck_assert_int_eq(glmq_tensor_row_f32(&t, 2, row, &err), GLMQ_OK);
    ck_assert_float_eq(row[5], 0.0f); /* scale 0 */
    ck_assert_int_eq(glmq_pack_find(p, "c.int4", &t, &err), GLMQ_OK);
    ck_assert_int_eq(t.row_stride, 128); /* 130 cols -> 256 padded -> 128 bytes */
    ck_assert_uint_eq(t.checksum, xxh_concat(q4data, sizeof q4data, q4scales, 2));
    const void *bd;
    size_t bs;
    ck_assert_int_eq(glmq_pack_blob(p, "tokenizer.model", &bd, &bs, &err), GLMQ_OK);
    ck_assert_uint_eq(bs, 3);
    ck_assert_mem_eq(bd, "tok", 3);
    ck_assert_int_eq(glmq_pack_blob(p, "nope", &bd, &bs, &err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_pack_find(p, "nope", &t, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
    ck_assert_int_eq(glmq_pack_verify(p, &err), GLMQ_OK);
    glmq_pack_close(p);
    glmq_pack_close(NULL);
    free(path);
}
END_TEST

/* Same declarations and bytes -> byte-identical files. */
START_TEST(deterministic)
{
    char *a = write_pack("x.glmq"), *b = write_pack("y.glmq");
    size_t na, nb;
    uint8_t *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(da, db, na);
    free(da);
    free(db);
    free(a);
    free(b);
}
END_TEST

/* Flip one byte at every position of the file: either open fails cleanly, or verify fails, or
 * (only in padding bytes, which nothing covers) everything still reads the same. Never a crash. */
START_TEST(flip_every_byte)
{
    char *path = write_pack("f.glmq");
    size_t n;
    uint8_t *orig = tu_read_file(path, &n);
    char *bad = tu_path(tmpdir, "bad.glmq");
    int open_fail = 0, verify_fail = 0, benign = 0;
    for (size_t i = 0; i < n; i++) {
        orig[i] ^= 0x41;
        tu_write_file(bad, orig, n);
        orig[i] ^= 0x41;
        glmq_pack *p = NULL;
        glmq_err err = {0};
        if (glmq_pack_open(bad, &p, &err) != GLMQ_OK) {
            ck_assert_ptr_nonnull(strstr(err.msg, "bad.glmq"));
            open_fail++;
            continue;
        }
        if (glmq_pack_verify(p, &err) != GLMQ_OK) {
            ck_assert_int_eq(err.code, GLMQ_E_CHECKSUM);
            verify_fail++;
        } else {
            benign++;
        }
        glmq_pack_close(p);
    }
    /* every byte of header, tables and metadata is covered by the header checksum */
    ck_assert_int_gt(open_fail, 128);
    ck_assert_int_gt(verify_fail, F16_BYTES + (int)sizeof q8data);
    /* benign flips are only alignment padding: check that count against the layout */
    ck_assert_int_lt(benign, (int)n / 2);
    free(orig);
    free(bad);
    free(path);
}
END_TEST

START_TEST(truncated)
{
    char *path = write_pack("t.glmq");
    size_t n;
    uint8_t *orig = tu_read_file(path, &n);
    char *bad = tu_path(tmpdir, "trunc.glmq");
    for (size_t len = 0; len < n; len += (len < 200 ? 1 : 17)) {
        tu_write_file(bad, orig, len);
        glmq_pack *p = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_pack_open(bad, &p, &err), GLMQ_E_FORMAT);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err.msg, "too small") || strstr(err.msg, "truncated"), "%s", err.msg);
    }
    free(orig);
    free(bad);
    free(path);
}
END_TEST

/* Edit a directory field, re-sign the header, and expect a structural error. */
static void resign(uint8_t *f)
{
    uint64_t st_off = glmq_rd_le64(f + 24), st_size = glmq_rd_le64(f + 32);
    uint64_t td = glmq_rd_le64(f + 40), nt = glmq_rd_le64(f + 48);
    uint64_t bd = glmq_rd_le64(f + 56), nb = glmq_rd_le64(f + 64);
    uint64_t mo = glmq_rd_le64(f + 72), ms = glmq_rd_le64(f + 80);
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, f, 120);
    XXH3_64bits_update(h, f + st_off, st_size);
    XXH3_64bits_update(h, f + td, nt * 128);
    XXH3_64bits_update(h, f + bd, nb * 64);
    XXH3_64bits_update(h, f + mo, ms);
    glmq_wr_le64(f + 120, XXH3_64bits_digest(h));
    XXH3_freeState(h);
}

static const struct {
    int entry;       /* tensor index, or -1 for blob 0 */
    int field;       /* byte offset inside the entry */
    int width;       /* 4 or 8 */
    int64_t delta;   /* added to the field; or */
    int64_t set;     /* when delta == 0: value to set */
    const char *msg;
} hostile[] = {
    {1, 64, 8, 0, 64 * 1000000, "outside the file"},       /* data offset past EOF */
    {1, 64, 8, 8, 0, "misaligned"},                        /* unaligned data */
    {2, 64, 8, -128, 0, "overlaps"},                       /* int4 data over int8 scales */
    {1, 12, 4, 0, 11, "unknown storage type"},
    {1, 16, 4, 0, 0, "dimensions"},
    {1, 16, 4, 0, 5, "dimensions"},
    {1, 24, 8, 0, 0, "dimension 0 is 0"},
    {1, 24, 8, 0, INT64_C(1) << 50, "dimension 0"},
    {1, 56, 8, 1, 0, "row stride"},
    {1, 72, 8, 64, 0, "data size"},
    {1, 88, 8, 2, 0, "scale table size"},
    {1, 8, 4, 100000, 0, "outside the string table"},
    {1, 8, 4, 1, 0, "NUL-terminated"},
    {-1, 16, 8, 0, 65, "misaligned"},
    {-1, 24, 8, 0, INT64_C(1) << 62, "outside the file"},
};

START_TEST(hostile_directory)
{
    char *path = write_pack("h.glmq");
    size_t n;
    uint8_t *f = tu_read_file(path, &n);
    uint8_t *e = hostile[_i].entry >= 0
                     ? f + glmq_rd_le64(f + 40) + 128 * hostile[_i].entry + hostile[_i].field
                     : f + glmq_rd_le64(f + 56) + hostile[_i].field;
    if (hostile[_i].width == 8)
        glmq_wr_le64(e, hostile[_i].delta ? glmq_rd_le64(e) + (uint64_t)hostile[_i].delta
                                          : (uint64_t)hostile[_i].set);
    else
        glmq_wr_le32(e, hostile[_i].delta ? glmq_rd_le32(e) + (uint32_t)hostile[_i].delta
                                          : (uint32_t)hostile[_i].set);
    resign(f);
    char *bad = tu_path(tmpdir, "hostile.glmq");
    tu_write_file(bad, f, n);
    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_ne(glmq_pack_open(bad, &p, &err), GLMQ_OK);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, hostile[_i].msg) != NULL, "case %d: '%s' lacks '%s'", _i,
                  err.msg, hostile[_i].msg);
    free(f);
    free(bad);
    free(path);
}
END_TEST

START_TEST(header_errors)
{
    char *path = write_pack("hd.glmq");
    size_t n;
    uint8_t *f = tu_read_file(path, &n);
    char *bad = tu_path(tmpdir, "hd-bad.glmq");
    glmq_err err = {0};
    glmq_pack *p = NULL;
    /* wrong major version, re-signed */
    glmq_wr_le16(f + 8, 2);
    resign(f);
    tu_write_file(bad, f, n);
    ck_assert_int_eq(glmq_pack_open(bad, &p, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "version 2.0"));
    glmq_wr_le16(f + 8, 1);
    /* not a glmq file */
    memcpy(f, "GGUF", 4);
    tu_write_file(bad, f, n);
    ck_assert_int_eq(glmq_pack_open(bad, &p, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
    memcpy(f, "GLMQ", 4);
    /* metadata not JSON, re-signed */
    uint64_t mo = glmq_rd_le64(f + 72);
    f[mo] = 'x';
    resign(f);
    tu_write_file(bad, f, n);
    ck_assert_int_eq(glmq_pack_open(bad, &p, &err), GLMQ_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "metadata"));
    /* missing file */
    ck_assert_int_eq(glmq_pack_open("/nonexistent/x.glmq", &p, &err), GLMQ_E_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/x.glmq"));
    free(f);
    free(bad);
    free(path);
}
END_TEST


/* A failing write (rows out of order) leaves the previous output untouched and no temp file. */
START_TEST(atomic_failure_keeps_old)
{
    char *path = write_pack("keep.glmq");
    size_t n0;
    uint8_t *before = tu_read_file(path, &n0);
    glmq_pack_tensor_decl d[1] = {{"a", GLMQ_TYPE_F16, 2, {4, 4}}};
    glmq_pack_writer *w = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_writer_create(path, d, 1, NULL, 0, &w, &err), GLMQ_OK);
    uint8_t row[8] = {0};
    ck_assert_int_eq(glmq_pack_write_rows(w, 0, 2, 1, row, &err), GLMQ_E_INTERNAL);
    /* sticky: later calls keep failing with the first error */
    ck_assert_int_eq(glmq_pack_write_rows(w, 0, 0, 1, row, &err), GLMQ_E_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of order"));
    ck_assert_int_eq(glmq_pack_writer_finish(w, "{}", &err), GLMQ_E_INTERNAL);
    size_t n1;
    uint8_t *after = tu_read_file(path, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert_mem_eq(before, after, n0);
    ck_assert_int_eq(tu_count_entries(tmpdir), 1); /* only keep.glmq: no temp file left */
    /* abort also cleans up */
    ck_assert_int_eq(glmq_pack_writer_create(path, d, 1, NULL, 0, &w, &err), GLMQ_OK);
    glmq_pack_writer_abort(w);
    ck_assert_int_eq(tu_count_entries(tmpdir), 1);
    free(before);
    free(after);
    free(path);
}
END_TEST

/* Full disk: a child process with RLIMIT_FSIZE = 64 KiB writes a 1 MiB tensor. */
START_TEST(full_disk)
{
    char *path = tu_path(tmpdir, "full.glmq");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {65536, 65536};
        setrlimit(RLIMIT_FSIZE, &rl);
        glmq_pack_tensor_decl d[1] = {{"big", GLMQ_TYPE_F16, 2, {512, 1024}}};
        glmq_pack_writer *w = NULL;
        glmq_err err = {0};
        glmq_status st = glmq_pack_writer_create(path, d, 1, NULL, 0, &w, &err);
        if (st == GLMQ_OK) {
            uint8_t *buf = calloc(1, 2048);
            for (int r = 0; r < 512 && st == GLMQ_OK; r++)
                st = glmq_pack_write_rows(w, 0, r, 1, buf, &err);
            free(buf);
            st = glmq_pack_writer_finish(w, "{}", &err);
        }
        _exit(st == GLMQ_E_IO && strstr(err.msg, "full.glmq") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(tu_count_entries(tmpdir), 0);
    free(path);
}
END_TEST

/* Reservation fits, but the metadata written at finish crosses the limit: the pwrite path. */
START_TEST(full_disk_late)
{
    char *path = tu_path(tmpdir, "late.glmq");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {65536, 65536};
        setrlimit(RLIMIT_FSIZE, &rl);
        glmq_pack_tensor_decl d[1] = {{"t", GLMQ_TYPE_F16, 2, {30, 1024}}}; /* 60 KiB */
        glmq_pack_writer *w = NULL;
        glmq_err err = {0};
        glmq_status st = glmq_pack_writer_create(path, d, 1, NULL, 0, &w, &err);
        if (st != GLMQ_OK) _exit(2);
        uint8_t *buf = calloc(30, 2048);
        st = glmq_pack_write_rows(w, 0, 0, 30, buf, &err);
        if (st != GLMQ_OK) _exit(3);
        char *meta = malloc(20000);
        memset(meta, ' ', 19998);
        meta[0] = '{';
        meta[19997] = '}';
        meta[19998] = 0;
        st = glmq_pack_writer_finish(w, meta, &err);
        _exit(st == GLMQ_E_IO && strstr(err.msg, "write of") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(tu_count_entries(tmpdir), 0);
    free(path);
}
END_TEST

static Suite *pack_suite(void)
{
    Suite *s = suite_create("pack");
    TCase *tc = tcase_create("pack");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, roundtrip);
    tcase_add_test(tc, deterministic);
    tcase_add_test(tc, flip_every_byte);
    tcase_add_test(tc, truncated);
    tcase_add_loop_test(tc, hostile_directory, 0, (int)(sizeof hostile / sizeof hostile[0]));
    tcase_add_test(tc, header_errors);
    tcase_add_test(tc, atomic_failure_keeps_old);
    tcase_add_test(tc, full_disk);
    tcase_add_test(tc, full_disk_late);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pack_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
