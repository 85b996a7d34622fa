/*
 * check_attn.c - tests of the attention kernel (quant/attn.h: attn_ref.c, and attn_avx2.c /
 * attn_avx512.c, both instances of attn_x86_impl.h; the .att entry of the quant/dispatch.c
 * tables).
 *
 *   1. glmq_att_exp against libm's exp in double over [-87, 0] and its edges (an independent
 *      source): relative error <= 4 ulp of fp32; 0 below -87 and for NaN; 1 at 0 and above.
 *   2. _ref against an independent double-precision softmax attention written here (libm exp,
 *      no shared code): |out - truth| <= 1e-5 * sum_u p_u |v_u[e]| + 1e-6.
 *   3. Every level the CPU supports against _ref on the same inputs, within the bound of
 *      attn.h; the shapes cover head dims 1..300 (not multiples of 8 or 16), key counts 1..200
 *      (partial score blocks), strides wider than d, scores spread to exp underflow, and the
 *      scratch left holding e_u.
 *   4. The group kernel (.att_group) of every level against the per-head kernel (.att) of the
 *      same level, head by head: outputs and e_u BIT-IDENTICAL (memcmp), for hq = 1 .. 16
 *      heads (the score pass's groups of 4 heads on AVX-512, pairs, a last single head), head
 *      dims 64 / 128 (and odd ones), key counts 1 .. 4099 (across tile and block
 *      edges), ld > d with NaN padding, a NaN key, and head strides ldq / ldo > d.
 * CTest reruns this executable with GLMQ_CPU=ref and GLMQ_CPU=avx2 (the dispatch check).
 */
#include "quant/dot.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT(c, ...)                                                                             \
    do {                                                                                           \
        if (!(c)) ck_abort_msg(__VA_ARGS__);                                                       \
    } while (0)

static uint64_t rng;
static double rnd_sym(void) { return (double)(tu_splitmix64(&rng) >> 11) * 0x1p-52 - 1.0; }

static const glmq_cpu_level levels[] = {GLMQ_CPU_REF, GLMQ_CPU_AVX2, GLMQ_CPU_AVX512,
                                         GLMQ_CPU_AVX512VNNI};

START_TEST(exp_vs_libm)
{
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        const float x = (float)(-87.0 * i / 200000.0);
        const double t = exp((double)x);
        const double e = fabs((double)glmq_att_exp(x) - t) / t;
        if (e > worst) worst = e;
    }
    ck_assert_msg(worst <= 4 * 0x1p-24, "worst relative error %g", worst);
    ck_assert_float_eq(glmq_att_exp(0.0f), 1.0f);
    ck_assert_float_eq(glmq_att_exp(1.0f), 1.0f); /* x > 0 is clamped (non-finite scores only) */
    ck_assert_float_eq(glmq_att_exp(-87.5f), 0.0f);
    ck_assert_float_eq(glmq_att_exp(-INFINITY), 0.0f);
    ck_assert_float_eq(glmq_att_exp(NAN), 0.0f);
    ck_assert_float_eq(glmq_att_exp(INFINITY), 1.0f);
}
END_TEST

/* Shapes of the sweep: (d, n, ld extra, score spread). */
typedef struct {
    int64_t d, n, pad;
    double spread;
} shape;
static const shape shapes[] = {
    {128, 1, 0, 1},    {128, 2, 128, 1},  {128, 15, 0, 1},  {128, 16, 128, 1},
    {128, 17, 0, 1},   {128, 33, 128, 3}, {128, 200, 128, 2}, {128, 512, 128, 1},
    {64, 100, 0, 1},   {16, 9, 16, 1},    {8, 40, 0, 1},    {1, 5, 0, 1},
    {3, 20, 1, 1},     {7, 31, 2, 1},     {17, 47, 3, 1},   {33, 64, 0, 1},
    {100, 70, 28, 1},  {130, 13, 0, 1},   {255, 18, 1, 1},  {300, 37, 4, 1},
    {128, 60, 0, 400}, {32, 90, 32, 50},  {128, 8, 0, 0},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

typedef struct {
    float *q, *k, *v, *s, *out;
    double *bound; /* sum_u p_u |v_u[e]| from the truth */
    double *truth;
} bufs;

static void make(const shape *sh, bufs *b)
{
    const int64_t ld = sh->d + sh->pad;
    b->q = calloc((size_t)sh->d, sizeof(float));
    b->k = calloc((size_t)(sh->n * ld), sizeof(float));
    b->v = calloc((size_t)(sh->n * ld), sizeof(float));
    b->s = calloc((size_t)sh->n, sizeof(float));
    b->out = calloc((size_t)sh->d, sizeof(float));
    b->bound = calloc((size_t)sh->d, sizeof(double));
    b->truth = calloc((size_t)sh->d, sizeof(double));
    ck_assert(b->q && b->k && b->v && b->s && b->out && b->bound && b->truth);
    /* q.k / sqrt(d) spans about +-spread */
    const double qs = sh->spread * 2.0 / sqrt((double)sh->d);
    for (int64_t e = 0; e < sh->d; e++) b->q[e] = (float)(rnd_sym() * qs);
    for (int64_t i = 0; i < sh->n * ld; i++) {
        b->k[i] = (float)rnd_sym();
        b->v[i] = (float)(rnd_sym() * 4);
    }
    /* the padding between rows must never be read: NaN would poison any sum it entered */
    for (int64_t u = 0; u < sh->n; u++)
        for (int64_t e = sh->d; e < ld; e++) b->k[u * ld + e] = b->v[u * ld + e] = NAN;
    /* the truth: double softmax attention */
    const float scale = 1.0f / sqrtf((float)sh->d);
    double *p = calloc((size_t)sh->n, sizeof(double)), mx = -INFINITY, z = 0;
    ck_assert_ptr_nonnull(p);
    for (int64_t u = 0; u < sh->n; u++) {
        double a = 0;
        for (int64_t e = 0; e < sh->d; e++) a += (double)b->q[e] * b->k[u * ld + e];
        p[u] = a * scale;
        if (p[u] > mx) mx = p[u];
    }
    for (int64_t u = 0; u < sh->n; u++) z += (p[u] = exp(p[u] - mx));
    for (int64_t e = 0; e < sh->d; e++)
        for (int64_t u = 0; u < sh->n; u++) {
            b->truth[e] += p[u] / z * b->v[u * ld + e];
            b->bound[e] += p[u] / z * fabs((double)b->v[u * ld + e]);
        }
    free(p);
}

static void unmake(bufs *b)
{
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->s);
    free(b->out);
    free(b->bound);
    free(b->truth);
}

START_TEST(ref_vs_truth)
{
    rng = 0x1000 + (uint64_t)_i;
    const shape *sh = &shapes[_i];
    bufs b;
    make(sh, &b);
    const int64_t ld = sh->d + sh->pad;
    glmq_att_head_ref(b.q, b.k, b.v, ld, sh->d, sh->n, 1.0f / sqrtf((float)sh->d), b.s, b.out);
    for (int64_t e = 0; e < sh->d; e++)
        EXPECT(fabs(b.out[e] - b.truth[e]) <= 1e-5 * b.bound[e] + 1e-6,
               "shape %d e %lld: ref %.9g truth %.9g", _i, (long long)e, (double)b.out[e],
               b.truth[e]);
    unmake(&b);
}
END_TEST

START_TEST(levels_vs_ref)
{
    rng = 0x2000 + (uint64_t)_i;
    const shape *sh = &shapes[_i];
    bufs b;
    make(sh, &b);
    const int64_t ld = sh->d + sh->pad;
    const float scale = 1.0f / sqrtf((float)sh->d);
    float *ref = calloc((size_t)sh->d, sizeof(float)), *sref = calloc((size_t)sh->n, 4);
    ck_assert(ref && sref);
    glmq_att_head_ref(b.q, b.k, b.v, ld, sh->d, sh->n, scale, sref, ref);
    int ran = 0;
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        const glmq_dot_kernels *k = glmq_dot_kernels_for(levels[li]);
        if (!k) continue;
        ran++;
        /* out and the scratch get a canary past their end */
        float *out = calloc((size_t)sh->d + 1, sizeof(float));
        float *s = calloc((size_t)sh->n + 1, sizeof(float));
        ck_assert(out && s);
        out[sh->d] = s[sh->n] = 12345.0f;
        k->att(b.q, b.k, b.v, ld, sh->d, sh->n, scale, s, out);
        ck_assert_float_eq(out[sh->d], 12345.0f);
        ck_assert_float_eq(s[sh->n], 12345.0f);
        for (int64_t e = 0; e < sh->d; e++)
            EXPECT(fabs((double)out[e] - ref[e]) <= 2e-5 * b.bound[e] + 1e-6,
                   "%s shape %d e %lld: %.9g vs ref %.9g", k->name, _i, (long long)e,
                   (double)out[e], (double)ref[e]);
        /* s holds e_u: 1 at the max, within 1e-5 of _ref elsewhere */
        for (int64_t u = 0; u < sh->n; u++)
            EXPECT(fabs((double)s[u] - sref[u]) <= 1e-5 * sref[u] + 1e-30, "%s shape %d e_%lld",
                   k->name, _i, (long long)u);
        free(out);
        free(s);
    }
    ck_assert_int_ge(ran, 1);
    free(ref);
    free(sref);
    unmake(&b);
}
END_TEST

/* A NaN score (a NaN in one key row) gets weight 0 on every level, as in _ref, wherever the
 * key falls in its score block: the output is attention over the other keys (checked against a
 * double softmax without the bad key), and every level equals _ref. */
START_TEST(nan_key_ignored)
{
    const int64_t d = 4, n = 32;
    float q[4] = {0.5f, -0.25f, 1.0f, 0.125f}, k[32 * 4], v[32 * 4], s[32], ref[4], out[4];
    for (int64_t i = 0; i < n * d; i++) {
        k[i] = (float)((i * 7) % 11) / 11.0f;
        v[i] = 1.0f + (float)(i % 3);
    }
    const int64_t bad[] = {0, 7, 15, 19, 31};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        float kb[32 * 4];
        memcpy(kb, k, sizeof kb);
        kb[bad[b] * d + 1] = NAN;
        glmq_att_head_ref(q, kb, v, d, d, n, 0.5f, s, ref);
        /* the truth: softmax attention in double over the other keys only */
        double w[32], wsum = 0, mx = -INFINITY;
        for (int64_t u = 0; u < n; u++) {
            w[u] = 0;
            if (u == bad[b]) continue;
            for (int64_t e = 0; e < d; e++) w[u] += (double)q[e] * k[u * d + e];
            w[u] *= 0.5;
            if (w[u] > mx) mx = w[u];
        }
        for (int64_t u = 0; u < n; u++) {
            w[u] = u == bad[b] ? 0 : exp(w[u] - mx);
            wsum += w[u];
        }
        for (int64_t e = 0; e < d; e++) {
            double t = 0;
            for (int64_t u = 0; u < n; u++) t += w[u] / wsum * v[u * d + e];
            EXPECT(fabs(ref[e] - t) <= 1e-5 * fabs(t), "ref, NaN key %lld, e %lld: %g vs %g",
                   (long long)bad[b], (long long)e, (double)ref[e], t);
        }
        for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
            const glmq_dot_kernels *kl = glmq_dot_kernels_for(levels[li]);
            if (!kl) continue;
            kl->att(q, kb, v, d, d, n, 0.5f, s, out);
            for (int64_t e = 0; e < d; e++)
                EXPECT(fabsf(out[e] - ref[e]) <= 1e-5f * fabsf(ref[e]),
                       "%s, NaN key %lld, e %lld: %g vs ref %g", kl->name, (long long)bad[b],
                       (long long)e, (double)out[e], (double)ref[e]);
        }
    }
}
END_TEST

/* Group-kernel cases: (hq, d, n, pad, spread). Tiles are glmq_att_tile(d) keys: 64 for d = 128,
 * 128 for d = 64. */
typedef struct {
    int64_t hq, d, n, pad;
    double spread;
} gshape;
static const gshape gshapes[] = {
    {1, 128, 1, 0, 1},     {2, 128, 1, 128, 1},   {16, 128, 1, 0, 1},    {16, 128, 2, 0, 1},
    {16, 128, 63, 128, 1}, {16, 128, 64, 0, 2},   {16, 128, 65, 128, 1}, {2, 128, 127, 0, 1},
    {16, 128, 129, 128, 3}, {16, 128, 1000, 128, 1}, {16, 128, 4099, 128, 1}, {1, 128, 3001, 0, 1},
    {2, 64, 1, 64, 1},     {16, 64, 128, 0, 1},   {16, 64, 129, 64, 1},  {2, 64, 2047, 64, 1},
    {16, 64, 3000, 0, 50}, {1, 64, 255, 3, 1},    {16, 64, 500, 0, 400}, {2, 100, 99, 28, 1},
    {16, 17, 70, 3, 1},    {2, 300, 37, 4, 1},    {16, 8, 1500, 0, 1},   {16, 128, 777, 128, 0},
    /* head quads / pairs plus an odd last head; n off the tile and the block; d 64 / 128 / odd */
    {3, 128, 1, 128, 1},   {3, 128, 130, 128, 1}, {5, 64, 200, 64, 1},   {15, 128, 71, 128, 2},
    {7, 33, 95, 5, 1},     {3, 15, 17, 1, 1},     {5, 128, 4097, 128, 1}, {9, 72, 301, 56, 1},
    {6, 128, 200, 0, 1},   {4, 100, 33, 0, 1},
};
#define NGSHAPES ((int)(sizeof gshapes / sizeof gshapes[0]))

START_TEST(group_vs_head)
{
    rng = 0x3000 + (uint64_t)_i;
    const gshape *g = &gshapes[_i];
    const int64_t d = g->d, n = g->n, hq = g->hq, ld = d + g->pad;
    const int64_t ldq = d + 5, ldo = d + 3; /* head strides wider than d */
    const float scale = 1.0f / sqrtf((float)d);
    float *q = calloc((size_t)(hq * ldq), sizeof(float));
    float *k = calloc((size_t)(n * ld), sizeof(float)), *v = calloc((size_t)(n * ld), 4);
    const int64_t gs = glmq_att_group_scratch(hq, n, d);
    float *gsc = malloc((size_t)(gs + 1) * sizeof(float));
    float *gout = malloc((size_t)(hq * ldo + 1) * sizeof(float));
    float *hs = malloc((size_t)n * sizeof(float)), *hout = malloc((size_t)d * sizeof(float));
    ck_assert(q && k && v && gsc && gout && hs && hout);
    const double qs = g->spread * 2.0 / sqrt((double)d);
    for (int64_t i = 0; i < hq * ldq; i++) q[i] = (float)(rnd_sym() * qs);
    for (int64_t i = 0; i < n * ld; i++) {
        k[i] = (float)rnd_sym();
        v[i] = (float)(rnd_sym() * 4);
    }
    for (int64_t u = 0; u < n; u++)
        for (int64_t e = d; e < ld; e++) k[u * ld + e] = v[u * ld + e] = NAN;
    if (n > 40) k[37 * ld + 1] = NAN; /* a NaN score: weight 0 on every level */
    int ran = 0;
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        const glmq_dot_kernels *kl = glmq_dot_kernels_for(levels[li]);
        if (!kl) continue;
        ran++;
        ck_assert_ptr_nonnull(kl->att_group);
        for (int64_t i = 0; i <= gs; i++) gsc[i] = 777.0f;
        for (int64_t i = 0; i <= hq * ldo; i++) gout[i] = 555.0f;
        kl->att_group(q, ldq, hq, k, v, ld, d, n, scale, gsc, gout, ldo);
        ck_assert_float_eq(gsc[gs], 777.0f);  /* nothing written past the scratch */
        ck_assert_float_eq(gout[hq * ldo], 555.0f);
        for (int64_t h = 0; h < hq; h++) {
            kl->att(q + h * ldq, k, v, ld, d, n, scale, hs, hout);
            EXPECT(memcmp(hout, gout + h * ldo, (size_t)d * sizeof(float)) == 0,
                   "%s case %d head %lld: group output differs from the per-head kernel",
                   kl->name, _i, (long long)h);
            EXPECT(memcmp(hs, gsc + h * n, (size_t)n * sizeof(float)) == 0,
                   "%s case %d head %lld: group e_u differ from the per-head kernel", kl->name,
                   _i, (long long)h);
            /* the gap between heads' outputs is left alone */
            for (int64_t e = d; e < ldo && h + 1 < hq; e++)
                ck_assert_float_eq(gout[h * ldo + e], 555.0f);
            for (int64_t e = 0; e < d; e++) EXPECT(isfinite(hout[e]), "finite output");
        }
    }
    ck_assert_int_ge(ran, 1);
    free(q);
    free(k);
    free(v);
    free(gsc);
    free(gout);
    free(hs);
    free(hout);
}
END_TEST

START_TEST(dispatch_has_att)
{
    ck_assert_ptr_nonnull(glmq_dot_kernels_get()->att);
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        const glmq_dot_kernels *k = glmq_dot_kernels_for(levels[li]);
        if (k) ck_assert_ptr_nonnull(k->att);
        if (k) ck_assert_ptr_nonnull(k->att_group);
    }
    const char *env = getenv("GLMQ_CPU");
    if (env && strcmp(env, "ref") == 0)
        ck_assert_ptr_eq(glmq_dot_kernels_get()->att, glmq_att_head_ref);
    if (env && strcmp(env, "ref") == 0)
        ck_assert_ptr_eq(glmq_dot_kernels_get()->att_group, glmq_att_group_ref);
}
END_TEST

static Suite *attn_suite(void)
{
    Suite *s = suite_create("attn");
    TCase *tc = tcase_create("attn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exp_vs_libm);
    tcase_add_loop_test(tc, ref_vs_truth, 0, NSHAPES);
    tcase_add_loop_test(tc, levels_vs_ref, 0, NSHAPES);
    tcase_add_test(tc, nan_key_ignored);
    tcase_add_loop_test(tc, group_vs_head, 0, NGSHAPES);
    tcase_add_test(tc, dispatch_has_att);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(attn_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
