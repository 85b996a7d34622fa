/*
 * gptq.c - activation-weighted scale search and GPTQ for per-row INT4/INT8 (see gptq.h).
 *
 * Plain C on purpose: no ISA-specific code and no FMA contraction (C11, -ffp-contract off), and
 * every reduction runs in a fixed order (four interleaved partial sums combined as
 * (s0 + s1) + (s2 + s3)), so the output is the same on every machine and thread count. The two
 * inner loops that take the time, that dot product (one, or four against one vector) and
 * w -= e u, are the kernel table's (gptq_dot, gptq_dot4, gptq_axpy: quant/hacc.h),
 * bit-identical on every level.
 */
#include "quant/gptq.h"
#include "quant/hacc.h"
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <math.h>
#include <stdlib.h>

/* The round-to-nearest code of w with scale s (fp32, as the plain quantizer), 0 for s = 0. */
static inline float rtn_code(float w, float s, int qmax)
{
    if (s == 0.0f) return 0.0f;
    float x = rintf(w / s);
    if (x > (float)qmax) x = (float)qmax;
    if (x < (float)-qmax) x = (float)-qmax;
    return x;
}

void glmq_rtn_codes(const float *w, int64_t n, uint16_t scale, int qmax, int8_t *q)
{
    float s = glmq_f16_to_f32(scale);
    for (int64_t j = 0; j < n; j++) q[j] = (int8_t)rtn_code(w[j], s, qmax);
}

/* sum_j d_j (w_j - s q_j)^2 with q = rtn codes of scale bits sb. */
static double weighted_err(const float *w, int64_t n, const double *d, int qmax, uint16_t sb)
{
    float s = glmq_f16_to_f32(sb);
    double e = 0.0;
    for (int64_t j = 0; j < n; j++) {
        float x = rtn_code(w[j], s, qmax);
        double r = (double)w[j] - (double)x * (double)s;
        e += d[j] * r * r;
    }
    return e;
}

glmq_status glmq_weighted_scale(const float *w, int64_t n, const double *d, int qmax,
                                uint16_t *scale, int64_t *bad_col)
{
    if (bad_col) *bad_col = -1;
    float amax, s0;
    if (glmq_row_amax(w, n, &amax, bad_col) != GLMQ_OK) return GLMQ_E_VALUE;
    if (!glmq_q_row_scale(amax, qmax, scale, &s0)) return GLMQ_E_UNSUPPORTED;
    if (s0 == 0.0f) return GLMQ_OK;
    uint16_t best = *scale;
    double best_e = weighted_err(w, n, d, qmax, best);
    for (int k = -8; k <= 16; k++) {
        uint16_t cand[2];
        cand[0] = glmq_f32_to_f16(amax / ((float)qmax * (1.0f + (float)k / 40.0f)));
        /* refit: weighted least squares of the candidate's codes */
        float s = glmq_f16_to_f32(cand[0]);
        double num = 0.0, den = 0.0;
        for (int64_t j = 0; j < n && s != 0.0f && isfinite(s); j++) {
            float x = rtn_code(w[j], s, qmax);
            num += d[j] * (double)w[j] * (double)x;
            den += d[j] * (double)x * (double)x;
        }
        cand[1] = den > 0.0 ? glmq_f32_to_f16((float)(num / den)) : cand[0];
        for (int c = 0; c < 2; c++) {
            float cs = glmq_f16_to_f32(cand[c]);
            if (!(cs > 0.0f) || !isfinite(cs)) continue;
            double e = weighted_err(w, n, d, qmax, cand[c]);
            if (e < best_e) {
                best_e = e;
                best = cand[c];
            }
        }
    }
    *scale = best;
    return GLMQ_OK;
}

void glmq_pack_codes_row(const int8_t *q, int64_t n, int q4, void *out)
{
    uint8_t *o = out;
    if (!q4) {
        memset(o, 0, (size_t)glmq_q8_row_bytes(n));
        for (int64_t j = 0; j < n; j++) o[j] = (uint8_t)q[j];
        return;
    }
    memset(o, 0x88, (size_t)glmq_q4_row_bytes(n));
    for (int64_t j = 0; j < n; j++) {
        int64_t blk = j / GLMQ_Q4_BLOCK, k = j % GLMQ_Q4_BLOCK;
        uint8_t *b = o + blk * (GLMQ_Q4_BLOCK / 2) + (k & 63);
        uint8_t nib = (uint8_t)(q[j] + 8);
        *b = k < 64 ? (uint8_t)((*b & 0xf0) | nib) : (uint8_t)((*b & 0x0f) | (nib << 4));
    }
}

/* ---- the factorization ---------------------------------------------------------------------- */

/* In place: a (n x n, symmetric, row-major) -> R upper triangular with a = R R^T, computed from
 * the last column backwards (R[j][j] = sqrt(a_jj - sum_{k>j} R[j][k]^2), R[i][j] = (a_ij -
 * sum_{k>j} R[i][k] R[j][k]) / R[j][j] for i < j). The lower triangle is zeroed. Returns the
 * first column whose pivot is not positive, or -1.
 * Columns go in blocks of CHOL_BLOCK (from the last): first the block's own rows (the triangle,
 * in the plain order: pivot of j, then rows i < j of the block), then every row above the block
 * takes the block's columns (descending) in one visit, its tail staying in cache while the
 * block's rows are read from it; those rows are spread over the threads, each thread taking
 * four of its rows through the block together (gptq_dot4: four chains in flight). Every element is
 * computed once, from final inputs, by the same expression as the plain column-by-column loop,
 * so blocking and threads do not change a bit. */
#define CHOL_BLOCK 32

typedef struct {
    double *a;
    int64_t n, jb0, jb1;
    const glmq_kernels *k;
} chol_job;

static void chol_run(void *arg, int ith, int nth)
{
    const chol_job *c = arg;
    const int64_t n = c->n, ld = (int64_t)nth * n; /* this thread's rows i, i + nth, ... */
    int64_t i = ith;
    for (; i + 3 * (int64_t)nth < c->jb0; i += 4 * (int64_t)nth) { /* four rows' dots at once */
        double *ri = c->a + i * n;
        for (int64_t j = c->jb1 - 1; j >= c->jb0; j--) {
            const double *rj = c->a + j * n;
            double dots[4];
            c->k->gptq_dot4(ri + j + 1, ld, rj + j + 1, n - j - 1, dots);
            for (int r = 0; r < 4; r++) ri[r * ld + j] = (ri[r * ld + j] - dots[r]) / rj[j];
        }
    }
    for (; i < c->jb0; i += nth) {
        double *ri = c->a + i * n;
        for (int64_t j = c->jb1 - 1; j >= c->jb0; j--) {
            const double *rj = c->a + j * n;
            ri[j] = (ri[j] - c->k->gptq_dot(ri + j + 1, rj + j + 1, n - j - 1)) / rj[j];
        }
    }
}

static int64_t reverse_cholesky(double *a, int64_t n, glmq_pool *pool, const glmq_kernels *kt)
{
    for (int64_t jb1 = n; jb1 > 0; jb1 -= CHOL_BLOCK) {
        const int64_t jb0 = jb1 > CHOL_BLOCK ? jb1 - CHOL_BLOCK : 0;
        for (int64_t j = jb1 - 1; j >= jb0; j--) {
            double *rj = a + j * n;
            double piv = rj[j] - kt->gptq_dot(rj + j + 1, rj + j + 1, n - j - 1);
            if (!(piv > 0.0) || !isfinite(piv)) return j;
            double d = sqrt(piv);
            rj[j] = d;
            for (int64_t i = jb0; i < j; i++) {
                double *ri = a + i * n;
                ri[j] = (ri[j] - kt->gptq_dot(ri + j + 1, rj + j + 1, n - j - 1)) / d;
            }
        }
        chol_job c = {a, n, jb0, jb1, kt};
        if (jb0 > 0 && pool)
            glmq_pool_run(pool, chol_run, &c);
        else if (jb0 > 0)
            chol_run(&c, 0, 1);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < i; k++) a[i * n + k] = 0.0;
    return -1;
}

/* In place: r (upper triangular, n x n, row-major) -> u = r^-1, upper triangular. Row i of u
 * solves u[i] r = e_i: u[i][i] = 1 / r[i][i], u[i][c] = -(sum_{i<=k<c} u[i][k] r[k][c]) /
 * r[c][c], accumulated row-wise (k outer) in a fixed order. Row i of u needs only the rows
 * c >= i of r, so rows are made in blocks of INV_BLOCK per thread into a buffer and written over
 * their rows of r once the whole block (of all threads) is done: no second n x n matrix. In a
 * row's buffer slot c holds the running sum acc[c] until step c, then u[i][c]. Every thread
 * makes its rows together, one pass over each row c of r for all of them; each element is the
 * same sequence of operations for any thread count. */
#define INV_BLOCK 8

typedef struct {
    const double *r;
    int64_t n, i0, i1; /* rows [i0, i1) of this step */
    double *buf;       /* (i1 - i0) x n */
    const glmq_kernels *k;
} inv_job;

static void inv_run(void *arg, int ith, int nth)
{
    const inv_job *j = arg;
    const int64_t n = j->n;
    const int64_t a = j->i0 + (int64_t)ith * INV_BLOCK, b = a + INV_BLOCK < j->i1 ? a + INV_BLOCK
                                                                                   : j->i1;
    (void)nth;
    if (a >= b) return;
    for (int64_t i = a; i < b; i++) {
        double *ui = j->buf + (i - j->i0) * n;
        for (int64_t c = 0; c < n; c++) ui[c] = 0.0;
    }
    for (int64_t c = a; c < n; c++) {
        const double *rc = j->r + c * n;
        const int64_t ie = c + 1 < b ? c + 1 : b; /* rows i <= c of the block */
        for (int64_t i = a; i < ie; i++) {
            double *ui = j->buf + (i - j->i0) * n;
            double v = c == i ? 1.0 / rc[c] : -ui[c] / rc[c];
            ui[c] = v;
            /* ui += v rc, as ui -= (-v) rc: x - (-v) r is exactly x + v r */
            j->k->gptq_axpy(ui + c + 1, rc + c + 1, -v, n - c - 1);
        }
    }
}

static void upper_inverse(double *r, int64_t n, double *buf, glmq_pool *pool, int nth,
                          const glmq_kernels *kt)
{
    const int64_t step = (int64_t)nth * INV_BLOCK;
    for (int64_t i0 = 0; i0 < n; i0 += step) {
        inv_job j = {r, n, i0, i0 + step < n ? i0 + step : n, buf, kt};
        if (pool)
            glmq_pool_run(pool, inv_run, &j);
        else
            inv_run(&j, 0, 1);
        memcpy(r + i0 * n, buf, (size_t)(j.i1 - i0) * (size_t)n * sizeof *r);
    }
}

/* ---- the sweep ------------------------------------------------------------------------------ */

#define SWEEP_BLOCK 128 /* columns per lazy batch: the result does not depend on it */
#define ROW_TILE 16     /* rows sharing each pass over U */

typedef struct {
    const float *w;
    int64_t rows, cols;
    const double *h;     /* undamped, unpermuted */
    const double *u;     /* permuted U */
    const int64_t *perm; /* permuted column -> original column */
    const uint8_t *dead; /* original column dead */
    int qmin, qmax;
    int q4;
    int64_t group, ngs;  /* group size (0: per row) and scales per row */
    int8_t *codes;
    const uint16_t *scales;
    double *row_err_g, *row_err_r;
    double *scratch;     /* per thread: ROW_TILE * (3 cols + SWEEP_BLOCK) doubles */
    size_t scratch_per;
    int8_t *rtn;         /* per thread: ROW_TILE * cols */
    const glmq_kernels *k;
} sweep_job;

/* off[r] = dot(dv_r + k + 1, h_k + k + 1): row k of h against the nr rows of dv. */
static void h_row_dots(const double *h, int64_t n, const double *dv, int nr, int64_t k,
                       double *off, const glmq_kernels *kt)
{
    const double *hk = h + k * n;
    int r = 0;
    for (; r + 4 <= nr; r += 4)
        kt->gptq_dot4(dv + (size_t)r * (size_t)n + k + 1, n, hk + k + 1, n - k - 1, off + r);
    for (; r < nr; r++)
        off[r] = kt->gptq_dot(dv + (size_t)r * (size_t)n + k + 1, hk + k + 1, n - k - 1);
}

/* (w - s q)^T h (w - s q) for ROW_TILE-many rows at once (dv holds the differences, nr rows of
 * cols values): out[r] = sum over k in order of d_k (h_kk d_k + 2 off_k), off_k the dot of row
 * k of h right of the diagonal with d's columns right of k. Rows of h go in blocks of 16, as
 * four staggered groups k, k + 4, k + 8, k + 12 (gptq_dot4x4: each loaded vector of h serves
 * four rows of dv and each of dv four of h, in 16 independent chains); the sums over k then run
 * in order. Every off_k is gptq_dot's, so the blocking changes no bit. */
#define HW_KB 16

static void h_weighted(const double *h, int64_t n, const double *dv, int nr, double *out,
                       const glmq_kernels *kt)
{
    for (int r = 0; r < nr; r++) out[r] = 0.0;
    double off[HW_KB][ROW_TILE];
    for (int64_t k0 = 0; k0 < n; k0 += HW_KB) {
        const int kb = n - k0 < HW_KB ? (int)(n - k0) : HW_KB;
        if (kb < HW_KB) { /* the last rows: dots of fewer than 12 columns */
            for (int kk = 0; kk < kb; kk++) h_row_dots(h, n, dv, nr, k0 + kk, off[kk], kt);
        } else {
            for (int c = 0; c < 4; c++) {
                const int64_t k = k0 + c;
                int r = 0;
                for (; r + 4 <= nr; r += 4) {
                    double t[16];
                    kt->gptq_dot4x4(dv + (size_t)r * (size_t)n + k + 1, n, h + k * n + k + 1,
                                    4 * n, n - k - 1, t);
                    for (int rr = 0; rr < 4; rr++)
                        for (int m = 0; m < 4; m++) off[c + 4 * m][r + rr] = t[4 * rr + m];
                }
                for (int m = 0; m < 4 && r < nr; m++) /* the last nr mod 4 rows */
                    h_row_dots(h, n, dv + (size_t)r * (size_t)n, nr - r, k + 4 * m,
                               &off[c + 4 * m][r], kt);
            }
        }
        for (int kk = 0; kk < kb; kk++) {
            const int64_t k = k0 + kk;
            const double hkk = h[k * n + k];
            for (int r = 0; r < nr; r++) {
                const double *d = dv + (size_t)r * (size_t)n;
                out[r] += d[k] * (hkk * d[k] + 2.0 * off[kk][r]);
            }
        }
    }
}

static void sweep_run(void *arg, int ith, int nth)
{
    sweep_job *j = arg;
    const int64_t n = j->cols;
    int64_t r0 = j->rows * ith / nth, r1 = j->rows * (ith + 1) / nth;
    double *wt = j->scratch + (size_t)ith * j->scratch_per;  /* ROW_TILE x n working rows */
    double *et = wt + (size_t)ROW_TILE * (size_t)n;           /* ROW_TILE x SWEEP_BLOCK errors */
    double *dv = et + (size_t)ROW_TILE * SWEEP_BLOCK;         /* ROW_TILE x n differences */
    double *sv = dv + (size_t)ROW_TILE * (size_t)n;           /* ROW_TILE x n column scales */
    int8_t *rq = j->rtn + (size_t)ith * (size_t)ROW_TILE * (size_t)n;
    for (int64_t t0 = r0; t0 < r1; t0 += ROW_TILE) {
        int nr = (int)(r1 - t0 < ROW_TILE ? r1 - t0 : ROW_TILE);
        for (int r = 0; r < nr; r++) {
            const float *w = j->w + (size_t)(t0 + r) * (size_t)n;
            const uint16_t *sr = j->scales + (size_t)(t0 + r) * (size_t)j->ngs;
            for (int64_t c = 0; c < n; c++) { /* original column order */
                sv[(size_t)r * n + c] = (double)glmq_f16_to_f32(sr[j->group ? c / j->group : 0]);
                wt[(size_t)r * n + c] = j->dead[j->perm[c]] ? 0.0 : (double)w[j->perm[c]];
            }
        }
        for (int64_t b0 = 0; b0 < n; b0 += SWEEP_BLOCK) {
            int64_t b1 = b0 + SWEEP_BLOCK < n ? b0 + SWEEP_BLOCK : n;
            for (int r = 0; r < nr; r++) {
                double *w = wt + (size_t)r * n, *e = et + (size_t)r * SWEEP_BLOCK;
                int8_t *q = j->codes + (size_t)(t0 + r) * (size_t)n;
                for (int64_t c = b0; c < b1; c++) {
                    const double sc = sv[(size_t)r * n + j->perm[c]];
                    double x = 0.0;
                    if (sc != 0.0) {
                        x = rint(w[c] / sc);
                        if (x > j->qmax) x = j->qmax;
                        if (x < j->qmin) x = j->qmin;
                    }
                    q[j->perm[c]] = (int8_t)x;
                    const double *uc = j->u + c * n;
                    double ec = (w[c] - x * sc) / uc[c];
                    e[c - b0] = ec;
                    j->k->gptq_axpy(w + c + 1, uc + c + 1, ec, b1 - c - 1);
                }
            }
            /* the lazy batch: the block's errors update the columns after it (gptq_update:
             * every element takes the updates of c = b0, b0 + 1, ... in order, as the axpy
             * per column and row would give them) */
            if (b1 < n)
                j->k->gptq_update(wt + b1, n, nr, et, SWEEP_BLOCK, j->u + b0 * n + b1, n,
                                  b1 - b0, n - b1);
        }
        /* H-weighted errors of GPTQ's codes and of round-to-nearest with the same scale */
        for (int pass = 0; pass < 2; pass++) {
            for (int r = 0; r < nr; r++) {
                const float *w = j->w + (size_t)(t0 + r) * (size_t)n;
                const int8_t *q = j->codes + (size_t)(t0 + r) * (size_t)n;
                if (pass == 1) {
                    q = rq + (size_t)r * n;
                    if (j->group) /* the group rule's own codes (its scales are the stored ones) */
                        for (int64_t c0 = 0; c0 < n; c0 += j->group) {
                            uint16_t sb;
                            (void)glmq_group_rtn(w + c0, c0 + j->group < n ? j->group : n - c0,
                                                 j->q4, rq + (size_t)r * n + c0, &sb);
                        }
                    else
                        glmq_rtn_codes(w, n, j->scales[t0 + r], j->qmax, rq + (size_t)r * n);
                }
                for (int64_t c = 0; c < n; c++)
                    dv[(size_t)r * n + c] = (double)w[c] - (double)q[c] * sv[(size_t)r * n + c];
            }
            h_weighted(j->h, n, dv, nr, (pass ? j->row_err_r : j->row_err_g) + t0, j->k);
        }
        for (int r = 0; r < nr; r++)
            if (j->row_err_g[t0 + r] > j->row_err_r[t0 + r]) {
                memcpy(j->codes + (size_t)(t0 + r) * (size_t)n, rq + (size_t)r * n, (size_t)n);
                j->row_err_g[t0 + r] = -1.0; /* marks a row that kept RTN */
            }
    }
}

/* fn over the rows on the pool's threads, or on this one without a pool. */
static void run_rows(glmq_pool *pool, glmq_pool_fn fn, void *arg)
{
    if (pool)
        glmq_pool_run(pool, fn, arg);
    else
        fn(arg, 0, 1);
}

/* ---- the rows' scales, fixed before the codes ------------------------------------------------ */

typedef struct {
    const float *w;
    int64_t rows, cols;
    int64_t group, ngs; /* group size (0: per row) and scales per row */
    const double *d;    /* per row: the weighted search's weights (diag H), or NULL: amax / qmax */
    int q4, qmax;
    uint16_t *scales;   /* rows x ngs */
    uint16_t *plain;    /* NULL, or [rows]: also the plain amax / qmax scale */
    int8_t *st;         /* per row: 0 ok, 1 a weight not finite, 2 a scale overflows fp16 */
    int64_t *bad;       /* per row: the column not finite */
} scale_job;

static void scale_run(void *arg, int ith, int nth)
{
    const scale_job *j = arg;
    const int64_t n = j->cols;
    int8_t q[128];
    for (int64_t r = j->rows * ith / nth; r < j->rows * (ith + 1) / nth; r++) {
        const float *wr = j->w + (size_t)r * (size_t)n;
        int64_t bad = -1;
        float amax, sf;
        glmq_status s = glmq_row_amax(wr, n, &amax, &bad);
        if (s == GLMQ_OK && j->group) {
            for (int64_t c0 = 0; s == GLMQ_OK && c0 < n; c0 += j->group) {
                uint16_t *sc = &j->scales[(size_t)r * (size_t)j->ngs + (size_t)(c0 / j->group)];
                if (!glmq_group_rtn(wr + c0, c0 + j->group < n ? j->group : n - c0, j->q4, q, sc))
                    s = GLMQ_E_UNSUPPORTED;
            }
        } else if (s == GLMQ_OK) {
            if (j->d) s = glmq_weighted_scale(wr, n, j->d, j->qmax, &j->scales[r], &bad);
            else if (!glmq_q_row_scale(amax, j->qmax, &j->scales[r], &sf)) s = GLMQ_E_UNSUPPORTED;
            if (s == GLMQ_OK && j->plain && !glmq_q_row_scale(amax, j->qmax, &j->plain[r], &sf))
                s = GLMQ_E_UNSUPPORTED;
        }
        j->st[r] = s == GLMQ_OK ? 0 : s == GLMQ_E_VALUE ? 1 : 2;
        j->bad[r] = bad;
    }
}

/* Every row's scales (scale_job) on the pool; the first failing row, in row order, names the
 * error (`what`: the message's prefix). */
static glmq_status row_scales(scale_job *j, glmq_pool *pool, const char *what, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    j->st = malloc((size_t)j->rows);
    j->bad = malloc((size_t)j->rows * sizeof *j->bad);
    GLMQ_FAIL_IF_G(!j->st || !j->bad, err, GLMQ_E_NOMEM, "%sout of memory", what);
    run_rows(pool, scale_run, j);
    for (int64_t r = 0; r < j->rows; r++) {
        GLMQ_FAIL_IF_G(j->st[r] == 1, err, GLMQ_E_VALUE,
                       "%sweight row %lld column %lld is not finite", what, (long long)r,
                       (long long)j->bad[r]);
        GLMQ_FAIL_IF_G(j->st[r] == 2, err, GLMQ_E_UNSUPPORTED,
                       "%sweight row %lld: its scale overflows fp16", what, (long long)r);
    }
fail:
    free(j->st);
    free(j->bad);
    return st;
}

/* The totals of the per-row errors, in row order; em[r] < 0 marks a row that kept RTN. */
static void sum_stats(glmq_gptq_stats *st, const double *em, const double *er, int64_t rows)
{
    if (!st) return;
    memset(st, 0, sizeof *st);
    for (int64_t r = 0; r < rows; r++) {
        st->err_rtn += er[r];
        st->err_gptq += em[r] < 0.0 ? er[r] : em[r];
        st->rows_rtn += em[r] < 0.0;
    }
}

typedef struct {
    int64_t col;
    double h;
} col_key;

static int cmp_col(const void *a, const void *b)
{
    const col_key *x = a, *y = b;
    if (x->h != y->h) return x->h > y->h ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

glmq_status glmq_gptq_quantize(const float *w, int64_t rows, int64_t cols, const double *h,
                               const glmq_gptq_opts *o, glmq_pool *pool, int8_t *codes,
                               uint16_t *scales, glmq_gptq_stats *stats, glmq_err *err)
{
    GLMQ_FAIL_IF(rows < 1 || cols < 1 || !(o->damp >= 0.0) || cols > (int64_t)1 << 20, err,
                 GLMQ_E_INVALID, "GPTQ: bad arguments (%lld x %lld, damp %g)", (long long)rows,
                 (long long)cols, o->damp);
    GLMQ_FAIL_IF(o->group < 0 || o->group > 128 || o->group % 32 || (o->group && o->scale_search),
                 err, GLMQ_E_INVALID, "GPTQ: group %lld (32, 64 or 128; no scale search)",
                 (long long)o->group);
    const int qmax = o->q4 ? 7 : 127, qmin = o->group && o->q4 ? -8 : -qmax;
    const int64_t n = cols, ngs = o->group ? (cols + o->group - 1) / o->group : 1;
    int nth = pool ? glmq_pool_size(pool) : 1;
    glmq_status st = GLMQ_OK;
    double *a = NULL, *raw = NULL, *u = NULL, *scratch = NULL, *diag = NULL, *eg = NULL, *er = NULL;
    int64_t *perm = NULL;
    uint8_t *dead = NULL;
    int8_t *rtn = NULL;
    col_key *keys = NULL;
    size_t nn = (size_t)n * (size_t)n, scratch_per = (size_t)ROW_TILE * (3 * (size_t)n + SWEEP_BLOCK);
    a = malloc(nn * sizeof *a);
    u = malloc((size_t)nth * INV_BLOCK * (size_t)n * sizeof *u); /* upper_inverse's rows */
    diag = malloc((size_t)n * sizeof *diag);
    raw = malloc((size_t)n * sizeof *raw);
    perm = malloc((size_t)n * sizeof *perm);
    dead = malloc((size_t)n);
    keys = malloc((size_t)n * sizeof *keys);
    eg = malloc((size_t)rows * sizeof *eg);
    er = malloc((size_t)rows * sizeof *er);
    scratch = malloc((size_t)nth * scratch_per * sizeof *scratch);
    rtn = malloc((size_t)nth * ROW_TILE * (size_t)n);
    GLMQ_FAIL_IF_G(!a || !u || !diag || !raw || !perm || !dead || !keys || !eg || !er || !scratch || !rtn,
                   err, GLMQ_E_NOMEM, "GPTQ: out of memory for a %lld-column Hessian",
                   (long long)n);

    /* 1. the diagonal, dead columns, damping */
    double mean = 0.0;
    for (int64_t c = 0; c < n; c++) {
        double d = h[(size_t)c * n + c];
        GLMQ_FAIL_IF_G(!(d >= 0.0) || !isfinite(d), err, GLMQ_E_VALUE,
                       "GPTQ: H[%lld][%lld] = %g is not a finite non-negative diagonal",
                       (long long)c, (long long)c, d);
        raw[c] = d;
        dead[c] = d == 0.0;
        diag[c] = dead[c] ? 1.0 : d;
        mean += diag[c];
    }
    double lambda = o->damp * mean / (double)n;

    /* 2. scales (from the original rows; groups: the group rule's scales, fixed before the
     * sweep - GPTQ's "static groups", which keeps them independent of the column order) */
    scale_job sj = {.w = w, .rows = rows, .cols = n, .group = o->group, .ngs = ngs,
                    .d = o->scale_search ? raw : NULL, .q4 = o->q4, .qmax = qmax,
                    .scales = scales};
    st = row_scales(&sj, pool, "GPTQ: ", err);
    if (st != GLMQ_OK) goto fail;

    /* 3. column order and the damped, permuted H */
    for (int64_t c = 0; c < n; c++) keys[c] = (col_key){c, o->act_order ? diag[c] : 0.0};
    if (o->act_order) qsort(keys, (size_t)n, sizeof *keys, cmp_col);
    for (int64_t c = 0; c < n; c++) perm[c] = keys[c].col;
    for (int64_t i = 0; i < n; i++) {
        int64_t pi = perm[i];
        for (int64_t k = 0; k < n; k++) {
            int64_t pk = perm[k];
            double v = dead[pi] || dead[pk] ? 0.0 : h[(size_t)pi * n + pk];
            if (i == k) v = diag[pi] + lambda;
            GLMQ_FAIL_IF_G(!isfinite(v), err, GLMQ_E_VALUE, "GPTQ: H[%lld][%lld] is not finite",
                           (long long)pi, (long long)pk);
            a[(size_t)i * n + k] = v;
        }
    }

    /* 4. H_d = R R^T, U = R^-1 */
    const glmq_kernels *kt = glmq_kernels_get();
    int64_t bad = reverse_cholesky(a, n, pool, kt);
    GLMQ_FAIL_IF_G(bad >= 0, err, GLMQ_E_VALUE,
                   "GPTQ: the Hessian is not positive definite at column %lld even with damping "
                   "%g (lambda %g): the calibration inputs are degenerate",
                   (long long)perm[bad], o->damp, lambda);
    upper_inverse(a, n, u, pool, nth, kt); /* a holds U now */

    /* 5. the sweep and the per-row choice */
    sweep_job job = {.w = w, .rows = rows, .cols = n, .h = h, .u = a, .perm = perm,
                     .dead = dead, .qmin = qmin, .qmax = qmax, .q4 = o->q4, .group = o->group,
                     .ngs = ngs, .codes = codes, .scales = scales,
                     .row_err_g = eg, .row_err_r = er, .scratch = scratch,
                     .scratch_per = scratch_per, .rtn = rtn, .k = kt};
    run_rows(pool, sweep_run, &job);
    sum_stats(stats, eg, er, rows);
fail:
    free(a);
    free(raw);
    free(u);
    free(diag);
    free(perm);
    free(dead);
    free(keys);
    free(eg);
    free(er);
    free(scratch);
    free(rtn);
    return st;
}

/* ---- the scale search with the full-H guard ------------------------------------------------- */

typedef struct {
    const float *w;
    int64_t rows, cols;
    const double *h, *d;
    int qmax;
    int8_t *codes;
    uint16_t *scales;
    double *err_s, *err_r;
    double *dv;  /* per thread: ROW_TILE x cols */
    int8_t *rq;  /* per thread: ROW_TILE x cols */
    uint16_t *rs; /* [rows] plain scales */
    const glmq_kernels *k;
} search_job;

static void search_run(void *arg, int ith, int nth)
{
    search_job *j = arg;
    const int64_t n = j->cols;
    int64_t r0 = j->rows * ith / nth, r1 = j->rows * (ith + 1) / nth;
    double *dv = j->dv + (size_t)ith * ROW_TILE * (size_t)n;
    int8_t *rq = j->rq + (size_t)ith * ROW_TILE * (size_t)n;
    for (int64_t t0 = r0; t0 < r1; t0 += ROW_TILE) {
        int nr = (int)(r1 - t0 < ROW_TILE ? r1 - t0 : ROW_TILE);
        for (int pass = 0; pass < 2; pass++) {
            for (int r = 0; r < nr; r++) {
                const float *w = j->w + (size_t)(t0 + r) * (size_t)n;
                uint16_t sb = pass ? j->rs[t0 + r] : j->scales[t0 + r];
                int8_t *q = pass ? rq + (size_t)r * n : j->codes + (size_t)(t0 + r) * (size_t)n;
                glmq_rtn_codes(w, n, sb, j->qmax, q);
                double s = (double)glmq_f16_to_f32(sb);
                for (int64_t c = 0; c < n; c++)
                    dv[(size_t)r * n + c] = (double)w[c] - (double)q[c] * s;
            }
            h_weighted(j->h, n, dv, nr, (pass ? j->err_r : j->err_s) + t0, j->k);
        }
        for (int r = 0; r < nr; r++)
            if (j->err_s[t0 + r] > j->err_r[t0 + r]) {
                memcpy(j->codes + (size_t)(t0 + r) * (size_t)n, rq + (size_t)r * n, (size_t)n);
                j->scales[t0 + r] = j->rs[t0 + r];
                j->err_s[t0 + r] = -1.0;
            }
    }
}

glmq_status glmq_search_quantize(const float *w, int64_t rows, int64_t cols, const double *h,
                                 int q4, glmq_pool *pool, int8_t *codes, uint16_t *scales,
                                 glmq_gptq_stats *stats, glmq_err *err)
{
    GLMQ_FAIL_IF(rows < 1 || cols < 1, err, GLMQ_E_INVALID, "scale search: bad shape");
    const int qmax = q4 ? 7 : 127;
    int nth = pool ? glmq_pool_size(pool) : 1;
    glmq_status st = GLMQ_OK;
    double *d = malloc((size_t)cols * sizeof *d), *es = malloc((size_t)rows * sizeof *es),
           *er = malloc((size_t)rows * sizeof *er),
           *dv = malloc((size_t)nth * ROW_TILE * (size_t)cols * sizeof *dv);
    int8_t *rq = malloc((size_t)nth * ROW_TILE * (size_t)cols);
    uint16_t *rs = malloc((size_t)rows * sizeof *rs);
    GLMQ_FAIL_IF_G(!d || !es || !er || !dv || !rq || !rs, err, GLMQ_E_NOMEM,
                   "scale search: out of memory");
    for (int64_t c = 0; c < cols; c++) {
        d[c] = h[(size_t)c * (size_t)cols + (size_t)c];
        GLMQ_FAIL_IF_G(!(d[c] >= 0.0) || !isfinite(d[c]), err, GLMQ_E_VALUE,
                       "scale search: H[%lld][%lld] = %g is not a finite non-negative diagonal",
                       (long long)c, (long long)c, d[c]);
    }
    scale_job sj = {.w = w, .rows = rows, .cols = cols, .d = d, .q4 = q4, .qmax = qmax,
                    .scales = scales, .plain = rs};
    st = row_scales(&sj, pool, "", err);
    if (st != GLMQ_OK) goto fail;
    search_job j = {w, rows, cols, h, d, qmax, codes, scales, es, er, dv, rq, rs,
                    glmq_kernels_get()};
    run_rows(pool, search_run, &j);
    sum_stats(stats, es, er, rows);
fail:
    free(d);
    free(es);
    free(er);
    free(dv);
    free(rq);
    free(rs);
    return st;
}
