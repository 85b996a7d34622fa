/*
 * bench_attn.c - speed of the group attention kernel (quant/attn.h) against the FMA work it
 * must do: one KV group of hq query heads (GLM-4-9B: hq = 16, d = 128; the forward pass's
 * group-major KV cache has ld = d) attending over n keys, single thread.
 *
 * Work per key and head: d FMAs for the score and d for the value sum (2*d/W vector FMAs of W
 * lanes); the exp pass and the reductions are not counted. The FMA peak is measured in the same
 * run (12 independent FMA chains of the level's width: 16 lanes for the AVX-512 levels, else
 * 8), so the figure is a ratio on a noisy machine: "% peak" = (4*d*hq*n flops / time) / peak
 * flops/s. Medians of --runs runs, each run timing enough calls for ~50 ms.
 *
 * A/B between two builds: compile this file against each build's library and run the two
 * binaries alternately (the numbers of one process are comparable only to its own peak line).
 *
 * Not part of the default build (a tool, like bench/dot_hash.c):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -DGLMQ_HAVE_X86=1 -I. -Isrc bench/bench_attn.c \
 *      build/libglmq_internal.a -lxxhash -lcjson -lz -lm -lpthread -o /tmp/bench_attn
 *   /tmp/bench_attn [--level ref|avx2|avx512|...] [--runs R] [n ...]   (default n: 512 8192 32768)
 * Environment: ATT_COPIES=C rotates the calls over C separate K/V sets (default 1: K and V stay
 * in cache between calls; 8 sets of n = 8192, 64 MiB, stream them from memory, as a decode step
 * does), allocated as the forward pass allocates its KV cache and scores (glmq_huge_alloc: huge
 * pages where the kernel gives them; ATT_SMALL_PAGES=1: malloc, 4 KiB pages); ATT_LD=L sets
 * the key/value row stride (default 128 floats = d; 256 is the layout before the cache became
 * group-major: GLM-4's two groups side by side); ATT_CALLS=C runs C calls at the first n only,
 * without timing or peak, for `perf stat -e task-clock` / `perf record` (CPU time of this
 * process only: steadier than wall time on a shared machine).
 */
#include "core/file.h"
#include "core/internal.h"
#include "quant/dot.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 12345;
static float rnd(void)
{
    return (float)((double)(glmq_splitmix64(&rng) >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* The operands of one group over n keys: `copies` sets of K then V (n rows of ld floats
 * each), the hq queries, the output and the kernel's scratch, K, V and q filled with values in
 * [-1, 1). Call c uses set c mod copies: with enough sets their bytes exceed the last-level
 * cache and every call streams K and V from memory, as a decode step does (each layer's cache
 * is read once per token). */
typedef struct {
    float *kv, *q, *out, *s;
    size_t kv_bytes, s_bytes;
    int small; /* kv and s from malloc (4 KiB pages), not glmq_huge_alloc */
    int64_t copies, set; /* floats per set: 2 * n * ld */
} att_bufs;

/* The large buffers (K/V sets, scores): glmq_huge_alloc, or malloc when b->small. */
static void *att_big(const att_bufs *b, size_t bytes)
{
    return b->small ? malloc(bytes) : glmq_huge_alloc(bytes);
}
static void att_big_free(const att_bufs *b, void *p, size_t bytes)
{
    if (b->small) free(p);
    else glmq_huge_free(p, bytes);
}

static int att_bufs_make(att_bufs *b, int64_t hq, int64_t d, int64_t n, int64_t ld)
{
    const char *e = getenv("ATT_COPIES");
    b->copies = e && atoll(e) > 0 ? atoll(e) : 1;
    b->set = 2 * n * ld;
    b->kv_bytes = (size_t)(b->copies * b->set) * sizeof(float);
    b->small = getenv("ATT_SMALL_PAGES") != NULL;
    b->kv = att_big(b, b->kv_bytes);
    b->q = malloc((size_t)(hq * d) * sizeof(float));
    b->out = malloc((size_t)(hq * d) * sizeof(float));
    b->s_bytes = (size_t)glmq_att_group_scratch(hq, n, d) * sizeof(float);
    b->s = att_big(b, b->s_bytes);
    if (!b->kv || !b->q || !b->out || !b->s) return -1;
    for (int64_t i = 0; i < b->copies * b->set; i++) b->kv[i] = rnd();
    for (int64_t i = 0; i < hq * d; i++) b->q[i] = rnd();
    return 0;
}

/* K of the set that call c uses (its V follows n * ld floats later). */
#define KV(b, c) ((b).kv + (int64_t)(c) % (b).copies * (b).set)

static void att_bufs_free(att_bufs *b)
{
    att_big_free(b, b->kv, b->kv_bytes);
    att_big_free(b, b->s, b->s_bytes);
    free(b->q);
    free(b->out);
}

/* 12 independent FMA chains of VT (W lanes, FMA intrinsic FMA, first lane CVT): flops/s of
 * one thread. */
#define PEAK_FN(name, TGT, VT, W, SET1, FMA, CVT)                                              \
    __attribute__((target(TGT))) static double name(void)                                        \
    {                                                                                            \
        VT a[12];                                                                                \
        _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] =                             \
            SET1(1.0f + 0.001f * (float)i);                                                      \
        const VT m = SET1(0.999999f), c = SET1(1e-7f);                                           \
        const long iters = 20000000;                                                             \
        const double t0 = glmq_now();                                                            \
        for (long k = 0; k < iters; k++)                                                         \
            _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = FMA(a[i], m, c);        \
        const double t = glmq_now() - t0;                                                        \
        float sink = 0;                                                                          \
        _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) sink += CVT(a[i]);                 \
        if (sink == 12345.0f) puts("");                                                          \
        return (double)iters * 12 * W * 2 / t;                                                   \
    }
PEAK_FN(peak_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
PEAK_FN(peak_avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32)

int main(int argc, char **argv)
{
    glmq_cpu_level level = GLMQ_CPU_AVX2;
    int runs = 7;
    int64_t ns[16];
    int nn = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--level") && i + 1 < argc) {
            const int l = glmq_cpu_parse(argv[++i]);
            level = l < 0 ? GLMQ_CPU_AVX2 : (glmq_cpu_level)l;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (nn < 16) {
            ns[nn++] = atoll(argv[i]);
        }
    }
    if (runs < 1 || runs > 64) runs = 7;
    if (!nn) {
        ns[0] = 512, ns[1] = 8192, ns[2] = 32768;
        nn = 3;
    }
    const glmq_dot_kernels *k = glmq_dot_kernels_for(level);
    if (!k || !k->att_group) {
        fprintf(stderr, "level unavailable\n");
        return 1;
    }
    const int64_t hq = 16, d = 128, ld = getenv("ATT_LD") ? atoll(getenv("ATT_LD")) : d;
    double pk[64];
    if (getenv("ATT_CALLS")) { /* fixed work, no peak: for perf stat */
        const int64_t n = ns[0];
        const int calls = atoi(getenv("ATT_CALLS"));
        att_bufs b;
        if (att_bufs_make(&b, hq, d, n, ld)) return 1;
        for (int c = 0; c < calls; c++)
            k->att_group(b.q, d, hq, KV(b, c), KV(b, c) + n * ld, ld, d, n, 0.088f, b.s, b.out,
                         d);
        att_bufs_free(&b);
        return 0;
    }
    const int w16 = level == GLMQ_CPU_AVX512 || level == GLMQ_CPU_AVX512VNNI;
    for (int r = 0; r < 3; r++) pk[r] = w16 ? peak_avx512() : peak_avx2();
    const double peak = glmq_median(pk, 3);
    printf("att_group level %d, hq %lld, d %lld, ld %lld; FMA peak (%s, 1 thread) %.1f "
           "GFLOP/s\n",
           (int)level, (long long)hq, (long long)d, (long long)ld, w16 ? "AVX-512" : "AVX2",
           peak * 1e-9);
    printf("%8s %14s %10s %8s\n", "n", "ms/call", "ns/key/hd", "% peak");
    for (int in = 0; in < nn; in++) {
        const int64_t n = ns[in];
        att_bufs b;
        if (att_bufs_make(&b, hq, d, n, ld)) return 1;
        const float scale = 1.0f / sqrtf((float)d);
        /* calls per run: ~50 ms */
        double t0 = glmq_now();
        k->att_group(b.q, d, hq, KV(b, 0), KV(b, 0) + n * ld, ld, d, n, scale, b.s, b.out, d);
        double one = glmq_now() - t0;
        int calls = (int)(0.05 / (one > 1e-6 ? one : 1e-6));
        if (calls < b.copies) calls = (int)b.copies;
        double tr[64];
        for (int r = 0; r < runs; r++) {
            t0 = glmq_now();
            for (int c = 0; c < calls; c++)
                k->att_group(b.q, d, hq, KV(b, c), KV(b, c) + n * ld, ld, d, n, scale, b.s,
                             b.out, d);
            tr[r] = (glmq_now() - t0) / calls;
        }
        const double t = glmq_median(tr, runs);
        const double flops = 4.0 * (double)d * (double)hq * (double)n;
        printf("%8lld %14.3f %10.2f %7.1f%%\n", (long long)n, t * 1e3,
               t * 1e9 / (double)(n * hq), 100.0 * flops / t / peak);
        att_bufs_free(&b);
    }
    return 0;
}
