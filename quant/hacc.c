/*
 * hacc.c - the scalar H accumulation kernel (the reference), the level choice and the threaded
 * driver (see hacc.h). Built at baseline.
 *
 * The driver converts a block of GLMQ_HACC_TB tokens to fp64 once (exact), then every thread
 * takes the row groups g = ith, ith + nth, ... (4 rows each, so the triangle's uneven rows
 * spread evenly) and walks the columns in blocks of HACC_JB: for one column block the tokens'
 * columns (HACC_TB x HACC_JB doubles, 128 KiB) stay in L2 while all the thread's row groups use
 * them. Each element belongs to exactly one thread and adds its tokens in order, block after
 * block, so neither the thread count nor the blocking changes a bit of the result.
 */
#include "quant/hacc.h"
#include "quant/quant.h"

/* GPTQ's reference loops round every product and sum on its own (hacc.h), also in native
 * builds where the compiler could fuse them (GCC does not in ISO C mode, -std=c11; Clang
 * contracts by default). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define HACC_JB 128 /* columns per block of the driver */
#define HACC_RG 4   /* rows per group of the driver */

void glmq_hacc_block_ref(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                         int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    for (int64_t i = i0; i < i1; i++) {
        double *hi = h + i * n;
        for (int64_t t = 0; t < nt; t++) {
            const double *xt = x + t * ldx;
            const double xi = xt[i];
            for (int64_t j = i > j0 ? i : j0; j < j1; j++) hi[j] += xi * xt[j];
        }
    }
}

double glmq_gptq_dot_ref(const double *a, const double *b, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

void glmq_gptq_dot4_ref(const double *a, int64_t lda, const double *b, int64_t n, double *out)
{
    for (int r = 0; r < 4; r++) out[r] = glmq_gptq_dot_ref(a + r * lda, b, n);
}

void glmq_gptq_axpy_ref(double *w, const double *u, double e, int64_t n)
{
    for (int64_t i = 0; i < n; i++) w[i] -= e * u[i];
}

glmq_hacc_fn glmq_hacc_kernel(glmq_cpu_level level)
{
    const glmq_kernels *k = glmq_kernels_for(level); /* the level's table (quant/dispatch.c) */
    return k ? k->hacc : NULL;
}

glmq_hacc_fn glmq_hacc_active(void) { return glmq_hacc_kernel(glmq_cpu_active()); }

typedef struct {
    double *h;
    int64_t n, tb;
    const double *x;
    glmq_hacc_fn fn;
} hacc_job;

static void hacc_run(void *arg, int ith, int nth)
{
    const hacc_job *j = arg;
    const int64_t ng = (j->n + HACC_RG - 1) / HACC_RG;
    for (int64_t c0 = 0; c0 < j->n; c0 += HACC_JB) {
        const int64_t c1 = c0 + HACC_JB < j->n ? c0 + HACC_JB : j->n;
        for (int64_t g = ith; g < ng && g * HACC_RG < c1; g += nth) {
            const int64_t r0 = g * HACC_RG, r1 = r0 + HACC_RG < j->n ? r0 + HACC_RG : j->n;
            j->fn(j->h, j->n, j->x, j->n, j->tb, r0, r1, c0, c1);
        }
    }
}

void glmq_hacc_add(double *h, int64_t n, const float *x, int64_t ldx, int64_t nt, glmq_pool *pool,
                   glmq_hacc_fn fn, double *scratch)
{
    if (!fn) fn = glmq_hacc_active();
    for (int64_t t0 = 0; t0 < nt; t0 += GLMQ_HACC_TB) {
        const int64_t tb = nt - t0 < GLMQ_HACC_TB ? nt - t0 : GLMQ_HACC_TB;
        for (int64_t t = 0; t < tb; t++) {
            const float *xt = x + (t0 + t) * ldx;
            double *d = scratch + t * n;
            for (int64_t c = 0; c < n; c++) d[c] = (double)xt[c];
        }
        hacc_job j = {h, n, tb, scratch, fn};
        if (pool)
            glmq_pool_run(pool, hacc_run, &j);
        else
            hacc_run(&j, 0, 1);
    }
}
