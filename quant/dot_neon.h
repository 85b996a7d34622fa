/*
 * dot_neon.h - the aarch64 kernel entry points of quant/dot.h (built only for aarch64,
 * GLMQ_HAVE_ARM64; the tables are quant/dispatch.c's neon and dotprod levels).
 *
 *   quant/dot_neon.c          baseline Advanced SIMD (every ARMv8-A): preparation, EXACT INT4 /
 *                             INT8 / F16 / BF16, the sum probe, and the FAST_B32 / FAST_ROW
 *                             kernels with SMULL + SADALP integer dot products;
 *   quant/dot_neon_dotprod.c  the same FAST kernels with SDOT (-march=armv8.2-a+dotprod), run
 *                             only when the kernel reports HWCAP_ASIMDDP.
 * Group-wise types and attention use the _ref kernels on both levels.
 */
#ifndef GLMQ_DOT_NEON_H
#define GLMQ_DOT_NEON_H

#include "quant/dot.h"

GLMQ_DOT_DECLARE_EXACT(neon)
GLMQ_DOT_DECLARE_FAST(neon)
GLMQ_DOT_DECLARE_FAST(dotprod)

#endif /* GLMQ_DOT_NEON_H */
