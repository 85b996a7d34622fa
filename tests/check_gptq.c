/*
 * check_gptq.c - quant/gptq.c against PyTorch: GPTQ codes and scales, its H-weighted errors,
 * the per-row fallback to round-to-nearest, the activation-weighted scale search, determinism
 * across thread counts, and refusals; the H accumulation kernels of every level against a plain
 * scalar sum in token order (bit-identical, any thread count); GPTQ's loops and the reference
 * forward's dot8_rows of every level against the same operations written out here.
 *
 * Goldens: tests/data/gptq/ from samples/gen_gptq.py (PyTorch float64 GPTQ written from the
 * paper's Algorithm 1 and the conventions of quant/quant.h; weights with outlier input channels,
 * a dead channel and an all-zero row).
 */
#include "core/pool.h"
#include "quant/gptq.h"
#include "quant/hacc.h"
#include "quant/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *load(const char *name, const char *dtype, int64_t want0, int64_t want1)
{
    char path[1024], dt[8];
    snprintf(path, sizeof path, "%s/gptq/%s.npy", tu_testdata(), name);
    int nd;
    int64_t sh[4];
    size_t nb;
    void *p = tu_npy_load(path, dt, &nd, sh, &nb);
    ck_assert_msg(p != NULL, "cannot read %s", path);
    ck_assert_str_eq(dt, dtype);
    ck_assert_int_eq(sh[0], want0);
    if (want1) ck_assert_int_eq(sh[1], want1);
    return p;
}

enum { R = 48, C = 160 };

static float *w;
static double *h;

static void setup(void)
{
    w = load("w", "<f4", R, C);
    h = load("h", "<f8", C, C);
}

static void teardown(void)
{
    free(w);
    free(h);
}

/* One GPTQ case against its golden: scales bit for bit, codes equal but for near-ties
 * (different summation order), H-weighted errors to 1e-6, and never above RTN's. */
static void gptq_case_on(const float *wm, const double *hm, int64_t nr, int64_t nc,
                         const char *name, int q4, int act_order, int64_t group)
{
    const int64_t ngs = group ? (nc + group - 1) / group : 1;
    char nm[64];
    snprintf(nm, sizeof nm, "%s_codes", name);
    int8_t *want = load(nm, "|i1", nr, nc);
    snprintf(nm, sizeof nm, "%s_scales", name);
    uint16_t *want_s = load(nm, "<u2", nr, group ? ngs : 0);
    snprintf(nm, sizeof nm, "%s_err", name);
    double *want_e = load(nm, "<f8", nr, 2);

    const size_t ncodes = (size_t)(nr * nc), nscales = (size_t)(nr * ngs);
    int8_t *q = malloc(ncodes);
    uint16_t *s = malloc(nscales * 2);
    glmq_gptq_opts o = {.q4 = q4, .damp = 0.01, .act_order = act_order, .group = group};
    glmq_gptq_stats st;
    glmq_err err = {0};
    ck_assert_msg(glmq_gptq_quantize(wm, nr, nc, hm, &o, NULL, q, s, &st, &err) == GLMQ_OK,
                  "%s", err.msg);
    ck_assert_mem_eq(s, want_s, nscales * 2);
    int diff = 0;
    for (size_t i = 0; i < ncodes; i++) diff += q[i] != want[i];
    ck_assert_msg(diff <= (int)(ncodes / 500), "%s: %d of %zu codes differ from PyTorch's", name,
                  diff, ncodes);
    double eg = 0, er = 0;
    for (int64_t r = 0; r < nr; r++) {
        eg += want_e[2 * r];
        er += want_e[2 * r + 1];
    }
    ck_assert_msg(fabs(st.err_rtn - er) <= 1e-9 * er, "%s: RTN error %.12g, PyTorch %.12g", name,
                  st.err_rtn, er);
    ck_assert_msg(fabs(st.err_gptq - eg) <= 1e-6 * eg, "%s: GPTQ error %.12g, PyTorch %.12g",
                  name, st.err_gptq, eg);
    ck_assert(st.err_gptq <= st.err_rtn);

    /* the same result on 2 and 3 threads, byte for byte */
    for (int nth = 2; nth <= 3; nth++) {
        glmq_pool *pool;
        ck_assert_int_eq(glmq_pool_create(nth, &pool, &err), GLMQ_OK);
        int8_t *q2 = malloc(ncodes);
        uint16_t *s2 = malloc(nscales * 2);
        glmq_gptq_stats st2;
        ck_assert_int_eq(glmq_gptq_quantize(wm, nr, nc, hm, &o, pool, q2, s2, &st2, &err),
                         GLMQ_OK);
        ck_assert_mem_eq(q2, q, ncodes);
        ck_assert_mem_eq(s2, s, nscales * 2);
        ck_assert(memcmp(&st2, &st, sizeof st) == 0);
        free(q2);
        free(s2);
        glmq_pool_free(pool);
    }
    free(q);
    free(s);
    free(want);
    free(want_s);
    free(want_e);
}

static void gptq_case(const char *name, int q4, int act_order, int64_t group)
{
    gptq_case_on(w, h, R, C, name, q4, act_order, group);
}

START_TEST(test_gptq_int4)
{
    gptq_case("int4", 1, 0, 0);
}
END_TEST

START_TEST(test_gptq_int4_act_order)
{
    gptq_case("int4_act", 1, 1, 0);
}
END_TEST

START_TEST(test_gptq_int8)
{
    gptq_case("int8", 0, 0, 0);
}
END_TEST

/* Group-wise: INT4 groups of 32 with act-order (codes -8..7), INT8 groups of 64 (160 columns: a
 * last half group); the fallback is the group rule's own round-to-nearest. */
START_TEST(test_gptq_groups)
{
    gptq_case("int4_g32_act", 1, 1, 32);
    gptq_case("int8_g64", 0, 0, 64);
    glmq_gptq_opts o = {.q4 = 1, .damp = 0.01, .group = 48};
    int8_t *q = malloc(R * C);
    uint16_t sc[R * 5];
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gptq_quantize(w, R, C, h, &o, NULL, q, sc, NULL, &err), GLMQ_E_INVALID);
    o.group = 32;
    o.scale_search = 1;
    ck_assert_int_eq(glmq_gptq_quantize(w, R, C, h, &o, NULL, q, sc, NULL, &err), GLMQ_E_INVALID);
    free(q);
}
END_TEST

/* A matrix of several lazy batches (quant/gptq.c: 128 columns each), whose updates cover whole
 * column tiles of gptq_update and a scalar edge (392, 264, 136, 8 columns), with a last partial
 * group and a row tile of 16 and one of 4. H = x^T x of the generator's integer inputs, exact in
 * any order. */
START_TEST(test_gptq_wide)
{
    enum { WR = 20, WC = 520, WT = 384 };
    float *ww = load("wide_w", "<f4", WR, WC);
    int8_t *x = load("wide_x", "|i1", WT, WC);
    double *wh = calloc((size_t)WC * WC, sizeof *wh);
    for (int t = 0; t < WT; t++)
        for (int a = 0; a < WC; a++) {
            const double xa = x[(size_t)t * WC + a];
            for (int b = 0; b < WC; b++) wh[(size_t)a * WC + b] += xa * x[(size_t)t * WC + b];
        }
    gptq_case_on(ww, wh, WR, WC, "wide_int4_act", 1, 1, 0);
    gptq_case_on(ww, wh, WR, WC, "wide_int4_g128", 1, 0, 128);
    free(wh);
    free(x);
    free(ww);
}
END_TEST

/* The plain scales of GPTQ are the plain quantizer's, and RTN with them is the plain quantizer. */
START_TEST(test_rtn_is_plain_quantizer)
{
    for (int q4 = 0; q4 <= 1; q4++) {
        for (int r = 0; r < R; r++) {
            uint8_t row[256], packed[256];
            uint16_t sc;
            ck_assert_int_eq((q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref)(
                                 w + r * C, C, row, &sc, NULL, NULL),
                             GLMQ_OK);
            int8_t q[C];
            glmq_rtn_codes(w + r * C, C, sc, q4 ? 7 : 127, q);
            glmq_pack_codes_row(q, C, q4, packed);
            ck_assert_mem_eq(packed, row, (size_t)glmq_row_bytes(
                                              q4 ? GLMQ_TYPE_INT4 : GLMQ_TYPE_INT8, C));
        }
    }
}
END_TEST

START_TEST(test_weighted_scale)
{
    double d[C];
    for (int c = 0; c < C; c++) d[c] = h[c * C + c];
    for (int q4 = 0; q4 <= 1; q4++) {
        uint16_t *want = load(q4 ? "search4_scales" : "search8_scales", "<u2", R, 0);
        int qmax = q4 ? 7 : 127, better = 0;
        for (int r = 0; r < R; r++) {
            uint16_t s, plain;
            ck_assert_int_eq(glmq_weighted_scale(w + r * C, C, d, qmax, &s, NULL), GLMQ_OK);
            ck_assert_msg(s == want[r], "row %d: scale %04x, PyTorch %04x", r, s, want[r]);
            float amax = 0;
            for (int c = 0; c < C; c++) amax = fmaxf(amax, fabsf(w[r * C + c]));
            plain = glmq_f32_to_f16(amax / (float)qmax);
            better += s != plain;
        }
        ck_assert_int_gt(better, R / 2); /* the search moves most scales */
        free(want);
    }
    /* NaN weight: refused with its column */
    float bad[4] = {1, 2, NAN, 4};
    double dd[4] = {1, 1, 1, 1};
    uint16_t s;
    int64_t col;
    ck_assert_int_eq(glmq_weighted_scale(bad, 4, dd, 7, &s, &col), GLMQ_E_VALUE);
    ck_assert_int_eq(col, 2);
}
END_TEST

/* GPTQ with the searched scales: still never above RTN with the same scales. */
START_TEST(test_gptq_with_search)
{
    int8_t *q = malloc(R * C);
    uint16_t s[R];
    glmq_gptq_opts o = {.q4 = 1, .damp = 0.01, .act_order = 1, .scale_search = 1};
    glmq_gptq_stats st;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gptq_quantize(w, R, C, h, &o, NULL, q, s, &st, &err), GLMQ_OK);
    ck_assert(st.err_gptq <= st.err_rtn);
    uint16_t *want = load("search4_scales", "<u2", R, 0);
    ck_assert_mem_eq(s, want, sizeof s);
    free(want);
    free(q);
}
END_TEST

START_TEST(test_refusals)
{
    int8_t q[4 * 4];
    uint16_t s[4];
    float ww[16] = {0};
    double hh[16] = {0};
    for (int i = 0; i < 4; i++) hh[i * 4 + i] = 1.0;
    glmq_gptq_opts o = {.q4 = 1, .damp = 0.01};
    glmq_err err = {0};
    ww[6] = INFINITY;
    ck_assert_int_eq(glmq_gptq_quantize(ww, 4, 4, hh, &o, NULL, q, s, NULL, &err), GLMQ_E_VALUE);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 1 column 2"));
    ww[6] = 1e6f; /* 1e6 / 7 overflows fp16 */
    ck_assert_int_eq(glmq_gptq_quantize(ww, 4, 4, hh, &o, NULL, q, s, NULL, &err),
                     GLMQ_E_UNSUPPORTED);
    ww[6] = 1.0f;
    hh[5] = -1.0;
    ck_assert_int_eq(glmq_gptq_quantize(ww, 4, 4, hh, &o, NULL, q, s, NULL, &err), GLMQ_E_VALUE);
    ck_assert_ptr_nonnull(strstr(err.msg, "H[1][1]"));
    /* indefinite: [[1, 2], [2, 1]] with no damping */
    double ind[4] = {1, 2, 2, 1};
    glmq_gptq_opts o0 = {.q4 = 1, .damp = 0.0};
    ck_assert_int_eq(glmq_gptq_quantize(ww, 2, 2, ind, &o0, NULL, q, s, NULL, &err),
                     GLMQ_E_VALUE);
    ck_assert_ptr_nonnull(strstr(err.msg, "not positive definite"));
    ck_assert_int_eq(glmq_gptq_quantize(ww, 0, 4, hh, &o, NULL, q, s, NULL, &err),
                     GLMQ_E_INVALID);
}
END_TEST

/* ---- H accumulation (quant/hacc.h): every level and thread count bit-identical to the plain
 * scalar sum in token order ------------------------------------------------------------------ */

static const struct {
    int64_t n, nt;
} hacc_cases[] = {{1, 1}, {3, 7}, {4, 5}, {5, 129}, {13, 2}, {17, 300}, {37, 33},
                  {64, 128}, {131, 130}, {259, 17}};

static uint64_t hacc_rng = 0x9e3779b97f4a7c15ull;

static double hacc_rand(void) /* uniform in [-1, 1) */
{
    hacc_rng ^= hacc_rng << 13;
    hacc_rng ^= hacc_rng >> 7;
    hacc_rng ^= hacc_rng << 17;
    return (double)(hacc_rng >> 11) / (double)(1ull << 52) - 1.0;
}

START_TEST(test_hacc_levels)
{
    const int64_t n = hacc_cases[_i].n, nt = hacc_cases[_i].nt, ldx = n + 3;
    float *x = malloc((size_t)(nt * ldx) * sizeof *x);
    double *h0 = malloc((size_t)(n * n) * sizeof *h0);
    double *want = malloc((size_t)(n * n) * sizeof *want);
    double *got = malloc((size_t)(n * n) * sizeof *got);
    double *scratch = malloc((size_t)GLMQ_HACC_TB * (size_t)n * sizeof *scratch);
    ck_assert(x && h0 && want && got && scratch);
    for (int64_t t = 0; t < nt * ldx; t++) /* full fp32 mantissas, magnitudes 2^-8 .. 2^8 */
        x[t] = (float)(hacc_rand() * ldexp(1.0, (int)(hacc_rand() * 8.0)));
    x[0] = 1e-30f; /* tiny and huge products: the sums still round only at the additions */
    if (nt * ldx > 1) x[1] = 3e30f;
    for (int64_t e = 0; e < n * n; e++) h0[e] = hacc_rand() * 100.0;
    /* the reference: each element, tokens in order, written independently of quant/hacc.c */
    memcpy(want, h0, (size_t)(n * n) * sizeof *want);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++)
            for (int64_t t = 0; t < nt; t++)
                want[i * n + j] += (double)x[t * ldx + i] * (double)x[t * ldx + j];
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        glmq_hacc_fn fn = glmq_hacc_kernel((glmq_cpu_level)l);
        if (!fn) continue;
        levels++;
        for (int th = 1; th <= 3; th++) {
            glmq_pool *pool = NULL;
            glmq_err err;
            ck_assert_int_eq(glmq_pool_create(th, &pool, &err), GLMQ_OK);
            memcpy(got, h0, (size_t)(n * n) * sizeof *got);
            glmq_hacc_add(got, n, x, ldx, nt, th == 1 ? NULL : pool, fn, scratch);
            glmq_pool_free(pool);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double wv = j >= i ? want[i * n + j] : h0[i * n + j]; /* lower: untouched */
                    ck_assert_msg(memcmp(&got[i * n + j], &wv, sizeof wv) == 0,
                                  "n %lld nt %lld level %d threads %d: H[%lld][%lld] = %a, want %a",
                                  (long long)n, (long long)nt, l, th, (long long)i, (long long)j,
                                  got[i * n + j], wv);
                }
        }
    }
    ck_assert_int_ge(levels, 1);
    free(x);
    free(h0);
    free(want);
    free(got);
    free(scratch);
}
END_TEST

/* ---- GPTQ's loops (quant/hacc.h: gptq_dot, gptq_dot4, gptq_dot4x4, gptq_axpy, gptq_update) at
 * every level, bit for bit against the rule written out here, and the whole of GPTQ at every
 * level -------------------------------------------------------------------------------------- */

static double four_lane_dot(const double *a, const double *b, int64_t n)
{
    double s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

START_TEST(test_gptq_loops_levels)
{
    enum { NMAX = 1031, LDA = NMAX + 5 };
    double *a = malloc(4 * LDA * sizeof *a), *b = malloc(NMAX * sizeof *b);
    double *w0 = malloc(NMAX * sizeof *w0), *w1 = malloc(NMAX * sizeof *w1);
    ck_assert(a && b && w0 && w1);
    /* like magnitudes, so the sums cancel and every product's rounding can show */
    for (int i = 0; i < 4 * LDA; i++) a[i] = hacc_rand() * 2.0;
    for (int i = 0; i < NMAX; i++) {
        b[i] = hacc_rand() * 2.0;
        w0[i] = hacc_rand() * 1e3;
    }
    const int64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 31, 33, 64, 67, 257, NMAX};
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        levels++;
        for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
            const int64_t n = ns[c];
            for (int off = 0; off < 2; off++) { /* aligned and not */
                const double *ao = a + off, *bo = b + off;
                const int64_t m = n - off > 0 ? n - off : 0;
                double want = four_lane_dot(ao, bo, m), got = k->gptq_dot(ao, bo, m);
                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                              "level %d n %lld: dot %a, want %a", l, (long long)m, got, want);
                double out[4];
                k->gptq_dot4(ao, LDA, bo, m, out);
                for (int r = 0; r < 4; r++) {
                    want = four_lane_dot(ao + r * LDA, bo, m);
                    ck_assert_msg(memcmp(&out[r], &want, sizeof want) == 0,
                                  "level %d n %lld: dot4[%d] %a, want %a", l, (long long)m, r,
                                  out[r], want);
                }
                if (m >= 12) { /* rows of b at a stride other than a's, starts 4m apart */
                    double o16[16];
                    k->gptq_dot4x4(ao, LDA, a + 3 + off, LDA - 3, m, o16);
                    for (int r = 0; r < 4; r++)
                        for (int j = 0; j < 4; j++) {
                            const double *bj = a + 3 + off + j * (LDA - 3) + 4 * j;
                            want = four_lane_dot(ao + r * LDA + 4 * j, bj, m - 4 * j);
                            ck_assert_msg(memcmp(&o16[4 * r + j], &want, sizeof want) == 0,
                                          "level %d n %lld: dot4x4[%d][%d] %a, want %a", l,
                                          (long long)m, r, j, o16[4 * r + j], want);
                        }
                }
                memcpy(w1, w0, NMAX * sizeof *w1);
                const double e = -0.3759765625 * (1 + off);
                k->gptq_axpy(w1 + off, bo, e, m);
                for (int64_t i = 0; i < NMAX; i++) {
                    double wv = w0[i];
                    if (i >= off && i < off + m) wv = w0[i] - e * bo[i - off];
                    ck_assert_msg(memcmp(&w1[i], &wv, sizeof wv) == 0,
                                  "level %d n %lld: axpy element %lld", l, (long long)m,
                                  (long long)i);
                }
            }
        }
    }
    ck_assert_int_ge(levels, 1);
    free(a);
    free(b);
    free(w0);
    free(w1);
}
END_TEST

/* Planted FMA traps: (1 + 2^-30)(1 - 2^-30) = 1 - 2^-60 rounds to 1 when multiplied first, so
 * w - e u with w = 1 is exactly 0, and a dot product of lane 0 holding -1 and then that product
 * (other lanes 0) is exactly 0; an FMA gives 2^-60 and -2^-60. In the vector body and the tail. */
START_TEST(test_gptq_loops_no_fma)
{
    enum { N = 37, LDA = 40 };
    double a[4 * LDA], b[N], wv[N], u[N], out[4];
    const double ep = 1.0 + 0x1p-30, um = 1.0 - 0x1p-30;
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        levels++;
        for (int64_t n = 1; n <= N; n++) {
            for (int i = 0; i < N; i++) {
                wv[i] = 1.0;
                u[i] = um;
            }
            k->gptq_axpy(wv, u, ep, n);
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(wv[i] == 0.0, "level %d n %lld: axpy[%lld] = %a", l, (long long)n,
                              (long long)i, wv[i]);
        }
        /* n = 5: lane 0 is -1 (i = 0) then the product at i = 4, the tail; n = 8: in the body */
        for (int64_t n = 5; n <= 8; n += 3) {
            for (int i = 0; i < 4 * LDA; i++) a[i] = 0.0;
            for (int i = 0; i < N; i++) b[i] = 0.0;
            for (int r = 0; r < 4; r++) {
                a[r * LDA] = 1.0;
                a[r * LDA + 4] = ep;
            }
            b[0] = -1.0;
            b[4] = um;
            double d = k->gptq_dot(a, b, n);
            ck_assert_msg(d == 0.0, "level %d n %lld: dot = %a", l, (long long)n, d);
            k->gptq_dot4(a, LDA, b, n, out);
            for (int r = 0; r < 4; r++)
                ck_assert_msg(out[r] == 0.0, "level %d n %lld: dot4[%d] = %a", l, (long long)n, r,
                              out[r]);
        }
        /* dot4x4: dot m (from column 4m) holds -ep * ep, then ep * ep at column 4m + 4; for
         * n = 17 that is the tail of m = 3 and the body of the others, for n = 20 the body */
        for (int64_t n = 17; n <= 20; n += 3) {
            double bm[4 * LDA], o16[16];
            for (int i = 0; i < 4 * LDA; i++) a[i] = bm[i] = 0.0;
            for (int r = 0; r < 4; r++)
                for (int j = 0; j <= 4; j++) a[r * LDA + 4 * j] = ep;
            for (int m = 0; m < 4; m++) {
                bm[m * LDA + 4 * m] = -ep;
                bm[m * LDA + 4 * m + 4] = ep;
            }
            k->gptq_dot4x4(a, LDA, bm, LDA, n, o16);
            for (int i = 0; i < 16; i++)
                ck_assert_msg(o16[i] == 0.0, "level %d n %lld: dot4x4[%d] = %a", l, (long long)n,
                              i, o16[i]);
        }
    }
    ck_assert_int_ge(levels, 1);
}
END_TEST

/* GPTQ's lazy-batch update (quant/hacc.h: gptq_update) at every level against the rule written
 * out: every element takes w -= e u for c in order, each product rounded, then subtracted. Row
 * counts across the tiles' 2 and 4 rows, column counts across their 8 and 32 and the scalar
 * edge, strides not multiples of a vector; then an FMA trap in a tile and in the edge. */
START_TEST(test_gptq_update_levels)
{
    enum { UR = 9, UK = 77, UC = 6, LDW = UK + 3, LDE = UC + 1, LDU = UK + 5 };
    double w0[UR * LDW], w1[UR * LDW], want[UR * LDW], e[UR * LDE], u[UC * LDU];
    for (int i = 0; i < UR * LDW; i++) w0[i] = hacc_rand() * 4.0;
    for (int i = 0; i < UR * LDE; i++) e[i] = hacc_rand();
    for (int i = 0; i < UC * LDU; i++) u[i] = hacc_rand() * 2.0;
    const int64_t ks[] = {0, 1, 7, 8, 9, 31, 32, 33, 40, 64, 71, UK};
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        levels++;
        for (int64_t nr = 1; nr <= UR; nr++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int64_t nc = 1; nc <= UC; nc += 2) {
                    const int64_t nk = ks[ki];
                    memcpy(w1, w0, sizeof w1);
                    memcpy(want, w0, sizeof want);
                    for (int64_t c = 0; c < nc; c++)
                        for (int64_t r = 0; r < nr; r++)
                            for (int64_t i = 0; i < nk; i++) {
                                const double p = e[r * LDE + c] * u[c * LDU + i];
                                want[r * LDW + i] = want[r * LDW + i] - p;
                            }
                    k->gptq_update(w1, LDW, nr, e, LDE, u, LDU, nc, nk);
                    ck_assert_msg(memcmp(w1, want, sizeof want) == 0,
                                  "level %d: update of %lld rows x %lld columns, %lld steps", l,
                                  (long long)nr, (long long)nk, (long long)nc);
                }
        /* w = 1 - round((1 + 2^-30)(1 - 2^-30)) = 0 exactly; an FMA leaves 2^-60 */
        const double ep = 1.0 + 0x1p-30, um = 1.0 - 0x1p-30;
        for (int i = 0; i < UR * LDW; i++) w1[i] = 1.0;
        for (int i = 0; i < UR * LDE; i++) e[i] = ep;
        for (int i = 0; i < UC * LDU; i++) u[i] = um;
        k->gptq_update(w1, LDW, 4, e, LDE, u, LDU, 1, 40);
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 40; i++)
                ck_assert_msg(w1[r * LDW + i] == 0.0, "level %d: update[%d][%d] = %a", l, r, i,
                              w1[r * LDW + i]);
        for (int i = 0; i < UR * LDE; i++) e[i] = hacc_rand();
        for (int i = 0; i < UC * LDU; i++) u[i] = hacc_rand() * 2.0;
    }
    ck_assert_int_ge(levels, 1);
}
END_TEST

/* The reference forward's dot product (quant/hacc.h), written out: eight lanes, products
 * rounded then added, the fixed tree, then the tail in order. */
static float eight_lane_dot(const float *a, const float *b, int64_t n)
{
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int64_t n8 = n - n % 8;
    for (int64_t i = 0; i < n8; i++) {
        const float p = a[i] * b[i];
        l[i % 8] = l[i % 8] + p;
    }
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (int64_t i = n8; i < n; i++) {
        const float p = a[i] * b[i];
        s = s + p;
    }
    return s;
}

/* dot8_rows of every level the CPU runs against eight_lane_dot, bit for bit: rows and tokens
 * in and out of the SIMD kernels' blocks (4 rows, 2 or 4 tokens), lengths around the 8-lane
 * steps, strides that leave the rows unaligned; and glmq_dot8_f32 itself. */
START_TEST(test_dot8_levels)
{
    enum { NMAX = 257, RMAX_ = 9, TMAX_ = 9 };
    const int64_t ldw = NMAX + 3, ldx = NMAX + 5, ldy = RMAX_ + 2;
    float *wm = malloc(RMAX_ * ldw * sizeof *wm), *x = malloc(TMAX_ * ldx * sizeof *x);
    float *y = malloc(TMAX_ * ldy * sizeof *y);
    ck_assert(wm && x && y);
    for (int64_t i = 0; i < RMAX_ * ldw; i++) wm[i] = (float)hacc_rand();
    for (int64_t i = 0; i < TMAX_ * ldx; i++) x[i] = (float)(hacc_rand() * 4.0);
    const int64_t ns[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, NMAX};
    const int64_t nrs[] = {1, 3, 4, 5, 8, 9}, nts[] = {1, 2, 3, 4, 5, 7, 8, 9};
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        levels++;
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof nrs / sizeof nrs[0]; b++)
                for (size_t c = 0; c < sizeof nts / sizeof nts[0]; c++) {
                    const int64_t n = ns[a], nr = nrs[b], nt = nts[c];
                    for (int64_t i = 0; i < TMAX_ * ldy; i++) y[i] = -7.0f;
                    k->dot8_rows(wm + 1, ldw, nr, x + 1, ldx, nt, n, y, ldy);
                    for (int64_t t = 0; t < TMAX_; t++)
                        for (int64_t r = 0; r < ldy; r++) {
                            const float got = y[t * ldy + r];
                            const float want = t < nt && r < nr
                                                   ? eight_lane_dot(wm + 1 + r * ldw,
                                                                    x + 1 + t * ldx, n)
                                                   : -7.0f;
                            ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                                          "level %d n %lld rows %lld tokens %lld: y[%lld][%lld] "
                                          "%a, want %a",
                                          l, (long long)n, (long long)nr, (long long)nt,
                                          (long long)t, (long long)r, got, want);
                        }
                }
    }
    ck_assert_int_ge(levels, 1);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        const float got = glmq_dot8_f32(wm + 2, x + 3, ns[a]);
        const float want = eight_lane_dot(wm + 2, x + 3, ns[a]);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "dot8_f32 n %lld: %a, want %a",
                      (long long)ns[a], got, want);
    }
    free(wm);
    free(x);
    free(y);
}
END_TEST

/* dot8 rounds each product before adding it: lane 0 holds -(1 + 2^-11), then the product
 * (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounds to 1 + 2^-11 and the sum is 0 (an FMA gives 2^-24),
 * in the vector body (n = 16) and in the tail (n = 9), for every row and token of a block. */
START_TEST(test_dot8_no_fma)
{
    enum { N = 16, NR = 5, NT = 9 };
    float wm[NR * N], x[NT * N], y[NT * NR];
    const float ep = 1.0f + 0x1p-12f;
    for (int i = 0; i < NR * N; i++) wm[i] = 0.0f;
    for (int i = 0; i < NT * N; i++) x[i] = 0.0f;
    for (int r = 0; r < NR; r++) {
        wm[r * N] = -(1.0f + 0x1p-11f);
        wm[r * N + 8] = ep;
    }
    for (int t = 0; t < NT; t++) {
        x[t * N] = 1.0f;
        x[t * N + 8] = ep;
    }
    int levels = 0;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        levels++;
        for (int64_t n = 9; n <= 16; n += 7) {
            k->dot8_rows(wm, N, NR, x, N, NT, n, y, NR);
            for (int i = 0; i < NT * NR; i++)
                ck_assert_msg(y[i] == 0.0f, "level %d n %lld: y[%d] = %a", l, (long long)n, i,
                              y[i]);
        }
    }
    ck_assert_int_ge(levels, 1);
    ck_assert(glmq_dot8_f32(wm, x, 16) == 0.0f && glmq_dot8_f32(wm, x, 9) == 0.0f);
}
END_TEST

/* GPTQ (act-order, INT4) and the scale search give the same bytes at every level the CPU runs,
 * forced down one by one from the best. */
START_TEST(test_gptq_levels)
{
    static const glmq_cpu_level order[] = {GLMQ_CPU_AVX512VNNI, GLMQ_CPU_AVX512, GLMQ_CPU_AVXVNNI,
                                           GLMQ_CPU_AVX2,       GLMQ_CPU_DOTPROD, GLMQ_CPU_NEON,
                                           GLMQ_CPU_REF};
    glmq_gptq_opts o = {.q4 = 1, .damp = 0.01, .act_order = 1};
    int8_t *q0 = malloc(R * C), *q = malloc(R * C), *p0 = malloc(R * C), *p = malloc(R * C);
    uint16_t s0[R], s[R], t0[R], t[R];
    glmq_gptq_stats st0, st, su0, su;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_gptq_quantize(w, R, C, h, &o, NULL, q0, s0, &st0, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_search_quantize(w, R, C, h, 1, NULL, p0, t0, &su0, &err), GLMQ_OK);
    int runs = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!glmq_kernels_for(order[i])) continue;
        if (glmq_cpu_force(order[i]) != order[i]) continue;
        runs++;
        ck_assert_int_eq(glmq_gptq_quantize(w, R, C, h, &o, NULL, q, s, &st, &err), GLMQ_OK);
        ck_assert_mem_eq(q, q0, R * C);
        ck_assert_mem_eq(s, s0, sizeof s);
        ck_assert(memcmp(&st, &st0, sizeof st) == 0);
        ck_assert_int_eq(glmq_search_quantize(w, R, C, h, 1, NULL, p, t, &su, &err), GLMQ_OK);
        ck_assert_mem_eq(p, p0, R * C);
        ck_assert_mem_eq(t, t0, sizeof t);
        ck_assert(memcmp(&su, &su0, sizeof su) == 0);
    }
    ck_assert_int_ge(runs, 1);
    free(q0);
    free(q);
    free(p0);
    free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gptq");
    TCase *t = tcase_create("gptq");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_gptq_int4);
    tcase_add_test(t, test_gptq_int4_act_order);
    tcase_add_test(t, test_gptq_int8);
    tcase_add_test(t, test_gptq_groups);
    tcase_add_test(t, test_gptq_wide);
    tcase_add_test(t, test_rtn_is_plain_quantizer);
    tcase_add_test(t, test_weighted_scale);
    tcase_add_test(t, test_gptq_with_search);
    tcase_add_test(t, test_refusals);
    suite_add_tcase(s, t);
    TCase *th = tcase_create("hacc");
    tcase_set_timeout(th, 120);
    tcase_add_loop_test(th, test_hacc_levels, 0,
                        (int)(sizeof hacc_cases / sizeof hacc_cases[0]));
    tcase_add_test(th, test_gptq_loops_levels);
    tcase_add_test(th, test_gptq_loops_no_fma);
    tcase_add_test(th, test_gptq_update_levels);
    tcase_add_test(th, test_dot8_levels);
    tcase_add_test(th, test_dot8_no_fma);
    suite_add_tcase(s, th);
    /* last: it lowers the active level, which without fork (CK_FORK=no) would stay lowered */
    TCase *tl = tcase_create("levels");
    tcase_add_checked_fixture(tl, setup, teardown);
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, test_gptq_levels);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
