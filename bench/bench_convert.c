/*
 * bench_convert.c - the measurement behind `glmq bench convert SRC_DIR`: conversion throughput
 * against a `cat` of the same files measured in the same run, and peak RSS. The CLI
 * (src/cli/cmd_bench.c) parses the options and prints the figures.
 *
 * The files are read once untimed so that both the timed cat and the conversions start from a
 * warm page cache: the comparison is conversion work against plain read() of the same bytes,
 * not against the disk.
 */
#include "bench/bench.h"
#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read every regular file in dir once with 1 MiB read() calls; returns bytes read, or -1 with
 * errno when dir cannot be opened. */
static double cat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *buf = malloc(1 << 20);
    double total = 0;
    struct dirent *e;
    while (buf && (e = readdir(d)) != NULL) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        ssize_t r;
        while ((r = read(fd, buf, 1 << 20)) > 0) total += (double)r;
        close(fd);
    }
    free(buf);
    closedir(d);
    return total;
}

glmq_status glmq_bench_cat(const char *dir, double *bytes, double *seconds, glmq_err *err)
{
    *bytes = cat_dir(dir); /* warm the page cache */
    GLMQ_FAIL_IF(*bytes < 0, err, GLMQ_E_IO, "cannot read '%s': %s", dir, strerror(errno));
    const double t0 = glmq_now();
    cat_dir(dir);
    *seconds = glmq_now() - t0;
    return GLMQ_OK;
}

glmq_status glmq_bench_convert(const char *src, const char *out, const glmq_convert_opts *opts,
                               int repeat, glmq_bench_convert_cb cb, void *user,
                               glmq_bench_convert_result *res, glmq_err *err)
{
    memset(res, 0, sizeof *res);
    double best = 1e30;
    glmq_convert_report rep = {0};
    for (int r = 0; r < repeat; r++) {
        glmq_convert_report_free(&rep);
        const double t0 = glmq_now();
        const glmq_status st = glmq_convert(src, out, opts, &rep, err);
        if (st != GLMQ_OK) {
            glmq_convert_report_free(&rep);
            return st;
        }
        const double dt = glmq_now() - t0;
        if (dt < best) best = dt;
        if (cb) cb(user, r + 1, dt, &rep);
    }
    res->best_seconds = best;
    res->input_bytes = rep.input_bytes;
    res->output_bytes = rep.output_bytes;
    res->peak_rss = glmq_peak_rss();
    glmq_convert_report_free(&rep);
    return GLMQ_OK;
}
