/*
 * cpu.c - CPU feature detection (STYLE 5 "Dispatch"). The kernel tables themselves live in
 * quant/dispatch.c: this floor only says what the machine can run and what GLMQ_CPU allows.
 *
 * Built at baseline (no -mavx*): nothing here may execute an AVX instruction. It asks CPUID
 * which instruction sets exist and XGETBV which register state the OS saves (the xxHash /
 * libdeflate pattern: a CPU with AVX-512 under an OS that does not save ZMM state must not run
 * AVX-512 code). Levels, each a superset of the one below:
 *
 *   GLMQ_CPU_AVX512VNNI  AVX512 plus AVX512-VNNI (CPUID.7.0:ECX bit 11).
 *   GLMQ_CPU_AVX512      AVX-512 F + BW + VL + DQ, XCR0 bits 1,2 (SSE, YMM) and 5,6,7 (opmask,
 *                        ZMM0-15 upper halves, ZMM16-31), plus everything AVX2 needs.
 *   GLMQ_CPU_AVX2        AVX + AVX2 + FMA + F16C, OSXSAVE and XCR0 bits 1,2.
 *   GLMQ_CPU_REF         everything else, and every non-x86 build (GLMQ_HAVE_X86 undefined).
 *
 * Detection is idempotent, so concurrent first calls race benignly on one atomic int.
 */
#include "core/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(GLMQ_HAVE_X86)
#include <cpuid.h>
#endif

/* ---- detection ------------------------------------------------------------------------------- */

/* Detected hardware level (-1 = not yet). */
static atomic_int g_hw_level = -1;

#if defined(GLMQ_HAVE_X86)
/* XCR0: which register state the OS saves on context switch (XGETBV with ECX = 0). Encoded
 * as bytes so the baseline compile needs no -mxsave. Only called when CPUID says OSXSAVE. */
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static glmq_cpu_level detect(void)
{
    unsigned a, b, c, d;
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
    if ((c >> 11) & 1) return GLMQ_CPU_AVX512VNNI; /* CPUID.7.0:ECX.AVX512_VNNI */
    return GLMQ_CPU_AVX512;
}
#else
static glmq_cpu_level detect(void)
{
    return GLMQ_CPU_REF;
}
#endif

glmq_cpu_level glmq_cpu_detected(void)
{
    int l = atomic_load_explicit(&g_hw_level, memory_order_acquire);
    if (l < 0) {
        l = (int)detect();
#if defined(GLMQ_EMULATE_AVX512)
        /* test build (tests/emu/avx512_emu.h): the AVX-512 kernels run on AVX2 instructions */
        if (l >= GLMQ_CPU_AVX2) l = GLMQ_CPU_AVX512VNNI;
#endif
        atomic_store_explicit(&g_hw_level, l, memory_order_release);
    }
    return (glmq_cpu_level)l;
}

glmq_cpu_level glmq_cpu_env_cap(void)
{
    const char *e = getenv("GLMQ_CPU");
    if (e == NULL) return GLMQ_CPU_MAX;
    if (strcmp(e, "ref") == 0 || strcmp(e, "scalar") == 0) return GLMQ_CPU_REF;
    if (strcmp(e, "avx2") == 0) return GLMQ_CPU_AVX2;
    if (strcmp(e, "avx512") == 0) return GLMQ_CPU_AVX512;
    return GLMQ_CPU_MAX;
}

const char *glmq_cpu_level_name(glmq_cpu_level l)
{
    switch (l) {
    case GLMQ_CPU_REF: return "ref";
    case GLMQ_CPU_AVX2: return "avx2";
    case GLMQ_CPU_AVX512: return "avx512";
    case GLMQ_CPU_AVX512VNNI: return "avx512vnni";
    }
    return "unknown";
}
