/*
 * llama_quantize.c - `peer_quantize`: run the real llama.cpp quantizer (llama_model_quantize of
 * the prebuilt peer library) on a GGUF file, so that tests can judge glmq's reading of files
 * made by llama.cpp itself. A test tool, built only when the peer is installed.
 *
 *   peer_quantize [--quiet] [--threads N] IN.gguf OUT.gguf TYPE
 *
 * TYPE is one of the file types of llama-quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S,
 * Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, F16, BF16). The peer's directory is
 * $GLMQ_PEER_LIBDIR, else the one configured at build time. Exit status: 0 done, 1 the
 * quantizer failed, 2 usage, 3 the peer library could not be loaded.
 *
 * The parameter block is declared here from the facts of include/llama.h of the pinned release
 * (node-llama-cpp 3.22.1 ships llama.cpp whose llama_version() is "0.5.0-dev"); the defaults come
 * from the library's own llama_model_quantize_default_params(), and only nthread and ftype are
 * changed. The values of llama_ftype used below are frozen by llama.cpp (they are stored in
 * GGUF files as general.file_type).
 */
#include "peer/ggml_peer.h"

#include <stdbool.h>

#ifndef GLMQ_PEER_LIBDIR_DEFAULT
#define GLMQ_PEER_LIBDIR_DEFAULT NULL
#endif

/* llama_version() of the release whose llama.h the struct below follows. */
#define PEER_VERSION "0.5.0"

/* llama_model_quantize_params of the pinned release, field for field (enums are int-sized). */
typedef struct {
    int32_t nthread;
    int32_t ftype;                /* enum llama_ftype */
    int32_t output_tensor_type;   /* enum ggml_type */
    int32_t token_embedding_type; /* enum ggml_type */
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void *imatrix;
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
} peer_quantize_params;

static const struct {
    const char *name;
    int32_t ftype;
} ftypes[] = {
    {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},
    {"Q5_1", 9},    {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13},
    {"Q4_K_S", 14}, {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},
    {"BF16", 32},
};

static void quiet_log(int level, const char *text, void *user)
{
    (void)level;
    (void)text;
    (void)user;
}

static int usage(void)
{
    fprintf(stderr, "usage: peer_quantize [--quiet] [--threads N] IN.gguf OUT.gguf TYPE\n"
                    "TYPE:");
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        fprintf(stderr, " %s", ftypes[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv)
{
    int quiet = 0, threads = 1, a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
        if (strcmp(argv[a], "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(argv[a], "--threads") == 0 && a + 1 < argc) {
            threads = atoi(argv[++a]);
            if (threads < 1 || threads > 256) return usage();
        } else {
            return usage();
        }
    }
    if (argc - a != 3) return usage();
    const char *in = argv[a], *out = argv[a + 1], *type = argv[a + 2];
    int32_t ftype = -1;
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (strcmp(type, ftypes[i].name) == 0) ftype = ftypes[i].ftype;
    if (ftype < 0) {
        fprintf(stderr, "peer_quantize: unknown type '%s'\n", type);
        return usage();
    }

    const char *dir = ggml_peer_libdir(GLMQ_PEER_LIBDIR_DEFAULT);
    char lib[512], why[256] = "";
    if (!dir) {
        fprintf(stderr, "peer_quantize: GLMQ_PEER_LIBDIR is not set\n");
        return 3;
    }
    if (ggml_peer_find_lib(dir, "libllama", lib, sizeof lib) != 0) {
        fprintf(stderr, "peer_quantize: no libllama*.so in '%s'\n", dir);
        return 3;
    }
    void *h = ggml_peer_dlopen(dir, lib, why);
    if (!h) {
        fprintf(stderr, "peer_quantize: cannot load '%s/%s': %s\n", dir, lib, why);
        return 3;
    }
    void (*backend_init)(void);
    void (*log_set)(void (*)(int, const char *, void *), void *);
    peer_quantize_params (*defaults)(void);
    uint32_t (*quantize)(const char *, const char *, const peer_quantize_params *);
    *(void **)&backend_init = dlsym(h, "llama_backend_init");
    *(void **)&log_set = dlsym(h, "llama_log_set");
    *(void **)&defaults = dlsym(h, "llama_model_quantize_default_params");
    *(void **)&quantize = dlsym(h, "llama_model_quantize");
    const char *(*version)(void);
    *(void **)&version = dlsym(h, "llama_version");
    if (!backend_init || !defaults || !quantize || !version) {
        fprintf(stderr, "peer_quantize: '%s' lacks llama_model_quantize or its helpers\n", lib);
        return 3;
    }
    /* The parameter block above is that of one release: refuse another rather than pass it a
     * struct of the wrong shape. */
    if (strncmp(version(), PEER_VERSION, strlen(PEER_VERSION)) != 0) {
        fprintf(stderr,
                "peer_quantize: '%s' is llama.cpp %s, not %s: check llama_model_quantize_params "
                "in its include/llama.h and update tests/peer/llama_quantize.c\n",
                lib, version(), PEER_VERSION);
        return 3;
    }
    if (quiet && log_set) log_set(quiet_log, NULL);
    backend_init();

    peer_quantize_params p = defaults();
    p.nthread = threads;
    p.ftype = ftype;
    const uint32_t rc = quantize(in, out, &p);
    if (rc != 0) {
        fprintf(stderr, "peer_quantize: llama_model_quantize('%s' -> '%s', %s) failed (%u)\n", in,
                out, type, (unsigned)rc);
        return 1;
    }
    return 0;
}
