/*
 * bench_util.c - the glmq command's usage and error lines (bench.h), for the benchmarks and,
 * through cli_usage/cli_error, for every other subcommand: bench/ sits below the CLI, so the one
 * copy lives here and `glmq bench ...` prints as any other subcommand. Timing, medians,
 * option parsing and peak RSS are core/util.c's, shared with the CLI.
 */
#include "bench/bench.h"

#include <stdarg.h>
#include <stdio.h>

int glmq_bench_vusage(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "glmq: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nsee 'glmq %s --help'\n", cmd);
    return GLMQ_BENCH_USAGE;
}

int glmq_bench_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    glmq_bench_vusage(cmd, fmt, ap);
    va_end(ap);
    return GLMQ_BENCH_USAGE;
}

int glmq_bench_error(const glmq_err *err)
{
    fprintf(stderr, "glmq: error: %s\n", err->msg[0] ? err->msg : glmq_status_str(err->code));
    return GLMQ_BENCH_ERR;
}

