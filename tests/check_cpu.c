/*
 * check_cpu.c - src/core/cpu.c: the kernel level chosen from a supported set and a GLMQ_CPU cap
 * (glmq_cpu_pick, a pure function), the GLMQ_CPU names and the capability order.
 *
 * The expectations are written out by hand per CPU (which extensions it has, from the vendors'
 * documentation) and per GLMQ_CPU value; nothing here is derived from glmq's output.
 */
#include "core/internal.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define B(l) GLMQ_CPU_BIT(GLMQ_CPU_##l)

enum { REF = GLMQ_CPU_REF, AVX2 = GLMQ_CPU_AVX2, AVXVNNI = GLMQ_CPU_AVXVNNI,
       AVX512 = GLMQ_CPU_AVX512, AVX512VNNI = GLMQ_CPU_AVX512VNNI, NEON = GLMQ_CPU_NEON,
       DOTPROD = GLMQ_CPU_DOTPROD };

/* Supported sets of real CPUs (REF is always supported). */
typedef struct {
    const char *cpu;
    unsigned set;
} cpuset;
static const cpuset cpus[] = {
    /* 0 */ {"Zen 3 (AVX2 only)", B(REF) | B(AVX2)},
    /* 1 */ {"Skylake-X (AVX-512, no VNNI)", B(REF) | B(AVX2) | B(AVX512)},
    /* 2 */ {"Cascade Lake (AVX512-VNNI, no AVX-VNNI)",
             B(REF) | B(AVX2) | B(AVX512) | B(AVX512VNNI)},
    /* 3 */ {"Alder Lake (AVX-VNNI, no AVX-512)", B(REF) | B(AVX2) | B(AVXVNNI)},
    /* 4 */ {"Sapphire Rapids / Zen 4 (both)",
             B(REF) | B(AVX2) | B(AVXVNNI) | B(AVX512) | B(AVX512VNNI)},
    /* 5 */ {"x86-64 without AVX2", B(REF)},
    /* 6 */ {"Cortex-A53 (NEON)", B(REF) | B(NEON)},
    /* 7 */ {"Neoverse N1 (NEON + SDOT)", B(REF) | B(NEON) | B(DOTPROD)},
};
#define NCPUS (int)(sizeof cpus / sizeof cpus[0])

/* Every GLMQ_CPU value (NULL = unset) and the level it gives on each CPU above. */
typedef struct {
    const char *env;
    int want[NCPUS];
} capcase;
static const capcase caps[] = {
    /*                Zen3  SKX     CLX         ADL      SPR         noAVX2 A53   N1 */
    {NULL, {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
    {"", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
    {"bogus", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
    {"AVX2", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
    {"ref", {REF, REF, REF, REF, REF, REF, REF, REF}},
    {"scalar", {REF, REF, REF, REF, REF, REF, REF, REF}},
    {"avx2", {AVX2, AVX2, AVX2, AVX2, AVX2, REF, NEON, DOTPROD}},
    {"avxvnni", {AVX2, AVX2, AVX2, AVXVNNI, AVXVNNI, REF, NEON, DOTPROD}},
    {"avx_vnni", {AVX2, AVX2, AVX2, AVXVNNI, AVXVNNI, REF, NEON, DOTPROD}},
    {"avx512", {AVX2, AVX512, AVX512, AVXVNNI, AVX512, REF, NEON, DOTPROD}},
    {"avx512vnni", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
    {"neon", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, NEON}},
    {"dotprod", {AVX2, AVX512, AVX512VNNI, AVXVNNI, AVX512VNNI, REF, NEON, DOTPROD}},
};
#define NCAPS (int)(sizeof caps / sizeof caps[0])

/* _i = capcase * NCPUS + cpu */
START_TEST(pick_table)
{
    const capcase *c = &caps[_i / NCPUS];
    const cpuset *u = &cpus[_i % NCPUS];
    const int cap = glmq_cpu_parse(c->env);
    const glmq_cpu_level got = glmq_cpu_pick(u->set, cap);
    ck_assert_msg((int)got == c->want[_i % NCPUS], "%s, GLMQ_CPU=%s: %s, want %s", u->cpu,
                  c->env ? c->env : "(unset)", glmq_cpu_level_name(got),
                  glmq_cpu_level_name((glmq_cpu_level)c->want[_i % NCPUS]));
    /* never a level the CPU cannot run */
    ck_assert_msg((u->set >> got) & 1, "%s: picked unsupported %s", u->cpu,
                  glmq_cpu_level_name(got));
}
END_TEST

START_TEST(parse_names)
{
    ck_assert_int_eq(glmq_cpu_parse("ref"), GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_cpu_parse("scalar"), GLMQ_CPU_REF);
    ck_assert_int_eq(glmq_cpu_parse("avx2"), GLMQ_CPU_AVX2);
    ck_assert_int_eq(glmq_cpu_parse("avxvnni"), GLMQ_CPU_AVXVNNI);
    ck_assert_int_eq(glmq_cpu_parse("avx_vnni"), GLMQ_CPU_AVXVNNI);
    ck_assert_int_eq(glmq_cpu_parse("avx512"), GLMQ_CPU_AVX512);
    ck_assert_int_eq(glmq_cpu_parse("avx512vnni"), GLMQ_CPU_AVX512VNNI);
    ck_assert_int_eq(glmq_cpu_parse("neon"), GLMQ_CPU_NEON);
    ck_assert_int_eq(glmq_cpu_parse("dotprod"), GLMQ_CPU_DOTPROD);
    ck_assert_int_eq(glmq_cpu_parse(NULL), -1);
    ck_assert_int_eq(glmq_cpu_parse(""), -1);
    ck_assert_int_eq(glmq_cpu_parse("avx-vnni"), -1);
    ck_assert_int_eq(glmq_cpu_parse("avx2 "), -1);
    /* every level's name parses back to it */
    for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++)
        ck_assert_int_eq(glmq_cpu_parse(glmq_cpu_level_name((glmq_cpu_level)l)), l);
    ck_assert_str_eq(glmq_cpu_level_name(GLMQ_CPU_AVXVNNI), "avxvnni");
    ck_assert_int_eq(GLMQ_CPU_AVXVNNI, 6); /* frozen values */
    ck_assert_int_eq(GLMQ_CPU_MAX, 6);
}
END_TEST

START_TEST(order)
{
    /* x86: ref < avx2 < avxvnni < avx512 < avx512vnni; ARM: ref < neon < dotprod */
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_REF), glmq_cpu_rank(GLMQ_CPU_AVX2));
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_AVX2), glmq_cpu_rank(GLMQ_CPU_AVXVNNI));
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_AVXVNNI), glmq_cpu_rank(GLMQ_CPU_AVX512));
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_AVX512), glmq_cpu_rank(GLMQ_CPU_AVX512VNNI));
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_REF), glmq_cpu_rank(GLMQ_CPU_NEON));
    ck_assert_int_lt(glmq_cpu_rank(GLMQ_CPU_NEON), glmq_cpu_rank(GLMQ_CPU_DOTPROD));
    ck_assert_int_eq(glmq_cpu_rank((glmq_cpu_level)(GLMQ_CPU_MAX + 1)), -1);
    ck_assert_int_eq(glmq_cpu_rank((glmq_cpu_level)-1), -1);
    /* out-of-range caps cap nothing; an empty set still gives ref */
    ck_assert_int_eq(glmq_cpu_pick(cpus[4].set, GLMQ_CPU_MAX + 1), GLMQ_CPU_AVX512VNNI);
    ck_assert_int_eq(glmq_cpu_pick(cpus[4].set, -7), GLMQ_CPU_AVX512VNNI);
    ck_assert_int_eq(glmq_cpu_pick(0, -1), GLMQ_CPU_REF);
}
END_TEST

/* The set this machine reports: REF always, no other family's level, and the active choice
 * is a member of it. */
START_TEST(this_machine)
{
    const unsigned s = glmq_cpu_supported();
    ck_assert(s & GLMQ_CPU_BIT(GLMQ_CPU_REF));
    ck_assert_uint_eq(s, glmq_cpu_supported()); /* detected once */
    ck_assert_uint_eq(s >> (GLMQ_CPU_MAX + 1), 0);
    const unsigned x86 = B(AVX2) | B(AVXVNNI) | B(AVX512) | B(AVX512VNNI);
    const unsigned arm = B(NEON) | B(DOTPROD);
    ck_assert(!((s & x86) && (s & arm)));
    if (s & (B(AVXVNNI) | B(AVX512))) ck_assert(s & B(AVX2));
    if (s & B(AVX512VNNI)) ck_assert(s & B(AVX512));
    if (s & B(DOTPROD)) ck_assert(s & B(NEON));
    ck_assert((s >> glmq_cpu_detected()) & 1);
#if !defined(GLMQ_HAVE_AVXVNNI)
    ck_assert(!(s & B(AVXVNNI))); /* not built: never offered */
#endif
    fprintf(stderr, "check_cpu: supported set %#x, best %s\n", s,
            glmq_cpu_level_name(glmq_cpu_detected()));
}
END_TEST

static Suite *cpu_suite(void)
{
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("pick");
    tcase_add_loop_test(tc, pick_table, 0, NCAPS * NCPUS);
    tcase_add_test(tc, parse_names);
    tcase_add_test(tc, order);
    tcase_add_test(tc, this_machine);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cpu_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
