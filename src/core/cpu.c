/*
 * cpu.c - CPU feature detection and the kernel table (STYLE 5 "Dispatch").
 *
 * Built at baseline (no -mavx*): nothing here may execute an AVX instruction. It asks CPUID
 * which instruction sets exist and XGETBV which register state the OS saves (the xxHash /
 * libdeflate pattern: a CPU with AVX-512 under an OS that does not save ZMM state must not run
 * AVX-512 code), and picks one of three static const kernel tables:
 *
 *   GLMQ_CPU_AVX512  AVX-512 F + BW + VL + DQ, XCR0 bits 1,2 (SSE, YMM) and 5,6,7 (opmask,
 *                    ZMM0-15 upper halves, ZMM16-31), plus everything AVX2 needs.
 *                    VNNI is detected and noted (glmq_cpu_has_avx512vnni) but not required.
 *   GLMQ_CPU_AVX2    AVX + AVX2 + FMA + F16C, OSXSAVE and XCR0 bits 1,2.
 *   GLMQ_CPU_REF     everything else, and every non-x86 build (GLMQ_HAVE_X86 undefined: the
 *                    avx2/avx512 symbols are not even referenced then).
 *
 * The active level is the detected one, lowered (never raised) by the environment variable
 * GLMQ_CPU=ref|scalar|avx2|avx512 (unknown values are ignored) and by glmq_cpu_force() for
 * tests. The choice is made once and published through an _Atomic pointer (the only mutable
 * global of the library, STYLE 4): concurrent first calls compute the same table and a
 * compare-and-swap keeps exactly one, so glmq_kernels_get() is thread-safe and lock-free.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(GLMQ_HAVE_X86)
#include <cpuid.h>
#endif

/* ---- the tables ------------------------------------------------------------------------------ */

static const glmq_kernels k_ref = {
    .level = GLMQ_CPU_REF,
    .quantize_row_q8 = glmq_quantize_row_q8_ref,
    .quantize_row_q4 = glmq_quantize_row_q4_ref,
    .f16_to_f32 = glmq_f16_to_f32_row,
    .bf16_to_f32 = glmq_bf16_to_f32_row,
    .f32_to_f16 = glmq_f32_to_f16_row_ref,
};

#if defined(GLMQ_HAVE_X86)
static const glmq_kernels k_avx2 = {
    .level = GLMQ_CPU_AVX2,
    .quantize_row_q8 = glmq_quantize_row_q8_avx2,
    .quantize_row_q4 = glmq_quantize_row_q4_avx2,
    .f16_to_f32 = glmq_f16_to_f32_avx2,
    .bf16_to_f32 = glmq_bf16_to_f32_avx2,
    .f32_to_f16 = glmq_f32_to_f16_avx2,
};

static const glmq_kernels k_avx512 = {
    .level = GLMQ_CPU_AVX512,
    .quantize_row_q8 = glmq_quantize_row_q8_avx512,
    .quantize_row_q4 = glmq_quantize_row_q4_avx512,
    .f16_to_f32 = glmq_f16_to_f32_avx512,
    .bf16_to_f32 = glmq_bf16_to_f32_avx512,
    .f32_to_f16 = glmq_f32_to_f16_avx512,
};
#endif

static const glmq_kernels *table_for(glmq_cpu_level l)
{
#if defined(GLMQ_HAVE_X86)
    if (l == GLMQ_CPU_AVX512) return &k_avx512;
    if (l == GLMQ_CPU_AVX2) return &k_avx2;
#endif
    (void)l;
    return &k_ref;
}

/* ---- detection ------------------------------------------------------------------------------- */

/* Detected hardware level (-1 = not yet) and feature notes; idempotent, so races are benign. */
static atomic_int g_hw_level = -1;
static atomic_int g_vnni = 0;

#if defined(GLMQ_HAVE_X86)
/* XCR0: which register state the OS saves on context switch (XGETBV with ECX = 0). Encoded
 * as bytes so the baseline compile needs no -mxsave. Only called when CPUID says OSXSAVE. */
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static glmq_cpu_level detect(int *vnni)
{
    unsigned a, b, c, d;
    *vnni = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return GLMQ_CPU_REF;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return GLMQ_CPU_REF;

    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x06) != 0x06) return GLMQ_CPU_REF; /* SSE + YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return GLMQ_CPU_REF;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    if (!avx2 || !fma || !f16c) return GLMQ_CPU_REF;

    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int os_zmm = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!(f && dq && bw && vl && os_zmm)) return GLMQ_CPU_AVX2;
    *vnni = (c >> 11) & 1; /* CPUID.7.0:ECX.AVX512_VNNI */
    return GLMQ_CPU_AVX512;
}
#else
static glmq_cpu_level detect(int *vnni)
{
    *vnni = 0;
    return GLMQ_CPU_REF;
}
#endif

static glmq_cpu_level hw_level(void)
{
    int l = atomic_load_explicit(&g_hw_level, memory_order_acquire);
    if (l < 0) {
        int vnni;
        l = (int)detect(&vnni);
        atomic_store_explicit(&g_vnni, vnni, memory_order_relaxed);
        atomic_store_explicit(&g_hw_level, l, memory_order_release);
    }
    return (glmq_cpu_level)l;
}

bool glmq_cpu_has_avx512vnni(void)
{
    hw_level();
    return atomic_load_explicit(&g_vnni, memory_order_relaxed) != 0;
}

/* The cap set by GLMQ_CPU; an unset, empty or unknown value does not cap. */
static glmq_cpu_level env_cap(void)
{
    const char *e = getenv("GLMQ_CPU");
    if (e == NULL) return GLMQ_CPU_AVX512;
    if (strcmp(e, "ref") == 0 || strcmp(e, "scalar") == 0) return GLMQ_CPU_REF;
    if (strcmp(e, "avx2") == 0) return GLMQ_CPU_AVX2;
    return GLMQ_CPU_AVX512;
}

/* ---- the active table ------------------------------------------------------------------------ */

static _Atomic(const glmq_kernels *) g_active;

const glmq_kernels *glmq_kernels_get(void)
{
    const glmq_kernels *k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (GLMQ_LIKELY(k != NULL)) return k;

    glmq_cpu_level l = hw_level(), cap = env_cap();
    if (cap < l) l = cap;
    const glmq_kernels *want = table_for(l);
    const glmq_kernels *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&g_active, &expected, want, memory_order_acq_rel,
                                                memory_order_acquire))
        return want;
    return expected; /* another thread (or glmq_cpu_force) got there first */
}

const glmq_kernels *glmq_kernels_for(glmq_cpu_level level)
{
    if (level < GLMQ_CPU_REF || level > GLMQ_CPU_AVX512) return NULL;
    if (level > hw_level()) return NULL;
    return table_for(level);
}

glmq_cpu_level glmq_cpu_force(glmq_cpu_level level)
{
    if (level < GLMQ_CPU_REF) level = GLMQ_CPU_REF;
    const glmq_kernels *cur = glmq_kernels_get();
    for (;;) {
        if (level >= cur->level) return cur->level; /* can only lower */
        if (atomic_compare_exchange_weak_explicit(&g_active, &cur, table_for(level),
                                                  memory_order_acq_rel, memory_order_acquire))
            return level;
        /* cur now holds the value another thread stored; retry against it */
    }
}

glmq_cpu_level glmq_cpu_active(void) { return glmq_kernels_get()->level; }

const char *glmq_cpu_level_name(glmq_cpu_level l)
{
    switch (l) {
    case GLMQ_CPU_REF: return "ref";
    case GLMQ_CPU_AVX2: return "avx2";
    case GLMQ_CPU_AVX512: return "avx512";
    }
    return "unknown";
}
