/*
 * dot_hash.c - regression fingerprint of the matrix kernels: runs every kernel of
 * glmq_dot_kernels_for(level) (prep[], q4[], q8[], q4g[], q8g[], f16, bf16, att, att_group,
 * sum_f32) on fixed
 * pseudo-random inputs of many shapes and prints one XXH3-64 hash per level and kernel.
 *
 * A refactoring of quant/dot_*.c that must not change any output bit is checked by running
 * this before and after and comparing the lines (diff). The hashes are of glmq's own output, so
 * they are a before/after comparison only, never a golden for tests.
 *
 * Levels this CPU cannot run are printed as unavailable. On a machine without AVX-512, link it
 * against the emulated build instead (sh tests/run.sh --emulate-avx512, then
 * build-emu/libglmq_internal.a below): the avx512 and avx512vnni levels then run there.
 *
 * Not part of the default build (it is a tool, not a test):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -DGLMQ_HAVE_X86=1 -I. -Isrc bench/dot_hash.c \
 *      build/libglmq_internal.a -lxxhash -lcjson -lz -lm -lpthread -o /tmp/dot_hash
 */
#include "quant/dot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static uint64_t rng;
static uint64_t rnd64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1p-53; }
static float rnd_normal(void)
{
    double u = rnd_unit(), v = rnd_unit();
    return (float)(sqrt(-2.0 * log(u + 0x1p-60)) * cos(6.283185307179586 * v));
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) abort();
    memset(p, 0, (n + 63) / 64 * 64 + 64);
    return p;
}

typedef struct {
    XXH3_state_t *h[24];
} hashes;

enum { H_PREP_E, H_PREP_B, H_PREP_R, H_Q4E, H_Q4B, H_Q4R, H_Q8E, H_Q8B, H_Q8R, H_F16, H_BF16,
       H_ATT, H_SUM, H_Q4GE, H_Q4GB, H_Q8GE, H_Q8GB, H_ATTG, H_N };
static const char *hname[H_N] = {"prep_exact", "prep_b32", "prep_row", "q4_exact", "q4_b32",
                                 "q4_row", "q8_exact", "q8_b32", "q8_row", "f16", "bf16", "att",
                                 "sum_f32", "q4g_exact", "q4g_b32", "q8g_exact", "q8g_b32",
                                 "att_group"};

/* Group-wise types (every group size) on the same activations: random codes, fp16 scales with
 * zero groups, EXACT and FAST_B32 (FAST_ROW is refused). Runs last in run_shape, so the
 * random draws above (and their hashes) are those of the per-row kernels alone. */
static void run_groups(const glmq_dot_kernels *k, hashes *hs, int64_t rows, int64_t cols,
                       int64_t ntok, const float *x, int64_t ldx, float *y, int64_t ldy)
{
    static const glmq_type gt[6] = {GLMQ_TYPE_INT4_G32, GLMQ_TYPE_INT4_G64, GLMQ_TYPE_INT4_G128,
                                    GLMQ_TYPE_INT8_G32, GLMQ_TYPE_INT8_G64, GLMQ_TYPE_INT8_G128};
    for (int mode = 0; mode < 2; mode++) {
        const size_t ss = glmq_dot_scratch_size((glmq_dot_mode)mode, cols, ntok);
        void *scratch = xalloc(ss);
        glmq_dot_act a;
        glmq_err err;
        if (glmq_dot_prepare(k, (glmq_dot_mode)mode, x, ldx, cols, ntok, scratch, ss, &a, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        for (int i = 0; i < 6; i++) {
            const size_t rb = glmq_dot_row_bytes(gt[i], cols);
            const int64_t spr = glmq_scales_per_row(gt[i], cols);
            uint8_t *data = xalloc(rb * (size_t)rows);
            uint16_t *sc = xalloc((size_t)(rows * spr) * 2);
            for (size_t j = 0; j < rb * (size_t)rows; j++) data[j] = (uint8_t)rnd64();
            for (int64_t j = 0; j < rows * spr; j++)
                sc[j] = glmq_f32_to_f16((float)(0.001 + 0.05 * rnd_unit()) * (j % 5 == 2 ? 0 : 1));
            glmq_dot_mat m;
            if (glmq_dot_mat_init(&m, gt[i], rows, cols, data, sc, &err) != GLMQ_OK) {
                fprintf(stderr, "%s\n", err.msg);
                exit(1);
            }
            const int hi = (i < 3 ? H_Q4GE : H_Q8GE) + mode;
            memset(y, 0x5a, (size_t)(ldy * ntok) * 4);
            if (glmq_dot_matmul(k, &m, 0, rows, &a, y, ldy, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                exit(1);
            }
            XXH3_64bits_update(hs->h[hi], y, (size_t)(ldy * ntok) * 4);
            if (rows > 3) {
                memset(y, 0x5a, (size_t)(ldy * ntok) * 4);
                glmq_dot_matmul(k, &m, 1, rows - 2, &a, y, ldy, &err);
                XXH3_64bits_update(hs->h[hi], y, (size_t)(ldy * ntok) * 4);
            }
            free(data);
            free(sc);
        }
        free(scratch);
    }
}

/* Matrices of all four types with the same logical shape. */
static void run_shape(const glmq_dot_kernels *k, hashes *hs, int64_t rows, int64_t cols,
                      int64_t ntok, uint64_t seed)
{
    rng = seed;
    const glmq_type types[4] = {GLMQ_TYPE_INT4, GLMQ_TYPE_INT8, GLMQ_TYPE_F16, GLMQ_TYPE_BF16};
    glmq_dot_mat m[4];
    void *data[4];
    uint16_t *scales = xalloc((size_t)rows * 2);
    for (int64_t r = 0; r < rows; r++)
        scales[r] = glmq_f32_to_f16((float)(0.001 + 0.05 * rnd_unit()) * (r % 7 == 3 ? 0 : 1));
    for (int i = 0; i < 4; i++) {
        const size_t rb = glmq_dot_row_bytes(types[i], cols);
        data[i] = xalloc(rb * (size_t)rows);
        uint8_t *b = data[i];
        for (size_t j = 0; j < rb * (size_t)rows; j += 2) {
            float f = rnd_normal();
            uint16_t h;
            if (types[i] == GLMQ_TYPE_F16) {
                h = glmq_f32_to_f16(f);
            } else if (types[i] == GLMQ_TYPE_BF16) {
                uint32_t u;
                memcpy(&u, &f, 4);
                h = (uint16_t)(u >> 16);
            } else {
                h = (uint16_t)rnd64();
            }
            memcpy(b + j, &h, 2);
        }
        glmq_err err;
        if (glmq_dot_mat_init(&m[i], types[i], rows, cols, data[i],
                              i < 2 ? scales : NULL, &err) != GLMQ_OK) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
    }
    /* activations: gaussian with a few outlier channels, ldx > cols */
    const int64_t ldx = cols + 3;
    float *x = xalloc((size_t)(ldx * ntok) * 4);
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t c = 0; c < cols; c++)
            x[t * ldx + c] = rnd_normal() * (c % 97 == 5 ? 40.0f : 1.0f) *
                             (t % 5 == 4 ? 1e-3f : 1.0f);
    const int64_t ldy = rows + 1;
    float *y = xalloc((size_t)(ldy * ntok) * 4);
    for (int mode = 0; mode < GLMQ_DOT_NMODES; mode++) {
        const size_t ss = glmq_dot_scratch_size((glmq_dot_mode)mode, cols, ntok);
        void *scratch = xalloc(ss);
        glmq_dot_act a;
        glmq_err err;
        if (glmq_dot_prepare(k, (glmq_dot_mode)mode, x, ldx, cols, ntok, scratch, ss, &a, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        XXH3_64bits_update(hs->h[H_PREP_E + mode], a.buf, a.tok_bytes * (size_t)ntok);
        for (int i = 0; i < 4; i++) {
            if (mode != GLMQ_DOT_EXACT && i >= 2) continue;
            int hi = i == 0 ? H_Q4E + mode : i == 1 ? H_Q8E + mode : i == 2 ? H_F16 : H_BF16;
            /* full range, then a sub-range written over a poisoned buffer */
            memset(y, 0x5a, (size_t)(ldy * ntok) * 4);
            if (glmq_dot_matmul(k, &m[i], 0, rows, &a, y, ldy, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                exit(1);
            }
            XXH3_64bits_update(hs->h[hi], y, (size_t)(ldy * ntok) * 4);
            if (rows > 3) {
                memset(y, 0x5a, (size_t)(ldy * ntok) * 4);
                glmq_dot_matmul(k, &m[i], 1, rows - 2, &a, y, ldy, &err);
                XXH3_64bits_update(hs->h[hi], y, (size_t)(ldy * ntok) * 4);
            }
        }
        free(scratch);
    }
    /* attention: head dim = cols clamped, n = rows keys */
    {
        const int64_t d = cols < 256 ? cols : 256, n = rows, ld = d + 5;
        float *kv = xalloc((size_t)(ld * n * 2) * 4), *s = xalloc((size_t)n * 4),
              *out = xalloc((size_t)d * 4);
        for (int64_t j = 0; j < ld * n * 2; j++) kv[j] = rnd_normal();
        k->att(x, kv, kv + ld * n, ld, d, n, 1.0f / sqrtf((float)d), s, out);
        XXH3_64bits_update(hs->h[H_ATT], out, (size_t)d * 4);
        XXH3_64bits_update(hs->h[H_ATT], s, (size_t)n * 4);
        /* the group kernel: 1..16 heads, queries from kv (no draw from rng, so the hashes after
         * this stay those of main's tool) */
        if (k->att_group) {
            const int64_t hq = 1 + (n + d) % 16;
            float *qg = xalloc((size_t)(hq * d) * 4), *og = xalloc((size_t)(hq * d) * 4);
            float *sg = xalloc((size_t)glmq_att_group_scratch(hq, n, d) * 4);
            for (int64_t j = 0; j < hq * d; j++) qg[j] = kv[(j * 7) % (ld * n * 2)] * 0.1f;
            k->att_group(qg, d, hq, kv, kv + ld * n, ld, d, n, 1.0f / sqrtf((float)d), sg, og, d);
            XXH3_64bits_update(hs->h[H_ATTG], og, (size_t)(hq * d) * 4);
            XXH3_64bits_update(hs->h[H_ATTG], sg, (size_t)(hq * n) * 4);
            free(qg);
            free(og);
            free(sg);
        }
        free(kv);
        free(s);
        free(out);
    }
    {
        double sum = k->sum_f32(x, ldx * ntok - 1);
        XXH3_64bits_update(hs->h[H_SUM], &sum, 8);
    }
    run_groups(k, hs, rows, cols, ntok, x, ldx, y, ldy);
    free(x);
    free(y);
    for (int i = 0; i < 4; i++) free(data[i]);
    free(scales);
}

static const glmq_dot_kernels *level_table(int lv)
{
    return glmq_dot_kernels_for((glmq_cpu_level)lv);
}

int main(void)
{
    static const int64_t colsv[] = {32, 33, 64, 96, 127, 128, 129, 192, 200, 250, 1000, 4096, 4160};
    static const int64_t rowsv[] = {1, 2, 3, 5, 8, 9, 17, 31, 40};
    static const int64_t ntokv[] = {1, 2, 3, 4, 5, 7, 9, 16, 33};
    for (int lv = 0; lv <= GLMQ_CPU_MAX; lv++) {
        const glmq_dot_kernels *k = level_table(lv);
        if (!k) {
            printf("level %d: unavailable\n", lv);
            continue;
        }
        hashes hs;
        for (int i = 0; i < H_N; i++) {
            hs.h[i] = XXH3_createState();
            XXH3_64bits_reset(hs.h[i]);
        }
        uint64_t seed = 1;
        for (size_t ci = 0; ci < sizeof colsv / sizeof *colsv; ci++)
            for (size_t ri = 0; ri < sizeof rowsv / sizeof *rowsv; ri++)
                for (size_t ti = 0; ti < sizeof ntokv / sizeof *ntokv; ti++) {
                    /* thin the big shapes out */
                    if (colsv[ci] >= 1000 && (ri + ti) % 3) continue;
                    run_shape(k, &hs, rowsv[ri], colsv[ci], ntokv[ti], seed++);
                }
        /* a GEMM big enough for several token blocks and row panels */
        run_shape(k, &hs, 70, 4096, 61, 999);
        run_shape(k, &hs, 33, 13696, 40, 1000);
        uint64_t all = 0;
        for (int i = 0; i < H_N; i++) {
            uint64_t h = XXH3_64bits_digest(hs.h[i]);
            printf("%-10s %-10s %016llx\n", k->name, hname[i], (unsigned long long)h);
            all = all * 31 + h;
            XXH3_freeState(hs.h[i]);
        }
        printf("%-10s %-10s %016llx\n", k->name, "ALL", (unsigned long long)all);
    }
    return 0;
}
