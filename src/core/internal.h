/*
 * internal.h - shared internals of libglmq: error macros, little-endian helpers, fp16/bf16
 * conversion, overflow-checked arithmetic. Included by every module; never installed.
 *
 * Error convention (zstd style): the first failure writes err->msg with glmq_fail(); callers that
 * forward an error may only prefix context (glmq_err_prefix). GLMQ_FAIL_IF and GLMQ_TRY assume
 * a local `glmq_status st` is NOT needed: they `return` directly, or `goto fail` in the _G forms.
 */
#ifndef GLMQ_INTERNAL_H
#define GLMQ_INTERNAL_H

#include "glmq.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define GLMQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define GLMQ_LIKELY(x) __builtin_expect(!!(x), 1)
#define GLMQ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GLMQ_PRINTF(a, b)
#define GLMQ_LIKELY(x) (x)
#define GLMQ_UNLIKELY(x) (x)
#endif

/* CPU detection (cpu.c). The kernel table of the active level is quant/dispatch.c's.
 *   glmq_cpu_supported()  the set of levels this CPU and OS can run (bit GLMQ_CPU_BIT(l) per
 *                         level l; REF always), detected once
 *   glmq_cpu_rank(l)      l's position in the capability order of its family (glmq.h): ref 0,
 *                         avx2 1, avxvnni 2, avx512 3, avx512vnni 4; neon 1, dotprod 2; -1 for
 *                         a value that is no level
 *   glmq_cpu_pick(set, cap)  the highest-ranked level of set allowed by cap: at or below cap in
 *                         the order of cap's family; cap ref allows only ref; a cap of the other
 *                         family, or one that is no level (-1), allows every level. Pure.
 *   glmq_cpu_detected()   the best level of the set (glmq_cpu_pick with no cap)
 *   glmq_cpu_parse(name)  GLMQ_CPU's names: ref|scalar|avx2|avxvnni|avx_vnni|avx512|avx512vnni|
 *                         neon|dotprod -> the level, anything else (or NULL) -> -1
 *   glmq_cpu_env_cap()    glmq_cpu_parse(getenv("GLMQ_CPU")): -1 when unset, empty or unknown */
#define GLMQ_CPU_BIT(l) (1u << (unsigned)(l))
unsigned glmq_cpu_supported(void);
int glmq_cpu_rank(glmq_cpu_level l);
glmq_cpu_level glmq_cpu_pick(unsigned supported, int cap);
glmq_cpu_level glmq_cpu_detected(void);
int glmq_cpu_parse(const char *name);
int glmq_cpu_env_cap(void);

/* util.c: seconds on a monotonic clock; the median of v[0..n) (sorts v; n > 0); s as an int in
 * [lo, hi] with nothing after it, else -1; the peak resident set size in bytes. */
double glmq_now(void);
double glmq_median(double *v, int n);
int glmq_parse_int(const char *s, int lo, int hi);
double glmq_peak_rss(void);

/* Write a formatted message into err (if non-NULL) and return code. */
glmq_status glmq_fail(glmq_err *err, glmq_status code, const char *fmt, ...) GLMQ_PRINTF(3, 4);

/* Prefix err->msg with formatted context ("file 'x': "), keeping the code. Returns err->code or
 * `code` when err is NULL. */
glmq_status glmq_err_prefix(glmq_err *err, glmq_status code, const char *fmt, ...)
    GLMQ_PRINTF(3, 4);

/* The first error of a multi-call writer, returned again by every later call (sticky). */
typedef struct {
    glmq_status code; /* GLMQ_OK until the first error */
    glmq_err err;
} glmq_sticky;

/* GLMQ_OK, or the kept error (copied into err). */
glmq_status glmq_sticky_get(const glmq_sticky *s, glmq_err *err);
/* Keep a formatted error unless one is kept already; returns the kept one. */
glmq_status glmq_sticky_set(glmq_sticky *s, glmq_err *err, glmq_status code, const char *fmt, ...)
    GLMQ_PRINTF(4, 5);
/* Keep st with the message already in *e (st != GLMQ_OK) unless one is kept; GLMQ_OK for OK. */
glmq_status glmq_sticky_keep(glmq_sticky *s, glmq_status st, const glmq_err *e, glmq_err *err);

#define GLMQ_FAIL_IF(cond, err, code, ...)                                                      \
    do {                                                                                        \
        if (GLMQ_UNLIKELY(cond)) return glmq_fail((err), (code), __VA_ARGS__);                  \
    } while (0)

#define GLMQ_TRY(expr)                                                                          \
    do {                                                                                        \
        glmq_status glmq_try_st_ = (expr);                                                      \
        if (glmq_try_st_ != GLMQ_OK) return glmq_try_st_;                                       \
    } while (0)

/* goto-cleanup forms: set `st` and jump to `fail`. */
#define GLMQ_FAIL_IF_G(cond, err, code, ...)                                                    \
    do {                                                                                        \
        if (GLMQ_UNLIKELY(cond)) {                                                              \
            st = glmq_fail((err), (code), __VA_ARGS__);                                         \
            goto fail;                                                                          \
        }                                                                                       \
    } while (0)

#define GLMQ_TRY_G(expr)                                                                        \
    do {                                                                                        \
        st = (expr);                                                                            \
        if (st != GLMQ_OK) goto fail;                                                           \
    } while (0)

/* ---- little-endian loads/stores (never cast a struct over file bytes) ---- */
static inline uint16_t glmq_rd_le16(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t glmq_rd_le32(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}
static inline uint64_t glmq_rd_le64(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint64_t)glmq_rd_le32(b) | ((uint64_t)glmq_rd_le32(b + 4) << 32);
}
static inline void glmq_wr_le16(void *p, uint16_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void glmq_wr_le32(void *p, uint32_t v)
{
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static inline void glmq_wr_le64(void *p, uint64_t v)
{
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* ---- overflow-checked arithmetic: return false on overflow ---- */
static inline bool glmq_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool glmq_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline uint64_t glmq_align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* splitmix64: advance *state and return the next 64 pseudo-random bits (deterministic fills). */
static inline uint64_t glmq_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- half precision (src/core/fp16.c) ---- */
float glmq_f16_to_f32(uint16_t h);
uint16_t glmq_f32_to_f16(float f); /* round to nearest even; overflow -> inf; NaN kept */
static inline float glmq_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Convert n elements of a 16/32-bit float array (little-endian bytes) to f32. */
void glmq_f16_to_f32_row(const void *src, float *dst, int64_t n);
void glmq_bf16_to_f32_row(const void *src, float *dst, int64_t n);
void glmq_f32le_to_f32_row(const void *src, float *dst, int64_t n);

/* ---- misc ---- */
/* Element size in bytes of a non-quantized glmq_type (F32/F16/BF16), 0 otherwise. */
size_t glmq_type_elem_size(glmq_type t);

/* Portable duplicate of a string (NULL on allocation failure). */
char *glmq_strdup(const char *s);

#endif /* GLMQ_INTERNAL_H */
