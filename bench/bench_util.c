/*
 * bench_util.c - timing, medians and the CLI-style messages of the benchmarks (bench.h).
 *
 * These mirror the CLI's helpers (src/cli/cli_util.c) because bench/ sits below the CLI and may
 * not include it; the messages and exit codes are the same, so `glmq bench ...` behaves as any
 * other subcommand.
 */
#include "bench/bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

double glmq_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double glmq_bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int glmq_bench_parse_int(const char *s, int lo, int hi)
{
    if (!s || !*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) return -1;
    return (int)v;
}

int glmq_bench_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "glmq: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nsee 'glmq %s --help'\n", cmd);
    va_end(ap);
    return GLMQ_BENCH_USAGE;
}

int glmq_bench_error(const glmq_err *err)
{
    fprintf(stderr, "glmq: error: %s\n", err->msg[0] ? err->msg : glmq_status_str(err->code));
    return GLMQ_BENCH_ERR;
}

double glmq_bench_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}
