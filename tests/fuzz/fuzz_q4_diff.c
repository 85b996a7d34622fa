/*
 * fuzz_q4_diff.c - differential fuzz target for the quantization and fp16 kernels (STYLE 7).
 *
 * Input: byte 0 is a mode, the rest is a row of weights.
 *   mode bits 0-1: how the row bytes are read: 0 = f32 LE, 1 = f16 LE, 2 = bf16 LE, 3 = f32
 *                  (same as 0); f16/bf16 rows are widened by every kernel level first, and the
 *                  widened floats must be bit-identical to src/core/fp16.c.
 *   mode bits 2-3: input pointer misalignment in floats (0..3).
 * For INT8 and INT4 the row is quantized by _ref and by every level the CPU supports (plus the
 * dispatched table); status, bad column, scale bits and every output byte must agree, and for a
 * good row the dequantized values must be within s/2 (+ the one-rounding slack) of the input, or
 * exactly +-qmax*s where the input was clamped. The f32 -> f16 narrowing kernels are compared
 * with glmq_f32_to_f16 on the same floats. Any mismatch prints a line and abort()s, which
 * libFuzzer and the regression driver both report as a crash.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_N (1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL_IF(cond, ...)                                                                         \
    do {                                                                                           \
        if (cond) {                                                                                \
            fprintf(stderr, "fuzz_q4_diff: " __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static float g_w[MAX_N + 8], g_w2[MAX_N + 8], g_deq[MAX_N];
static uint8_t g_ref[MAX_N + 128], g_out[MAX_N + 128];
static uint16_t g_h1[MAX_N], g_h2[MAX_N];

static const glmq_kernels *level_table(int l)
{
    return l <= GLMQ_CPU_MAX ? glmq_kernels_for((glmq_cpu_level)l) : glmq_kernels_get();
}

/* Widen the 16-bit row with every level; all must equal the scalar row function. */
static void check_widen(const uint8_t *src, int64_t n, int bf16, float *w)
{
    if (bf16)
        glmq_bf16_to_f32_row(src, w, n);
    else
        glmq_f16_to_f32_row(src, w, n);
    for (int l = 0; l <= GLMQ_CPU_MAX + 1; l++) {
        const glmq_kernels *k = level_table(l);
        if (k == NULL) continue;
        (bf16 ? k->bf16_to_f32 : k->f16_to_f32)(src, g_w2, n);
        FAIL_IF(memcmp(g_w2, w, (size_t)n * sizeof(float)) != 0, "%s %s widen differs",
                glmq_cpu_level_name(k->level), bf16 ? "bf16" : "f16");
    }
}

static void check_quant(const float *w, int64_t n, int q4)
{
    const int qmax = q4 ? 7 : 127;
    const size_t rb = (size_t)(q4 ? glmq_q4_row_bytes(n) : glmq_q8_row_bytes(n));
    uint16_t sc_ref = 0;
    glmq_quantize_row_fn ref = q4 ? glmq_quantize_row_q4_ref : glmq_quantize_row_q8_ref;
    int64_t c_ref = -2;
    const glmq_status s_ref = ref(w, n, g_ref, &sc_ref, NULL, &c_ref);

    /* the reference's own contract: NaN/Inf first, then scale overflow (fp32 amax/qmax rounds
     * to fp16 +inf exactly when it is >= 65520, the midpoint above 65504) */
    int64_t first_bad = -1;
    float amax = 0.0f;
    for (int64_t j = 0; j < n && first_bad < 0; j++) {
        if (!isfinite(w[j])) first_bad = j;
        if (fabsf(w[j]) > amax) amax = fabsf(w[j]);
    }
    if (first_bad >= 0)
        FAIL_IF(s_ref != GLMQ_E_VALUE || c_ref != first_bad,
                "q%d: ref status %d column %lld, first non-finite %lld", q4 ? 4 : 8, (int)s_ref,
                (long long)c_ref, (long long)first_bad);
    else if (amax / (float)qmax >= 65520.0f)
        FAIL_IF(s_ref != GLMQ_E_UNSUPPORTED || c_ref != -1,
                "q%d: ref status %d column %lld for a scale overflow", q4 ? 4 : 8, (int)s_ref,
                (long long)c_ref);
    else {
        FAIL_IF(s_ref != GLMQ_OK || c_ref != -1, "q%d: ref status %d column %lld", q4 ? 4 : 8,
                (int)s_ref, (long long)c_ref);
        (q4 ? glmq_dequantize_row_q4_ref : glmq_dequantize_row_q8_ref)(g_ref, sc_ref, n, g_deq);
        const double s = (double)glmq_f16_to_f32(sc_ref);
        for (int64_t j = 0; j < n; j++) {
            double x = (double)w[j], d = (double)g_deq[j];
            if (s == 0.0)
                FAIL_IF(d != 0.0, "q%d col %lld: scale 0 but value %g", q4 ? 4 : 8, (long long)j,
                        d);
            else if (fabs(x) / s > qmax + 0.5)
                FAIL_IF(fabs(d) != qmax * s || d * x < 0, "q%d col %lld: clamp %g -> %g",
                        q4 ? 4 : 8, (long long)j, x, d);
            else
                FAIL_IF(fabs(d - x) > 0.5 * s + 0x1p-16 * s, "q%d col %lld: |%g - %g| > s/2 = %g",
                        q4 ? 4 : 8, (long long)j, d, x, 0.5 * s);
        }
    }

    /* every level, and the dispatched table, bit-identical to ref */
    for (int l = 0; l <= GLMQ_CPU_MAX + 1; l++) {
        const glmq_kernels *k = level_table(l);
        if (k == NULL) continue;
        for (int with_stats = 0; with_stats <= 1; with_stats++) {
            uint16_t sc = 0;
            glmq_qstats st;
            int64_t c = -2;
            glmq_status r = (q4 ? k->quantize_row_q4 : k->quantize_row_q8)(
                w, n, g_out, &sc, with_stats ? &st : NULL, &c);
            FAIL_IF(r != s_ref || c != c_ref, "%s q%d: status %d column %lld, ref %d %lld",
                    glmq_cpu_level_name(k->level), q4 ? 4 : 8, (int)r, (long long)c, (int)s_ref,
                    (long long)c_ref);
            if (s_ref != GLMQ_OK) continue;
            FAIL_IF(sc != sc_ref, "%s q%d: scale %04x, ref %04x", glmq_cpu_level_name(k->level),
                    q4 ? 4 : 8, sc, sc_ref);
            FAIL_IF(memcmp(g_out, g_ref, rb) != 0, "%s q%d: codes differ from ref",
                    glmq_cpu_level_name(k->level), q4 ? 4 : 8);
        }
    }
}

static void check_narrow(const float *w, int64_t n)
{
    glmq_f32_to_f16_row_ref(w, g_h1, n);
    for (int l = 0; l <= GLMQ_CPU_MAX + 1; l++) {
        const glmq_kernels *k = level_table(l);
        if (k == NULL) continue;
        k->f32_to_f16(w, g_h2, n);
        FAIL_IF(memcmp(g_h1, g_h2, (size_t)n * 2) != 0, "%s f32->f16 differs",
                glmq_cpu_level_name(k->level));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const int kind = data[0] & 3, off = (data[0] >> 2) & 3;
    data++, size--;
    float *w = g_w + off; /* misaligned by off floats */
    int64_t n;
    if (kind == 1 || kind == 2) {
        n = (int64_t)(size / 2);
        if (n > MAX_N) n = MAX_N;
        check_widen(data, n, kind == 2, w);
    } else {
        n = (int64_t)(size / 4);
        if (n > MAX_N) n = MAX_N;
        memcpy(w, data, (size_t)n * 4);
    }
    if (n == 0) return 0;
    check_quant(w, n, 0);
    check_quant(w, n, 1);
    check_narrow(w, n);
    return 0;
}
