/*
 * check_core.c - src/core: fp16/bf16 conversion, error messages, the thread pool, huge-page
 * buffers.
 *
 * The fp16 reference here is the compiler's own _Float16 (IEEE binary16 with round-to-nearest-
 * even conversions), an implementation independent of src/core/fp16.c.
 */
#define _DEFAULT_SOURCE /* mincore */
#include "core/file.h"
#include "core/internal.h"
#include "core/pool.h"
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#ifdef __FLT16_MAX__
START_TEST(f16_to_f32_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 x;
        uint16_t b = (uint16_t)h;
        memcpy(&x, &b, 2);
        float want = (float)x, got = glmq_f16_to_f32(b);
        /* a failed check only: Check records every passing assertion with a write, which
         * dominates this loop (and is slow under emulation) */
        if (isnan(want)) {
            if (!isnan(got)) ck_abort_msg("h=%04x: %a is not a NaN", h, got);
            continue;
        }
        if (memcmp(&want, &got, 4) != 0) ck_abort_msg("h=%04x: %a != %a", h, got, want);
    }
}
END_TEST

START_TEST(f32_to_f16_rounding)
{
    /* every f16 value and the midpoints between neighbours (ties to even), plus random bits */
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < 4000000; i++) {
        uint32_t u;
        if (i < 65536 * 3) {
            uint16_t h = (uint16_t)(i / 3);
            float f = glmq_f16_to_f32(h);
            memcpy(&u, &f, 4);
            u += (i % 3 == 1) ? 0x1000u : (i % 3 == 2) ? 0x0fffu : 0; /* midpoint, just below */
        } else {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            u = (uint32_t)rng;
        }
        float f;
        memcpy(&f, &u, 4);
        _Float16 x = (_Float16)f;
        uint16_t want;
        memcpy(&want, &x, 2);
        uint16_t got = glmq_f32_to_f16(f);
        if (isnan(f)) {
            if ((got & 0x7c00) != 0x7c00 || !(got & 0x3ff)) ck_abort_msg("%08x: %04x", u, got);
            continue;
        }
        if (got != want) ck_abort_msg("f=%a (%08x): %04x != %04x", f, u, got, want);
    }
}
END_TEST
#endif

START_TEST(bf16)
{
    ck_assert_float_eq(glmq_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(glmq_bf16_to_f32(0xc040), -3.0f);
    ck_assert(isinf(glmq_bf16_to_f32(0x7f80)));
    uint8_t le[4] = {0x80, 0x3f, 0x00, 0x40};
    float out[2];
    glmq_bf16_to_f32_row(le, out, 2);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], 2.0f);
}
END_TEST

START_TEST(err_prefix)
{
    glmq_err err = {0};
    ck_assert_int_eq(glmq_fail(&err, GLMQ_E_FORMAT, "bad %s at byte %d", "thing", 12),
                     GLMQ_E_FORMAT);
    ck_assert_str_eq(err.msg, "bad thing at byte 12");
    glmq_err_prefix(&err, GLMQ_E_IO, "file '%s': ", "x");
    ck_assert_str_eq(err.msg, "file 'x': bad thing at byte 12");
    ck_assert_int_eq(err.code, GLMQ_E_FORMAT);
    /* overlong messages are truncated, never overflow */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    glmq_fail(&err, GLMQ_E_FORMAT, "%s", big);
    glmq_err_prefix(&err, GLMQ_E_FORMAT, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), GLMQ_ERR_SIZE - 1);
    ck_assert_int_eq(glmq_fail(NULL, GLMQ_E_IO, "x"), GLMQ_E_IO);
    ck_assert_str_eq(glmq_status_str(GLMQ_E_CHECKSUM), "checksum mismatch");
}
END_TEST

typedef struct {
    int64_t n;
    double *out;
} sum_job;

static void sum_run(void *arg, int ith, int nth)
{
    sum_job *j = arg;
    int64_t a = j->n * ith / nth, b = j->n * (ith + 1) / nth;
    double s = 0;
    for (int64_t i = a; i < b; i++) s += sin((double)i);
    j->out[ith] = s;
}

/* Every index runs exactly once per job; ith > 0 optionally outlasts the caller's spin. */
typedef struct {
    int counts[4];
    int slow_us; /* worker indices sleep this long */
} count_job;

static void count_run(void *arg, int ith, int nth)
{
    count_job *j = arg;
    (void)nth;
    if (ith > 0 && j->slow_us) {
        struct timespec ts = {0, (long)j->slow_us * 1000};
        nanosleep(&ts, NULL);
    }
    j->counts[ith]++;
}

/* The pool's three ways of waiting: back-to-back jobs (workers still spinning), jobs after a
 * pause longer than the spin (workers asleep on the condition variable), and workers slower
 * than the caller's spin (the caller asleep). Each job must run every index exactly once and
 * return only after all have finished. */
START_TEST(pool_spin_and_sleep)
{
    for (int threads = 2; threads <= 3; threads++) {
        glmq_pool *p = NULL;
        ck_assert_int_eq(glmq_pool_create(threads, &p, NULL), GLMQ_OK);
        for (int rep = 0; rep < 60; rep++) {
            count_job j = {{0}, rep % 3 == 2 ? 1000 : 0};
            if (rep % 3 == 1) {
                struct timespec ts = {0, 2000000}; /* 2 ms: every worker falls asleep */
                nanosleep(&ts, NULL);
            }
            glmq_pool_run(p, count_run, &j);
            for (int i = 0; i < threads; i++) ck_assert_int_eq(j.counts[i], 1);
        }
        glmq_pool_free(p);
    }
}
END_TEST

START_TEST(pool_runs_every_index)
{
    for (int threads = 1; threads <= 4; threads++) {
        glmq_pool *p = NULL;
        ck_assert_int_eq(glmq_pool_create(threads, &p, NULL), GLMQ_OK);
        ck_assert_int_eq(glmq_pool_size(p), threads);
        double out[4] = {0};
        sum_job j = {100000, out};
        for (int rep = 0; rep < 50; rep++) glmq_pool_run(p, sum_run, &j);
        double total = 0, want = 0;
        for (int i = 0; i < threads; i++) total += out[i];
        for (int64_t i = 0; i < j.n; i++) want += sin((double)i);
        ck_assert_double_eq_tol(total, want, 1e-6);
        glmq_pool_free(p);
    }
    glmq_pool_free(NULL);
    glmq_pool *p = NULL;
    ck_assert_int_eq(glmq_pool_create(5000, &p, NULL), GLMQ_E_INVALID);
    ck_assert_ptr_null(p);
}
END_TEST

/* glmq_huge_alloc: 2 MiB aligned, zero-filled, writable over the pages the size needs and
 * trimmed after them (the over-allocation's tail was unmapped), and gone after glmq_huge_free
 * (mincore reports unmapped pages as ENOMEM); sizes it cannot give are NULL. */
START_TEST(huge_alloc)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {1, 4096, 3 * ((size_t)1 << 20) + 17, 9 * ((size_t)1 << 20)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const size_t n = sizes[i], used = (n + page - 1) / page * page;
        uint8_t *p = glmq_huge_alloc(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % ((uintptr_t)2 << 20), 0);
        for (size_t o = 0; o < n; o += 4093) ck_assert_uint_eq(p[o], 0);
        ck_assert_uint_eq(p[n - 1], 0);
        for (size_t o = 0; o < n; o += 4093) p[o] = (uint8_t)(o * 7 + 1);
        for (size_t o = 0; o < n; o += 4093) ck_assert_uint_eq(p[o], (uint8_t)(o * 7 + 1));
        unsigned char vec[4096];
        ck_assert_int_eq(mincore(p, used < sizeof vec * page ? used : sizeof vec * page, vec), 0);
        errno = 0;
        ck_assert_int_eq(mincore(p + used, page, vec), -1);
        ck_assert_int_eq(errno, ENOMEM);
        glmq_huge_free(p, n);
        errno = 0;
        ck_assert_int_eq(mincore(p, page, vec), -1);
        ck_assert_int_eq(errno, ENOMEM);
    }
    ck_assert_ptr_null(glmq_huge_alloc(0));
    ck_assert_ptr_null(glmq_huge_alloc(SIZE_MAX));
    glmq_huge_free(NULL, 5);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
#ifdef __FLT16_MAX__
    tcase_add_test(tc, f16_to_f32_all);
    tcase_add_test(tc, f32_to_f16_rounding);
#endif
    tcase_add_test(tc, bf16);
    tcase_add_test(tc, err_prefix);
    tcase_add_test(tc, pool_runs_every_index);
    tcase_add_test(tc, pool_spin_and_sleep);
    tcase_add_test(tc, huge_alloc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
