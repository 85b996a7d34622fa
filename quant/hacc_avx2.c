/*
 * hacc_avx2.c - H accumulation with AVX2 + FMA: 4 doubles per vector, 4 x 12 tiles
 * (12 ymm accumulators, 3 column vectors, 1 broadcast). See hacc.h and hacc_x86_impl.h.
 */
#include "quant/hacc.h"

#include <immintrin.h>

#define HV __m256d
#define HW 4
#define HLOAD(p) _mm256_loadu_pd(p)
#define HSTORE(p, v) _mm256_storeu_pd((p), (v))
#define HSET1(s) _mm256_set1_pd(s)
#define HFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define HMUL(a, b) _mm256_mul_pd((a), (b))
#define HSUB(a, b) _mm256_sub_pd((a), (b))
#define HACC_NAME glmq_hacc_block_avx2
#define HACC_AXPY_NAME glmq_gptq_axpy_avx2
#define HACC_DOT_NAME glmq_gptq_dot_avx2
#define HACC_DOT4_NAME glmq_gptq_dot4_avx2
#define HACC_DOT8_AVX2 1
#define HACC_DOT4X4_NAME glmq_gptq_dot4x4_avx2
#define HACC_DOT4X4_R 2
#define HACC_UPDATE_NAME glmq_gptq_update_avx2
#define HACC_UPDATE_R 2
#include "quant/hacc_x86_impl.h"
