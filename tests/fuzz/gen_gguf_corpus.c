/*
 * gen_gguf_corpus.c - writes the seed corpus of fuzz_gguf_open (tests/fuzz/corpus/gguf_open/).
 *
 * Not built by CMake (its output is committed); to regenerate, from the repository root after
 * a build:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Isrc tests/fuzz/gen_gguf_corpus.c \
 *      build/libglmq_internal.a -lcjson -lxxhash -lz -lm -lpthread -o build/gen_gguf_corpus
 *   build/gen_gguf_corpus tests/fuzz/corpus/gguf_open
 *
 * Valid files (written with the GGUF writer):
 *   valid-small      a few keys of common types and two tensors (f32, q8_0);
 *   valid-types      every metadata value type, arrays of each, string arrays with empty
 *                    strings and NUL bytes, and one tensor of every known ggml type, 1-4 dims;
 *   valid-chatglm    the shape of a llama.cpp `chatglm` file: general.* and chatglm.* keys, a
 *                    32-token vocabulary (tokens, scores, token types), tensors named as
 *                    llama.cpp names them, q4_0/q8_0/f16/f32;
 *   valid-empty      no metadata, no tensors;
 *   valid-align{1,64,256}  valid-small with another general.alignment;
 *   valid-v2         valid-small as version 2.
 * Mutations of valid-small and valid-chatglm (mut-*), each aimed at one check of the reader:
 * version, counts, every key length / value type / array element type and length / string
 * length, general.alignment, every tensor's name length, n_dims, ne, type and offset, duplicate
 * keys and names, overlapping tensors; truncations (trunc-*) at every field boundary; and
 * seeded random byte flips (flip-*).
 */
#include "core/atomic.h"
#include "formats/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *out_dir;

static void die(const char *what, const glmq_err *err)
{
    fprintf(stderr, "gen_gguf_corpus: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        glmq_err e_ = {0};                                                                         \
        glmq_err *err = &e_;                                                                       \
        if ((call) != GLMQ_OK) die(#call, err);                                                    \
    } while (0)

static void emit(const char *name, const uint8_t *b, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) die(p, NULL);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, NULL);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) die(path, NULL);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Write all tensor data of w (bytes from the generator), commit to out_dir/name, read back. */
static uint8_t *finish(glmq_gguf_writer *w, uint64_t data_bytes, const char *name, size_t *n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_dir, name);
    glmq_atomic_file *af = NULL;
    OK(glmq_atomic_open(p, &af, err));
    OK(glmq_gguf_writer_begin(w, af, err));
    uint8_t buf[256];
    while (data_bytes > 0) {
        const size_t k = data_bytes < sizeof buf ? (size_t)data_bytes : sizeof buf;
        for (size_t i = 0; i < k; i++) buf[i] = (uint8_t)next();
        OK(glmq_gguf_writer_tensor_data(w, buf, k, err));
        data_bytes -= k;
    }
    OK(glmq_gguf_writer_end(w, err));
    OK(glmq_atomic_commit(af, err));
    glmq_gguf_writer_free(w);
    return slurp(p, n);
}

static uint64_t add_tensor(glmq_gguf_writer *w, const char *name, uint32_t type, uint32_t nd,
                           const int64_t *ne)
{
    OK(glmq_gguf_writer_add_tensor(w, name, type, nd, ne, err));
    uint64_t rows = 1;
    for (uint32_t d = 1; d < nd; d++) rows *= (uint64_t)ne[d];
    return rows * glmq_ggml_row_bytes(type, ne[0]);
}

static uint8_t *make_small(uint64_t align, const char *name, size_t *n)
{
    glmq_gguf_writer *w = NULL;
    OK(glmq_gguf_writer_new(align, &w, err));
    OK(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.block_count", 2, err));
    OK(glmq_gguf_writer_add_f32(w, "chatglm.attention.layer_norm_rms_epsilon", 1e-5f, err));
    OK(glmq_gguf_writer_add_bool(w, "test.flag", 1, err));
    const char *s[3] = {"<unk>", "", "a\0b"};
    const uint64_t l[3] = {5, 0, 3};
    OK(glmq_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", 3, s, l, err));
    uint64_t bytes = add_tensor(w, "a", GLMQ_GGML_F32, 1, (int64_t[]){4});
    bytes += add_tensor(w, "b", GLMQ_GGML_Q8_0, 2, (int64_t[]){32, 2});
    return finish(w, bytes, name, n);
}

static uint8_t *make_types(size_t *n)
{
    glmq_gguf_writer *w = NULL;
    OK(glmq_gguf_writer_new(32, &w, err));
    uint8_t pat[64];
    for (int i = 0; i < 64; i++) pat[i] = (uint8_t)(i * 29 + 3);
    const uint8_t bools[4] = {0, 1, 1, 0};
    char key[48];
    for (uint32_t t = 0; t < GLMQ_GGUF_VTYPE_COUNT; t++) {
        if (!glmq_gguf_vtype_size(t)) continue;
        snprintf(key, sizeof key, "s.%s", glmq_gguf_vtype_name(t));
        OK(glmq_gguf_writer_add_val(w, key, t, t == GLMQ_GGUF_BOOL ? bools + 1 : pat, err));
        snprintf(key, sizeof key, "a.%s", glmq_gguf_vtype_name(t));
        OK(glmq_gguf_writer_add_arr(w, key, t, 4, t == GLMQ_GGUF_BOOL ? bools : pat, err));
    }
    OK(glmq_gguf_writer_add_str(w, "s.string", "hello", err));
    const char *s[4] = {"", "x", "\0\0", "\xe4\xb8\xad"};
    const uint64_t l[4] = {0, 1, 2, 3};
    OK(glmq_gguf_writer_add_arr_str(w, "a.string", 4, s, l, err));
    OK(glmq_gguf_writer_add_arr(w, "a.empty", GLMQ_GGUF_U8, 0, NULL, err));
    OK(glmq_gguf_writer_add_u64_placeholder(w, "a.placeholder", 2, err));
    uint64_t bytes = 0;
    for (uint32_t t = 0; t < GLMQ_GGML_TYPE_LIMIT; t++) {
        const glmq_ggml_type_info *ti = glmq_ggml_type_get(t);
        if (!ti) continue;
        snprintf(key, sizeof key, "t.%s", ti->name);
        const int64_t ne[4] = {ti->block, 2, 1, 2};
        bytes += add_tensor(w, key, t, 1 + t % 4, ne);
    }
    return finish(w, bytes, "valid-types", n);
}

static uint8_t *make_chatglm(size_t *n)
{
    glmq_gguf_writer *w = NULL;
    OK(glmq_gguf_writer_new(32, &w, err));
    OK(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", err));
    OK(glmq_gguf_writer_add_str(w, "general.name", "glm2-tiny", err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.context_length", 256, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.embedding_length", 32, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.feed_forward_length", 64, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.block_count", 1, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count", 2, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count_kv", 1, err));
    OK(glmq_gguf_writer_add_u32(w, "chatglm.rope.dimension_count", 8, err));
    OK(glmq_gguf_writer_add_f32(w, "chatglm.attention.layer_norm_rms_epsilon", 1e-5f, err));
    OK(glmq_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", err));
    enum { V = 32 };
    char tok[V][8];
    const char *toks[V];
    float scores[V];
    int32_t types[V];
    for (int i = 0; i < V; i++) {
        snprintf(tok[i], sizeof tok[i], i < 3 ? "<s%d>" : "\xe2\x96\x81t%d", i);
        toks[i] = tok[i];
        scores[i] = -(float)i;
        types[i] = i < 3 ? 3 : 1;
    }
    OK(glmq_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", V, toks, NULL, err));
    OK(glmq_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", V, scores, err));
    OK(glmq_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", V, types, err));
    OK(glmq_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, err));
    OK(glmq_gguf_writer_add_u64_placeholder(w, "glmq.tensor_xxh3", 9, err));
    uint64_t bytes = add_tensor(w, "token_embd.weight", GLMQ_GGML_F16, 2, (int64_t[]){32, 16});
    bytes += add_tensor(w, "blk.0.attn_norm.weight", GLMQ_GGML_F32, 1, (int64_t[]){32});
    bytes += add_tensor(w, "blk.0.attn_qkv.weight", GLMQ_GGML_Q4_0, 2, (int64_t[]){32, 48});
    bytes += add_tensor(w, "blk.0.attn_qkv.bias", GLMQ_GGML_F32, 1, (int64_t[]){48});
    bytes += add_tensor(w, "blk.0.attn_output.weight", GLMQ_GGML_Q8_0, 2, (int64_t[]){32, 32});
    bytes += add_tensor(w, "blk.0.ffn_norm.weight", GLMQ_GGML_F32, 1, (int64_t[]){32});
    bytes += add_tensor(w, "blk.0.ffn_up.weight", GLMQ_GGML_Q4_0, 2, (int64_t[]){32, 64});
    bytes += add_tensor(w, "blk.0.ffn_down.weight", GLMQ_GGML_Q4_0, 2, (int64_t[]){32, 32});
    bytes += add_tensor(w, "output.weight", GLMQ_GGML_Q8_0, 2, (int64_t[]){32, 16});
    return finish(w, bytes, "valid-chatglm", n);
}

/* ---- mutations ---- */

static const uint8_t *base;
static size_t base_n;
static const char *base_tag;

static void mut(const char *what, uint64_t off, const void *v, size_t len)
{
    if (off + len > base_n) return;
    uint8_t *b = malloc(base_n);
    memcpy(b, base, base_n);
    memcpy(b + off, v, len);
    char name[256];
    snprintf(name, sizeof name, "mut-%s-%s", base_tag, what);
    emit(name, b, base_n);
    free(b);
}
static void mut32(const char *what, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    glmq_wr_le32(b, v);
    mut(what, off, b, 4);
}
static void mut64(const char *what, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    glmq_wr_le64(b, v);
    mut(what, off, b, 8);
}
static void trunc_at(uint64_t n)
{
    if (n >= base_n) return;
    char name[64];
    snprintf(name, sizeof name, "trunc-%s-%llu", base_tag, (unsigned long long)n);
    emit(name, base, (size_t)n);
}

/* Mutations of the first max_kv metadata entries (all arrays too when arrays is set) and the
 * first max_t tensors, and n_flips random flips. */
static void mutate(const uint8_t *b, size_t n, const char *tag, int64_t max_kv, int arrays,
                   int64_t max_t, int n_flips)
{
    base = b;
    base_n = n;
    base_tag = tag;
    glmq_gguf *g = NULL;
    OK(glmq_gguf_open_mem(b, n, tag, &g, err));
    char w[96];
    mut32("version1", 4, 1);
    mut32("version-be", 4, 0x03000000u);
    mut32("version4", 4, 4);
    mut32("version2", 4, 2);
    mut64("tcount-plus1", 8, glmq_rd_le64(b + 8) + 1);
    mut64("tcount-huge", 8, UINT64_MAX);
    mut64("kvcount-plus1", 16, glmq_rd_le64(b + 16) + 1);
    mut64("kvcount-minus1", 16, glmq_rd_le64(b + 16) - 1);
    mut64("kvcount-huge", 16, (uint64_t)1 << 40);
    trunc_at(0);
    trunc_at(3);
    trunc_at(4);
    trunc_at(23);
    for (int64_t i = 0; i < glmq_gguf_kv_count(g); i++) {
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        if (i >= max_kv && !(arrays && kv->type == GLMQ_GGUF_ARRAY)) continue;
        const uint64_t ko = (uint64_t)((const uint8_t *)kv->key.ptr - b) - 8;
        const uint64_t to = ko + 8 + kv->key.len;
        snprintf(w, sizeof w, "kv%lld-keylen-huge", (long long)i);
        mut64(w, ko, UINT64_MAX - 3);
        snprintf(w, sizeof w, "kv%lld-keylen0", (long long)i);
        mut64(w, ko, 0);
        snprintf(w, sizeof w, "kv%lld-keylen-plus1", (long long)i);
        mut64(w, ko, kv->key.len + 1);
        snprintf(w, sizeof w, "kv%lld-type13", (long long)i);
        mut32(w, to, 13);
        snprintf(w, sizeof w, "kv%lld-type-string", (long long)i);
        mut32(w, to, GLMQ_GGUF_STRING);
        snprintf(w, sizeof w, "kv%lld-type-u64", (long long)i);
        mut32(w, to, GLMQ_GGUF_U64);
        trunc_at(ko + 4);
        trunc_at(to + 2);
        trunc_at(kv->offset);
        if (kv->type == GLMQ_GGUF_STRING) {
            snprintf(w, sizeof w, "kv%lld-strlen-huge", (long long)i);
            mut64(w, kv->offset, UINT64_MAX);
            snprintf(w, sizeof w, "kv%lld-strlen-plus1", (long long)i);
            mut64(w, kv->offset, glmq_rd_le64(kv->value) + 1);
        }
        if (kv->type == GLMQ_GGUF_ARRAY) {
            snprintf(w, sizeof w, "kv%lld-nested", (long long)i);
            mut32(w, to + 4, GLMQ_GGUF_ARRAY);
            snprintf(w, sizeof w, "kv%lld-elemtype99", (long long)i);
            mut32(w, to + 4, 99);
            snprintf(w, sizeof w, "kv%lld-elem-string", (long long)i);
            mut32(w, to + 4, GLMQ_GGUF_STRING);
            snprintf(w, sizeof w, "kv%lld-elem-u8", (long long)i);
            mut32(w, to + 4, GLMQ_GGUF_U8);
            snprintf(w, sizeof w, "kv%lld-arrlen-wrap", (long long)i);
            mut64(w, to + 8, ((uint64_t)1 << 62) + 1);
            snprintf(w, sizeof w, "kv%lld-arrlen-plus1", (long long)i);
            mut64(w, to + 8, kv->arr_n + 1);
            snprintf(w, sizeof w, "kv%lld-arrlen0", (long long)i);
            mut64(w, to + 8, 0);
            if (kv->arr_type == GLMQ_GGUF_STRING && kv->arr_n > 1) {
                const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, kv->arr_n - 1);
                snprintf(w, sizeof w, "kv%lld-laststr-huge", (long long)i);
                mut64(w, (uint64_t)((const uint8_t *)s.ptr - b) - 8, UINT64_MAX / 2);
            }
        }
    }
    /* duplicate key: the second of two keys of equal length renamed to the first */
    for (int64_t i = 0, done = 0; i < glmq_gguf_kv_count(g) && !done; i++)
        for (int64_t j = i + 1; j < glmq_gguf_kv_count(g) && !done; j++) {
            const glmq_gguf_kv *ki = glmq_gguf_kv_at(g, i), *kj = glmq_gguf_kv_at(g, j);
            if (ki->key.len != kj->key.len) continue;
            mut("dup-key", (uint64_t)((const uint8_t *)kj->key.ptr - b), ki->key.ptr,
                (size_t)ki->key.len);
            done = 1;
        }
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        if (i >= max_t) break;
        const uint64_t io = t->info_offset, nl = strlen(t->name);
        const uint64_t nd = io + 8 + nl, ne = nd + 4, ty = ne + 8 * t->n_dims, of = ty + 4;
        const uint64_t rel = t->offset - glmq_gguf_data_offset(g);
#define TM(suffix, fn, off, v)                                                                     \
    do {                                                                                           \
        snprintf(w, sizeof w, "t%lld-" suffix, (long long)i);                                      \
        fn(w, off, v);                                                                             \
    } while (0)
        TM("namelen0", mut64, io, 0);
        TM("namelen-huge", mut64, io, UINT64_MAX);
        TM("namelen-plus1", mut64, io, nl + 1);
        TM("ndims0", mut32, nd, 0);
        TM("ndims5", mut32, nd, 5);
        TM("ndims-plus1", mut32, nd, t->n_dims + 1);
        TM("ne0-zero", mut64, ne, 0);
        TM("ne0-huge", mut64, ne, (uint64_t)1 << 63);
        TM("ne0-odd", mut64, ne, (uint64_t)t->ne[0] + 1);
        TM("ne0-double", mut64, ne, (uint64_t)t->ne[0] * 2);
        TM("ne-last-overflow", mut64, ty - 8, (uint64_t)1 << 62);
        TM("type4", mut32, ty, 4);
        TM("type40", mut32, ty, 40);
        TM("type-iq2xxs", mut32, ty, GLMQ_GGML_IQ2_XXS);
        TM("type-f32", mut32, ty, GLMQ_GGML_F32);
        TM("type-q4k", mut32, ty, GLMQ_GGML_Q4_K);
        TM("off-plus1", mut64, of, rel + 1);
        TM("off-plus-align", mut64, of, rel + glmq_gguf_alignment(g));
        TM("off-huge", mut64, of, UINT64_MAX - 31);
        TM("off-past-end", mut64, of, (uint64_t)n);
        if (i > 0) TM("off-overlap", mut64, of, 0);
        if (i > 0 && strlen(glmq_gguf_tensor_at(g, 0)->name) == nl) {
            snprintf(w, sizeof w, "t%lld-name-dup", (long long)i);
            mut(w, io + 8, glmq_gguf_tensor_at(g, 0)->name, (size_t)nl);
        }
        trunc_at(io + 3);
        trunc_at(ty);
        trunc_at(t->offset);
        trunc_at(t->offset + t->size - 1);
#undef TM
    }
    trunc_at(glmq_gguf_data_offset(g) - 1);
    /* general.alignment changes on files that have it */
    const glmq_gguf_kv *al = glmq_gguf_find(g, "general.alignment");
    if (al) {
        mut32("align0", al->offset, 0);
        mut32("align48", al->offset, 48);
        mut32("align-2g", al->offset, 0x80000000u);
        mut32("align-type-u64", al->offset - 4, GLMQ_GGUF_U64);
        mut32("align-type-i32", al->offset - 4, GLMQ_GGUF_I32);
    }
    /* random byte flips */
    for (int k = 0; k < n_flips; k++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        const int flips = 1 + (int)(next() % 4);
        for (int f = 0; f < flips; f++) c[next() % n] ^= (uint8_t)(1u << (next() % 8));
        char name[64];
        snprintf(name, sizeof name, "flip-%s-%02d", tag, k);
        emit(name, c, n);
        free(c);
    }
    glmq_gguf_close(g);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_gguf_corpus OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    size_t n_small, n_types, n_glm, n;
    uint8_t *small = make_small(32, "valid-small", &n_small);
    uint8_t *types = make_types(&n_types);
    uint8_t *glm = make_chatglm(&n_glm);
    free(make_small(1, "valid-align1", &n));
    uint8_t *a64 = make_small(64, "valid-align64", &n);
    size_t n64 = n;
    free(make_small(256, "valid-align256", &n));
    {
        glmq_gguf_writer *w = NULL;
        OK(glmq_gguf_writer_new(32, &w, err));
        free(finish(w, 0, "valid-empty", &n));
    }
    small[4] = 2;
    emit("valid-v2", small, n_small);
    small[4] = 3;
    mutate(small, n_small, "small", 99, 1, 99, 16);
    mutate(glm, n_glm, "chatglm", 1, 1, 1, 4);
    mutate(a64, n64, "align64", 1, 0, 2, 4);
    free(small);
    free(types);
    free(glm);
    free(a64);
    return 0;
}
