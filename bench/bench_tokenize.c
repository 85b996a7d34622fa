/*
 * bench_tokenize.c - glmq bench tokenize MODEL --text FILE: tokenizer throughput and memory as
 * the input grows.
 *
 * For each size (--sizes, MB; default 1,5,20) two inputs are built from FILE: "ordinary" (FILE
 * repeated up to the size, cut at a UTF-8 boundary) and "one-line" (the same with every newline
 * a space: one line of the whole size). Each is encoded in a child process of its own, so every
 * peak RSS is that run's: the child reports its speed (MB/s, median of --runs), the growth of
 * its peak RSS while encoding over the input size, and its peak RSS. The last columns are
 * ratios to the smallest size's speed and memory ratio: a linear tokenizer keeps both near 1.
 * MODEL is anything glmq_tokenizer_load opens (a .glmq, or a directory with config.json and
 * the tokenizer file, weights or not).
 */
#include "bench/bench.h"
#include "formats/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: glmq bench tokenize MODEL --text FILE [--sizes MB,MB,...] [--runs N]\n"
    "\n"
    "Encodes inputs of each size (default 1,5,20 MB) built from FILE, as is (repeated) and on\n"
    "one line (newlines -> spaces), each in a child process, and prints MB/s, the peak RSS growth\n"
    "per input byte, and both as ratios to the smallest size (near 1 = linear).\n";

static double maxrss_bytes(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss * 1024.0 : 0.0;
}

/* FILE repeated to `size` bytes, cut back to a UTF-8 character start. */
static char *build(const char *src, size_t sn, size_t size, int one_line, size_t *len)
{
    char *t = malloc(size + 1);
    if (!t) return NULL;
    size_t n = 0;
    while (n < size) {
        size_t k = sn < size - n ? sn : size - n;
        memcpy(t + n, src, k);
        n += k;
    }
    while (n > 0 && ((unsigned char)t[n - 1] & 0xC0) == 0x80) n--;
    if (n > 0 && ((unsigned char)t[n - 1] & 0xC0) == 0xC0) n--;
    if (one_line)
        for (size_t i = 0; i < n; i++)
            if (t[i] == '\n') t[i] = ' ';
    *len = n;
    return t;
}

typedef struct {
    double mbps, growth, peak;
    size_t ids;
} run_result;

/* In the child: build, encode `runs` times, report through the pipe. */
static int child(const glmq_tokenizer *t, const char *src, size_t sn, size_t size, int one_line,
                 int runs, int fd)
{
    run_result r = {0};
    size_t len;
    char *text = build(src, sn, size, one_line, &len);
    if (!text) return 1;
    double before = maxrss_bytes(), best = 1e30;
    for (int k = 0; k < runs; k++) {
        glmq_ids v = {0};
        glmq_err e = {0};
        double t0 = glmq_now();
        if (glmq_tokenizer_encode(t, text, len, &v, &e) != GLMQ_OK) {
            fprintf(stderr, "glmq: error: %s\n", e.msg);
            return 1;
        }
        double dt = glmq_now() - t0;
        if (dt < best) best = dt;
        r.ids = v.n;
        glmq_ids_free(&v);
    }
    r.mbps = (double)len / best / 1e6;
    r.peak = maxrss_bytes();
    r.growth = (r.peak - before) / (double)len;
    free(text);
    return write(fd, &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1;
}

static int measure(const glmq_tokenizer *t, const char *src, size_t sn, size_t size,
                   int one_line, int runs, run_result *r)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(p[0]);
        _exit(child(t, src, sn, size, one_line, runs, p[1]));
    }
    close(p[1]);
    ssize_t got = read(p[0], r, sizeof *r);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int glmq_bench_tokenize(int argc, char **argv)
{
    const char *model = NULL, *textf = NULL, *sizes = "1,5,20";
    int runs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return GLMQ_BENCH_OK;
        } else if (!strcmp(a, "--text")) {
            if (++i >= argc) return glmq_bench_usage("bench tokenize", "--text needs a file");
            textf = argv[i];
        } else if (!strcmp(a, "--sizes")) {
            if (++i >= argc) return glmq_bench_usage("bench tokenize", "--sizes needs a list");
            sizes = argv[i];
        } else if (!strcmp(a, "--runs")) {
            if (++i >= argc || (runs = glmq_parse_int(argv[i], 1, 100)) < 0)
                return glmq_bench_usage("bench tokenize", "--runs needs a number from 1 to 100");
        } else if (a[0] == '-') {
            return glmq_bench_usage("bench tokenize", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return glmq_bench_usage("bench tokenize", "unexpected argument '%s'", a);
        }
    }
    if (!model) return glmq_bench_usage("bench tokenize", "missing MODEL");
    if (!textf) return glmq_bench_usage("bench tokenize", "missing --text FILE");
    int mb[16], nmb = 0;
    for (const char *s = sizes; *s && nmb < 16;) {
        char num[16];
        size_t k = strcspn(s, ",");
        if (k == 0 || k >= sizeof num) return glmq_bench_usage("bench tokenize", "bad --sizes");
        memcpy(num, s, k);
        num[k] = 0;
        if ((mb[nmb++] = glmq_parse_int(num, 1, 200)) < 0)
            return glmq_bench_usage("bench tokenize", "--sizes: MB from 1 to 200");
        s += k + (s[k] == ',');
    }
    glmq_err err = {0};
    glmq_tokenizer *t = NULL;
    FILE *f = fopen(textf, "rb");
    if (!f) {
        fprintf(stderr, "glmq: error: cannot open '%s'\n", textf);
        return GLMQ_BENCH_ERR;
    }
    char *src = NULL;
    size_t sn = 0, cap = 0, got;
    char buf[65536];
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (sn + got > cap) {
            cap = 2 * (sn + got);
            char *ns = realloc(src, cap);
            if (!ns) break;
            src = ns;
        }
        memcpy(src + sn, buf, got);
        sn += got;
    }
    fclose(f);
    if (!sn) {
        free(src);
        fprintf(stderr, "glmq: error: '%s' is empty\n", textf);
        return GLMQ_BENCH_ERR;
    }
    if (glmq_tokenizer_load(model, &t, &err) != GLMQ_OK) {
        free(src);
        return glmq_bench_error(&err);
    }
    printf("%-9s %6s %10s %9s %12s %10s %10s %11s\n", "input", "MB", "ids", "MB/s",
           "RSS growth", "peak RSS", "speed vs", "growth vs");
    int rc = GLMQ_BENCH_OK;
    for (int one = 0; one < 2 && rc == GLMQ_BENCH_OK; one++) {
        run_result first = {0};
        for (int i = 0; i < nmb; i++) {
            run_result r;
            if (measure(t, src, sn, (size_t)mb[i] * 1000000, one, runs, &r) != 0) {
                fprintf(stderr, "glmq: error: the %d MB run failed\n", mb[i]);
                rc = GLMQ_BENCH_ERR;
                break;
            }
            if (i == 0) first = r;
            printf("%-9s %6d %10zu %9.2f %10.2fx %8.0f MB %9.2fx %10.2fx\n",
                   one ? "one-line" : "ordinary", mb[i], r.ids, r.mbps, r.growth, r.peak / 1e6,
                   r.mbps / first.mbps, first.growth > 0 ? r.growth / first.growth : 0.0);
        }
    }
    glmq_tokenizer_close(t);
    free(src);
    return rc;
}
