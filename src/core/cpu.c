/*
 * cpu.c - CPU feature detection (STYLE 5 "Dispatch"). The kernel tables themselves live in
 * quant/dispatch.c: this floor only says what the machine can run and what GLMQ_CPU allows.
 *
 * Built at baseline (no -mavx*): nothing here may execute an AVX instruction. It asks CPUID
 * which instruction sets exist and XGETBV which register state the OS saves (the xxHash /
 * libdeflate pattern: a CPU with AVX-512 under an OS that does not save ZMM state must not run
 * AVX-512 code). A CPU supports a set of levels (glmq_cpu_supported), not a chain: AVX-512 and
 * AVX-VNNI are independent extensions of AVX2 (Skylake-X has the first only, Alder Lake the
 * second only, Sapphire Rapids and Zen 4 both):
 *
 *   GLMQ_CPU_AVX512VNNI  AVX512 plus AVX512-VNNI (CPUID.7.0:ECX bit 11).
 *   GLMQ_CPU_AVX512      AVX-512 F + BW + VL + DQ, XCR0 bits 1,2 (SSE, YMM) and 5,6,7 (opmask,
 *                        ZMM0-15 upper halves, ZMM16-31), plus everything AVX2 needs.
 *   GLMQ_CPU_AVXVNNI     AVX2 plus AVX-VNNI (CPUID.7.1:EAX bit 4: VEX vpdpbusd on ymm; only
 *                        YMM state needed), when the compiler could build its kernels
 *                        (GLMQ_HAVE_AVXVNNI).
 *   GLMQ_CPU_AVX2        AVX + AVX2 + FMA + F16C, OSXSAVE and XCR0 bits 1,2.
 *   GLMQ_CPU_REF         always, and the only level of builds for another architecture.
 *
 * The capability order (glmq.h) ranks them ref < avx2 < avxvnni < avx512 < avx512vnni; the
 * active level is the best supported one at or below the GLMQ_CPU cap in that order
 * (glmq_cpu_pick), never a level the CPU cannot run.
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
 * Detection is idempotent, so concurrent first calls race benignly on one atomic int (the set).
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

/* Detected set of supported levels (GLMQ_CPU_BIT; 0 = not yet, REF is always in it). */
static atomic_uint g_hw_set = 0;

#if defined(GLMQ_HAVE_X86)
/* XCR0: which register state the OS saves on context switch (XGETBV with ECX = 0). Encoded
 * as bytes so the baseline compile needs no -mxsave. Only called when CPUID says OSXSAVE. */
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned detect(void)
{
    unsigned set = GLMQ_CPU_BIT(GLMQ_CPU_REF);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return set;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return set;

    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x06) != 0x06) return set; /* SSE + YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return set;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    if (!avx2 || !fma || !f16c) return set;
    set |= GLMQ_CPU_BIT(GLMQ_CPU_AVX2);

    const unsigned max_sub7 = a; /* CPUID.7.0:EAX, the highest subleaf of leaf 7 */
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int os_zmm = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (f && dq && bw && vl && os_zmm) {
        set |= GLMQ_CPU_BIT(GLMQ_CPU_AVX512);
        if ((c >> 11) & 1) set |= GLMQ_CPU_BIT(GLMQ_CPU_AVX512VNNI); /* CPUID.7.0:ECX.AVX512_VNNI */
    }
#if defined(GLMQ_HAVE_AVXVNNI)
    if (max_sub7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if ((a >> 4) & 1) set |= GLMQ_CPU_BIT(GLMQ_CPU_AVXVNNI); /* CPUID.7.1:EAX.AVX_VNNI */
    }
#else
    (void)max_sub7; /* the compiler cannot build the AVX-VNNI kernels: never offered */
#endif
    return set;
}
#elif defined(GLMQ_HAVE_ARM64)
static unsigned detect(void)
{
    const unsigned long hw = getauxval(AT_HWCAP);
    unsigned set = GLMQ_CPU_BIT(GLMQ_CPU_REF);
    if (!(hw & HWCAP_ASIMD)) return set;
    set |= GLMQ_CPU_BIT(GLMQ_CPU_NEON);
    if (hw & HWCAP_ASIMDDP) set |= GLMQ_CPU_BIT(GLMQ_CPU_DOTPROD);
    return set;
}
#else
static unsigned detect(void)
{
    return GLMQ_CPU_BIT(GLMQ_CPU_REF);
}
#endif

unsigned glmq_cpu_supported(void)
{
    unsigned s = atomic_load_explicit(&g_hw_set, memory_order_acquire);
    if (s == 0) {
        s = detect();
#if defined(GLMQ_EMULATE_AVX512)
        /* test build (tests/emu/avx512_emu.h): the AVX-512 and VNNI kernels run on AVX2 */
        if (s & GLMQ_CPU_BIT(GLMQ_CPU_AVX2)) {
            s |= GLMQ_CPU_BIT(GLMQ_CPU_AVX512) | GLMQ_CPU_BIT(GLMQ_CPU_AVX512VNNI);
#if defined(GLMQ_HAVE_AVXVNNI)
            s |= GLMQ_CPU_BIT(GLMQ_CPU_AVXVNNI);
#endif
        }
#endif
        atomic_store_explicit(&g_hw_set, s, memory_order_release);
    }
    return s;
}

/* ---- the capability order -------------------------------------------------------------------- */

/* 0 for ref, 1 for the x86 levels, 2 for the ARM ones, -1 for no level. */
static int family(int l)
{
    switch (l) {
    case GLMQ_CPU_REF: return 0;
    case GLMQ_CPU_AVX2:
    case GLMQ_CPU_AVXVNNI:
    case GLMQ_CPU_AVX512:
    case GLMQ_CPU_AVX512VNNI: return 1;
    case GLMQ_CPU_NEON:
    case GLMQ_CPU_DOTPROD: return 2;
    }
    return -1;
}

int glmq_cpu_rank(glmq_cpu_level l)
{
    switch (l) {
    case GLMQ_CPU_REF: return 0;
    case GLMQ_CPU_AVX2: return 1;
    case GLMQ_CPU_AVXVNNI: return 2;
    case GLMQ_CPU_AVX512: return 3;
    case GLMQ_CPU_AVX512VNNI: return 4;
    case GLMQ_CPU_NEON: return 1;
    case GLMQ_CPU_DOTPROD: return 2;
    }
    return -1;
}

/* 1 when the cap lets level l run: no cap (cap not a level), ref only under a ref cap, any
 * level under a cap of the other family, else l at or below the cap in the order. */
static int allowed(int l, int cap)
{
    if (family(cap) < 0) return 1;
    if (cap == GLMQ_CPU_REF) return l == GLMQ_CPU_REF;
    if (family(l) != family(cap)) return 1;
    return glmq_cpu_rank((glmq_cpu_level)l) <= glmq_cpu_rank((glmq_cpu_level)cap);
}

glmq_cpu_level glmq_cpu_pick(unsigned supported, int cap)
{
    int best = GLMQ_CPU_REF;
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++)
        if (((supported >> l) & 1) && allowed(l, cap) &&
            glmq_cpu_rank((glmq_cpu_level)l) > glmq_cpu_rank((glmq_cpu_level)best))
            best = l;
    return (glmq_cpu_level)best;
}

glmq_cpu_level glmq_cpu_detected(void) { return glmq_cpu_pick(glmq_cpu_supported(), -1); }

int glmq_cpu_parse(const char *name)
{
    static const struct {
        const char *name;
        glmq_cpu_level level;
    } names[] = {
        {"ref", GLMQ_CPU_REF},
        {"scalar", GLMQ_CPU_REF},
        {"avx2", GLMQ_CPU_AVX2},
        {"avxvnni", GLMQ_CPU_AVXVNNI},
        {"avx_vnni", GLMQ_CPU_AVXVNNI},
        {"avx512", GLMQ_CPU_AVX512},
        {"avx512vnni", GLMQ_CPU_AVX512VNNI},
        {"neon", GLMQ_CPU_NEON},
        {"dotprod", GLMQ_CPU_DOTPROD},
    };
    if (name == NULL) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) return (int)names[i].level;
    return -1;
}

int glmq_cpu_env_cap(void)
{
    /* unset, empty or unknown: no cap; the other family's names cap nothing (glmq_cpu_pick) */
    return glmq_cpu_parse(getenv("GLMQ_CPU"));
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
    case GLMQ_CPU_AVXVNNI: return "avxvnni";
    }
    return "unknown";
}
