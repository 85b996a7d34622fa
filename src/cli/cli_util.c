/* cli_util.c - helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include "bench/bench.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int cli_error(const glmq_err *err)
{
    glmq_bench_error(err); /* one copy of the message format (bench/bench_util.c) */
    return EXIT_ERR;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    glmq_bench_vusage(cmd, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_bytes(char *buf, size_t n, double b)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) {
        b /= 1000;
        i++;
    }
    snprintf(buf, n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
    return buf;
}


void cli_progress_init(cli_progress *p, const char *label, int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->t0 = p->last = glmq_now();
    p->label = label;
}

void cli_progress_cb(void *user, uint64_t done, uint64_t total)
{
    cli_progress *p = user;
    if (!p->enabled) return;
    double now = glmq_now();
    if (now - p->last < 0.1 && done < total) return;
    p->last = now;
    double frac = total ? (double)done / (double)total : 1.0;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r%s [%s] %3.0f%%  %.2f GB/s  ETA %.0fs ", p->label, bar, frac * 100,
            rate / 1e9, eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled) fprintf(stderr, "\r\033[K");
}


