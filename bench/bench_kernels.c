/*
 * bench_kernels.c - glmq bench gemv: matrix-kernel throughput (quant/dot.h) against the
 * machine's read bandwidth measured in the same run, plus prefill GEMM int-op rates and the
 * accuracy of the two FAST modes on LLM-like data. A benchmark, not a test: it reports medians
 * and ratios so that a noisy shared machine still gives comparable figures.
 *
 *   1. bandwidth  sum of a large fp32 array (default 1 GiB) with the active level's widest
 *                 loads (glmq_dot_kernels.sum_f32), 1 thread and all pool threads.
 *   2. gemv       one token, GB/s of weight bytes for GLM shapes (rows x cols):
 *                 QKV 4608x4096, dense 4096x4096, h->4h 27392x4096, 4h->h 4096x13696,
 *                 output 65024x4096; INT4 and INT8; exact / fast-b32 / fast-row; 1 and N
 *                 threads; each as % of the bandwidth of the same thread count. Every timed run
 *                 multiplies enough distinct copies of the matrix (>= --arena-mb) that the
 *                 weights stream from DRAM, not from cache. Prepare is included in the time.
 *                 Group-wise types (--groups, default int4g32,int4g128,int8g32): exact and
 *                 fast-b32, GB/s of codes + scales, and the ratio to the per-row kernel of the
 *                 same codes (INT4 / INT8), the two run alternately in the same loop (median
 *                 of the per-run ratios). Each copy of a group-wise matrix has its own scales.
 *   3. gemm       --tokens (512) tokens, N threads: G int-ops/s = 2*rows*cols*tokens / s;
 *                 group-wise types as in 2 (ratio to per-row, alternating runs). Beside it
 *                 the integer issue peak of the level on N threads (3b): on a VNNI level the
 *                 vpdpbusd peak, otherwise the AVX2 microloops; the FAST figures as % of it.
 *   4. peak       the FP32 FMA peak of the level: a loop of 12 independent vector FMA chains
 *                 (enough to cover the FMA latency on every x86 core) on 1 and N threads.
 *   5. f16        exact GEMM on F16 and BF16 weights (the reference half of `glmq verify` and
 *                 `glmq ppl`) at --tokens tokens, N threads: GFLOP/s and % of the FMA peak of
 *                 step 4 measured in the same run. Shapes: those of 2. (ChatGLM2-6B and GLM-4-9B
 *                 share them) and 16384-row slices of the 65024 / 151552-row output layers.
 *   6. accuracy   relative error ||y_mode - y_exact|| / ||y_exact|| of fast-b32 and fast-row
 *                 on trained-like weights and on activations with / without outlier channels.
 *
 * Called by the CLI as `glmq bench gemv [options]`: argv[0] is the benchmark (or program)
 * name; leading "bench" / "gemv" words are ignored, so argv may be forwarded either way.
 */
#include "bench/bench.h"
#include "core/pool.h"
#include "quant/dot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(GLMQ_HAVE_X86) && defined(__GNUC__)
#include <immintrin.h>
#define BENCH_X86_FMA 1 /* the FMA peak loops below (function-level target attributes) */
#endif

static const char usage_text[] =
    "usage: glmq bench gemv [--threads N] [--runs K] [--bw-mb M] [--arena-mb M] [--tokens T]\n"
    "                       [--only bw|gemv|gemm|peak|f16|acc]\n"
    "                       [--level ref|avx2|avxvnni|avx512|avx512vnni|neon|dotprod]\n"
    "                       [--quick]\n"
    "                       [--groups TYPE,...|all|none]\n"
    "\n"
    "Measures read bandwidth (sum of --bw-mb MiB, default 1024), then GEMV GB/s of weight\n"
    "bytes for GLM shapes in INT4/INT8 and every mode on 1 and N threads (default: all cores)\n"
    "as % of that bandwidth, GEMM G int-ops/s at --tokens tokens (default 512), and the\n"
    "accuracy of the fast modes. Medians of --runs runs (default 7). --quick: small sizes.\n"
    "--groups: the group-wise types measured beside INT4/INT8, as GB/s of codes + scales and\n"
    "as % of the per-row kernel of the same codes run alternately with them (default\n"
    "int4g32,int4g128,int8g32; all = every int4g*/int8g*).\n"
    "peak: the FP32 FMA peak of the level (12 independent FMA chains), 1 and N threads.\n"
    "f16: exact GEMM on F16 and BF16 weights at --tokens tokens on N threads (the reference\n"
    "half of verify/ppl), GFLOP/s and % of that FMA peak (measured in the same run).\n"
    "--only picks one section (bw runs only when gemv or bw is measured).\n"
    "--level: the kernels of that level (default: the active one, GLMQ_CPU); it must be one\n"
    "this CPU runs. avxvnni is avx2 with the 256-bit vpdpbusd (AVX-VNNI) fast kernels.\n";

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void) { return glmq_splitmix64(&rs); }
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1p-53; }
static double rnd_normal(void)
{
    double u = rnd_unit(), v = rnd_unit();
    return sqrt(-2.0 * log(u + 0x1p-60)) * cos(6.283185307179586 * v);
}

static void *big_alloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n) != 0) return NULL;
    return p;
}

/* ---- 1. bandwidth ---------------------------------------------------------------------------- */

typedef struct {
    glmq_dot_sum_fn sum;
    const float *p;
    int64_t n;
    double part[1024];
} bw_job;

static void bw_worker(void *arg, int ith, int nth)
{
    bw_job *j = (bw_job *)arg;
    /* split on 4 KiB boundaries */
    const int64_t pages = j->n / 1024;
    const int64_t a = pages * ith / nth * 1024;
    const int64_t b = ith == nth - 1 ? j->n : pages * (ith + 1) / nth * 1024;
    j->part[ith] = j->sum(j->p + a, b - a);
}

/* One pass of the probe over p[0..n) on every thread of pool; bytes/s. */
static double bw_once(glmq_pool *pool, glmq_dot_sum_fn sum, const float *p, int64_t n)
{
    bw_job j = {.sum = sum, .p = p, .n = n};
    double t0 = glmq_now();
    glmq_pool_run(pool, bw_worker, &j);
    double dt = glmq_now() - t0;
    if (j.part[0] == 1.2345) puts(""); /* keep the sums alive */
    return (double)n * 4 / dt;
}

static double bandwidth(glmq_pool *pool, glmq_dot_sum_fn sum, const float *p, int64_t n, int runs)
{
    double v[64];
    for (int r = 0; r < runs; r++) v[r] = bw_once(pool, sum, p, n);
    return glmq_median(v, runs);
}

/* Best read bandwidth of this machine over every probe level (bench.h); also used by
 * `glmq bench forward`. */
double glmq_bench_read_bandwidth(int threads, int mb, int runs)
{
    glmq_pool *pool = NULL;
    if (glmq_pool_create(threads, &pool, NULL) != GLMQ_OK) return 0;
    const int64_t n = (int64_t)mb << 18;
    float *a = big_alloc((size_t)n * 4);
    double best = 0;
    if (a) {
        for (int64_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
        for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
            const glmq_dot_kernels *kl = glmq_dot_kernels_for((glmq_cpu_level)l);
            if (!kl) continue;
            double b = bandwidth(pool, kl->sum_f32, a, n, runs);
            if (b > best) best = b;
        }
    }
    free(a);
    glmq_pool_free(pool);
    return best;
}

/* ---- weights --------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t rows, cols;
} shape;

static const shape shapes[] = {
    {"qkv 4608x4096", 4608, 4096},      {"dense 4096x4096", 4096, 4096},
    {"h4h 27392x4096", 27392, 4096},    {"4hh 4096x13696", 4096, 13696},
    {"output 65024x4096", 65024, 4096},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* Random codes are valid for both types (any INT4 nibble / INT8 byte); fast fill. */
static void fill_random(uint8_t *p, size_t n)
{
    uint64_t s = 0x243f6a8885a308d3ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(p + i, &s, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)i;
}

/* ---- 2. GEMV --------------------------------------------------------------------------------- */

typedef struct {
    glmq_pool *pool1, *pooln;
    const glmq_dot_kernels *k;
    uint8_t *arena;
    size_t arena_bytes;
    uint16_t *scales;  /* per-row types: one shared scale per row */
    uint16_t *gscales; /* group-wise GEMM: max rows * scales per row, valid fp16 */
    int runs;
    glmq_dot_sum_fn probe; /* the fastest bandwidth probe of this CPU */
    const float *bw;       /* its array */
    int64_t bw_n;
} ctx;

typedef struct {
    double gbs;   /* median GB/s of weight bytes */
    double ratio; /* median over runs of (GEMV rate / probe rate measured just before it) */
} rate;

/*
 * Copy i of a rows x cols matrix of type in the arena. Per-row types: codes at i * mb, the
 * shared c->scales. Group-wise types: codes and then their own scales, copy after copy (so the
 * scales stream from DRAM too), cs bytes apart (64-aligned). *bytes = codes + scales.
 */
static size_t copy_bytes(glmq_type type, int64_t rows, int64_t cols, size_t *bytes)
{
    const size_t mb = glmq_dot_row_bytes(type, cols) * (size_t)rows;
    const size_t sb = glmq_type_group(type)
                          ? (size_t)(rows * glmq_scales_per_row(type, cols)) * 2 : 0;
    *bytes = mb + sb;
    return (mb + sb + 63) / 64 * 64;
}

static glmq_status mat_copy(const ctx *c, glmq_type type, int64_t rows, int64_t cols, int64_t i,
                            glmq_dot_mat *m, glmq_err *err)
{
    size_t bytes;
    const size_t cs = copy_bytes(type, rows, cols, &bytes);
    const size_t mb = glmq_dot_row_bytes(type, cols) * (size_t)rows;
    const uint8_t *p = c->arena + (size_t)i * cs;
    const uint16_t *sc =
        glmq_type_group(type) ? (const uint16_t *)(const void *)(p + mb) : c->scales;
    return glmq_dot_mat_init(m, type, rows, cols, p, sc, err);
}

/* Copies of a shape that fit the arena (at least 1). */
static int64_t copies_of(const ctx *c, glmq_type type, int64_t rows, int64_t cols)
{
    size_t bytes;
    const int64_t n = (int64_t)(c->arena_bytes / copy_bytes(type, rows, cols, &bytes));
    return n < 1 ? 1 : n;
}

/* Valid fp16 scales (0.001 .. 0.007) in the scale part of every copy of a group-wise type. */
static void fill_group_scales(const ctx *c, glmq_type type, int64_t rows, int64_t cols)
{
    size_t bytes;
    const size_t cs = copy_bytes(type, rows, cols, &bytes);
    const size_t mb = glmq_dot_row_bytes(type, cols) * (size_t)rows;
    const int64_t n = copies_of(c, type, rows, cols);
    for (int64_t i = 0; i < n; i++) {
        uint16_t *sc = (uint16_t *)(void *)(c->arena + (size_t)i * cs + mb);
        for (size_t j = 0; j < (bytes - mb) / 2; j++) sc[j] = c->gscales[j % 4096];
    }
}

/* One pass over every copy (prepare + GEMV each) on pool: bytes (codes + scales) per second,
 * or 0 after printing an error. */
static double gemv_once(const ctx *c, glmq_pool *pool, glmq_type type, glmq_dot_mode mode,
                        int64_t rows, int64_t cols, const float *x, float *y, void *scratch,
                        size_t ss)
{
    size_t bytes;
    copy_bytes(type, rows, cols, &bytes);
    const int64_t copies = copies_of(c, type, rows, cols);
    glmq_err err = {0};
    double t0 = glmq_now();
    for (int64_t i = 0; i < copies; i++) {
        glmq_dot_mat m;
        if (mat_copy(c, type, rows, cols, i, &m, &err) != GLMQ_OK ||
            glmq_dot_gemm_pool(pool, c->k, mode, &m, x, cols, 1, y, rows, scratch, ss, &err) !=
                GLMQ_OK) {
            fprintf(stderr, "glmq: error: %s\n", err.msg);
            return 0;
        }
    }
    return (double)bytes * (double)copies / (glmq_now() - t0);
}

/*
 * One timed run = one pass over `copies` distinct copies of the matrix (one prepare + GEMV
 * each), so the weights stream from DRAM. Each run is paired with a probe run on the same
 * threads just before it; the median of the paired ratios is robust to other tenants' load
 * changing between configurations (a shared, noisy machine).
 */
static rate gemv_rate(const ctx *c, glmq_pool *pool, glmq_type type, glmq_dot_mode mode,
                      int64_t rows, int64_t cols, const float *x, float *y, void *scratch,
                      size_t ss)
{
    double g[64], q[64];
    rate res = {0, 0};
    for (int r = 0; r <= c->runs; r++) { /* run 0 warms up (page tables, pool) */
        const double bw = bw_once(pool, c->probe, c->bw, c->bw_n);
        const double v = gemv_once(c, pool, type, mode, rows, cols, x, y, scratch, ss);
        if (v == 0) return res;
        if (r > 0) {
            g[r - 1] = v;
            q[r - 1] = v / bw;
        }
    }
    res.gbs = glmq_median(g, c->runs);
    res.ratio = glmq_median(q, c->runs);
    return res;
}

/*
 * A group-wise type against the per-row type of the same codes: each run times both, in
 * alternating order (row first on even runs), after one probe run. Returns the group type's
 * median GB/s and % of the probe (in *g) and the median of the per-run ratios group / row.
 */
static double gemv_pair(const ctx *c, glmq_pool *pool, glmq_type gtype, glmq_dot_mode mode,
                        int64_t rows, int64_t cols, const float *x, float *y, void *scratch,
                        size_t ss, rate *g)
{
    const glmq_type rtype = glmq_type_codes(gtype);
    double gv[64], qv[64], rv[64];
    g->gbs = g->ratio = 0;
    for (int r = 0; r <= c->runs; r++) {
        const double bw = bw_once(pool, c->probe, c->bw, c->bw_n);
        double vr, vg;
        if (r % 2 == 0) {
            vr = gemv_once(c, pool, rtype, mode, rows, cols, x, y, scratch, ss);
            vg = gemv_once(c, pool, gtype, mode, rows, cols, x, y, scratch, ss);
        } else {
            vg = gemv_once(c, pool, gtype, mode, rows, cols, x, y, scratch, ss);
            vr = gemv_once(c, pool, rtype, mode, rows, cols, x, y, scratch, ss);
        }
        if (vr == 0 || vg == 0) return 0;
        if (r > 0) {
            gv[r - 1] = vg;
            qv[r - 1] = vg / bw;
            rv[r - 1] = vg / vr;
        }
    }
    g->gbs = glmq_median(gv, c->runs);
    g->ratio = glmq_median(qv, c->runs);
    return glmq_median(rv, c->runs);
}

/* ---- 3. GEMM --------------------------------------------------------------------------------- */

/* One GEMM of ntok tokens over copy 0 of the matrix on all threads: seconds, or 0. */
static double gemm_once(const ctx *c, const glmq_dot_mat *m, glmq_dot_mode mode, int64_t ntok,
                        const float *x, float *y, void *scratch, size_t ss)
{
    glmq_err err = {0};
    double t0 = glmq_now();
    if (glmq_dot_gemm_pool(c->pooln, c->k, mode, m, x, m->cols, ntok, y, m->rows, scratch, ss,
                           &err) != GLMQ_OK) {
        fprintf(stderr, "glmq: error: %s\n", err.msg);
        return 0;
    }
    return glmq_now() - t0;
}

/* The matrix a GEMM runs on: copy 0 (group-wise: with c->gscales, large enough; F16/BF16:
 * no scales). */
static glmq_status gemm_mat(const ctx *c, glmq_type type, int64_t rows, int64_t cols,
                            glmq_dot_mat *m)
{
    const int half = type == GLMQ_TYPE_F16 || type == GLMQ_TYPE_BF16;
    return glmq_dot_mat_init(m, type, rows, cols, c->arena,
                             half                    ? NULL
                             : glmq_type_group(type) ? c->gscales
                                                     : c->scales,
                             NULL);
}

static double gemm_rate(const ctx *c, glmq_type type, glmq_dot_mode mode, int64_t rows,
                        int64_t cols, int64_t ntok, const float *x, float *y, void *scratch,
                        size_t ss, int runs)
{
    glmq_dot_mat m;
    if (gemm_mat(c, type, rows, cols, &m) != GLMQ_OK) return 0;
    double t[64];
    for (int r = 0; r <= runs; r++) {
        const double dt = gemm_once(c, &m, mode, ntok, x, y, scratch, ss);
        if (dt == 0) return 0;
        if (r > 0) t[r - 1] = dt;
    }
    return 2.0 * (double)rows * (double)cols * (double)ntok / glmq_median(t, runs);
}

/* A group-wise type against the per-row type of its codes, runs alternating as gemv_pair:
 * the group type's int-ops/s in *gops, and the median of the per-run ratios group / row. */
static double gemm_pair(const ctx *c, glmq_type gtype, glmq_dot_mode mode, int64_t rows,
                        int64_t cols, int64_t ntok, const float *x, float *y, void *scratch,
                        size_t ss, int runs, double *gops)
{
    glmq_dot_mat mr, mg;
    *gops = 0;
    if (gemm_mat(c, glmq_type_codes(gtype), rows, cols, &mr) != GLMQ_OK ||
        gemm_mat(c, gtype, rows, cols, &mg) != GLMQ_OK)
        return 0;
    double tg[64], rv[64];
    for (int r = 0; r <= runs; r++) {
        double dr, dg;
        if (r % 2 == 0) {
            dr = gemm_once(c, &mr, mode, ntok, x, y, scratch, ss);
            dg = gemm_once(c, &mg, mode, ntok, x, y, scratch, ss);
        } else {
            dg = gemm_once(c, &mg, mode, ntok, x, y, scratch, ss);
            dr = gemm_once(c, &mr, mode, ntok, x, y, scratch, ss);
        }
        if (dr == 0 || dg == 0) return 0;
        if (r > 0) {
            tg[r - 1] = dg;
            rv[r - 1] = dr / dg;
        }
    }
    *gops = 2.0 * (double)rows * (double)cols * (double)ntok / glmq_median(tg, runs);
    return glmq_median(rv, runs);
}

/* ---- 3b. AVX2 integer peak (beside the GEMM figures) ---------------------------------------- */

#if defined(GLMQ_HAVE_X86)
#include <immintrin.h>

/*
 * Microloops of the AVX2 FAST kernels' inner operations on this machine, per thread,
 * operands in registers (no loads). Each of INT_CHAINS chains has its own weight operand, which
 * an empty asm makes opaque every iteration, so the compiler can neither share one product
 * between the chains nor hoist it out of the loop (it did both when every chain had the same
 * operands). Each loop is 32 u8 x s8 products and their sums = 64 int-ops per chain and step:
 *   int   vpmaddubsw + vpmaddwd(1) + vpaddd: the issue rate of the integer multiply-add
 *         (FAST_ROW's inner operation);
 *   b32   the FAST_B32 step of one (row, token) with the sign trick (INT8): vpsignb,
 *         vpmaddubsw, vpmaddwd, vcvtdq2ps, vfmadd (the bit-fixed fp32 block-scale chain);
 *   nb    the same step of INT4, whose nibbles need no sign (the nb chain, dot.h §2): the
 *         four operations without vpsignb.
 * Compiled for AVX2 by a function attribute (a benchmark tool, run only when the CPU has it).
 */
#define INT_CHAINS 5 /* 5 weights + 5 sums + 3 constants: no spill in 16 ymm registers */
__attribute__((target("avx2,fma"), always_inline)) static inline int int_peak_body(int64_t n,
                                                                                const int kind)
{
    const __m256i x = _mm256_set1_epi8(-5), one = _mm256_set1_epi16(1);
    const __m256 d = _mm256_set1_ps(0x1p-20f);
    __m256i w[INT_CHAINS], a[INT_CHAINS];
    __m256 f[INT_CHAINS];
    for (int j = 0; j < INT_CHAINS; j++) {
        w[j] = _mm256_set1_epi8((char)(3 + j));
        a[j] = _mm256_setzero_si256();
        f[j] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < INT_CHAINS; j++) {
            if (kind == 0) {
                a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(_mm256_maddubs_epi16(w[j], x), one));
            } else {
                const __m256i s = kind == 1 ? _mm256_sign_epi8(x, w[j]) : x;
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w[j], s), one);
                f[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, f[j]);
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < INT_CHAINS; j++) __asm__ volatile("" : "+x"(w[j]));
    }
    int r = 0;
    for (int j = 0; j < INT_CHAINS; j++)
        r += _mm256_cvtsi256_si32(a[j]) + (int)_mm256_cvtss_f32(f[j]);
    return r;
}
/* One loop per kind (a constant in each, so each is one straight loop body). */
__attribute__((target("avx2,fma"), noinline)) static int int_peak_int(int64_t n)
{
    return int_peak_body(n, 0);
}
__attribute__((target("avx2,fma"), noinline)) static int int_peak_b32(int64_t n)
{
    return int_peak_body(n, 1);
}
__attribute__((target("avx2,fma"), noinline)) static int int_peak_nb(int64_t n)
{
    return int_peak_body(n, 2);
}

/*
 * The VNNI issue peak: 12 independent vpdpbusd chains (covers a 4-5 cycle latency at 2 issues
 * per cycle), operands in registers. One zmm vpdpbusd = 64 u8 x s8 products and their sums =
 * 128 int-ops; a ymm one (AVX-VNNI) 64. The bound of the VNNI FAST kernels, whose inner
 * operation it is. Not in an emulated build (the instructions would be emulated too).
 */
#define VNNI_CHAINS 12
#if !defined(GLMQ_EMULATE_AVX512)
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int vnni512_peak_loop(int64_t n)
{
    __m512i a[VNNI_CHAINS], w = _mm512_set1_epi8(3);
    const __m512i x = _mm512_set1_epi8(-5);
    for (int j = 0; j < VNNI_CHAINS; j++) a[j] = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < VNNI_CHAINS; j++) a[j] = _mm512_dpbusd_epi32(a[j], w, x);
        __asm__ volatile("" : "+v"(w));
    }
    for (int j = 1; j < VNNI_CHAINS; j++) a[0] = _mm512_add_epi32(a[0], a[j]);
    return _mm512_reduce_add_epi32(a[0]);
}
#endif
#if defined(GLMQ_HAVE_AVXVNNI)
__attribute__((target("avx2,avxvnni"))) static int vnni256_peak_loop(int64_t n)
{
    __m256i a[VNNI_CHAINS], w = _mm256_set1_epi8(3);
    const __m256i x = _mm256_set1_epi8(-5);
    for (int j = 0; j < VNNI_CHAINS; j++) a[j] = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < VNNI_CHAINS; j++) a[j] = _mm256_dpbusd_avx_epi32(a[j], w, x);
        __asm__ volatile("" : "+x"(w));
    }
    for (int j = 1; j < VNNI_CHAINS; j++) a[0] = _mm256_add_epi32(a[0], a[j]);
    return _mm256_cvtsi256_si32(a[0]);
}
#endif

/* The integer microloops: int / b32 / nb (AVX2, above), vnni512 / vnni256. */
enum { PEAK_INT, PEAK_B32, PEAK_B32NB, PEAK_VNNI512, PEAK_VNNI256 };

typedef struct {
    int64_t n;
    int kind;
    int out[1024];
} int_peak_job;

static void int_peak_worker(void *arg, int ith, int nth)
{
    (void)nth;
    int_peak_job *j = (int_peak_job *)arg;
    int v = 0;
    switch (j->kind) {
#if !defined(GLMQ_EMULATE_AVX512)
    case PEAK_VNNI512: v = vnni512_peak_loop(j->n); break;
#endif
#if defined(GLMQ_HAVE_AVXVNNI)
    case PEAK_VNNI256: v = vnni256_peak_loop(j->n); break;
#endif
    case PEAK_B32: v = int_peak_b32(j->n); break;
    case PEAK_B32NB: v = int_peak_nb(j->n); break;
    default: v = int_peak_int(j->n);
    }
    j->out[ith & 1023] = v;
}

/* int-ops/s of one microloop on every thread of pool: the best of 9 short runs (a peak; on a
 * shared machine the least disturbed run is the closest to it). */
static double int_peak(glmq_pool *pool, int kind)
{
    int_peak_job j = {.n = 1000000, .kind = kind};
    const double ops = kind == PEAK_VNNI512   ? 128.0 * VNNI_CHAINS
                       : kind == PEAK_VNNI256 ? 64.0 * VNNI_CHAINS
                                              : 64.0 * INT_CHAINS;
    double best = 0;
    for (int r = 0; r < 9; r++) {
        const double t0 = glmq_now();
        glmq_pool_run(pool, int_peak_worker, &j);
        const double v = ops * (double)j.n * glmq_pool_size(pool) / (glmq_now() - t0);
        if (v > best) best = v;
    }
    if (j.out[0] == 12345) puts("");
    return best;
}

/* The VNNI microloop of level (PEAK_VNNI512 / PEAK_VNNI256) when this CPU runs it natively,
 * else -1. */
static int vnni_peak_kind(glmq_cpu_level level)
{
#if !defined(GLMQ_EMULATE_AVX512)
    if (level == GLMQ_CPU_AVX512VNNI && __builtin_cpu_supports("avx512vnni")) return PEAK_VNNI512;
#endif
#if defined(GLMQ_HAVE_AVXVNNI)
    if (level == GLMQ_CPU_AVXVNNI && __builtin_cpu_supports("avxvnni")) return PEAK_VNNI256;
#endif
    (void)level;
    return -1;
}
#endif

/* ---- 4. FMA peak ----------------------------------------------------------------------------- */

/*
 * 12 independent chains a_k = a_k * m + c (m slightly below 1, so the values stay normal and
 * finite): 12 chains cover 2 FMA pipes x a 4-6 cycle latency on every x86 core, so the loop
 * runs at the FMA throughput. Returns a sum of the chains (kept alive by the caller). The ref
 * level has no FMA at baseline x86-64: there the loop is scalar mulss + addss (2 flops).
 */
#define PEAK_CHAINS 12
static float peak_loop_ref(int64_t iters, float seed)
{
    float a[PEAK_CHAINS];
#pragma GCC unroll 12
    for (int k = 0; k < PEAK_CHAINS; k++) a[k] = seed + (float)k;
    const volatile float mv = 0.9999999f, cv = 1e-7f;
    const float m = mv, cst = cv;
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < PEAK_CHAINS; k++) a[k] = a[k] * m + cst;
    float s = 0;
#pragma GCC unroll 12
    for (int k = 0; k < PEAK_CHAINS; k++) s += a[k];
    return s;
}
#if defined(BENCH_X86_FMA)
__attribute__((target("avx2,fma"))) static float peak_loop_avx2(int64_t iters, float seed)
{
    __m256 a[PEAK_CHAINS];
#pragma GCC unroll 12
    for (int k = 0; k < PEAK_CHAINS; k++) a[k] = _mm256_set1_ps(seed + (float)k);
    const __m256 m = _mm256_set1_ps(0.9999999f), cst = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < PEAK_CHAINS; k++) a[k] = _mm256_fmadd_ps(a[k], m, cst);
#pragma GCC unroll 12
    for (int k = 1; k < PEAK_CHAINS; k++) a[0] = _mm256_add_ps(a[0], a[k]);
    return _mm_cvtss_f32(_mm256_castps256_ps128(a[0]));
}
#if !defined(GLMQ_EMULATE_AVX512)
__attribute__((target("avx512f"))) static float peak_loop_avx512(int64_t iters, float seed)
{
    __m512 a[PEAK_CHAINS];
#pragma GCC unroll 12
    for (int k = 0; k < PEAK_CHAINS; k++) a[k] = _mm512_set1_ps(seed + (float)k);
    const __m512 m = _mm512_set1_ps(0.9999999f), cst = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < PEAK_CHAINS; k++) a[k] = _mm512_fmadd_ps(a[k], m, cst);
#pragma GCC unroll 12
    for (int k = 1; k < PEAK_CHAINS; k++) a[0] = _mm512_add_ps(a[0], a[k]);
    return _mm512_reduce_add_ps(a[0]);
}
#endif
#endif

typedef struct {
    int width; /* fp32 lanes of the loop: 1 (ref), 8 (avx2), 16 (avx512) */
    int64_t iters;
    float out[1024];
} peak_job;

static void peak_worker(void *arg, int ith, int nth)
{
    (void)nth;
    peak_job *j = (peak_job *)arg;
    const float seed = (float)ith;
#if defined(BENCH_X86_FMA)
#if !defined(GLMQ_EMULATE_AVX512)
    if (j->width == 16) {
        j->out[ith & 1023] = peak_loop_avx512(j->iters, seed);
        return;
    }
#endif
    if (j->width == 8) {
        j->out[ith & 1023] = peak_loop_avx2(j->iters, seed);
        return;
    }
#endif
    j->out[ith & 1023] = peak_loop_ref(j->iters, seed);
}

/* The widest FMA loop the level and this CPU run (an emulated AVX-512 build measures AVX2). */
static int peak_width(glmq_cpu_level level)
{
#if defined(BENCH_X86_FMA)
#if !defined(GLMQ_EMULATE_AVX512)
    if ((level == GLMQ_CPU_AVX512 || level == GLMQ_CPU_AVX512VNNI) &&
        __builtin_cpu_supports("avx512f"))
        return 16;
#endif
    if (level != GLMQ_CPU_REF && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return 8;
#endif
    (void)level;
    return 1;
}

/* One run of the FP32 FMA peak loop on every thread of pool: flops/s (2 per lane and FMA).
 * iters 2^23 is ~0.05 s on one thread at 32 flops/cycle and 3 GHz. */
static double fma_peak_once(glmq_pool *pool, int width, int64_t iters)
{
    peak_job j = {.width = width, .iters = iters};
    const double t0 = glmq_now();
    glmq_pool_run(pool, peak_worker, &j);
    const double dt = glmq_now() - t0;
    if (j.out[0] == 1.2345f) puts(""); /* keep the sums alive */
    return 2.0 * width * PEAK_CHAINS * (double)iters * glmq_pool_size(pool) / dt;
}

/* FP32 FMA peak of pool's threads: flops/s, median of runs after one warm-up run. */
static double fma_peak(glmq_pool *pool, int width, int runs)
{
    const int64_t iters = width == 1 ? (int64_t)1 << 22 : (int64_t)1 << 24;
    double v[64];
    fma_peak_once(pool, width, iters); /* warm up (clocks, pool) */
    for (int r = 0; r < runs; r++) v[r] = fma_peak_once(pool, width, iters);
    return glmq_median(v, runs);
}

/* ---- 5. exact GEMM on F16 / BF16 weights ------------------------------------------------------ */

typedef struct {
    const char *name;
    int64_t rows, cols;
} f16_shape;

static const f16_shape f16_shapes[] = {
    {"qkv 4608x4096", 4608, 4096},
    {"dense 4096x4096", 4096, 4096},
    {"h4h 27392x4096", 27392, 4096},
    {"4hh 4096x13696", 4096, 13696},
    {"out 65024 (16384)", 16384, 4096},  /* ChatGLM2/3-6B output layer, a slice of its rows */
    {"out 151552 (16384)", 16384, 4096}, /* GLM-4-9B output layer, a slice: same per-row work */
};
#define NF16 (int)(sizeof f16_shapes / sizeof f16_shapes[0])

/* Normal F16 / BF16 values of magnitude 2^-3..2^0 (F16) or 2^-7..2^-4 (BF16), random signs
 * and mantissas: no NaN, Inf or subnormal in the timed kernels. */
static void fill_half(uint16_t *p, size_t n, glmq_type type)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        const uint16_t r = (uint16_t)(s >> 20);
        p[i] = type == GLMQ_TYPE_F16 ? (uint16_t)((r & 0x87ff) | 0x3000)
                                     : (uint16_t)((r & 0x80ff) | 0x3c00);
    }
}

/*
 * One shape and type: runs GEMMs of ntok tokens on N threads, each paired with a short FMA peak
 * run on the same threads just before it (as gemv_rate pairs with the bandwidth probe), so
 * the ratio survives other tenants' load changing during the section. *gflops: the median
 * rate; returns the median of the per-run ratios rate / peak (0 on error).
 */
static double f16_rate(const ctx *c, glmq_type type, int width, int64_t rows, int64_t cols,
                       int64_t ntok, const float *x, float *y, void *scratch, size_t ss,
                       int runs, double *gflops)
{
    glmq_dot_mat m;
    double g[64], q[64];
    *gflops = 0;
    if (gemm_mat(c, type, rows, cols, &m) != GLMQ_OK) return 0;
    const int64_t iters = width == 1 ? (int64_t)1 << 20 : (int64_t)1 << 22;
    for (int r = 0; r <= runs; r++) { /* run 0 warms up */
        const double pk = fma_peak_once(c->pooln, width, iters);
        const double dt = gemm_once(c, &m, GLMQ_DOT_EXACT, ntok, x, y, scratch, ss);
        if (dt == 0) return 0;
        if (r > 0) {
            g[r - 1] = 2.0 * (double)rows * (double)cols * (double)ntok / dt;
            q[r - 1] = g[r - 1] / pk;
        }
    }
    *gflops = glmq_median(g, runs);
    return glmq_median(q, runs);
}

/* The section: per shape, F16 and BF16 GFLOP/s on N threads and % of the N-thread peak. */
static void f16_section(const ctx *c, int width, int64_t ntok, const float *x, float *y,
                        void *scratch, size_t ss, FILE *out)
{
    const int n = glmq_pool_size(c->pooln);
    fprintf(out, "\nexact gemm on f16/bf16 weights: %lld tokens, %d threads, GFLOP/s = "
                 "2*rows*cols*tokens/s\n(median) and %% of the %d-thread FMA peak (median of "
                 "per-run ratios to a peak run\njust before each run)\n",
            (long long)ntok, n, n);
    fprintf(out, "  %-19s %16s %16s\n", "shape (rows x cols)", "f16", "bf16");
    for (int s = 0; s < NF16; s++) {
        double g[2], q[2];
        for (int ti = 0; ti < 2; ti++) {
            const glmq_type type = ti ? GLMQ_TYPE_BF16 : GLMQ_TYPE_F16;
            fill_half((uint16_t *)(void *)c->arena,
                      (size_t)(f16_shapes[s].rows * f16_shapes[s].cols), type);
            q[ti] = f16_rate(c, type, width, f16_shapes[s].rows, f16_shapes[s].cols, ntok, x, y,
                             scratch, ss, c->runs > 5 ? 5 : c->runs, &g[ti]);
        }
        fprintf(out, "  %-19s %7.1f (%4.0f%%) %7.1f (%4.0f%%)\n", f16_shapes[s].name,
                g[0] / 1e9, 100 * q[0], g[1] / 1e9, 100 * q[1]);
        fflush(out);
    }
}

/* ---- 6. accuracy ----------------------------------------------------------------------------- */

/*
 * Trained-like weights: per row Student-t (5 degrees of freedom, the usual fit of LLM weight
 * tails) times sigma_r, log-uniform over a 4x range, quantized by the reference quantizer.
 * Activations ("llm"): N(0, 1) per channel times a per-channel gain log-uniform in [0.5, 2],
 * plus 6 fixed "massive" channels at +-(20..100) (the outlier dimensions of LLM hidden
 * states, e.g. LLM.int8() / "Massive activations"); "gauss": N(0, 1) only.
 */
static void accuracy(const ctx *c, FILE *out)
{
    const int64_t rows = 1024, cols = 4096, ntok = 16;
    float *w = malloc((size_t)(rows * cols) * sizeof *w); /* the unquantized weights */
    double *yt = malloc((size_t)(rows * ntok) * sizeof *yt);
    float *x = malloc((size_t)(cols * ntok) * sizeof *x);
    float *gain = malloc((size_t)cols * sizeof *gain);
    float *ye = malloc((size_t)(rows * ntok) * sizeof *ye), *yf = malloc((size_t)(rows * ntok) * 4);
    uint16_t *sc = malloc((size_t)rows * 2);
    const size_t ss = glmq_dot_scratch_size(GLMQ_DOT_EXACT, cols, ntok);
    void *scratch = malloc(ss);
    uint8_t *wq = big_alloc((size_t)rows * glmq_dot_row_bytes(GLMQ_TYPE_INT8, cols));
    if (!w || !yt || !x || !gain || !ye || !yf || !sc || !scratch || !wq) {
        fprintf(stderr, "glmq: error: out of memory\n");
        goto done;
    }
    fprintf(out, "\naccuracy: rel. error ||y - y_exact|| / ||y_exact||, %lldx%lld, %lld tokens\n",
            (long long)rows, (long long)cols, (long long)ntok);
    fprintf(out, "  (weights: exact-mode result vs the fp32 unquantized product, for scale;\n"
                 "   fast-*: fast result vs the exact-mode result)\n");
    fprintf(out, "  %-6s %-10s %12s %12s %12s\n", "type", "act", "weights", "fast-b32",
            "fast-row");
    for (int ti = 0; ti < 2; ti++) {
        const glmq_type type = ti ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
        const size_t rb = glmq_dot_row_bytes(type, cols);
        rs = 12345;
        for (int64_t r = 0; r < rows; r++) {
            double sigma = 0.01 * exp(log(4.0) * rnd_unit());
            float *wr = w + r * cols;
            for (int64_t j = 0; j < cols; j++) { /* Student-t, 5 degrees of freedom */
                double chi = 0;
                for (int k = 0; k < 5; k++) {
                    double z = rnd_normal();
                    chi += z * z;
                }
                wr[j] = (float)(sigma * rnd_normal() / sqrt(chi / 5));
            }
            if (type == GLMQ_TYPE_INT4)
                glmq_quantize_row_q4_ref(wr, cols, wq + (size_t)r * rb, &sc[r], NULL, NULL);
            else
                glmq_quantize_row_q8_ref(wr, cols, wq + (size_t)r * rb, &sc[r], NULL, NULL);
        }
        glmq_dot_mat m;
        glmq_err err = {0};
        glmq_dot_mat_init(&m, type, rows, cols, wq, sc, &err);
        for (int ak = 0; ak < 2; ak++) {
            for (int64_t j = 0; j < cols; j++) gain[j] = (float)exp(log(4.0) * (rnd_unit() - 0.5));
            for (int64_t t = 0; t < ntok; t++)
                for (int64_t j = 0; j < cols; j++) {
                    double v = rnd_normal() * (ak ? gain[j] : 1.0);
                    if (ak && j % 683 == 17) v = ((j / 683) % 2 ? 1 : -1) * (20 + 80 * rnd_unit());
                    x[t * cols + j] = (float)v;
                }
            glmq_dot_gemm_pool(c->pooln, c->k, GLMQ_DOT_EXACT, &m, x, cols, ntok, ye, rows,
                               scratch, ss, &err);
            double num = 0, den = 0;
            for (int64_t t = 0; t < ntok; t++)
                for (int64_t r = 0; r < rows; r++) {
                    double acc = 0;
                    for (int64_t j = 0; j < cols; j++)
                        acc += (double)w[r * cols + j] * x[t * cols + j];
                    yt[t * rows + r] = acc;
                    num += (ye[t * rows + r] - acc) * (ye[t * rows + r] - acc);
                    den += acc * acc;
                }
            const double wrel = sqrt(num / den);
            double rel[2];
            for (int mi = 0; mi < 2; mi++) {
                glmq_dot_gemm_pool(c->pooln, c->k, mi ? GLMQ_DOT_FAST_ROW : GLMQ_DOT_FAST_B32, &m,
                                   x, cols, ntok, yf, rows, scratch, ss, &err);
                num = 0;
                den = 0;
                for (int64_t i = 0; i < rows * ntok; i++) {
                    num += ((double)yf[i] - ye[i]) * ((double)yf[i] - ye[i]);
                    den += (double)ye[i] * ye[i];
                }
                rel[mi] = sqrt(num / den);
            }
            fprintf(out, "  %-6s %-10s %12.3e %12.3e %12.3e\n", glmq_type_name(type),
                    ak ? "llm" : "gauss", wrel, rel[0], rel[1]);
        }
    }
done:
    free(w);
    free(yt);
    free(x);
    free(gain);
    free(ye);
    free(yf);
    free(sc);
    free(scratch);
    free(wq);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* --groups: a comma-separated list of group-wise type names, "all" or "none"; -1 if bad. */
static int parse_groups(const char *arg, glmq_type *out, int *n)
{
    static const glmq_type all[6] = {GLMQ_TYPE_INT4_G32, GLMQ_TYPE_INT4_G64, GLMQ_TYPE_INT4_G128,
                                     GLMQ_TYPE_INT8_G32, GLMQ_TYPE_INT8_G64, GLMQ_TYPE_INT8_G128};
    *n = 0;
    if (!strcmp(arg, "none")) return 0;
    if (!strcmp(arg, "all")) {
        memcpy(out, all, sizeof all);
        *n = 6;
        return 0;
    }
    const char *p = arg;
    while (*p) {
        const size_t len = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < 6; i++) {
            const char *name = glmq_type_name(all[i]);
            if (strlen(name) == len && !strncmp(p, name, len)) {
                if (*n >= 6) return -1;
                out[(*n)++] = all[i];
                found = 1;
            }
        }
        if (!found) return -1;
        p += len;
        if (*p == ',') p++;
    }
    return *n > 0 ? 0 : -1;
}

int glmq_bench_gemv(int argc, char **argv)
{
    int threads = glmq_online_cores(), runs = 7, bw_mb = 1024, arena_mb = 512, ntok = 512;
    int quick = 0;
    const char *only = NULL;
    glmq_type groups[6] = {GLMQ_TYPE_INT4_G32, GLMQ_TYPE_INT4_G128, GLMQ_TYPE_INT8_G32};
    int ngroups = 3;
    glmq_cpu_level level = glmq_cpu_active();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return GLMQ_BENCH_OK;
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (threads = glmq_parse_int(argv[i], 1, 1024)) < 0)
                return glmq_bench_usage("bench gemv", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--runs")) {
            if (++i >= argc || (runs = glmq_parse_int(argv[i], 1, 63)) < 0)
                return glmq_bench_usage("bench gemv", "--runs needs a number from 1 to 63");
        } else if (!strcmp(a, "--bw-mb")) {
            if (++i >= argc || (bw_mb = glmq_parse_int(argv[i], 1, 65536)) < 0)
                return glmq_bench_usage("bench gemv", "--bw-mb needs a number from 1 to 65536");
        } else if (!strcmp(a, "--arena-mb")) {
            if (++i >= argc || (arena_mb = glmq_parse_int(argv[i], 1, 65536)) < 0)
                return glmq_bench_usage("bench gemv", "--arena-mb needs a number from 1 to 65536");
        } else if (!strcmp(a, "--tokens")) {
            if (++i >= argc || (ntok = glmq_parse_int(argv[i], 1, 4096)) < 0)
                return glmq_bench_usage("bench gemv", "--tokens needs a number from 1 to 4096");
        } else if (!strcmp(a, "--only")) {
            if (++i >= argc) return glmq_bench_usage("bench gemv",
                                        "--only needs bw|gemv|gemm|peak|f16|acc");
            only = argv[i];
        } else if (!strcmp(a, "--level")) {
            const int lv = i + 1 < argc ? glmq_cpu_parse(argv[i + 1]) : -1;
            if (++i >= argc || lv < 0)
                return glmq_bench_usage("bench gemv", "--level needs ref|avx2|avxvnni|avx512|"
                                                      "avx512vnni|neon|dotprod");
            level = (glmq_cpu_level)lv;
        } else if (!strcmp(a, "--groups")) {
            if (++i >= argc || parse_groups(argv[i], groups, &ngroups) != 0)
                return glmq_bench_usage("bench gemv", "--groups needs int4g32,int8g128,... or "
                                                      "all or none");
        } else if (!strcmp(a, "--quick")) {
            quick = 1;
        } else if (!strcmp(a, "gemv") || !strcmp(a, "bench") || !strcmp(a, "kernels")) {
            continue; /* however the caller forwards "glmq bench gemv ..." */
        } else {
            return glmq_bench_usage("bench gemv", "unknown option '%s'", a);
        }
    }
    if (quick) {
        runs = runs > 3 ? 3 : runs;
        bw_mb = bw_mb > 256 ? 256 : bw_mb;
        arena_mb = arena_mb > 128 ? 128 : arena_mb;
        ntok = ntok > 64 ? 64 : ntok;
    }
    const glmq_dot_kernels *k = glmq_dot_kernels_for(level);
    if (!k) {
        fprintf(stderr, "glmq: error: this CPU cannot run level '%s'\n",
                glmq_cpu_level_name(level));
        return GLMQ_BENCH_ERR;
    }
    ctx c = {.k = k, .runs = runs};
    glmq_err err = {0};
    if (glmq_pool_create(1, &c.pool1, &err) != GLMQ_OK ||
        glmq_pool_create(threads, &c.pooln, &err) != GLMQ_OK) {
        glmq_pool_free(c.pool1);
        return glmq_bench_error(&err);
    }
    int rc = GLMQ_BENCH_OK;
    printf("kernels: %s, %d thread%s, median of %d runs\n", k->name, threads,
           threads > 1 ? "s" : "", runs);

    /* 1. bandwidth (always: the GEMV percentages need it). Every level's probe is tried and
     * the fastest is the reference, so the percentages are never flattered by a slow probe
     * (on Zen 5, 512-bit loads missing to DRAM stream slower than 256-bit ones). */
    double bw1 = 0, bwn = 0;
    const int need_bw = !only || !strcmp(only, "bw") || !strcmp(only, "gemv");
    if (!need_bw) bw_mb = 1;
    const int64_t bw_n = (int64_t)bw_mb << 18;
    float *bwa = big_alloc((size_t)bw_n * 4);
    if (!bwa) {
        fprintf(stderr, "glmq: error: cannot allocate %d MiB\n", bw_mb);
        rc = GLMQ_BENCH_ERR;
        goto out;
    }
    for (int64_t i = 0; i < bw_n; i++) bwa[i] = (float)(i & 1023);
    c.bw = bwa;
    c.bw_n = bw_n;
    if (need_bw)
        printf("\nread bandwidth, sum of %d MiB fp32 (GB/s):\n  %-12s %9s %12s\n", bw_mb,
               "probe", "1 thread", "all threads");
    else
        c.probe = k->sum_f32;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX && need_bw; l++) {
        const glmq_dot_kernels *kl = glmq_dot_kernels_for((glmq_cpu_level)l);
        if (!kl) continue;
        double b1 = bandwidth(c.pool1, kl->sum_f32, bwa, bw_n, runs);
        double bn = bandwidth(c.pooln, kl->sum_f32, bwa, bw_n, runs);
        printf("  %-12s %9.1f %12.1f\n", kl->name, b1 / 1e9, bn / 1e9);
        if (b1 + bn > bw1 + bwn) {
            bw1 = b1;
            bwn = bn;
            c.probe = kl->sum_f32;
        }
    }
    if (need_bw)
        printf("  reference: %.1f GB/s (1 thread), %.1f GB/s (%d threads)\n", bw1 / 1e9,
               bwn / 1e9, threads);

    /* arena for the weights: large enough for two copies of the largest matrix */
    size_t maxmb = 0;
    for (int s = 0; s < NSHAPES; s++) {
        size_t mb = glmq_dot_row_bytes(GLMQ_TYPE_INT8, shapes[s].cols) * (size_t)shapes[s].rows;
        if (mb > maxmb) maxmb = mb;
    }
    c.arena_bytes = (size_t)arena_mb << 20;
    size_t alloc = c.arena_bytes > 2 * maxmb ? c.arena_bytes : 2 * maxmb;
    c.arena = big_alloc(alloc);
    c.scales = malloc(65536 * 2);
    /* group-wise GEMM scales: the most any GEMM shape needs (INT8 rows, groups of 32) */
    size_t gmax = 4096;
    for (int s = 0; s < NSHAPES; s++) {
        const size_t n = (size_t)(shapes[s].rows *
                                  glmq_scales_per_row(GLMQ_TYPE_INT8_G32, shapes[s].cols));
        if (n > gmax) gmax = n;
    }
    c.gscales = malloc(gmax * 2);
    const int64_t maxcols = 13696;
    float *x = malloc((size_t)(maxcols * ntok) * sizeof *x);
    float *y = malloc((size_t)(65536 * (int64_t)ntok) * sizeof *y);
    size_t ss = 0;
    for (int mode = 0; mode < GLMQ_DOT_NMODES; mode++) {
        size_t s = glmq_dot_scratch_size((glmq_dot_mode)mode, maxcols, ntok);
        if (s > ss) ss = s;
    }
    void *scratch = malloc(ss);
    if (!c.arena || !c.scales || !c.gscales || !x || !y || !scratch) {
        fprintf(stderr, "glmq: error: out of memory\n");
        rc = GLMQ_BENCH_ERR;
        goto out2;
    }
    fill_random(c.arena, alloc);
    for (int i = 0; i < 65536; i++) c.scales[i] = glmq_f32_to_f16(0.001f * (1 + i % 7));
    for (size_t i = 0; i < gmax; i++) c.gscales[i] = glmq_f32_to_f16(0.001f * (1 + i % 7));
    for (int64_t i = 0; i < maxcols * ntok; i++) {
        double v = rnd_normal();
        if (i % 683 == 17) v *= 50;
        x[i] = (float)v;
    }

    /* 2. GEMV */
    if (!only || !strcmp(only, "gemv")) {
        printf("\ngemv: GB/s of weight bytes (median) and %% of the read bandwidth of the same\n"
               "thread count (median of per-run ratios to a probe run just before each run)\n");
        printf("  %-18s %-5s %-9s %17s %17s\n", "shape (rows x cols)", "type", "mode", "1 thread",
               "all threads");
        for (int s = 0; s < NSHAPES; s++) {
            if (quick && s == NSHAPES - 1) continue;
            for (int ti = 0; ti < 2; ti++) {
                const glmq_type type = ti ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
                for (int mode = 0; mode < GLMQ_DOT_NMODES; mode++) {
                    rate g1 = gemv_rate(&c, c.pool1, type, (glmq_dot_mode)mode, shapes[s].rows,
                                        shapes[s].cols, x, y, scratch, ss);
                    rate gn = gemv_rate(&c, c.pooln, type, (glmq_dot_mode)mode, shapes[s].rows,
                                        shapes[s].cols, x, y, scratch, ss);
                    printf("  %-18s %-5s %-9s %8.1f (%4.0f%%) %8.1f (%4.0f%%)\n", shapes[s].name,
                           glmq_type_name(type), glmq_dot_mode_name((glmq_dot_mode)mode),
                           g1.gbs / 1e9, 100 * g1.ratio, gn.gbs / 1e9, 100 * gn.ratio);
                    fflush(stdout);
                }
            }
        }
        if (ngroups > 0) {
            printf("\ngemv, group-wise scales: GB/s of codes + scales (median), %% of the read\n"
                   "bandwidth, and %% of the per-row kernel of the same codes (median of per-run\n"
                   "ratios; the two alternate within each run)\n");
            printf("  %-18s %-8s %-9s %24s %24s\n", "shape (rows x cols)", "type", "mode",
                   "1 thread (bw, row)", "all threads (bw, row)");
        }
        for (int s = 0; s < NSHAPES && ngroups > 0; s++) {
            if (quick && s == NSHAPES - 1) continue;
            for (int gi = 0; gi < ngroups; gi++) {
                fill_group_scales(&c, groups[gi], shapes[s].rows, shapes[s].cols);
                for (int mode = 0; mode < GLMQ_DOT_FAST_ROW; mode++) {
                    rate g1, gn;
                    const double q1 = gemv_pair(&c, c.pool1, groups[gi], (glmq_dot_mode)mode,
                                                shapes[s].rows, shapes[s].cols, x, y, scratch,
                                                ss, &g1);
                    const double qn = gemv_pair(&c, c.pooln, groups[gi], (glmq_dot_mode)mode,
                                                shapes[s].rows, shapes[s].cols, x, y, scratch,
                                                ss, &gn);
                    printf("  %-18s %-8s %-9s %8.1f (%4.0f%%, %4.0f%%) %8.1f (%4.0f%%, %4.0f%%)\n",
                           shapes[s].name, glmq_type_name(groups[gi]),
                           glmq_dot_mode_name((glmq_dot_mode)mode), g1.gbs / 1e9, 100 * g1.ratio,
                           100 * q1, gn.gbs / 1e9, 100 * gn.ratio, 100 * qn);
                    fflush(stdout);
                }
            }
        }
    }

    /* 3. GEMM */
    if (!only || !strcmp(only, "gemm")) {
        printf("\ngemm: %d tokens, %d threads, G int-ops/s = 2*rows*cols*tokens/s (exact: "
               "GFLOP/s)\n",
               ntok, threads);
        double pk_int = 0;
#if defined(GLMQ_HAVE_X86)
        const int vk = vnni_peak_kind(k->level);
        if (vk >= 0) {
            pk_int = int_peak(c.pooln, vk);
            printf("  VNNI issue peak (%d threads, %d independent %s vpdpbusd chains): %.1f G "
                   "int-ops/s\n  (b32%% / row%%: fast-b32 / fast-row as %% of that peak)\n",
                   threads, VNNI_CHAINS, vk == PEAK_VNNI512 ? "zmm" : "ymm", pk_int / 1e9);
        } else if (k->level != GLMQ_CPU_REF && __builtin_cpu_supports("avx2")) {
            pk_int = int_peak(c.pooln, PEAK_INT);
            const double pk_b32 = int_peak(c.pooln, PEAK_B32);
            const double pk_nb = int_peak(c.pooln, PEAK_B32NB);
            printf("  AVX2 microloops (%d threads): vpmaddubsw+vpmaddwd %.1f, FAST_B32 step "
                   "with vpsignb (INT8) %.1f, without (INT4) %.1f G int-ops/s\n  (b32%% / "
                   "row%%: fast-b32 / fast-row as %% of the first loop; a reference rate, not "
                   "a bound: FAST_ROW can pass it)\n",
                   threads, pk_int / 1e9, pk_b32 / 1e9, pk_nb / 1e9);
        }
#endif
        printf("  %-18s %-5s %10s %10s %10s%s\n", "shape (rows x cols)", "type", "exact",
               "fast-b32", "fast-row", pk_int > 0 ? "  b32%  row%" : "");
        for (int s = 0; s < NSHAPES - 1; s++) {
            if (quick && s > 1) continue;
            for (int ti = 0; ti < 2; ti++) {
                const glmq_type type = ti ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
                double g[GLMQ_DOT_NMODES];
                for (int mode = 0; mode < GLMQ_DOT_NMODES; mode++)
                    g[mode] = gemm_rate(&c, type, (glmq_dot_mode)mode, shapes[s].rows,
                                        shapes[s].cols, ntok, x, y, scratch, ss,
                                        runs > 3 ? 3 : runs);
                printf("  %-18s %-5s %10.1f %10.1f %10.1f", shapes[s].name,
                       glmq_type_name(type), g[0] / 1e9, g[1] / 1e9, g[2] / 1e9);
                if (pk_int > 0) printf(" %5.0f %5.0f", 100 * g[1] / pk_int, 100 * g[2] / pk_int);
                printf("\n");
                fflush(stdout);
            }
        }
        if (ngroups > 0) {
            printf("\ngemm, group-wise scales: G int-ops/s and %% of the per-row kernel of the\n"
                   "same codes (median of per-run ratios; the two alternate within each run)\n");
            printf("  %-18s %-8s %18s %18s\n", "shape (rows x cols)", "type", "exact (row)",
                   "fast-b32 (row)");
        }
        for (int s = 0; s < NSHAPES - 1 && ngroups > 0; s++) {
            if (quick && s > 1) continue;
            for (int gi = 0; gi < ngroups; gi++) {
                double g[2], q[2];
                for (int mode = 0; mode < 2; mode++)
                    q[mode] = gemm_pair(&c, groups[gi], (glmq_dot_mode)mode, shapes[s].rows,
                                        shapes[s].cols, ntok, x, y, scratch, ss,
                                        runs > 3 ? 3 : runs, &g[mode]);
                printf("  %-18s %-8s %10.1f (%4.0f%%) %10.1f (%4.0f%%)\n", shapes[s].name,
                       glmq_type_name(groups[gi]), g[0] / 1e9, 100 * q[0], g[1] / 1e9,
                       100 * q[1]);
                fflush(stdout);
            }
        }
    }

    /* 4. FMA peak, and 5. exact GEMM on F16/BF16 weights as % of it */
    if (!only || !strcmp(only, "peak") || !strcmp(only, "f16")) {
        const int width = peak_width(level);
        const double p1 = fma_peak(c.pool1, width, runs), pn = fma_peak(c.pooln, width, runs);
        printf("\nfp32 fma peak (%s, %d-lane %s): %.1f GFLOP/s (1 thread), %.1f GFLOP/s "
               "(%d threads)\n",
               k->name, width, width == 1 ? "mulss+addss" : "vfmadd", p1 / 1e9, pn / 1e9,
               threads);
        if (!only || !strcmp(only, "f16")) f16_section(&c, width, ntok, x, y, scratch, ss, stdout);
    }

    /* 6. accuracy */
    if (!only || !strcmp(only, "acc")) accuracy(&c, stdout);

out2:
    free(bwa);
    free(c.arena);
    free(c.scales);
    free(c.gscales);
    free(x);
    free(y);
    free(scratch);
out:
    glmq_pool_free(c.pool1);
    glmq_pool_free(c.pooln);
    return rc;
}
