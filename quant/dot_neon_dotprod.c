/*
 * dot_neon_dotprod.c - the GLMQ_CPU_DOTPROD level's own kernels: the FAST_B32 / FAST_ROW INT4
 * and INT8 kernels of quant/dot_neon_impl.h with one SDOT per 16 int8 products (ARMv8.2
 * dotprod; this file alone is compiled with -march=armv8.2-a+dotprod, and dispatch.c reaches it
 * only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP). Everything else of the level is
 * dot_neon.c's. SDOT sums groups of 4 products per int32 lane, another lane assignment than the
 * neon level's SADALP pairs; the integer sums are exact, so both give the same outputs.
 */
#include <arm_neon.h>

#define NEON_FN(name) name##_dotprod

/* acc[l] += q[4l..4l+3] . x[4l..4l+3] (SDOT). */
static inline int32x4_t neon_dot16(int32x4_t acc, int8x16_t q, int8x16_t x)
{
    return vdotq_s32(acc, q, x);
}

#include "quant/dot_neon.h"
#include "quant/dot_neon_impl.h"
