/*
 * cmd_bench.c - glmq bench convert|gemv|forward|tokenize: a dispatcher to the benchmarks in bench/
 * (bench/bench.h). `bench gemv` and `bench forward` parse their own options; for `bench
 * convert` this file parses the options and prints the figures that bench/bench_convert.c
 * measures (conversion throughput against a `cat` of the same files, and peak RSS).
 */
#include "cli.h"
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert((int)GLMQ_BENCH_OK == (int)EXIT_OK && (int)GLMQ_BENCH_ERR == (int)EXIT_ERR &&
                   (int)GLMQ_BENCH_USAGE == (int)EXIT_USAGE,
               "the benchmarks return the exit codes of the glmq command");

static const char usage_text[] =
    "usage: glmq bench convert SRC_DIR [-o OUT.glmq] [--type int4|int8|f16] [--threads N]\n"
    "                          [--repeat K]\n"
    "       glmq bench gemv [options]     (INT4/INT8 kernels vs read bandwidth; --help)\n"
    "       glmq bench forward MODEL [...] (prefill and decode tokens/s vs roofline; --help)\n"
    "       glmq bench tokenize MODEL --text FILE [...] (tokenizer MB/s and memory vs size)\n"
    "\n"
    "Reads every file of SRC_DIR like `cat` would (1 MiB read() calls, page cache warmed by a\n"
    "first pass), then converts SRC_DIR K times (default 1) and reports input GB/s of the\n"
    "conversion, its ratio to the cat read rate, and the process's peak RSS. OUT defaults to a\n"
    "temporary file next to SRC_DIR that is removed afterwards.\n";

/* One line per timed conversion, as it finishes. */
static void print_run(void *user, int run, double seconds, const glmq_convert_report *rep)
{
    (void)user;
    printf("convert: run %d: %.3f s = %.2f GB/s of input\n", run, seconds,
           (double)rep->input_bytes / seconds / 1e9);
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "gemv")) return glmq_bench_gemv(argc - 1, argv + 1);
    if (!strcmp(argv[1], "forward")) return glmq_bench_forward(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize")) return glmq_bench_tokenize(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") != 0)
        return cli_usage("bench", "unknown benchmark '%s' (convert, gemv, forward, tokenize)",
                         argv[1]);
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
            if (++i >= argc || (o.threads = glmq_parse_int(argv[i], 1, 1024)) < 0)
                return cli_usage("bench", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--repeat")) {
            if (++i >= argc || (repeat = glmq_parse_int(argv[i], 1, 100)) < 0)
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
    glmq_err err = {0};
    double bytes, cat_s;
    if (glmq_bench_cat(src, &bytes, &cat_s, &err) != GLMQ_OK) return cli_error(&err);
    double cat_rate = bytes / cat_s;
    printf("cat:     %.2f GB in %.3f s = %.2f GB/s\n", bytes / 1e9, cat_s, cat_rate / 1e9);
    glmq_bench_convert_result res;
    if (glmq_bench_convert(src, outp, &o, repeat, print_run, NULL, &res, &err) != GLMQ_OK)
        return cli_error(&err);
    double rate = (double)res.input_bytes / res.best_seconds;
    printf("convert: best %.3f s, %.2f GB input -> %.2f GB output, %.2f GB/s = %.0f%% of cat\n",
           res.best_seconds, (double)res.input_bytes / 1e9, (double)res.output_bytes / 1e9,
           rate / 1e9, 100.0 * rate / cat_rate);
    printf("peak RSS: %.0f MB\n", res.peak_rss / 1e6);
    if (outp == tmp) unlink(tmp);
    return EXIT_OK;
}
