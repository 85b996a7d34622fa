/*
 * cmd_bench.c - glmq bench convert SRC_DIR [...]: conversion throughput against a `cat` of the
 * same files measured in the same run, and peak RSS. A benchmark, not a test: it reports ratios
 * so that a noisy shared machine still gives comparable figures.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: glmq bench convert SRC_DIR [-o OUT.glmq] [--type int4|int8|f16] [--threads N]\n"
    "                          [--repeat K]\n"
    "       glmq bench gemv [options]     (INT4/INT8 kernels vs read bandwidth; --help)\n"
    "       glmq bench forward MODEL [...] (prefill and decode tokens/s vs roofline; --help)\n"
    "\n"
    "Reads every file of SRC_DIR like `cat` would (1 MiB read() calls, page cache warmed by a\n"
    "first pass), then converts SRC_DIR K times (default 1) and reports input GB/s of the\n"
    "conversion, its ratio to the cat read rate, and the process's peak RSS. OUT defaults to a\n"
    "temporary file next to SRC_DIR that is removed afterwards.\n";

/* Read every regular file in dir once; returns bytes read, or -1. */
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

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "gemv")) return glmq_bench_kernels(argc - 1, argv + 1);
    if (!strcmp(argv[1], "forward")) return cli_bench_forward(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") != 0)
        return cli_usage("bench", "unknown benchmark '%s' (convert, gemv, forward)", argv[1]);
    const char *src = NULL, *outp = NULL;
    int repeat = 1;
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o")) {
            if (++i >= argc) return cli_usage("bench", "-o needs a file name");
            outp = argv[i];
        } else if (!strcmp(a, "--type")) {
            if (++i >= argc) return cli_usage("bench", "--type needs a value");
            o.weight_type = !strcmp(argv[i], "int8") ? GLMQ_TYPE_INT8
                            : !strcmp(argv[i], "f16") ? GLMQ_TYPE_F16
                                                      : GLMQ_TYPE_INT4;
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (o.threads = cli_parse_int(argv[i], 1, 1024)) < 0)
                return cli_usage("bench", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--repeat")) {
            if (++i >= argc || (repeat = cli_parse_int(argv[i], 1, 100)) < 0)
                return cli_usage("bench", "--repeat needs a number from 1 to 100");
        } else if (a[0] == '-') {
            return cli_usage("bench", "unknown option '%s'", a);
        } else {
            src = a;
        }
    }
    if (!src) return cli_usage("bench", "missing SRC_DIR");
    char tmp[4096];
    if (!outp) {
        snprintf(tmp, sizeof tmp, "%s.bench.glmq", src);
        outp = tmp;
    }
    double bytes = cat_dir(src); /* warm the page cache */
    if (bytes < 0) {
        fprintf(stderr, "glmq: error: cannot read '%s': %s\n", src, strerror(errno));
        return EXIT_ERR;
    }
    double t0 = cli_now();
    cat_dir(src);
    double cat_s = cli_now() - t0;
    double cat_rate = bytes / cat_s;
    printf("cat:     %.2f GB in %.3f s = %.2f GB/s\n", bytes / 1e9, cat_s, cat_rate / 1e9);
    double best = 1e30;
    glmq_convert_report rep = {0};
    for (int r = 0; r < repeat; r++) {
        glmq_err err = {0};
        glmq_convert_report_free(&rep);
        t0 = cli_now();
        if (glmq_convert(src, outp, &o, &rep, &err) != GLMQ_OK) return cli_error(&err);
        double dt = cli_now() - t0;
        if (dt < best) best = dt;
        printf("convert: run %d: %.3f s = %.2f GB/s of input\n", r + 1, dt,
               (double)rep.input_bytes / dt / 1e9);
    }
    double rate = (double)rep.input_bytes / best;
    printf("convert: best %.3f s, %.2f GB input -> %.2f GB output, %.2f GB/s = %.0f%% of cat\n",
           best, (double)rep.input_bytes / 1e9, (double)rep.output_bytes / 1e9, rate / 1e9,
           100.0 * rate / cat_rate);
    printf("peak RSS: %.0f MB\n", cli_peak_rss() / 1e6);
    glmq_convert_report_free(&rep);
    if (outp == tmp) unlink(tmp);
    return EXIT_OK;
}
