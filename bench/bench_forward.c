/*
 * bench_forward.c - glmq bench forward MODEL: prefill and decode speed of the whole model.
 *
 * Prefill: one forward of --prompt tokens (the output layer only for the last one, as
 * generation needs), reported as tokens/s and as G int-ops/s (2 x layer weight parameters x
 * tokens / s). Decode: --decode single-token steps on the KV cache with logits, reported as
 * tokens/s and as a fraction of the bandwidth roofline, read bandwidth (measured in the same
 * run) / weight bytes each token streams (every layer weight with its scales, plus the output
 * layer). Medians of --runs runs.
 *
 * Long context (--context N): decode D tokens after an N-token context as well. A real prefill
 * of 32k tokens of a 9B model takes hours on 2 cores, so the KV cache of positions 0..N-1 is
 * filled with deterministic pseudo-random keys and values instead (glmq_forward_fill_context,
 * bench-only; the output says so): decode cost does not depend on the cached values. At long
 * context the roofline must count the cache too: each decoded token reads
 *     weight bytes + 2 * layers * groups * head_dim * 4 * ctx   bytes
 * (K and V, fp32, every key the token attends to; ctx = the mean over the D steps), and both
 * the short-context and the long-context figures use that count. --att head runs attention with
 * the per-head kernel (each query head re-reads its group's K and V) instead of the group
 * kernel; --att both measures the two alternately in every run and reports their ratio.
 *
 * The model is mmap'd, so a weight page the kernel has dropped from the page cache is read
 * from disk again and the figure measures the disk. The major page faults of the timed parts
 * are therefore counted and printed, and --mlock locks the weights in memory first (as
 * llama.cpp's --mlock; needs RLIMIT_MEMLOCK or CAP_IPC_LOCK).
 */
#include "bench/bench.h"
#include "runtime/forward.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static long major_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_majflt : 0;
}

/* mlock the pages holding [p, p + n). */
static int lock_range(const void *p, size_t n)
{
    if (!p || !n) return 0;
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (uintptr_t)p & ~(pg - 1), b = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    return mlock((const void *)a, b - a);
}

static const char usage_text[] =
    "usage: glmq bench forward MODEL [--prompt P] [--decode D] [--threads N] [--runs R]\n"
    "                              [--kernels fast|exact|reference] [--bw-mb M] [--mlock]\n"
    "                              [--context N] [--att group|head|both] [--no-mmap]\n"
    "\n"
    "Prefill of P tokens (default 512): tokens/s and G int-ops/s. Decode of D tokens (default\n"
    "16) on the KV cache: tokens/s and % of the roofline (read bandwidth measured in the same\n"
    "run / weight bytes per token). MODEL is a .glmq file or a checkpoint directory (e.g. a\n"
    "synthetic one from glmq_synth). Medians of R runs (default 3). Major page faults in the\n"
    "timed parts are reported (weights re-read from disk); --mlock locks the weights in RAM.\n"
    "--context N also decodes D tokens after an N-token context whose KV cache is filled with\n"
    "pseudo-random values (no prefill; ChatGLM2/3, GLM-4 only); rooflines count weight + KV\n"
    "bytes per token. --att: attention with the group kernel (default), the per-head kernel,\n"
    "or both alternately in every run (with their ratio). --no-mmap reads a .glmq / GGUF file\n"
    "into anonymous memory (huge pages where the kernel gives them) instead of mapping it.\n";

/* KV bytes one decoded token reads at context ctx (K and V, fp32). */
static double kv_bytes(const glmq_config *c, double ctx)
{
    return 2.0 * (double)c->n_layers * (double)c->n_kv_groups * (double)c->head_dim * 4.0 * ctx;
}

/* Decode ids[0..n) one token at a time, with logits; seconds, or -1 on error. */
static double decode_steps(glmq_forward *f, const int32_t *ids, int n, float *logits,
                           glmq_err *err)
{
    const double t0 = glmq_now();
    for (int i = 0; i < n; i++)
        if (glmq_forward_eval(f, ids + i, 1, logits, err) != GLMQ_OK) return -1;
    return glmq_now() - t0;
}

int glmq_bench_forward(int argc, char **argv)
{
    const char *model = NULL;
    int prompt = 512, decode = 16, threads = 0, runs = 3, bw_mb = 1024, lock = 0, context = 0;
    int att0 = 0, att1 = 0; /* attention variants measured: 0 group kernel, 1 per-head */
    unsigned open_flags = 0;
    glmq_forward_mode mode = GLMQ_FWD_FAST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *dst = !strcmp(a, "--prompt")    ? &prompt
                   : !strcmp(a, "--decode")  ? &decode
                   : !strcmp(a, "--threads") ? &threads
                   : !strcmp(a, "--runs")    ? &runs
                   : !strcmp(a, "--bw-mb")   ? &bw_mb
                   : !strcmp(a, "--context") ? &context
                                             : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return GLMQ_BENCH_OK;
        } else if (dst) {
            if (++i >= argc || (*dst = glmq_parse_int(argv[i], 1, 1 << 16)) < 0)
                return glmq_bench_usage("bench", "%s needs a positive number", a);
        } else if (!strcmp(a, "--att")) {
            if (++i >= argc) return glmq_bench_usage("bench", "--att needs a value");
            if (!strcmp(argv[i], "group")) att0 = att1 = 0;
            else if (!strcmp(argv[i], "head")) att0 = att1 = 1;
            else if (!strcmp(argv[i], "both")) att0 = 0, att1 = 1;
            else return glmq_bench_usage("bench", "--att is group, head or both");
        } else if (!strcmp(a, "--mlock")) {
            lock = 1;
        } else if (!strcmp(a, "--no-mmap")) {
            open_flags |= GLMQ_OPEN_LOAD;
        } else if (!strcmp(a, "--kernels")) {
            if (++i >= argc) return glmq_bench_usage("bench", "--kernels needs a value");
            mode = !strcmp(argv[i], "exact")       ? GLMQ_FWD_EXACT
                   : !strcmp(argv[i], "reference") ? GLMQ_FWD_REFERENCE
                                                   : GLMQ_FWD_FAST;
        } else if (a[0] == '-') {
            return glmq_bench_usage("bench", "unknown option '%s'", a);
        } else {
            model = a;
        }
    }
    if (!model) return glmq_bench_usage("bench", "missing MODEL");
    if (runs > 63) runs = 63;
    if (prompt < 3) prompt = 3;
    glmq_err err = {0};
    glmq_model *m = NULL;
    glmq_forward *f = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int rc = GLMQ_BENCH_OK;
    if (glmq_model_open_flags(model, open_flags, &m, &err) != GLMQ_OK)
        return glmq_bench_error(&err);
    const glmq_config *c = glmq_model_config(m);
    /* weight bytes each decoded token streams */
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0;
    double wbytes = 0, lparams = 0;
    if (glmq_config_tensors(c, &want, &nw, &err) != GLMQ_OK) {
        rc = glmq_bench_error(&err);
        goto done;
    }
    for (int64_t i = 0; i < nw; i++) {
        const glmq_tensor_info *t = glmq_model_tensor(m, want[i].name);
        if (!t && want[i].role == GLMQ_ROLE_OUTPUT) t = glmq_model_tensor(m, want[0].name);
        if (!t) continue;
        if (want[i].role == GLMQ_ROLE_LAYER_WEIGHT) lparams += (double)t->rows * (double)t->cols;
        if (want[i].role == GLMQ_ROLE_LAYER_WEIGHT || want[i].role == GLMQ_ROLE_OUTPUT)
            wbytes += (double)t->data_size + (double)t->scales_size;
        if (lock && (lock_range(t->data, t->data_size) != 0 ||
                     lock_range(t->scales, t->scales_size) != 0)) {
            fprintf(stderr, "glmq: error: --mlock: cannot lock %s (%s)\n", want[i].name,
                    strerror(errno));
            free(want);
            rc = GLMQ_BENCH_ERR;
            goto done;
        }
    }
    free(want);
    const int maxctx = context > prompt ? context : prompt;
    if (glmq_forward_create_mode(m, maxctx + decode, threads, mode, &f, &err) != GLMQ_OK) {
        rc = glmq_bench_error(&err);
        goto done;
    }
    int nth = glmq_forward_threads(f);
    double bw = glmq_bench_read_bandwidth(nth, bw_mb, 5);
    ids = malloc((size_t)(prompt + decode) * sizeof *ids);
    logits = malloc((size_t)c->vocab * sizeof *logits);
    if (!ids || !logits) {
        fprintf(stderr, "glmq: error: out of memory\n");
        rc = GLMQ_BENCH_ERR;
        goto done;
    }
    /* deterministic ids; ChatGLM-6B needs [gMASK] <sop> in the first call */
    uint64_t s = 1;
    for (int i = 0; i < prompt + decode; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)(c->vocab < 1000 ? c->vocab : 1000) + 10);
        if (ids[i] >= c->vocab) ids[i] = 0;
    }
    if (c->arch == GLMQ_ARCH_CHATGLM1) {
        ids[prompt - 2] = (int32_t)c->tok_gmask;
        ids[prompt - 1] = (int32_t)c->tok_sop;
    }
    /* [variant][run]: prefill, short-context decode, long-context decode */
    double tp[2][64], td[2][64], tl[2][64], rs[64], rl[64];
    long fp = 0, fd = 0;
    const int nvar = att1 != att0 ? 2 : 1;
    for (int r = 0; r < runs; r++) {
        for (int vi = 0; vi < nvar; vi++) {
            glmq_forward_set_att_per_head(f, vi ? att1 : att0);
            glmq_forward_reset(f);
            long f0 = major_faults();
            double t0 = glmq_now();
            if (glmq_forward_eval(f, ids, prompt - 1, NULL, &err) != GLMQ_OK ||
                glmq_forward_eval(f, ids + prompt - 1, 1, logits, &err) != GLMQ_OK) {
                rc = glmq_bench_error(&err);
                goto done;
            }
            tp[vi][r] = glmq_now() - t0;
            const long f1 = major_faults();
            fp += f1 - f0;
            f0 = f1;
            td[vi][r] = decode_steps(f, ids + prompt, decode, logits, &err);
            fd += major_faults() - f0;
            if (td[vi][r] < 0) {
                rc = glmq_bench_error(&err);
                goto done;
            }
        }
        for (int vi = 0; context && vi < nvar; vi++) {
            glmq_forward_set_att_per_head(f, vi ? att1 : att0);
            if (glmq_forward_fill_context(f, context, 1, &err) != GLMQ_OK) {
                rc = glmq_bench_error(&err);
                goto done;
            }
            const long f0 = major_faults();
            tl[vi][r] = decode_steps(f, ids + prompt, decode, logits, &err);
            fd += major_faults() - f0;
            if (tl[vi][r] < 0) {
                rc = glmq_bench_error(&err);
                goto done;
            }
        }
        if (nvar == 2) { /* group kernel speed / per-head kernel speed */
            rs[r] = td[1][r] / td[0][r];
            if (context) rl[r] = tl[1][r] / tl[0][r];
        }
    }
    printf("model %s (%s, %s weights), %s kernels, %d thread%s\n", model,
           glmq_arch_name(c->arch), glmq_model_weight_type(m), glmq_forward_mode_name(mode), nth,
           nth > 1 ? "s" : "");
    printf("  read bandwidth  %.1f GB/s; weight bytes per token %.3f GB -> roofline %.2f "
           "tokens/s (weights only)\n",
           bw / 1e9, wbytes / 1e9, bw / wbytes);
    static const char *vname[2] = {"group kernel", "per-head kernel"};
    for (int vi = 0; vi < nvar; vi++) {
        const int which = vi ? att1 : att0;
        const double p = glmq_median(tp[vi], runs), d = glmq_median(td[vi], runs);
        /* the decode steps attend over prompt+1 .. prompt+decode keys */
        const double bs = wbytes + kv_bytes(c, prompt + (decode + 1) / 2.0);
        if (mode != GLMQ_FWD_REFERENCE) printf("  attention: %s\n", vname[which]);
        printf("  prefill %5d   %.2f s = %.1f tokens/s = %.1f G int-ops/s (layer weights)\n",
               prompt, p, prompt / p, 2.0 * lparams * prompt / p / 1e9);
        printf("  decode  %5d   after %6d: %.3f s = %.2f tokens/s = %.0f%% of the roofline "
               "(%.3f GB/token incl. KV)\n",
               decode, prompt, d, decode / d, 100.0 * (decode / d) * bs / bw, bs / 1e9);
        if (context) {
            const double l = glmq_median(tl[vi], runs);
            const double bl = wbytes + kv_bytes(c, context + (decode + 1) / 2.0);
            printf("  decode  %5d   after %6d: %.3f s = %.2f tokens/s = %.0f%% of the roofline "
                   "(%.3f GB/token incl. %.3f GB KV)\n",
                   decode, context, l, decode / l, 100.0 * (decode / l) * bl / bw, bl / 1e9,
                   (bl - wbytes) / 1e9);
        }
    }
    if (context)
        printf("  (the %d-token context is a KV cache filled with pseudo-random values, not a "
               "prefill: decode cost does not depend on them)\n",
               context);
    if (nvar == 2) {
        printf("  group / per-head decode speed (median of per-run ratios): after %d: %.3fx",
               prompt, glmq_median(rs, runs));
        if (context) printf(", after %d: %.3fx", context, glmq_median(rl, runs));
        printf("\n");
    }
    printf("  major page faults: prefill %ld, decode %ld%s\n", fp, fd,
           fp + fd ? " (weights were re-read from disk: the times include I/O; see --mlock)"
                   : "");
done:
    free(ids);
    free(logits);
    glmq_forward_free(f);
    glmq_model_close(m);
    return rc;
}
