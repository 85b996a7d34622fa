/*
 * ggml_peer.h - the real llama.cpp libraries as a test peer, loaded with dlopen (header-only;
 * for tests/check_ggml_peer.c and tests/peer/llama_quantize.c, never for the library).
 *
 * The peer is the prebuilt CPU build of llama.cpp shipped by the npm package
 * @node-llama-cpp/linux-x64 (tests/install-peer.sh); tests/CMakeLists.txt passes its directory
 * as GLMQ_PEER_LIBDIR. We declare the few entry points we call ourselves, from the facts of
 * ggml's public headers of that release (ggml.h, ggml-cpu/ggml-quants.h): no header is copied.
 * ggml's `enum ggml_type` is an int-sized enum, ggml_fp16_t and ggml_bf16_t are 16-bit values
 * passed by pointer, and the per-type functions are
 *     void   dequantize_row_<t>(const void *blocks, float *y, int64_t k)
 *     size_t quantize_<t>(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
 *                         const float *imatrix)            (returns the bytes written)
 */
#ifndef GLMQ_TESTS_GGML_PEER_H
#define GLMQ_TESTS_GGML_PEER_H

#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*ggml_peer_dequant_fn)(const void *x, float *y, int64_t k);
typedef size_t (*ggml_peer_quant_fn)(const float *src, void *dst, int64_t nrows,
                                     int64_t n_per_row, const float *imatrix);
typedef void (*ggml_peer_row_fn)(const void *x, float *y, int64_t n);    /* 16-bit -> f32 */
typedef void (*ggml_peer_narrow_fn)(const float *x, void *y, int64_t n); /* f32 -> 16-bit */

typedef struct {
    void *h; /* libggml-base.so */
    int64_t (*blck_size)(int type);
    size_t (*type_size)(int type);
    const char *(*type_name)(int type);
    ggml_peer_row_fn fp16_to_fp32_row, bf16_to_fp32_row;
    ggml_peer_narrow_fn fp32_to_fp16_row, fp32_to_bf16_row;
} ggml_peer;

/* The peer's directory: $GLMQ_PEER_LIBDIR, else `fallback` (may be NULL). */
static inline const char *ggml_peer_libdir(const char *fallback)
{
    const char *d = getenv("GLMQ_PEER_LIBDIR");
    return d && *d ? d : fallback;
}

/* dlopen dir/name (RTLD_NOW | RTLD_LOCAL); NULL with the reason in why[256] on failure. */
static inline void *ggml_peer_dlopen(const char *dir, const char *name, char why[256])
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(why, 256, "%s", dlerror());
    return h;
}

/* The file of dir named prefix.so or prefix.<anything>.so (so "libllama" finds
 * libllama.v0.5.0.so but not libllama-common.so) into out[n]; 0 when found. */
static inline int ggml_peer_find_lib(const char *dir, const char *prefix, char *out, size_t n)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int rc = -1;
    const size_t pl = strlen(prefix);
    for (struct dirent *e = readdir(d); e && rc != 0; e = readdir(d)) {
        const size_t l = strlen(e->d_name);
        if (l >= pl + 3 && strncmp(e->d_name, prefix, pl) == 0 && e->d_name[pl] == '.' &&
            strcmp(e->d_name + l - 3, ".so") == 0) {
            snprintf(out, n, "%s", e->d_name);
            rc = 0;
        }
    }
    closedir(d);
    return rc;
}

static inline void *ggml_peer_sym(void *h, const char *name)
{
    return h ? dlsym(h, name) : NULL;
}

/* Open libggml-base.so of `dir` and look up the generic entry points; 0 on success. */
static inline int ggml_peer_open(ggml_peer *p, const char *dir, char why[256])
{
    memset(p, 0, sizeof *p);
    p->h = ggml_peer_dlopen(dir, "libggml-base.so", why);
    if (!p->h) return -1;
    *(void **)&p->blck_size = ggml_peer_sym(p->h, "ggml_blck_size");
    *(void **)&p->type_size = ggml_peer_sym(p->h, "ggml_type_size");
    *(void **)&p->type_name = ggml_peer_sym(p->h, "ggml_type_name");
    *(void **)&p->fp16_to_fp32_row = ggml_peer_sym(p->h, "ggml_fp16_to_fp32_row");
    *(void **)&p->bf16_to_fp32_row = ggml_peer_sym(p->h, "ggml_bf16_to_fp32_row");
    *(void **)&p->fp32_to_fp16_row = ggml_peer_sym(p->h, "ggml_fp32_to_fp16_row");
    *(void **)&p->fp32_to_bf16_row = ggml_peer_sym(p->h, "ggml_fp32_to_bf16_row");
    if (!p->blck_size || !p->type_size || !p->type_name || !p->fp16_to_fp32_row ||
        !p->bf16_to_fp32_row || !p->fp32_to_fp16_row || !p->fp32_to_bf16_row) {
        snprintf(why, 256, "libggml-base.so lacks an expected symbol");
        return -1;
    }
    return 0;
}

/* dequantize_row_<name> / quantize_<name> of a type name ("q4_K"), or NULL. */
static inline ggml_peer_dequant_fn ggml_peer_dequant(const ggml_peer *p, const char *type_name)
{
    char s[64];
    snprintf(s, sizeof s, "dequantize_row_%s", type_name);
    ggml_peer_dequant_fn f;
    *(void **)&f = ggml_peer_sym(p->h, s);
    return f;
}

static inline ggml_peer_quant_fn ggml_peer_quant(const ggml_peer *p, const char *type_name)
{
    char s[64];
    snprintf(s, sizeof s, "quantize_%s", type_name);
    ggml_peer_quant_fn f;
    *(void **)&f = ggml_peer_sym(p->h, s);
    return f;
}

#endif /* GLMQ_TESTS_GGML_PEER_H */
