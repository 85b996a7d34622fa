/*
 * attn_ref.c - portable reference of the attention kernel (quant/attn.h): the semantics the
 * SIMD levels are tested against. Dot products, Z and the context sums run in double, so the
 * only fp32 roundings are the score, the exp and the final store.
 */
#include "quant/attn.h"

#include <math.h>
#include <string.h>

float glmq_att_exp(float x)
{
    if (!(x >= GLMQ_ATT_EXP_MIN)) return 0.0f; /* also NaN */
    if (x > 0.0f) x = 0.0f;                     /* only for non-finite scores */
    const float m = rintf(x * GLMQ_ATT_LOG2E);
    const float r = (x - m * GLMQ_ATT_C1) - m * GLMQ_ATT_C2;
    float p = GLMQ_ATT_P0;
    p = p * r + GLMQ_ATT_P1;
    p = p * r + GLMQ_ATT_P2;
    p = p * r + GLMQ_ATT_P3;
    p = p * r + GLMQ_ATT_P4;
    p = p * r + GLMQ_ATT_P5;
    p = p * r * r + r + 1.0f;
    /* x in [-87, 0] gives m in [-126, 0]: 2^m is a normal float */
    const int32_t e = (int32_t)m + 127;
    const uint32_t bits = (uint32_t)e << 23;
    float two_m;
    memcpy(&two_m, &bits, 4);
    return p * two_m;
}

void glmq_att_head_ref(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                       int64_t n, float scale, float *s, float *out)
{
    float mx = -INFINITY;
    for (int64_t u = 0; u < n; u++) {
        double acc = 0;
        for (int64_t e = 0; e < d; e++) acc += (double)q[e] * k[u * ld + e];
        s[u] = (float)acc * scale;
        if (s[u] > mx) mx = s[u];
    }
    double z = 0;
    for (int64_t u = 0; u < n; u++) {
        s[u] = glmq_att_exp(s[u] - mx);
        z += s[u];
    }
    const double iz = 1.0 / z;
    for (int64_t e = 0; e < d; e++) {
        double acc = 0;
        for (int64_t u = 0; u < n; u++) acc += (double)s[u] * v[u * ld + e];
        out[e] = (float)(acc * iz);
    }
}

void glmq_att_group_ref(const float *q, int64_t ldq, int64_t hq, const float *k, const float *v,
                        int64_t ld, int64_t d, int64_t n, float scale, float *s, float *out,
                        int64_t ldo)
{
    /* the scalar truth: head after head (bit-identical to glmq_att_head_ref by construction) */
    for (int64_t h = 0; h < hq; h++)
        glmq_att_head_ref(q + h * ldq, k, v, ld, d, n, scale, s + h * n, out + h * ldo);
}
