/*
 * dispatch.c - the one kernel table of libglmq (STYLE 5 "Dispatch").
 *
 * Built at baseline: nothing here executes an AVX instruction. src/core/cpu.c says which level
 * the CPU and OS can run (CPUID + XGETBV) and the cap GLMQ_CPU sets; this file keeps one
 * static const table per level and publishes the active one once through an _Atomic pointer
 * (the only mutable global of the library, STYLE 4): concurrent first calls compute the same
 * table and a compare-and-swap keeps exactly one, so glmq_kernels_get() is thread-safe and
 * lock-free. glmq_cpu_force() lowers it for tests. Without GLMQ_HAVE_X86 (non-x86 builds) the
 * x86 SIMD symbols are never referenced, without GLMQ_HAVE_ARM64 the NEON ones.
 *
 *   ref         the _ref kernels everywhere
 *   avx2        the AVX2 kernels everywhere
 *   avxvnni     as avx2, with the 256-bit vpdpbusd (AVX-VNNI) FAST kernels of dot_avxvnni.c
 *               (built only when the compiler has -mavxvnni: GLMQ_HAVE_AVXVNNI)
 *   avx512      AVX-512 quantizers, widening, EXACT/F16/BF16 + preparation; AVX2 FAST kernels
 *   avx512vnni  as avx512, with the vpdpbusd FAST kernels
 *   neon        aarch64: NEON preparation, INT4/INT8 EXACT/FAST_B32/FAST_ROW, F16/BF16, sum;
 *               _ref group-wise and attention kernels and _ref quantizers
 *   dotprod     as neon, with the SDOT FAST kernels
 * GPTQ's loops (hacc.h): AVX2 at avx2/avxvnni; at avx512/avx512vnni the AVX-512 w -= e u (axpy
 * and the lazy batch's update) and the AVX2 dot products (their four partial sums fill one
 * 256-bit vector), dot4x4 compiled for AVX-512VL (32 registers for its 16 chains); _ref on ARM. The
 * reference forward's dot8_rows: AVX2 at avx2/avxvnni, AVX-512 at avx512/avx512vnni, _ref on ARM.
 *
 * The x86 and ARM levels are two families above ref (glmq.h), each ordered by capability
 * (glmq_cpu_rank), and a CPU supports a set of levels (glmq_cpu_supported), not every level
 * below its best. glmq_kernels_for() offers exactly the supported levels; the active level is
 * glmq_cpu_pick(supported, GLMQ_CPU cap), and glmq_cpu_force() moves it to the best supported
 * level at or below the forced one, only ever down the order (a level of the family this build
 * does not run changes nothing).
 */
#include "quant/dot.h"
#include "quant/quant_x86.h"
#if defined(GLMQ_HAVE_ARM64)
#include "quant/dot_neon.h"
#endif

#include <stdatomic.h>

/* ---- matrix kernels (quant/dot.h) ------------------------------------------------------------ */

/* ---- tables ---------------------------------------------------------------------------------- */

static const glmq_dot_kernels d_ref = {
    .level = GLMQ_CPU_REF,
    .name = "ref",
    .prep = {glmq_dot_prep_exact_ref, glmq_dot_prep_b32_ref, glmq_dot_prep_row_ref},
    .q4 = {glmq_q4_dot_f32_ref, glmq_q4_dot_q8b_ref, glmq_q4_dot_q8r_ref},
    .q8 = {glmq_q8_dot_f32_ref, glmq_q8_dot_q8b_ref, glmq_q8_dot_q8r_ref},
    .q4g = {glmq_q4g_dot_f32_ref, glmq_q4g_dot_q8b_ref, NULL},
    .q8g = {glmq_q8g_dot_f32_ref, glmq_q8g_dot_q8b_ref, NULL},
    .f16 = glmq_f16_dot_f32_ref,
    .bf16 = glmq_bf16_dot_f32_ref,
    .sum_f32 = glmq_dot_sum_f32_ref,
    .att = glmq_att_head_ref,
    .att_group = glmq_att_group_ref,
};

#if defined(GLMQ_HAVE_X86)
static const glmq_dot_kernels d_avx2 = {
    .level = GLMQ_CPU_AVX2,
    .name = "avx2",
    .prep = {glmq_dot_prep_exact_avx2, glmq_dot_prep_b32_avx2, glmq_dot_prep_row_avx2},
    .q4 = {glmq_q4_dot_f32_avx2, glmq_q4_dot_q8b_avx2, glmq_q4_dot_q8r_avx2},
    .q8 = {glmq_q8_dot_f32_avx2, glmq_q8_dot_q8b_avx2, glmq_q8_dot_q8r_avx2},
    .q4g = {glmq_q4g_dot_f32_avx2, glmq_q4g_dot_q8b_avx2, NULL},
    .q8g = {glmq_q8g_dot_f32_avx2, glmq_q8g_dot_q8b_avx2, NULL},
    .f16 = glmq_f16_dot_f32_avx2,
    .bf16 = glmq_bf16_dot_f32_avx2,
    .sum_f32 = glmq_dot_sum_f32_avx2,
    .att = glmq_att_head_avx2,
    .att_group = glmq_att_group_avx2,
};

#if defined(GLMQ_HAVE_AVXVNNI)
/* The avx2 table with the vpdpbusd FAST kernels (bit-identical results: quant/dot_avxvnni.c). */
static const glmq_dot_kernels d_avxvnni = {
    .level = GLMQ_CPU_AVXVNNI,
    .name = "avxvnni",
    .prep = {glmq_dot_prep_exact_avx2, glmq_dot_prep_b32_avx2, glmq_dot_prep_row_avx2},
    .q4 = {glmq_q4_dot_f32_avx2, glmq_q4_dot_q8b_avxvnni, glmq_q4_dot_q8r_avxvnni},
    .q8 = {glmq_q8_dot_f32_avx2, glmq_q8_dot_q8b_avxvnni, glmq_q8_dot_q8r_avxvnni},
    .q4g = {glmq_q4g_dot_f32_avx2, glmq_q4g_dot_q8b_avxvnni, NULL},
    .q8g = {glmq_q8g_dot_f32_avx2, glmq_q8g_dot_q8b_avxvnni, NULL},
    .f16 = glmq_f16_dot_f32_avx2,
    .bf16 = glmq_bf16_dot_f32_avx2,
    .sum_f32 = glmq_dot_sum_f32_avx2,
    .att = glmq_att_head_avx2,
    .att_group = glmq_att_group_avx2,
};
#endif

static const glmq_dot_kernels d_avx512 = {
    .level = GLMQ_CPU_AVX512,
    .name = "avx512",
    .prep = {glmq_dot_prep_exact_avx512, glmq_dot_prep_b32_avx512, glmq_dot_prep_row_avx512},
    .q4 = {glmq_q4_dot_f32_avx512, glmq_q4_dot_q8b_avx2, glmq_q4_dot_q8r_avx2},
    .q8 = {glmq_q8_dot_f32_avx512, glmq_q8_dot_q8b_avx2, glmq_q8_dot_q8r_avx2},
    .q4g = {glmq_q4g_dot_f32_avx512, glmq_q4g_dot_q8b_avx2, NULL},
    .q8g = {glmq_q8g_dot_f32_avx512, glmq_q8g_dot_q8b_avx2, NULL},
    .f16 = glmq_f16_dot_f32_avx512,
    .bf16 = glmq_bf16_dot_f32_avx512,
    .sum_f32 = glmq_dot_sum_f32_avx512,
    .att = glmq_att_head_avx512,
    .att_group = glmq_att_group_avx512,
};

static const glmq_dot_kernels d_avx512vnni = {
    .level = GLMQ_CPU_AVX512VNNI,
    .name = "avx512vnni",
    .prep = {glmq_dot_prep_exact_avx512, glmq_dot_prep_b32_avx512, glmq_dot_prep_row_avx512},
    .q4 = {glmq_q4_dot_f32_avx512, glmq_q4_dot_q8b_avx512vnni, glmq_q4_dot_q8r_avx512vnni},
    .q8 = {glmq_q8_dot_f32_avx512, glmq_q8_dot_q8b_avx512vnni, glmq_q8_dot_q8r_avx512vnni},
    .q4g = {glmq_q4g_dot_f32_avx512, glmq_q4g_dot_q8b_avx512vnni, NULL},
    .q8g = {glmq_q8g_dot_f32_avx512, glmq_q8g_dot_q8b_avx512vnni, NULL},
    .f16 = glmq_f16_dot_f32_avx512,
    .bf16 = glmq_bf16_dot_f32_avx512,
    .sum_f32 = glmq_dot_sum_f32_avx512,
    .att = glmq_att_head_avx512,
    .att_group = glmq_att_group_avx512,
};
#endif

#if defined(GLMQ_HAVE_ARM64)
static const glmq_dot_kernels d_neon = {
    .level = GLMQ_CPU_NEON,
    .name = "neon",
    .prep = {glmq_dot_prep_exact_neon, glmq_dot_prep_b32_neon, glmq_dot_prep_row_neon},
    .q4 = {glmq_q4_dot_f32_neon, glmq_q4_dot_q8b_neon, glmq_q4_dot_q8r_neon},
    .q8 = {glmq_q8_dot_f32_neon, glmq_q8_dot_q8b_neon, glmq_q8_dot_q8r_neon},
    .q4g = {glmq_q4g_dot_f32_ref, glmq_q4g_dot_q8b_ref, NULL},
    .q8g = {glmq_q8g_dot_f32_ref, glmq_q8g_dot_q8b_ref, NULL},
    .f16 = glmq_f16_dot_f32_neon,
    .bf16 = glmq_bf16_dot_f32_neon,
    .sum_f32 = glmq_dot_sum_f32_neon,
    .att = glmq_att_head_ref,
    .att_group = glmq_att_group_ref,
};

static const glmq_dot_kernels d_dotprod = {
    .level = GLMQ_CPU_DOTPROD,
    .name = "dotprod",
    .prep = {glmq_dot_prep_exact_neon, glmq_dot_prep_b32_neon, glmq_dot_prep_row_neon},
    .q4 = {glmq_q4_dot_f32_neon, glmq_q4_dot_q8b_dotprod, glmq_q4_dot_q8r_dotprod},
    .q8 = {glmq_q8_dot_f32_neon, glmq_q8_dot_q8b_dotprod, glmq_q8_dot_q8r_dotprod},
    .q4g = {glmq_q4g_dot_f32_ref, glmq_q4g_dot_q8b_ref, NULL},
    .q8g = {glmq_q8g_dot_f32_ref, glmq_q8g_dot_q8b_ref, NULL},
    .f16 = glmq_f16_dot_f32_neon,
    .bf16 = glmq_bf16_dot_f32_neon,
    .sum_f32 = glmq_dot_sum_f32_neon,
    .att = glmq_att_head_ref,
    .att_group = glmq_att_group_ref,
};
#endif

/* ---- the tables ------------------------------------------------------------------------------ */

static const glmq_kernels k_ref = {
    .level = GLMQ_CPU_REF,
    .quantize_row_q8 = glmq_quantize_row_q8_ref,
    .quantize_row_q4 = glmq_quantize_row_q4_ref,
    .f16_to_f32 = glmq_f16_to_f32_row,
    .bf16_to_f32 = glmq_bf16_to_f32_row,
    .f32_to_f16 = glmq_f32_to_f16_row_ref,
    .dot = &d_ref,
    .hacc = glmq_hacc_block_ref,
    .gptq_dot = glmq_gptq_dot_ref,
    .gptq_dot4 = glmq_gptq_dot4_ref,
    .gptq_dot4x4 = glmq_gptq_dot4x4_ref,
    .gptq_axpy = glmq_gptq_axpy_ref,
    .gptq_update = glmq_gptq_update_ref,
    .dot8_rows = glmq_dot8_rows_ref,
};

#if defined(GLMQ_HAVE_X86)
static const glmq_kernels k_avx2 = {
    .level = GLMQ_CPU_AVX2,
    .quantize_row_q8 = glmq_quantize_row_q8_avx2,
    .quantize_row_q4 = glmq_quantize_row_q4_avx2,
    .f16_to_f32 = glmq_f16_to_f32_avx2,
    .bf16_to_f32 = glmq_bf16_to_f32_avx2,
    .f32_to_f16 = glmq_f32_to_f16_avx2,
    .dot = &d_avx2,
    .hacc = glmq_hacc_block_avx2,
    .gptq_dot = glmq_gptq_dot_avx2,
    .gptq_dot4 = glmq_gptq_dot4_avx2,
    .gptq_dot4x4 = glmq_gptq_dot4x4_avx2,
    .gptq_axpy = glmq_gptq_axpy_avx2,
    .gptq_update = glmq_gptq_update_avx2,
    .dot8_rows = glmq_dot8_rows_avx2,
};

#if defined(GLMQ_HAVE_AVXVNNI)
static const glmq_kernels k_avxvnni = {
    .level = GLMQ_CPU_AVXVNNI,
    .quantize_row_q8 = glmq_quantize_row_q8_avx2,
    .quantize_row_q4 = glmq_quantize_row_q4_avx2,
    .f16_to_f32 = glmq_f16_to_f32_avx2,
    .bf16_to_f32 = glmq_bf16_to_f32_avx2,
    .f32_to_f16 = glmq_f32_to_f16_avx2,
    .dot = &d_avxvnni,
    .hacc = glmq_hacc_block_avx2,
    .gptq_dot = glmq_gptq_dot_avx2,
    .gptq_dot4 = glmq_gptq_dot4_avx2,
    .gptq_dot4x4 = glmq_gptq_dot4x4_avx2,
    .gptq_axpy = glmq_gptq_axpy_avx2,
    .gptq_update = glmq_gptq_update_avx2,
    .dot8_rows = glmq_dot8_rows_avx2,
};
#endif

static const glmq_kernels k_avx512 = {
    .level = GLMQ_CPU_AVX512,
    .quantize_row_q8 = glmq_quantize_row_q8_avx512,
    .quantize_row_q4 = glmq_quantize_row_q4_avx512,
    .f16_to_f32 = glmq_f16_to_f32_avx512,
    .bf16_to_f32 = glmq_bf16_to_f32_avx512,
    .f32_to_f16 = glmq_f32_to_f16_avx512,
    .dot = &d_avx512,
    .hacc = glmq_hacc_block_avx512,
    .gptq_dot = glmq_gptq_dot_avx2,
    .gptq_dot4 = glmq_gptq_dot4_avx2,
    .gptq_dot4x4 = glmq_gptq_dot4x4_avx512,
    .gptq_axpy = glmq_gptq_axpy_avx512,
    .gptq_update = glmq_gptq_update_avx512,
    .dot8_rows = glmq_dot8_rows_avx512,
};

static const glmq_kernels k_avx512vnni = {
    .level = GLMQ_CPU_AVX512VNNI,
    .quantize_row_q8 = glmq_quantize_row_q8_avx512,
    .quantize_row_q4 = glmq_quantize_row_q4_avx512,
    .f16_to_f32 = glmq_f16_to_f32_avx512,
    .bf16_to_f32 = glmq_bf16_to_f32_avx512,
    .f32_to_f16 = glmq_f32_to_f16_avx512,
    .dot = &d_avx512vnni,
    .hacc = glmq_hacc_block_avx512,
    .gptq_dot = glmq_gptq_dot_avx2,
    .gptq_dot4 = glmq_gptq_dot4_avx2,
    .gptq_dot4x4 = glmq_gptq_dot4x4_avx512,
    .gptq_axpy = glmq_gptq_axpy_avx512,
    .gptq_update = glmq_gptq_update_avx512,
    .dot8_rows = glmq_dot8_rows_avx512,
};
#endif

#if defined(GLMQ_HAVE_ARM64)
/* ARM levels: the _ref quantizers and conversions (packs hash the same everywhere anyway) */
static const glmq_kernels k_neon = {
    .level = GLMQ_CPU_NEON,
    .quantize_row_q8 = glmq_quantize_row_q8_ref,
    .quantize_row_q4 = glmq_quantize_row_q4_ref,
    .f16_to_f32 = glmq_f16_to_f32_row,
    .bf16_to_f32 = glmq_bf16_to_f32_row,
    .f32_to_f16 = glmq_f32_to_f16_row_ref,
    .dot = &d_neon,
    .hacc = glmq_hacc_block_ref,
    .gptq_dot = glmq_gptq_dot_ref,
    .gptq_dot4 = glmq_gptq_dot4_ref,
    .gptq_dot4x4 = glmq_gptq_dot4x4_ref,
    .gptq_axpy = glmq_gptq_axpy_ref,
    .gptq_update = glmq_gptq_update_ref,
    .dot8_rows = glmq_dot8_rows_ref,
};

static const glmq_kernels k_dotprod = {
    .level = GLMQ_CPU_DOTPROD,
    .quantize_row_q8 = glmq_quantize_row_q8_ref,
    .quantize_row_q4 = glmq_quantize_row_q4_ref,
    .f16_to_f32 = glmq_f16_to_f32_row,
    .bf16_to_f32 = glmq_bf16_to_f32_row,
    .f32_to_f16 = glmq_f32_to_f16_row_ref,
    .dot = &d_dotprod,
    .hacc = glmq_hacc_block_ref,
    .gptq_dot = glmq_gptq_dot_ref,
    .gptq_dot4 = glmq_gptq_dot4_ref,
    .gptq_dot4x4 = glmq_gptq_dot4x4_ref,
    .gptq_axpy = glmq_gptq_axpy_ref,
    .gptq_update = glmq_gptq_update_ref,
    .dot8_rows = glmq_dot8_rows_ref,
};
#endif

static const glmq_kernels *table_for(glmq_cpu_level l)
{
#if defined(GLMQ_HAVE_X86)
    if (l == GLMQ_CPU_AVX512VNNI) return &k_avx512vnni;
    if (l == GLMQ_CPU_AVX512) return &k_avx512;
#if defined(GLMQ_HAVE_AVXVNNI)
    if (l == GLMQ_CPU_AVXVNNI) return &k_avxvnni;
#endif
    if (l == GLMQ_CPU_AVX2) return &k_avx2;
#endif
#if defined(GLMQ_HAVE_ARM64)
    if (l == GLMQ_CPU_DOTPROD) return &k_dotprod;
    if (l == GLMQ_CPU_NEON) return &k_neon;
#endif
    (void)l;
    return &k_ref;
}

/* ---- the active table ------------------------------------------------------------------------ */

static _Atomic(const glmq_kernels *) g_active;

const glmq_kernels *glmq_kernels_get(void)
{
    const glmq_kernels *k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (GLMQ_LIKELY(k != NULL)) return k;

    const glmq_kernels *want = table_for(glmq_cpu_pick(glmq_cpu_supported(), glmq_cpu_env_cap()));
    const glmq_kernels *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&g_active, &expected, want, memory_order_acq_rel,
                                                memory_order_acquire))
        return want;
    return expected; /* another thread (or glmq_cpu_force) got there first */
}

const glmq_kernels *glmq_kernels_for(glmq_cpu_level level)
{
    if (level < GLMQ_CPU_REF || level > GLMQ_CPU_MAX) return NULL;
    if (!(glmq_cpu_supported() & GLMQ_CPU_BIT(level))) return NULL;
    return table_for(level);
}

glmq_cpu_level glmq_cpu_force(glmq_cpu_level level)
{
    if (level < GLMQ_CPU_REF) level = GLMQ_CPU_REF;
    const glmq_kernels *cur = glmq_kernels_get();
    if (level > GLMQ_CPU_MAX) return cur->level; /* no level: no change */
    /* the best level the CPU runs at or below the forced one (another architecture's level
     * allows every level, so the current one stays) */
    const glmq_cpu_level want = glmq_cpu_pick(glmq_cpu_supported(), (int)level);
    for (;;) {
        if (glmq_cpu_rank(want) >= glmq_cpu_rank(cur->level)) return cur->level; /* only lower */
        if (atomic_compare_exchange_weak_explicit(&g_active, &cur, table_for(want),
                                                  memory_order_acq_rel, memory_order_acquire))
            return want;
        /* cur now holds the value another thread stored; retry against it */
    }
}

glmq_cpu_level glmq_cpu_active(void) { return glmq_kernels_get()->level; }

const glmq_dot_kernels *glmq_dot_kernels_get(void) { return glmq_kernels_get()->dot; }

const glmq_dot_kernels *glmq_dot_kernels_for(glmq_cpu_level level)
{
    const glmq_kernels *k = glmq_kernels_for(level);
    return k ? k->dot : NULL;
}
