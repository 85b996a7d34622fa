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
 *   GLMQ_CPU_REF         everything else, and every build for another architecture.
 *
 * On aarch64 (GLMQ_HAVE_ARM64) the kernel levels come from the kernel's hwcaps instead
 * (getauxval(AT_HWCAP), no CPUID there):
 *
 *   GLMQ_CPU_DOTPROD     HWCAP_ASIMDDP: ARMv8.2 SDOT/UDOT.
 *   GLMQ_CPU_NEON        HWCAP_ASIMD: Advanced SIMD, part of every ARMv8-A (Linux reports it
 *                        whenever the FP/SIMD unit exists).
 *   GLMQ_CPU_REF         neither.
 *
 * The two families never mix: an x86 level is never detected on ARM and vice versa, and
 * GLMQ_CPU naming a level of the other family caps nothing (like an unknown name).
 *
 * Detection is idempotent, so concurrent first calls race benignly on one atomic int.
 */
#include "core/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(GLMQ_HAVE_X86)
#include <cpuid.h>
#elif defined(GLMQ_HAVE_ARM64)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
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
#elif defined(GLMQ_HAVE_ARM64)
static glmq_cpu_level detect(void)
{
    const unsigned long hw = getauxval(AT_HWCAP);
    if (!(hw & HWCAP_ASIMD)) return GLMQ_CPU_REF;
    if (hw & HWCAP_ASIMDDP) return GLMQ_CPU_DOTPROD;
    return GLMQ_CPU_NEON;
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
    /* The other family's names cap nothing, like unknown ones: GLMQ_CPU_MAX is at or above
     * every level of both families ("avx512vnni" and "dotprod", the tops, need no entry). */
#if defined(GLMQ_HAVE_ARM64)
    if (strcmp(e, "neon") == 0) return GLMQ_CPU_NEON;
#else
    if (strcmp(e, "avx2") == 0) return GLMQ_CPU_AVX2;
    if (strcmp(e, "avx512") == 0) return GLMQ_CPU_AVX512;
#endif
    return GLMQ_CPU_MAX;
}

const char *glmq_cpu_level_name(glmq_cpu_level l)
{
    switch (l) {
    case GLMQ_CPU_REF: return "ref";
    case GLMQ_CPU_AVX2: return "avx2";
    case GLMQ_CPU_AVX512: return "avx512";
    case GLMQ_CPU_AVX512VNNI: return "avx512vnni";
    case GLMQ_CPU_NEON: return "neon";
    case GLMQ_CPU_DOTPROD: return "dotprod";
    }
    return "unknown";
}
