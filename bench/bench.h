/*
 * bench.h - the benchmarks behind `glmq bench convert|gemv|forward`.
 *
 * bench/ is a layer of its own between convert/verify and the CLI (tests/check_layers.sh): it
 * may include anything below it (core, formats, quant, runtime, convert, verify) but never
 * src/cli, which only dispatches to it. A benchmark is not a test: it reports medians and
 * ratios to a reference measured in the same run, so that a noisy shared machine still gives
 * comparable figures.
 *
 * The gemv and forward entry points take the arguments after "bench" (argv[0] is the
 * benchmark name), parse them, print their tables on stdout and return an exit code of the
 * glmq command (GLMQ_BENCH_OK / _ERR / _USAGE, equal to the CLI's 0 / 1 / 2). Messages go to
 * stderr in the CLI's "glmq: error: ..." form. `bench convert` is measured here and parsed and
 * printed by src/cli/cmd_bench.c.
 */
#ifndef GLMQ_BENCH_H
#define GLMQ_BENCH_H

#include "glmq.h"
#include "core/internal.h" /* glmq_now, glmq_median, glmq_parse_int, glmq_peak_rss */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum { GLMQ_BENCH_OK = 0, GLMQ_BENCH_ERR = 1, GLMQ_BENCH_USAGE = 2 };

/* glmq bench gemv [options]: INT4/INT8 kernels against the read bandwidth (bench_kernels.c). */
int glmq_bench_gemv(int argc, char **argv);
/* glmq bench forward MODEL [options]: prefill and decode speed (bench_forward.c). */
int glmq_bench_forward(int argc, char **argv);
/* glmq bench tokenize MODEL --text FILE: tokenizer speed and memory vs input size
 * (bench_tokenize.c). */
int glmq_bench_tokenize(int argc, char **argv);

/* Best read bandwidth of this machine over every kernel level's sum probe, on `threads`
 * threads, summing `mb` MiB; median of `runs` runs (1..64). Bytes/s; 0 on allocation failure.
 * (bench_kernels.c) */
double glmq_bench_read_bandwidth(int threads, int mb, int runs);

/* ---- bench convert (bench_convert.c) -------------------------------------------------------- */

/* Reads every regular file directly in dir twice like `cat` (1 MiB read() calls): the first
 * pass warms the page cache, the second is timed. *bytes is one pass's byte count and *seconds
 * the timed pass. GLMQ_E_IO with a message naming dir when it cannot be opened. */
glmq_status glmq_bench_cat(const char *dir, double *bytes, double *seconds, glmq_err *err);

/* Called after each timed conversion: run (1-based), its wall time and its report. */
typedef void (*glmq_bench_convert_cb)(void *user, int run, double seconds,
                                      const glmq_convert_report *rep);

typedef struct {
    double best_seconds;                /* the fastest conversion */
    uint64_t input_bytes, output_bytes; /* of the last conversion (all convert the same input) */
    double peak_rss;                    /* peak resident set size of the process after, bytes */
} glmq_bench_convert_result;

/* Converts src to out `repeat` times (>= 1) with opts, calling cb (may be NULL) after each run.
 * Returns the first failing conversion's status; *res is filled on GLMQ_OK. */
glmq_status glmq_bench_convert(const char *src, const char *out, const glmq_convert_opts *opts,
                               int repeat, glmq_bench_convert_cb cb, void *user,
                               glmq_bench_convert_result *res, glmq_err *err);

/* ---- helpers shared by the benchmarks (bench_util.c) ---------------------------------------- */

/* "glmq: <fmt>" and a hint to 'glmq <cmd> --help' on stderr; returns GLMQ_BENCH_USAGE. */
int glmq_bench_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int glmq_bench_vusage(const char *cmd, const char *fmt, va_list ap);
/* "glmq: error: <msg>" on stderr; returns GLMQ_BENCH_ERR. */
int glmq_bench_error(const glmq_err *err);

#endif
