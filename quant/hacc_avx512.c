/*
 * hacc_avx512.c - H accumulation with AVX-512F: 8 doubles per vector, 4 x 24 tiles
 * (12 zmm accumulators). See hacc.h and hacc_x86_impl.h.
 */
#include "quant/hacc.h"

#include <immintrin.h>

#define HV __m512d
#define HW 8
#define HLOAD(p) _mm512_loadu_pd(p)
#define HSTORE(p, v) _mm512_storeu_pd((p), (v))
#define HSET1(s) _mm512_set1_pd(s)
#define HFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define HMUL(a, b) _mm512_mul_pd((a), (b))
#define HSUB(a, b) _mm512_sub_pd((a), (b))
#define HACC_NAME glmq_hacc_block_avx512
#define HACC_AXPY_NAME glmq_gptq_axpy_avx512
#define HACC_DOT8_AVX512 1
#define HACC_DOT4X4_NAME glmq_gptq_dot4x4_avx512
#define HACC_DOT4X4_R 4
#define HACC_UPDATE_NAME glmq_gptq_update_avx512
#define HACC_UPDATE_R 4
#include "quant/hacc_x86_impl.h"
