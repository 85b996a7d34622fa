/*
 * hacc.c - the scalar H accumulation kernel (the reference), the level choice and the threaded
 * driver; the reference GPTQ loops and the reference forward's dot8 (see hacc.h). Built at
 * baseline.
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

#include <string.h>

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

void glmq_gptq_dot4x4_ref(const double *a, int64_t lda, const double *b, int64_t ldb, int64_t n,
                          double *out)
{
    for (int r = 0; r < 4; r++)
        for (int m = 0; m < 4; m++)
            out[4 * r + m] = glmq_gptq_dot_ref(a + r * lda + 4 * m, b + m * ldb + 4 * m, n - 4 * m);
}

void glmq_gptq_axpy_ref(double *w, const double *u, double e, int64_t n)
{
    for (int64_t i = 0; i < n; i++) w[i] -= e * u[i];
}

void glmq_gptq_update_ref(double *w, int64_t ldw, int64_t nr, const double *e, int64_t lde,
                          const double *u, int64_t ldu, int64_t nc, int64_t nk)
{
    for (int64_t c = 0; c < nc; c++)
        for (int64_t r = 0; r < nr; r++)
            glmq_gptq_axpy_ref(w + r * ldw, u + c * ldu, e[r * lde + c], nk);
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

/* ---- the reference forward's fp32 dot products (hacc.h) ------------------------------------- */

#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));

static inline v4f ld4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float reduce8(v4f a, v4f b)
{
    v4f c = a + b; /* lanes l0+l4, l1+l5, l2+l6, l3+l7 */
    return (c[0] + c[2]) + (c[1] + c[3]);
}

float glmq_dot8_f32(const float *a, const float *b, int64_t n)
{
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += ld4(a + i) * ld4(b + i);
        s1 += ld4(a + i + 4) * ld4(b + i + 4);
    }
    float s = reduce8(s0, s1);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Four dots w[r]·x (rows r = 0..3 at stride ld), each exactly glmq_dot8_f32(w + r*ld, x, n). */
static inline void dot4_f32(const float *w, int64_t ld, const float *x, int64_t n, float out[4])
{
    const float *w0 = w, *w1 = w + ld, *w2 = w + 2 * ld, *w3 = w + 3 * ld;
    v4f a0 = {0, 0, 0, 0}, b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f xl = ld4(x + i), xh = ld4(x + i + 4);
        a0 += ld4(w0 + i) * xl;
        b0 += ld4(w0 + i + 4) * xh;
        a1 += ld4(w1 + i) * xl;
        b1 += ld4(w1 + i + 4) * xh;
        a2 += ld4(w2 + i) * xl;
        b2 += ld4(w2 + i + 4) * xh;
        a3 += ld4(w3 + i) * xl;
        b3 += ld4(w3 + i + 4) * xh;
    }
    float s0 = reduce8(a0, b0), s1 = reduce8(a1, b1), s2 = reduce8(a2, b2), s3 = reduce8(a3, b3);
    for (; i < n; i++) {
        s0 += w0[i] * x[i];
        s1 += w1[i] * x[i];
        s2 += w2[i] * x[i];
        s3 += w3[i] * x[i];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}
#else
float glmq_dot8_f32(const float *a, const float *b, int64_t n)
{
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) l[k] += a[i + k] * b[i + k];
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void dot4_f32(const float *w, int64_t ld, const float *x, int64_t n, float out[4])
{
    for (int r = 0; r < 4; r++) out[r] = glmq_dot8_f32(w + r * ld, x, n);
}
#endif

void glmq_dot8_rows_ref(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                        int64_t nt, int64_t n, float *y, int64_t ldy)
{
    for (int64_t t = 0; t < nt; t++) {
        const float *xt = x + t * ldx;
        float *yt = y + t * ldy;
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4) dot4_f32(w + r * ldw, ldw, xt, n, yt + r);
        for (; r < nr; r++) yt[r] = glmq_dot8_f32(w + r * ldw, xt, n);
    }
}
