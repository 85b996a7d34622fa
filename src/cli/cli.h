/*
 * cli.h - shared helpers of the glmq command-line tool. Each cmd_<name>.c parses its arguments,
 * calls the library and maps the status to an exit code; nothing else.
 */
#ifndef GLMQ_CLI_H
#define GLMQ_CLI_H

#include "glmq.h"
#include "core/internal.h" /* glmq_now, glmq_median, glmq_parse_int, glmq_peak_rss */
#include "verify/report.h" /* glmq_gate, glmq_report_ctx (verify and merge) */

#include <stdio.h>

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_GATE = 3 };

int cmd_convert(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* cmd_bench dispatches to the benchmarks of bench/bench.h (glmq_bench_gemv, _forward, ...) */
int cmd_logits(int, char **);
int cmd_tokenize(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_generate(int argc, char **argv);

/* "glmq: error: <msg>" on stderr; returns EXIT_ERR. */
int cli_error(const glmq_err *err);
/* "glmq: <fmt>" usage error + hint; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Human-readable byte count ("1.23 GB") into buf. */
const char *cli_bytes(char *buf, size_t n, double bytes);

/* Progress bar on stderr when it is a TTY; a no-op otherwise. */
typedef struct {
    int enabled;
    double t0, last;
    const char *label;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, int quiet);
void cli_progress_cb(void *user, uint64_t done, uint64_t total);
void cli_progress_end(cli_progress *p);

/* Options shared by ppl and verify (cmd_ppl.c) into a verify/metrics.h glmq_eval_opts: returns
 * -1 when argv[*i] is not one of them, else an exit code (EXIT_OK when consumed). */
struct glmq_eval_opts;
int cli_eval_option(const char *cmd, int argc, char **argv, int *i, struct glmq_eval_opts *o,
                    const char **text, const char **ids_file);
/* Progress of an evaluation on stderr when it is a TTY. */
void cli_eval_progress(struct glmq_eval_opts *o, cli_progress *p, int quiet);

/* The thresholds shared by verify and merge (cmd_verify.c): --max-ppl-ratio, --max-kld,
 * --max-kld-p99, --min-top1 into g; -1 when argv[*i] is not one of them, else an exit code. */
int cli_gate_option(const char *cmd, int argc, char **argv, int *i, glmq_gate *g);
/* The end of verify and merge (cmd_verify.c): print the drift table unless quiet, apply the
 * gate (ctx->checks and n_checks are set here), write the report and the plot when given.
 * Returns EXIT_OK, EXIT_GATE or EXIT_ERR. */
int cli_verify_finish(const glmq_drift *dp, glmq_report_ctx *ctx, const glmq_gate *gate,
                      const char *report, const char *plot, int quiet);

#endif
