/*
 * check_quant.c - tests of the quantization kernels and the CPU dispatch (quant/, src/core/cpu.c).
 *
 * Three layers of checking, per STYLE 5/6:
 *   1. _ref against an INDEPENDENT re-derivation of GLM-SPEC decision 6 written here with
 *      different arithmetic: amax in double, the fp32 divisions done in double and rounded
 *      once to float (correctly rounded for + - * and /, as 53 >= 2*24 + 2 bits), fp16 rounding
 *      through frexp/nearbyint on the fp16 ulp grid, rounding by nearbyintf, and the INT4
 *      layout decoded from the diagram in quant.h. Codes and scales must agree bit for bit.
 *   2. Every kernel level the CPU supports (glmq_kernels_for) against _ref: status, bad column,
 *      scale bits and every output byte (padding included) with ck_assert_mem_eq, for aligned and
 *      misaligned input and output pointers, with and without statistics, and no write past
 *      the row. Widen/narrow kernels against src/core/fp16.c for all 65536 halves / bf16s and a
 *      sweep of floats (ties, subnormals, NaN payloads), bit for bit.
 *   3. Properties: padding is exactly 0 / nibble 8, |q*s - w| <= s/2 (+ the one-rounding slack
 *      of the fp32 quotient) for unclamped elements, clamped elements dequantize to +-qmax*s,
 *      NaN/Inf give GLMQ_E_VALUE and the first bad column, scale overflow GLMQ_E_UNSUPPORTED
 *      and column -1 (quant.h).
 *
 * The row cases are a table: _i of the loop test picks (kind, length) from kinds[] x lens[].
 * CTest reruns this executable with GLMQ_CPU=ref and GLMQ_CPU=avx2, which changes what
 * glmq_kernels_get() returns (checked by test_dispatch_level).
 *
 * GLMQ_QBENCH=1 ./check_quant runs a throughput benchmark instead of the tests (not a test).
 */
#include "quant/dot.h"
#include "quant/quant.h"
#include "quant/quant_x86.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(GLMQ_HAVE_ARM64)
#include <sys/auxv.h>
#endif

/*
 * Per-element checks. Check's ck_assert* records the location of every passing assertion
 * (a write to the runner's pipe), which costs a system call; in loops over 10^5..10^6 elements
 * we only call into Check on failure.
 */
#define EXPECT(c, ...)                                                                             \
    do {                                                                                           \
        if (!(c)) ck_abort_msg(__VA_ARGS__);                                                       \
    } while (0)
#define EXPECT_T(c) EXPECT(c, "assertion '%s' failed", #c)
#define EXPECT_EQ(a, b)                                                                            \
    EXPECT((long long)(a) == (long long)(b), "assertion '%s == %s' failed: %lld != %lld", #a, #b,  \
           (long long)(a), (long long)(b))

/* ---- deterministic random numbers (splitmix64) ----------------------------------------------- */

static uint64_t rng;
static uint64_t rnd64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1p-53; } /* [0,1) */
static double rnd_normal(void)
{
    double u = rnd_unit(), v = rnd_unit();
    return sqrt(-2.0 * log(u + 0x1p-60)) * cos(6.283185307179586 * v);
}

static float f_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t bits_f(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- independent decision-6 re-derivation ---------------------------------------------------- */

/* fp16 bits of a double r >= 0 that is exactly a float, RNE; 0x7c00 when it rounds past 65504.
 * Works on the fp16 ulp grid: ulp = 2^-24 below 2^-14, else 2^(exponent-10). */
static uint16_t indep_f16_bits(double r)
{
    if (r == 0.0) return 0;
    int e;
    frexp(r, &e); /* r = m * 2^e, m in [0.5, 1): unbiased exponent e-1 */
    double ulp = (e - 1 < -14) ? ldexp(1.0, -24) : ldexp(1.0, e - 11);
    double v = nearbyint(r / ulp) * ulp; /* r/ulp is exact: ulp is a power of two */
    if (v > 65504.0) return 0x7c00;
    if (v < ldexp(1.0, -14)) return (uint16_t)(v / ldexp(1.0, -24)); /* subnormal */
    int e2;
    double m = frexp(v, &e2);
    return (uint16_t)(((e2 - 1 + 15) << 10) | (int)((m * 2.0 - 1.0) * 1024.0));
}

/* The fp16 value of bits h (finite), from the definition. */
static double indep_f16_value(uint16_t h)
{
    int sgn = h >> 15, ex = (h >> 10) & 31, man = h & 1023;
    double v = ex == 0 ? ldexp(man, -24) : ldexp(1024 + man, ex - 25);
    return sgn ? -v : v;
}

/* Expected result of quantizing w[0..n) with qmax: returns -1 and fills q[], *scale, or the
 * error column as quant.h specifies. */
static glmq_status indep_quantize(const float *w, int64_t n, int qmax, int *q, uint16_t *scale,
                                  int64_t *bad_col)
{
    double amax = 0.0;
    *bad_col = -1;
    for (int64_t j = 0; j < n; j++) {
        if (isnan(w[j]) || isinf(w[j])) {
            *bad_col = j;
            return GLMQ_E_VALUE;
        }
        amax = fmax(amax, fabs((double)w[j]));
    }
    double r = (double)(float)(amax / qmax); /* correctly rounded fp32 division */
    uint16_t h = indep_f16_bits(r);
    if (h == 0x7c00) return GLMQ_E_UNSUPPORTED;
    *scale = h;
    float s = (float)indep_f16_value(h);
    for (int64_t j = 0; j < n; j++) {
        if (s == 0.0f) {
            q[j] = 0;
            continue;
        }
        float x = nearbyintf((float)((double)w[j] / (double)s));
        q[j] = x > qmax ? qmax : x < -qmax ? -qmax : (int)x;
    }
    return GLMQ_OK;
}

/* Decode code j of a stored row straight from the quant.h diagram (independent of quant_ref). */
static int decode_code(const uint8_t *row, int64_t j, int q4)
{
    if (!q4) return (int8_t)row[j];
    int64_t b = j / 128, k = j % 128;
    uint8_t byte = row[64 * b + (k < 64 ? k : k - 64)];
    return (k < 64 ? (byte & 15) : (byte >> 4)) - 8;
}

/* ---- the row table --------------------------------------------------------------------------- */

static const int64_t lens[] = {1, 63, 64, 65, 127, 128, 129, 4096, 4096 + 37, 13696};
#define NLENS ((int)(sizeof lens / sizeof lens[0]))
#define MAXN 13696

enum {
    K_RANDN,   /* 0.02 * N(0,1), like a trained weight */
    K_ZEROS,   /* +0 and -0 only: scale 0, codes 0 */
    K_MAXF16,  /* +-65504 (fp16 max) among large values */
    K_SUBNORM, /* fp16 subnormals k*2^-24: subnormal fp16 scale */
    K_SIGNED0, /* every other element +-0, the rest random */
    K_TIES,    /* w/s exactly k + 0.5: ties-to-even */
    K_OUTLIER, /* one big outlier among small values */
    K_TINY,    /* amax/qmax <= 2^-25 (incl. the tie at exactly 2^-25): scale rounds to 0 */
    K_CLAMP,   /* scale rounded down (subnormal) so |w/s| > qmax + 0.5: clamping */
    K_WIDE,    /* log-uniform magnitudes 1e-6..1e3 per element */
    K_NKINDS
};
static const char *const kind_names[] = {"randn", "zeros",   "maxf16", "subnorm", "signed0",
                                         "ties",  "outlier", "tiny",   "clamp",   "wide"};

static float sgn(void) { return (rnd64() & 1) ? -1.0f : 1.0f; }

static void gen_row(int kind, int64_t n, int qmax, float *w)
{
    switch (kind) {
    case K_RANDN:
        for (int64_t j = 0; j < n; j++) w[j] = (float)(0.02 * rnd_normal());
        break;
    case K_ZEROS:
        for (int64_t j = 0; j < n; j++) w[j] = sgn() * 0.0f;
        break;
    case K_MAXF16:
        for (int64_t j = 0; j < n; j++)
            w[j] = (j % 3 == 0) ? sgn() * 65504.0f : (float)(20000.0 * rnd_normal());
        break;
    case K_SUBNORM:
        for (int64_t j = 0; j < n; j++) w[j] = sgn() * (float)ldexp((double)(rnd64() % 1024), -24);
        break;
    case K_SIGNED0:
        for (int64_t j = 0; j < n; j++) w[j] = (j & 1) ? sgn() * 0.0f : (float)(0.5 * rnd_normal());
        break;
    case K_TIES: {
        /* s = fp16 0x2e66 (~0.0999). amax = qmax*s is exact, so the scale is exactly s, and
         * (k + 0.5) * s needs <= 9 + 11 bits, so w/s is exactly k + 0.5. */
        const float s = (float)indep_f16_value(0x2e66);
        w[0] = (float)qmax * s;
        for (int64_t j = 1; j < n; j++) {
            int k = (int)(rnd64() % (uint64_t)(2 * qmax)) - qmax; /* -qmax .. qmax-1 */
            w[j] = ((float)k + 0.5f) * s;
        }
        break;
    }
    case K_OUTLIER:
        for (int64_t j = 0; j < n; j++) w[j] = (float)(0.01 * rnd_normal());
        w[rnd64() % (uint64_t)n] = sgn() * 50.0f;
        break;
    case K_TINY:
        /* amax = qmax * 2^-25 exactly: amax/qmax = 2^-25 is the tie between fp16 0 and 2^-24,
         * which RNE sends to 0. Everything else is smaller, fp32 subnormals included. */
        for (int64_t j = 0; j < n; j++)
            w[j] = (j % 2) ? (float)(1e-9 * rnd_normal()) : sgn() * f_bits(rnd64() & 0x7fffff);
        w[n / 2] = sgn() * (float)qmax * 0x1p-25f;
        break;
    case K_CLAMP: {
        /* amax/qmax = 3.4 * 2^-24 rounds down to s = 3 * 2^-24, so amax/s = 1.13 qmax. */
        const float amax = (float)(qmax * 3.4 * 0x1p-24);
        const float s = 3.0f * 0x1p-24f;
        for (int64_t j = 0; j < n; j++) {
            switch (j % 6) {
            case 0: w[j] = sgn() * amax; break;
            case 1: w[j] = sgn() * ((float)qmax + 0.5f) * s; break; /* tie above qmax */
            case 2: w[j] = sgn() * ((float)qmax - 0.5f) * s; break; /* tie below qmax */
            default: w[j] = (float)(amax * (2.0 * rnd_unit() - 1.0)); break;
            }
        }
        break;
    }
    case K_WIDE:
        for (int64_t j = 0; j < n; j++) w[j] = sgn() * (float)pow(10.0, -6.0 + 9.0 * rnd_unit());
        break;
    }
}

/* ---- helpers --------------------------------------------------------------------------------- */

static int64_t row_bytes(int64_t n, int q4)
{
    return q4 ? glmq_q4_row_bytes(n) : glmq_q8_row_bytes(n);
}

static glmq_quantize_row_fn qfn(const glmq_kernels *k, int q4)
{
    return q4 ? k->quantize_row_q4 : k->quantize_row_q8;
}

/* |a - b| <= rel * max(|a|, |b|) + abs */
static int close_enough(double a, double b, double rel, double abs_tol)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + abs_tol;
}

static float g_w[MAXN + 64];
static uint8_t g_ref[MAXN + 256], g_out[MAXN + 256];
static int g_q[MAXN];
static float g_deq[MAXN];

/* ---- 1 + 3: _ref against the independent derivation, and properties -------------------------- */

static void check_ref_row(const float *w, int64_t n, int q4, const char *what)
{
    const int qmax = q4 ? 7 : 127;
    const int64_t rb = row_bytes(n, q4),
                  padded = q4 ? glmq_q4_padded_cols(n) : glmq_q8_padded_cols(n);
    uint16_t sc_ref = 0xdead, sc_ind = 0xbeef;
    glmq_qstats st;
    memset(g_ref, 0xa5, sizeof g_ref);
    int64_t c = -2, ci = -2;
    glmq_status r = (q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref)(w, n, g_ref,
                                                                                &sc_ref, &st, &c);
    glmq_status ri = indep_quantize(w, n, qmax, g_q, &sc_ind, &ci);
    ck_assert_msg(r == ri && c == ci,
                  "%s n=%lld q%d: ref returned %d column %lld, expected %d %lld", what,
                  (long long)n, q4 ? 4 : 8, (int)r, (long long)c, (int)ri, (long long)ci);
    ck_assert_int_eq(r, GLMQ_OK);
    ck_assert_msg(sc_ref == sc_ind, "%s n=%lld q%d: scale %04x, expected %04x", what, (long long)n,
                  q4 ? 4 : 8, sc_ref, sc_ind);

    /* codes, then padding, then nothing written past the row */
    for (int64_t j = 0; j < n; j++)
        EXPECT(decode_code(g_ref, j, q4) == g_q[j], "%s n=%lld q%d col %lld: %d != %d", what,
               (long long)n, q4 ? 4 : 8, (long long)j, decode_code(g_ref, j, q4), g_q[j]);
    for (int64_t j = n; j < padded; j++) EXPECT_EQ(decode_code(g_ref, j, q4), 0);
    if (q4) /* padding nibbles are exactly 8, i.e. whole pad bytes 0x88 past the last pair */
        for (int64_t j = n; j < padded; j++) {
            int64_t b = j / 128, k = j % 128;
            uint8_t byte = g_ref[64 * b + (k & 63)];
            EXPECT_EQ(k < 64 ? (byte & 15) : (byte >> 4), 8);
        }
    else
        for (int64_t j = n; j < padded; j++) EXPECT_EQ(g_ref[j], 0);
    for (int64_t j = rb; j < rb + 64; j++) EXPECT_EQ(g_ref[j], 0xa5);

    /* dequantize: unclamped |q*s - w| <= s/2 plus the slack of the rounded quotient
     * (|fl(w/s) - w/s| <= 2^-24 * 2^7 / 2, so a near-tie may go the "wrong" way by 2^-17 s);
     * clamped elements dequantize to exactly +-qmax * s. */
    (q4 ? glmq_dequantize_row_q4_ref : glmq_dequantize_row_q8_ref)(g_ref, sc_ref, n, g_deq);
    const double s = indep_f16_value(sc_ref);
    double sse = 0, ssw = 0, emax = 0;
    for (int64_t j = 0; j < n; j++) {
        double e = (double)g_deq[j] - (double)w[j];
        EXPECT_T(g_deq[j] == (float)((double)g_q[j] * s));
        if (s > 0 && fabs((double)w[j]) / s > qmax + 0.5)
            EXPECT_T(fabs((double)g_deq[j]) == qmax * s);
        else if (s > 0)
            EXPECT(fabs(e) <= 0.5 * s + 0x1p-16 * s, "%s col %lld: |err| %g > s/2 %g", what,
                   (long long)j, fabs(e), 0.5 * s);
        sse += e * e;
        ssw += (double)w[j] * w[j];
        emax = fmax(emax, fabs(e));
    }
    ck_assert_msg(close_enough(st.sum_sq_err, sse, 1e-12, 1e-300), "sse %.17g vs %.17g",
                  st.sum_sq_err, sse);
    ck_assert(close_enough(st.sum_sq, ssw, 1e-12, 1e-300));
    ck_assert(st.max_abs_err == emax);
}

/* ---- 2: every supported level against _ref --------------------------------------------------- */

/*
 * Run level k on w (copied to an input offset of in_off floats, output offset out_off bytes)
 * and compare with the _ref result already in g_ref / sc_ref / st_ref.
 */
static void check_level_row(const glmq_kernels *k, const float *w, int64_t n, int q4, int in_off,
                            int out_off, int with_stats, glmq_status r_ref, int64_t c_ref,
                            uint16_t sc_ref, const glmq_qstats *st_ref, const char *what)
{
    static float in[MAXN + 64];
    const int64_t rb = row_bytes(n, q4);
    memcpy(in + in_off, w, (size_t)n * sizeof(float));
    memset(g_out, 0xa5, sizeof g_out);
    uint16_t sc = 0xdead;
    glmq_qstats st = {-1, -1, -1};
    int64_t c = -2;
    glmq_status r =
        qfn(k, q4)(in + in_off, n, g_out + out_off, &sc, with_stats ? &st : NULL, &c);
    ck_assert_msg(r == r_ref && c == c_ref, "%s %s n=%lld q%d: status %d column %lld, ref %d %lld",
                  what, glmq_cpu_level_name(k->level), (long long)n, q4 ? 4 : 8, (int)r,
                  (long long)c, (int)r_ref, (long long)c_ref);
    if (r_ref != GLMQ_OK) return; /* outputs unspecified on error */
    ck_assert_msg(sc == sc_ref, "%s %s n=%lld q%d: scale %04x, ref %04x", what,
                  glmq_cpu_level_name(k->level), (long long)n, q4 ? 4 : 8, sc, sc_ref);
    ck_assert_mem_eq(g_out + out_off, g_ref, (size_t)rb);
    for (int i = 0; i < out_off; i++) EXPECT_EQ(g_out[i], 0xa5);
    for (int64_t i = out_off + rb; i < out_off + rb + 64; i++) EXPECT_EQ(g_out[i], 0xa5);
    if (with_stats) { /* fp32 lanes: last digits may differ, see quant_x86_impl.h */
        ck_assert_msg(close_enough(st.sum_sq_err, st_ref->sum_sq_err, 1e-5, 1e-30),
                      "%s %s: sse %.9g vs ref %.9g", what, glmq_cpu_level_name(k->level),
                      st.sum_sq_err, st_ref->sum_sq_err);
        ck_assert(close_enough(st.sum_sq, st_ref->sum_sq, 1e-5, 1e-30));
        ck_assert(close_enough(st.max_abs_err, st_ref->max_abs_err, 1e-6, 1e-30));
    }
}

static void check_all_levels(const float *w, int64_t n, int q4, const char *what)
{
    static const int in_offs[] = {0, 1, 3, 5, 16};
    static const int out_offs[] = {0, 1, 7, 33, 0};
    uint16_t sc_ref = 0;
    glmq_qstats st_ref;
    memset(g_ref, 0xa5, sizeof g_ref);
    int64_t c_ref = -2;
    glmq_status r_ref = (q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref)(
        w, n, g_ref, &sc_ref, &st_ref, &c_ref);
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        ck_assert_int_eq(k->level, l);
        for (int o = 0; o < 5; o++)
            check_level_row(k, w, n, q4, in_offs[o], out_offs[o], o != 4, r_ref, c_ref, sc_ref,
                            &st_ref, what);
    }
    /* and the dispatched table, whatever GLMQ_CPU selected */
    check_level_row(glmq_kernels_get(), w, n, q4, 0, 0, 1, r_ref, c_ref, sc_ref, &st_ref, what);
}

START_TEST(test_rows)
{
    const int kind = _i / NLENS;
    const int64_t n = lens[_i % NLENS];
    for (int q4 = 0; q4 <= 1; q4++) {
        rng = 0x1234567ull * (uint64_t)(_i + 1) + (uint64_t)q4;
        gen_row(kind, n, q4 ? 7 : 127, g_w);
        if (kind == K_TIES) /* the generator's claim: every w/s is exactly k + 0.5 */
            for (int64_t j = 1; j < n; j++) {
                double x = (double)g_w[j] / indep_f16_value(0x2e66);
                EXPECT_T(x - floor(x) == 0.5);
            }
        check_ref_row(g_w, n, q4, kind_names[kind]);
        check_all_levels(g_w, n, q4, kind_names[kind]);
    }
}
END_TEST

/* Rows of random values with random magnitude and random length: a small built-in fuzz. */
START_TEST(test_random_rows)
{
    rng = 0xfeedull + (uint64_t)_i;
    for (int it = 0; it < 40; it++) {
        int64_t n = 1 + (int64_t)(rnd64() % 700);
        double mag = pow(2.0, -30.0 + 44.0 * rnd_unit()); /* amax stays < 7 * 65504 */
        for (int64_t j = 0; j < n; j++) g_w[j] = (float)(mag * rnd_normal());
        for (int q4 = 0; q4 <= 1; q4++) {
            check_ref_row(g_w, n, q4, "random");
            check_all_levels(g_w, n, q4, "random");
        }
    }
}
END_TEST

/* ---- NaN / Inf / overflow -------------------------------------------------------------------- */

static const int64_t bad_lens[] = {1, 65, 4096 + 37};
static const uint32_t bad_vals[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7f800000u,
                                    0xff800000u};

START_TEST(test_nonfinite)
{
    const int64_t n = bad_lens[_i % 3];
    const int where = (_i / 3) % 3;
    const float bad = f_bits(bad_vals[_i / 9]);
    rng = 77 + (uint64_t)_i;
    for (int64_t j = 0; j < n; j++) g_w[j] = (float)rnd_normal();
    int64_t pos = where == 0 ? 0 : where == 1 ? n / 2 : n - 1;
    g_w[pos] = bad;
    if (pos + 1 < n) g_w[n - 1] = f_bits(0x7fc00000u); /* a later NaN: the first one wins */
    if (pos > 0) g_w[0] = 1e30f;                       /* NaN/Inf wins over scale overflow */
    for (int q4 = 0; q4 <= 1; q4++) {
        uint16_t sc;
        int64_t c = -2;
        glmq_status r = (q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref)(g_w, n, g_ref,
                                                                                    &sc, NULL, &c);
        ck_assert_int_eq(r, GLMQ_E_VALUE);
        ck_assert_int_eq(c, pos);
        check_all_levels(g_w, n, q4, "nonfinite");
    }
}
END_TEST

START_TEST(test_overflow)
{
    for (int q4 = 0; q4 <= 1; q4++) {
        const float qmax = q4 ? 7.0f : 127.0f;
        int64_t n = 100;
        for (int64_t j = 0; j < n; j++) g_w[j] = (float)j * 0.01f;
        uint16_t sc;
        int64_t c = -2;
        glmq_quantize_row_fn ref = q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref;

        g_w[5] = 1e30f; /* amax/qmax far beyond fp16: not NaN/Inf, a distinct status */
        ck_assert_int_eq(ref(g_w, n, g_ref, &sc, NULL, &c), GLMQ_E_UNSUPPORTED);
        ck_assert_int_eq(c, -1);
        check_all_levels(g_w, n, q4, "overflow");

        g_w[5] = -65520.0f * qmax; /* amax/qmax = 65520: the tie that RNE sends to inf */
        c = -2;
        ck_assert_int_eq(ref(g_w, n, g_ref, &sc, NULL, &c), GLMQ_E_UNSUPPORTED);
        ck_assert_int_eq(c, -1);
        check_all_levels(g_w, n, q4, "overflow");

        g_w[5] = 65519.0f * qmax; /* rounds down to 65504 = 0x7bff: fine */
        c = -2;
        ck_assert_int_eq(ref(g_w, n, g_ref, &sc, NULL, &c), GLMQ_OK);
        ck_assert_int_eq(c, -1);
        ck_assert_int_eq(sc, 0x7bff);
        check_ref_row(g_w, n, q4, "max scale");
        check_all_levels(g_w, n, q4, "max scale");

        g_w[5] = 3.4e38f; /* FLT_MAX-ish */
        ck_assert_int_eq(ref(g_w, n, g_ref, &sc, NULL, NULL), GLMQ_E_UNSUPPORTED);
        check_all_levels(g_w, n, q4, "overflow");

        g_w[7] = -INFINITY; /* with an overflowing scale too: NaN/Inf is checked first */
        ck_assert_int_eq(ref(g_w, n, g_ref, &sc, NULL, &c), GLMQ_E_VALUE);
        ck_assert_int_eq(c, 7);
        check_all_levels(g_w, n, q4, "overflow and inf");
    }
}
END_TEST

/* ---- layout by hand -------------------------------------------------------------------------- */

/* INT4, n = 130 (two blocks, 126 padding elements), scale 1.0:
 *   w[0]=7 w[1]=-7 w[2]=3 w[64]=-1 w[65]=2 w[128]=-3 w[129]=5, all others 0.
 *   byte 0  = lo q[0]+8=15 | hi q[64]+8=7  -> 0x7f
 *   byte 1  = lo q[1]+8=1  | hi q[65]+8=10 -> 0xa1
 *   byte 2  = lo q[2]+8=11 | hi q[66]+8=8  -> 0x8b
 *   byte 3..63 = 0x88
 *   byte 64 = lo q[128]+8=5  | hi (pad 192) 8 -> 0x85
 *   byte 65 = lo q[129]+8=13 | hi (pad 193) 8 -> 0x8d
 *   byte 66..127 = 0x88 (elements 130..191 and 194..255 are padding) */
START_TEST(test_q4_layout_by_hand)
{
    float w[130] = {0};
    w[0] = 7, w[1] = -7, w[2] = 3, w[64] = -1, w[65] = 2, w[128] = -3, w[129] = 5;
    uint8_t want[128];
    memset(want, 0x88, sizeof want);
    want[0] = 0x7f, want[1] = 0xa1, want[2] = 0x8b, want[64] = 0x85, want[65] = 0x8d;
    ck_assert_int_eq(glmq_q4_row_bytes(130), 128);
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        uint8_t out[128 + 16];
        uint16_t sc = 0;
        memset(out, 0x55, sizeof out);
        ck_assert_int_eq(k->quantize_row_q4(w, 130, out, &sc, NULL, NULL), GLMQ_OK);
        ck_assert_int_eq(sc, 0x3c00); /* fp16 1.0 */
        ck_assert_mem_eq(out, want, 128);
        ck_assert_int_eq(out[128], 0x55);
    }
    float back[130];
    glmq_dequantize_row_q4_ref(want, 0x3c00, 130, back);
    ck_assert_mem_eq(back, w, sizeof w);
}
END_TEST

/* INT8, n = 3, scale 1.0: codes 127, -1, 0 (0.5 ties to even 0), 61 zero pad bytes; and
 * w = {254, 1, 3}: s = 2, 1/2 = 0.5 -> 0, 3/2 = 1.5 -> 2. */
START_TEST(test_q8_layout_by_hand)
{
    const float w1[3] = {127, -1, 0.5f}, w2[3] = {254, 1, 3};
    uint8_t want1[64] = {127, 0xff, 0}, want2[64] = {127, 0, 2};
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        uint8_t out[64];
        uint16_t sc = 0;
        ck_assert_int_eq(k->quantize_row_q8(w1, 3, out, &sc, NULL, NULL), GLMQ_OK);
        ck_assert_int_eq(sc, 0x3c00);
        ck_assert_mem_eq(out, want1, 64);
        ck_assert_int_eq(k->quantize_row_q8(w2, 3, out, &sc, NULL, NULL), GLMQ_OK);
        ck_assert_int_eq(sc, 0x4000); /* fp16 2.0 */
        ck_assert_mem_eq(out, want2, 64);
    }
}
END_TEST

/* ---- 16-bit float conversions ---------------------------------------------------------------- */

static uint8_t g_h16[2 * 65536 + 64];
static float g_f1[65536 + 64], g_f2[65536 + 64];
static uint16_t g_u1[(1 << 21) + 64], g_u2[(1 << 21) + 64];
static float g_src[(1 << 21) + 64], g_src2[(1 << 21) + 64];

/* The scalar fp16.c functions against the definitions (they are what the kernels match). */
START_TEST(test_fp16_scalar_independent)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = glmq_f16_to_f32((uint16_t)h);
        int ex = (h >> 10) & 31;
        if (ex == 31 && (h & 1023)) {
            EXPECT_T(isnan(f));
            continue;
        }
        if (ex == 31) {
            EXPECT_T(isinf(f) && (signbit(f) != 0) == ((h >> 15) != 0));
            continue;
        }
        EXPECT_T((double)f == indep_f16_value((uint16_t)h));
        EXPECT_EQ(glmq_f32_to_f16(f), h); /* exact round trip */
        EXPECT_EQ(indep_f16_bits(fabs((double)f)), h & 0x7fff);
    }
    /* RNE for random floats in and around the fp16 range, signs included */
    rng = 99;
    for (int i = 0; i < 1000000; i++) {
        float f = f_bits((uint32_t)rnd64() & 0x477fffffu) * sgn(); /* |f| < 2^16 */
        uint16_t want = indep_f16_bits(fabs((double)f)) | (signbit(f) ? 0x8000 : 0);
        EXPECT_EQ(glmq_f32_to_f16(f), want);
    }
}
END_TEST

START_TEST(test_widen_all_halves)
{
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        for (int off = 0; off < 3; off++) { /* source byte offset: unaligned is allowed */
            for (uint32_t h = 0; h < 65536; h++) glmq_wr_le16(g_h16 + off + 2 * h, (uint16_t)h);
            k->f16_to_f32(g_h16 + off, g_f1 + off, 65536); /* dst misaligned by off floats */
            glmq_f16_to_f32_row(g_h16 + off, g_f2, 65536);
            for (uint32_t h = 0; h < 65536; h++) /* bit compare, NaN payloads included */
                EXPECT(bits_f(g_f1[off + h]) == bits_f(g_f2[h]), "%s f16 %04x: %08x != %08x",
                       glmq_cpu_level_name(k->level), h, bits_f(g_f1[off + h]), bits_f(g_f2[h]));
            k->bf16_to_f32(g_h16 + off, g_f1 + off, 65536);
            glmq_bf16_to_f32_row(g_h16 + off, g_f2, 65536);
            ck_assert_mem_eq(g_f1 + off, g_f2, 65536 * sizeof(float));
        }
        /* short lengths exercise every tail path, on halves around 65504 / inf / sNaN / qNaN;
         * nothing past n is written */
        for (uint32_t h = 0; h < 65536; h++) glmq_wr_le16(g_h16 + 2 * h, (uint16_t)h);
        const uint8_t *src = g_h16 + 2 * (0x7c00 - 20);
        for (int64_t n = 0; n <= 70; n++) {
            for (int pass = 0; pass < 2; pass++) {
                memset(g_f1, 0x5a, 80 * sizeof(float));
                if (pass == 0)
                    k->f16_to_f32(src, g_f1, n);
                else
                    k->bf16_to_f32(src, g_f1, n);
                for (int64_t j = 0; j < n; j++) {
                    uint16_t h = glmq_rd_le16(src + 2 * j);
                    float want = pass == 0 ? glmq_f16_to_f32(h) : glmq_bf16_to_f32(h);
                    EXPECT_EQ(bits_f(g_f1[j]), bits_f(want));
                }
                for (int64_t j = n; j < 80; j++) EXPECT_EQ(bits_f(g_f1[j]), 0x5a5a5a5au);
            }
        }
    }
}
END_TEST

/* A sweep of f32 inputs to the narrowing kernels: every half (exact), the midpoints between
 * consecutive halves (ties), one f32 ulp either side of them, f32 subnormals, NaN payloads,
 * and random bit patterns. */
static int64_t narrow_inputs(float *f)
{
    int64_t n = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float a = glmq_f16_to_f32((uint16_t)h), b = glmq_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2);
        f[n++] = a;
        f[n++] = -mid;
        f[n++] = mid;
        f[n++] = nextafterf(mid, 0.0f);
        f[n++] = -nextafterf(mid, INFINITY);
    }
    static const uint32_t special[] = {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fa00000u,
                                       0x7f802000u, 0xffc00001u, 0x7fffffffu, 0x33000000u,
                                       0x33000001u, 0x387fe000u, 0x477ff000u, 0x477fefffu,
                                       0x00000001u, 0x807fffffu, 0x7f7fffffu, 0x80000000u};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) f[n++] = f_bits(special[i]);
    rng = 4242;
    while (n < (1 << 21)) f[n++] = f_bits((uint32_t)rnd64());
    return n;
}

START_TEST(test_narrow_sweep)
{
    int64_t n = narrow_inputs(g_src);
    glmq_f32_to_f16_row_ref(g_src, g_u2, n);
    for (int64_t i = 0; i < n; i++) EXPECT_EQ(g_u2[i], glmq_f32_to_f16(g_src[i]));
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        for (int off = 0; off < 3; off++) { /* src misaligned by off floats, dst by 1 half */
            memcpy(g_src2 + off, g_src, (size_t)n * sizeof(float));
            k->f32_to_f16(g_src2 + off, g_u1 + 1, n);
            for (int64_t i = 0; i < n; i++)
                EXPECT(g_u1[1 + i] == g_u2[i], "%s f32 %08x: %04x != %04x",
                       glmq_cpu_level_name(k->level), bits_f(g_src[i]), g_u1[1 + i], g_u2[i]);
        }
        for (int64_t m = 0; m <= 70; m++) { /* tails; nothing past m written */
            const int64_t at = 5 * 0x7bf0;  /* halves near 65504 and their ties */
            for (int j = 0; j < 80; j++) g_u1[j] = 0x5a5a;
            k->f32_to_f16(g_src + at, g_u1, m);
            for (int64_t j = 0; j < m; j++) EXPECT_EQ(g_u1[j], g_u2[at + j]);
            for (int64_t j = m; j < 80; j++) EXPECT_EQ(g_u1[j], 0x5a5a);
        }
    }
}
END_TEST

/* ---- dispatch -------------------------------------------------------------------------------- */

START_TEST(test_level_names)
{
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_REF), "ref");
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_AVX2), "avx2");
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_AVX512), "avx512");
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_AVX512VNNI), "avx512vnni");
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_AVXVNNI), "avxvnni");
    ck_assert_ptr_nonnull(glmq_cpu_level_name((glmq_cpu_level)7));
    ck_assert_ptr_null(glmq_kernels_for((glmq_cpu_level)(GLMQ_CPU_MAX + 1)));
    ck_assert_ptr_null(glmq_kernels_for((glmq_cpu_level)-1));
    const glmq_kernels *r = glmq_kernels_for(GLMQ_CPU_REF);
    ck_assert_ptr_nonnull(r);
    ck_assert(r->quantize_row_q8 == glmq_quantize_row_q8_ref);
    ck_assert(r->quantize_row_q4 == glmq_quantize_row_q4_ref);
    ck_assert(r->f16_to_f32 == glmq_f16_to_f32_row);
    ck_assert(r->bf16_to_f32 == glmq_bf16_to_f32_row);
    /* each x86 level needs AVX2 (avx512 and avxvnni are independent of each other) */
    if (glmq_kernels_for(GLMQ_CPU_AVX512)) ck_assert_ptr_nonnull(glmq_kernels_for(GLMQ_CPU_AVX2));
    if (glmq_kernels_for(GLMQ_CPU_AVXVNNI)) ck_assert_ptr_nonnull(glmq_kernels_for(GLMQ_CPU_AVX2));
    if (glmq_kernels_for(GLMQ_CPU_AVX512VNNI))
        ck_assert_ptr_nonnull(glmq_kernels_for(GLMQ_CPU_AVX512));
    /* one table: each level's matrix kernels are the dot table of the same level */
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (!k) continue;
        ck_assert_ptr_nonnull(k->dot);
        ck_assert_int_eq(k->dot->level, l);
        ck_assert_str_eq(k->dot->name, glmq_cpu_level_name((glmq_cpu_level)l));
    }
}
END_TEST

/* The active level is the best supported one, capped by GLMQ_CPU. */
START_TEST(test_dispatch_level)
{
    /* the supported set from the compiler's own CPU probe (CPUID + the OS's saved state), not
     * from the dispatcher under test */
    unsigned hw = 1u << GLMQ_CPU_REF;
    int arm = 0;
#if defined(GLMQ_HAVE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("avx")) {
        hw |= 1u << GLMQ_CPU_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
            hw |= 1u << GLMQ_CPU_AVX512;
            if (__builtin_cpu_supports("avx512vnni")) hw |= 1u << GLMQ_CPU_AVX512VNNI;
        }
#if defined(GLMQ_HAVE_AVXVNNI)
        if (__builtin_cpu_supports("avxvnni")) hw |= 1u << GLMQ_CPU_AVXVNNI;
#endif
#if defined(GLMQ_EMULATE_AVX512)
        /* test build: AVX-512 and AVX-VNNI run emulated on AVX2 */
        hw |= (1u << GLMQ_CPU_AVX512) | (1u << GLMQ_CPU_AVX512VNNI);
#if defined(GLMQ_HAVE_AVXVNNI)
        hw |= 1u << GLMQ_CPU_AVXVNNI;
#endif
#endif
    }
#elif defined(GLMQ_HAVE_ARM64)
    /* the kernel's hwcaps (Advanced SIMD, SDOT), as the auxiliary vector reports them */
    arm = 1;
    const unsigned long hwcap = getauxval(AT_HWCAP);
    if (hwcap & (1UL << 1)) {
        hw |= 1u << GLMQ_CPU_NEON;
        if (hwcap & (1UL << 20)) hw |= 1u << GLMQ_CPU_DOTPROD;
    }
#endif
    /* exactly the supported levels are offered (never one of the other family) */
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++)
        ck_assert_msg((glmq_kernels_for((glmq_cpu_level)l) != NULL) == (int)((hw >> l) & 1),
                      "level %d offered %d, supported set %#x", l,
                      glmq_kernels_for((glmq_cpu_level)l) != NULL, hw);
    /* the best supported level at or below the GLMQ_CPU cap, in the capability order */
    static const glmq_cpu_level x86_order[] = {GLMQ_CPU_AVX512VNNI, GLMQ_CPU_AVX512,
                                               GLMQ_CPU_AVXVNNI, GLMQ_CPU_AVX2, GLMQ_CPU_REF};
    static const glmq_cpu_level arm_order[] = {GLMQ_CPU_DOTPROD, GLMQ_CPU_NEON, GLMQ_CPU_REF};
    const glmq_cpu_level *order = arm ? arm_order : x86_order;
    const int n = arm ? 3 : 5;
    int from = 0; /* no cap: the top of the order */
    const char *e = getenv("GLMQ_CPU");
    if (e && (strcmp(e, "ref") == 0 || strcmp(e, "scalar") == 0)) from = n - 1;
    /* a name of the other family caps nothing */
    if (e && !arm && strcmp(e, "avx512") == 0) from = 1;
    if (e && !arm && (strcmp(e, "avxvnni") == 0 || strcmp(e, "avx_vnni") == 0)) from = 2;
    if (e && !arm && strcmp(e, "avx2") == 0) from = 3;
    if (e && arm && strcmp(e, "neon") == 0) from = 1;
    int want = GLMQ_CPU_REF;
    for (int i = n - 1; i >= from; i--)
        if ((hw >> order[i]) & 1) want = order[i];
    const glmq_kernels *k = glmq_kernels_get();
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(k->level, want);
    ck_assert_int_eq(glmq_cpu_active(), want);
    ck_assert_ptr_eq(glmq_kernels_get(), k); /* chosen once */
    fprintf(stderr, "check_quant: supported set %#x, active %s (GLMQ_CPU=%s)\n", hw,
            glmq_cpu_level_name(k->level), e ? e : "unset");
}
END_TEST

/* glmq_cpu_force can only lower, to a level the CPU runs. Registered last: without fork it
 * changes the process. */
START_TEST(test_force)
{
    glmq_cpu_level cur = glmq_cpu_active();
    /* the tops of both families never raise */
    ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_AVX512VNNI), cur);
    ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_DOTPROD), cur);
    ck_assert_int_eq(glmq_cpu_force((glmq_cpu_level)(GLMQ_CPU_MAX + 1)), cur);
    ck_assert_int_eq(glmq_cpu_active(), cur);
    if (cur == GLMQ_CPU_AVX512 || cur == GLMQ_CPU_AVX512VNNI) {
        /* below avx512 in the order: avxvnni where the CPU has it, else avx2 */
        const glmq_cpu_level v =
            glmq_kernels_for(GLMQ_CPU_AVXVNNI) ? GLMQ_CPU_AVXVNNI : GLMQ_CPU_AVX2;
        ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_AVXVNNI), v);
        ck_assert_int_eq(glmq_cpu_active(), v);
        ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_AVX512), v); /* never back up */
    }
    ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_REF), GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_kernels_get()->level, GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_AVX2), GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_cpu_force(GLMQ_CPU_AVXVNNI), GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_cpu_active(), GLMQ_CPU_REF);
}
END_TEST

/* ---- benchmark (GLMQ_QBENCH=1; not a test) --------------------------------------------------- */

/* Thread CPU time, not wall time: the benchmark is often run on a shared, loaded machine, and
 * time spent descheduled is not the kernels' cost. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Widen + quantize a 4096 x 4096 f16 matrix row by row, single-threaded, as the converter's
 * inner loop does (row buffer in L1, statistics on). Best of 5 runs. */
static int run_bench(void)
{
    enum { R = 4096, C = 4096 };
    uint8_t *src = malloc((size_t)R * C * 2);
    uint8_t *dst = malloc((size_t)R * C + 64);
    float *row = aligned_alloc(64, C * sizeof(float));
    if (!src || !dst || !row) return 1;
    rng = 1;
    for (int64_t i = 0; i < (int64_t)R * C; i++)
        glmq_wr_le16(src + 2 * i, glmq_f32_to_f16((float)(0.02 * rnd_normal())));
    printf("glmq quantize benchmark: %dx%d f16 rows widened + quantized, 1 thread,\n"
           "G elements per second of thread CPU time (best of 5)\n",
           R, C);
    printf("%-7s %9s %9s %9s %9s %9s\n", "level", "widen", "q8", "q4", "q8+stats", "q4+stats");
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++) {
        const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)l);
        if (k == NULL) continue;
        double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
        for (int rep = 0; rep < 5; rep++) {
            for (int mode = 0; mode < 5; mode++) {
                glmq_qstats st;
                uint16_t sc;
                double t0 = now_s();
                for (int r = 0; r < R; r++) {
                    k->f16_to_f32(src + (size_t)r * C * 2, row, C);
                    if (mode == 0) continue;
                    int q4 = mode == 2 || mode == 4;
                    glmq_qstats *stp = mode >= 3 ? &st : NULL;
                    uint8_t *o = dst + (size_t)r * (size_t)row_bytes(C, q4);
                    if (qfn(k, q4)(row, C, o, &sc, stp, NULL) != GLMQ_OK) return 1;
                }
                double t = now_s() - t0;
                if (t < best[mode]) best[mode] = t;
            }
        }
        printf("%-7s", glmq_cpu_level_name(k->level));
        for (int mode = 0; mode < 5; mode++) printf(" %9.2f", (double)R * C / best[mode] * 1e-9);
        printf("\n");
    }
    free(src);
    free(dst);
    free(row);
    return 0;
}

/* ---- suite ----------------------------------------------------------------------------------- */

Suite *quant_suite(void);
Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");

    TCase *rows = tcase_create("rows");
    tcase_set_timeout(rows, 300);
    tcase_add_loop_test(rows, test_rows, 0, K_NKINDS * NLENS);
    tcase_add_loop_test(rows, test_random_rows, 0, 8);
    tcase_add_loop_test(rows, test_nonfinite, 0, 3 * 3 * 5);
    tcase_add_test(rows, test_overflow);
    tcase_add_test(rows, test_q4_layout_by_hand);
    tcase_add_test(rows, test_q8_layout_by_hand);
    suite_add_tcase(s, rows);

    TCase *conv = tcase_create("fp16");
    tcase_set_timeout(conv, 300);
    tcase_add_test(conv, test_fp16_scalar_independent);
    tcase_add_test(conv, test_widen_all_halves);
    tcase_add_test(conv, test_narrow_sweep);
    suite_add_tcase(s, conv);

    TCase *cpu = tcase_create("dispatch");
    tcase_add_test(cpu, test_level_names);
    tcase_add_test(cpu, test_dispatch_level);
    tcase_add_test(cpu, test_force); /* last: lowers the process-wide level without fork */
    suite_add_tcase(s, cpu);
    return s;
}

int main(void)
{
    if (getenv("GLMQ_QBENCH")) return run_bench();
    SRunner *sr = srunner_create(quant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
