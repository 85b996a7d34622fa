/*
 * gen_pack_corpus.c - writes the seed corpus of fuzz_pack_open (tests/fuzz/corpus/pack_open/).
 *
 * Not built by CMake (its output is committed); to regenerate, from the repository root after
 * a build:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Isrc tests/fuzz/gen_pack_corpus.c \
 *      build/libglmq_internal.a -lcjson -lxxhash -lz -lm -lpthread -o build/gen_pack_corpus
 *   build/gen_pack_corpus samples tests/fuzz/corpus/pack_open
 *
 * Valid packs:
 *   valid-glm2-{int4,int8,f16}  samples/glm2-tiny/st converted by glmq_convert, then rewritten
 *                               with the pack writer keeping every tensor's name and type but only
 *                               its first two rows (the full packs are ~1 MB each), the
 *                               config.json / tokenizer_config.json blobs and the metadata
 *                               verbatim, and tokenizer.model cut to 256 bytes;
 *   valid-types                 every storage type, 1-4 dims, padded INT8/INT4 rows, NaN/Inf/
 *                               subnormal values and scales, an empty blob; quantized tensors
 *                               first;
 *   valid-empty                 no tensors, no blobs, metadata "{}";
 *   valid-allquant              only INT4/INT8 tensors and a non-empty blob (the largest region
 *                               table for its size: pack_read.c once overflowed it).
 * sign0-*: the same with a zero header checksum, which fuzz_pack_open signs before opening (so
 * libFuzzer's mutations of them get past the header checksum).
 * Mutations (mut-*, trunc-*), derived from valid-types (small), valid-empty and valid-glm2-int4:
 * every header field, directory field and region relation the reader checks, re-signed with a
 * correct header checksum so that the check itself is reached (a few stay valid: fewer tensors or
 * blobs, a higher minor version); truncations at every region boundary; corrupted bytes behind
 * each checksum.
 */
#include "formats/pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static const char *out_dir;

static void die(const char *what, const glmq_err *err)
{
    fprintf(stderr, "gen_pack_corpus: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static uint8_t *read_file(const char *path, size_t *n)
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

static void emit(const char *name, const uint8_t *b, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) die(p, NULL);
}

/* Header checksum (SPEC §3) over the ranges the header names; left alone when a range is not
 * inside the n bytes (the reader rejects those before it looks at the checksum). */
static void resign(uint8_t *b, size_t n)
{
    const uint64_t off[4] = {glmq_rd_le64(b + 24), glmq_rd_le64(b + 40), glmq_rd_le64(b + 56),
                             glmq_rd_le64(b + 72)};
    uint64_t len[4] = {glmq_rd_le64(b + 32), glmq_rd_le64(b + 48), glmq_rd_le64(b + 64),
                       glmq_rd_le64(b + 80)};
    const uint64_t unit[4] = {1, 128, 64, 1};
    for (int i = 0; i < 4; i++) {
        uint64_t end;
        if (!glmq_mul_u64(len[i], unit[i], &len[i]) || !glmq_add_u64(off[i], len[i], &end) ||
            end > n)
            return;
    }
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, b, 120);
    for (int i = 0; i < 4; i++) XXH3_64bits_update(h, b + off[i], (size_t)len[i]);
    glmq_wr_le64(b + 120, XXH3_64bits_digest(h));
    XXH3_freeState(h);
}

// --- valid packs -------------------------------------------------------------------------------

/* Rewrite the pack at src as out keeping two rows per tensor (see the top of the file). */
static void shrink(const char *src, const char *out)
{
    glmq_pack *p = NULL;
    glmq_err err = {0};
    if (glmq_pack_open(src, &p, &err) != GLMQ_OK) die(src, &err);
    const int64_t nt = glmq_pack_tensor_count(p);
    glmq_pack_tensor_decl *td = calloc((size_t)nt, sizeof *td);
    glmq_tensor_info *ti = calloc((size_t)nt, sizeof *ti);
    for (int64_t i = 0; i < nt; i++) {
        if (glmq_pack_tensor(p, i, &ti[i], &err) != GLMQ_OK) die(src, &err);
        td[i].name = ti[i].name;
        td[i].type = ti[i].type;
        td[i].ndim = ti[i].ndim;
        for (int j = 0; j < ti[i].ndim; j++) td[i].shape[j] = ti[i].shape[j];
        for (int j = 1; j + 1 < ti[i].ndim; j++) td[i].shape[j] = 1;
        if (ti[i].ndim > 1 && td[i].shape[0] > 2) td[i].shape[0] = 2;
    }
    const char *bn[3] = {"config.json", "tokenizer_config.json", "tokenizer.model"};
    glmq_pack_blob_decl bd[3];
    const void *bdata[3];
    int nb = 0;
    for (int k = 0; k < 3; k++) {
        size_t sz;
        if (glmq_pack_blob(p, bn[k], &bdata[nb], &sz, NULL) != GLMQ_OK) continue;
        bd[nb].name = bn[k];
        bd[nb].size = k == 2 && sz > 256 ? 256 : sz;
        nb++;
    }
    glmq_pack_writer *w = NULL;
    if (glmq_pack_writer_create(out, td, nt, bd, nb, &w, &err) != GLMQ_OK) die(out, &err);
    for (int k = 0; k < nb; k++)
        if (glmq_pack_write_blob(w, k, bdata[k], &err) != GLMQ_OK) die(out, &err);
    for (int64_t i = 0; i < nt; i++) {
        const int64_t rows = td[i].ndim > 1 ? td[i].shape[0] : 1;
        if (glmq_pack_write_rows(w, i, 0, rows, ti[i].data, &err) != GLMQ_OK) die(out, &err);
        if (ti[i].scales && glmq_pack_write_scales(w, i, ti[i].scales, &err) != GLMQ_OK)
            die(out, &err);
    }
    if (glmq_pack_writer_finish(w, glmq_pack_metadata(p), &err) != GLMQ_OK) die(out, &err);
    free(td);
    free(ti);
    glmq_pack_close(p);
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void write_types(const char *out)
{
    const glmq_pack_tensor_decl td[] = {
        {"int4.mat", GLMQ_TYPE_INT4, 2, {2, 130}},
        {"int8.mat", GLMQ_TYPE_INT8, 2, {3, 65}},
        {"int4.t4", GLMQ_TYPE_INT4, 4, {1, 2, 1, 3}},
        {"int8.one", GLMQ_TYPE_INT8, 1, {1}},
        {"f32.vec", GLMQ_TYPE_F32, 1, {5}},
        {"f16.mat", GLMQ_TYPE_F16, 2, {3, 7}},
        {"bf16.t3", GLMQ_TYPE_BF16, 3, {2, 2, 3}},
    };
    const int64_t nt = sizeof td / sizeof td[0];
    static const char cfg[] = "{\"hidden_size\": 8}";
    static const char tok[] = "tokenizer";
    const glmq_pack_blob_decl bd[] = {
        {"config.json", sizeof cfg - 1}, {"empty", 0}, {"tokenizer.model", sizeof tok - 1}};
    glmq_pack_writer *w = NULL;
    glmq_err err = {0};
    if (glmq_pack_writer_create(out, td, nt, bd, 3, &w, &err) != GLMQ_OK) die(out, &err);
    if (glmq_pack_write_blob(w, 0, cfg, &err) != GLMQ_OK ||
        glmq_pack_write_blob(w, 1, "", &err) != GLMQ_OK ||
        glmq_pack_write_blob(w, 2, tok, &err) != GLMQ_OK)
        die(out, &err);
    /* special values: f32 NaN, -Inf, subnormal, -0; f16 NaN, Inf, subnormal; scales 0, NaN,
     * Inf, subnormal, 1 */
    static const uint32_t f32_special[] = {0x7fc00000u, 0xff800000u, 0x00000001u, 0x80000000u};
    static const uint16_t f16_special[] = {0x7e00, 0x7c00, 0x0001, 0x8000};
    static const uint16_t scales[] = {0x0000, 0x7e00, 0x7c00, 0x0001, 0x3c00, 0x2e66};
    for (int64_t i = 0; i < nt; i++) {
        int64_t rows = 1;
        for (int j = 0; j + 1 < td[i].ndim; j++) rows *= td[i].shape[j];
        const int64_t cols = td[i].shape[td[i].ndim - 1];
        const int64_t rb = glmq_row_bytes(td[i].type, cols);
        uint8_t *buf = calloc((size_t)(rows * rb), 1);
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *row = buf + r * rb;
            for (int64_t c = 0; c < cols; c++) {
                const uint64_t v = rnd();
                switch (td[i].type) {
                case GLMQ_TYPE_F32:
                    glmq_wr_le32(row + 4 * c, c < 4 ? f32_special[c] : (uint32_t)v);
                    break;
                case GLMQ_TYPE_F16:
                    glmq_wr_le16(row + 2 * c, c < 4 && r == 0 ? f16_special[c] : (uint16_t)v);
                    break;
                case GLMQ_TYPE_BF16: glmq_wr_le16(row + 2 * c, (uint16_t)v); break;
                case GLMQ_TYPE_INT8: row[c] = (uint8_t)v; break; /* -128 included */
                case GLMQ_TYPE_INT4: {
                    uint8_t *b = row + (c / 128) * 64 + (c % 128) % 64;
                    const uint8_t nib = (uint8_t)(v & 15); /* 0 (= -8) included */
                    if ((c % 128) < 64)
                        *b = (uint8_t)((*b & 0xf0) | nib);
                    else
                        *b = (uint8_t)((*b & 0x0f) | (nib << 4));
                    break;
                }
                }
            }
            /* padding as the SPEC says: INT4 nibble 8 */
            if (td[i].type == GLMQ_TYPE_INT4)
                for (int64_t c = cols; c < rb * 2; c++) {
                    uint8_t *b = row + (c / 128) * 64 + (c % 128) % 64;
                    *b = (c % 128) < 64 ? (uint8_t)((*b & 0xf0) | 8)
                                        : (uint8_t)((*b & 0x0f) | 0x80);
                }
        }
        if (glmq_pack_write_rows(w, i, 0, rows, buf, &err) != GLMQ_OK) die(out, &err);
        if (td[i].type == GLMQ_TYPE_INT8 || td[i].type == GLMQ_TYPE_INT4) {
            uint16_t sc[8];
            for (int64_t r = 0; r < rows; r++) sc[r] = scales[(i + r) % 6];
            if (glmq_pack_write_scales(w, i, sc, &err) != GLMQ_OK) die(out, &err);
        }
        free(buf);
    }
    if (glmq_pack_writer_finish(w, "{\"format\": \"glmq\", \"config\": {}}", &err) != GLMQ_OK)
        die(out, &err);
}

/* Only quantized tensors and only non-empty blobs: every tensor contributes two regions (data,
 * scales), so the reader's region table is at its fullest (it was one entry short). */
static void write_allquant(const char *out)
{
    const glmq_pack_tensor_decl td[] = {{"q4", GLMQ_TYPE_INT4, 2, {1, 3}},
                                        {"q8", GLMQ_TYPE_INT8, 1, {2}}};
    const glmq_pack_blob_decl bd[] = {{"config.json", 2}};
    const uint8_t q4[64] = {0x19, 0x8f, 0x80}, q8[64] = {1, 0x81};
    const uint16_t s4 = 0x3c00, s8 = 0x2e66;
    glmq_pack_writer *w = NULL;
    glmq_err err = {0};
    if (glmq_pack_writer_create(out, td, 2, bd, 1, &w, &err) != GLMQ_OK ||
        glmq_pack_write_blob(w, 0, "{}", &err) != GLMQ_OK ||
        glmq_pack_write_rows(w, 0, 0, 1, q4, &err) != GLMQ_OK ||
        glmq_pack_write_scales(w, 0, &s4, &err) != GLMQ_OK ||
        glmq_pack_write_rows(w, 1, 0, 1, q8, &err) != GLMQ_OK ||
        glmq_pack_write_scales(w, 1, &s8, &err) != GLMQ_OK ||
        glmq_pack_writer_finish(w, "{}", &err) != GLMQ_OK)
        die(out, &err);
}

static void write_empty(const char *out)
{
    glmq_pack_writer *w = NULL;
    glmq_err err = {0};
    if (glmq_pack_writer_create(out, NULL, 0, NULL, 0, &w, &err) != GLMQ_OK ||
        glmq_pack_writer_finish(w, "{}", &err) != GLMQ_OK)
        die(out, &err);
}

// --- hostile packs -----------------------------------------------------------------------------

typedef struct {
    uint8_t *b;
    size_t n;
} buf;

static buf dup_buf(buf s)
{
    buf d = {malloc(s.n), s.n};
    memcpy(d.b, s.b, s.n);
    return d;
}

/* byte offsets of a tensor / blob directory entry */
static uint64_t tent(buf s, int i) { return glmq_rd_le64(s.b + 40) + (uint64_t)i * 128; }
static uint64_t bent(buf s, int i) { return glmq_rd_le64(s.b + 56) + (uint64_t)i * 64; }

static void emit_set64(buf s, const char *name, uint64_t off, uint64_t v, int sign)
{
    buf d = dup_buf(s);
    glmq_wr_le64(d.b + off, v);
    if (sign) resign(d.b, d.n);
    emit(name, d.b, d.n);
    free(d.b);
}

static void emit_set32(buf s, const char *name, uint64_t off, uint32_t v)
{
    buf d = dup_buf(s);
    glmq_wr_le32(d.b + off, v);
    resign(d.b, d.n);
    emit(name, d.b, d.n);
    free(d.b);
}

/* flip one byte (no re-signing: for bytes outside the header checksum, or to break it) */
static void emit_flip(buf s, const char *name, uint64_t off)
{
    buf d = dup_buf(s);
    d.b[off] ^= 0x5a;
    emit(name, d.b, d.n);
    free(d.b);
}

static void emit_trunc(buf s, const char *name, size_t n, int consistent)
{
    buf d = dup_buf(s);
    d.n = n;
    if (consistent && n >= 128) {
        glmq_wr_le64(d.b + 16, n);
        glmq_wr_le64(d.b + 120, 0); /* the fuzz target tries to sign it */
    }
    emit(name, d.b, d.n);
    free(d.b);
}

static void hostile_header(buf s, const char *base)
{
    char nm[128];
#define NAME(x) (snprintf(nm, sizeof nm, "mut-%s-%s", base, x), nm)
    const uint64_t nt = glmq_rd_le64(s.b + 48), nb = glmq_rd_le64(s.b + 64);
    emit_flip(s, NAME("magic"), 0);
    emit_flip(s, NAME("header-checksum"), 121);
    {
        buf d = dup_buf(s);
        glmq_wr_le16(d.b + 8, 2);
        resign(d.b, d.n);
        emit(NAME("version-major"), d.b, d.n);
        glmq_wr_le16(d.b + 8, 1);
        glmq_wr_le16(d.b + 10, 7); /* a higher minor is accepted */
        resign(d.b, d.n);
        emit(NAME("version-minor-ok"), d.b, d.n);
        free(d.b);
    }
    emit_set32(s, NAME("header-size"), 12, 127);
    emit_set64(s, NAME("file-size"), 16, s.n + 1, 1);
    emit_set64(s, NAME("strtab-beyond"), 24, s.n, 0);
    emit_set64(s, NAME("strtab-in-header"), 24, 64, 1);
    emit_set64(s, NAME("strtab-size-huge"), 32, UINT64_MAX - 8, 0);
    emit_set64(s, NAME("tdir-overflow"), 40, UINT64_MAX - 10, 0);
    emit_set64(s, NAME("tcount-absurd"), 48, (1u << 24) + 1, 0);
    emit_set64(s, NAME("tcount-big"), 48, 1u << 20, 0);
    if (nt) {
        emit_set64(s, NAME("tcount-plus1"), 48, nt + 1, 1);
        emit_set64(s, NAME("tcount-minus1"), 48, nt - 1, 1);
        emit_set64(s, NAME("tcount-zero"), 48, 0, 1);
    }
    emit_set64(s, NAME("bcount-absurd"), 64, (1u << 16) + 1, 0);
    emit_set64(s, NAME("bcount-plus1"), 64, nb + 1, 1);
    if (nb) emit_set64(s, NAME("bcount-zero"), 64, 0, 1);
    emit_set64(s, NAME("meta-beyond"), 72, s.n, 0);
    emit_set64(s, NAME("meta-size-plus1"), 80, glmq_rd_le64(s.b + 80) + 1, 0);
    emit_set64(s, NAME("meta-size-zero"), 80, 0, 1);
    const uint64_t mo = glmq_rd_le64(s.b + 72), ms = glmq_rd_le64(s.b + 80);
    {
        buf d = dup_buf(s);
        d.b[mo] = 'x';
        resign(d.b, d.n);
        emit(NAME("meta-not-json"), d.b, d.n);
        memset(d.b + mo, ' ', ms);
        memcpy(d.b + mo, "[]", 2);
        resign(d.b, d.n);
        emit(NAME("meta-array"), d.b, d.n);
        if (ms > 2) {
            memcpy(d.b + mo, "{}", 2);
            d.b[mo + 2] = 0; /* a NUL after a complete object */
            resign(d.b, d.n);
            emit(NAME("meta-nul"), d.b, d.n);
        }
        free(d.b);
    }
#undef NAME
}

/* tensor i, j: a quantized and a 16/32-bit tensor (j may equal i) */
static void hostile_tensor(buf s, const char *base, int i, int j)
{
    char nm[128];
#define NAME(x) (snprintf(nm, sizeof nm, "mut-%s-%s", base, x), nm)
    const uint64_t e = tent(s, i), f = tent(s, j);
    const uint64_t st_off = glmq_rd_le64(s.b + 24), st_size = glmq_rd_le64(s.b + 32);
    const uint64_t doff = glmq_rd_le64(s.b + e + 64), dsz = glmq_rd_le64(s.b + e + 72);
    const uint64_t soff = glmq_rd_le64(s.b + e + 80);
    /* names */
    emit_set64(s, NAME("name-outside"), e, st_off + st_size, 1);
    emit_set64(s, NAME("name-before"), e, st_off - 1, 1);
    emit_set32(s, NAME("name-len0"), e + 8, 0);
    emit_set32(s, NAME("name-len-huge"), e + 8, UINT32_MAX);
    emit_set32(s, NAME("name-no-nul"), e + 8, glmq_rd_le32(s.b + e + 8) - 1);
    {
        buf d = dup_buf(s);
        memcpy(d.b + f, d.b + e, 12); /* entry j takes entry i's name */
        resign(d.b, d.n);
        emit(NAME("name-duplicate"), d.b, d.n);
        free(d.b);
    }
    /* type and shape */
    emit_set32(s, NAME("type-unknown"), e + 12, 5);
    emit_set32(s, NAME("type-other-quant"), e + 12,
               glmq_rd_le32(s.b + e + 12) == GLMQ_TYPE_INT4 ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4);
    emit_set32(s, NAME("type-quant-for-float"), f + 12, GLMQ_TYPE_INT4);
    emit_set32(s, NAME("ndim0"), e + 16, 0);
    emit_set32(s, NAME("ndim5"), e + 16, 5);
    emit_set64(s, NAME("dim0"), e + 24, 0, 1);
    emit_set64(s, NAME("dim-huge"), e + 24, (UINT64_C(1) << 40) + 1, 1);
    emit_set64(s, NAME("dim-max"), e + 24, UINT64_MAX, 1);
    {
        buf d = dup_buf(s);
        glmq_wr_le32(d.b + e + 16, 4);
        for (int k = 0; k < 4; k++) glmq_wr_le64(d.b + e + 24 + 8 * k, UINT64_C(1) << 20);
        resign(d.b, d.n);
        emit(NAME("dims-overflow"), d.b, d.n);
        /* rows * stride overflows 64 bits while each dim passes */
        glmq_wr_le32(d.b + e + 16, 2);
        glmq_wr_le64(d.b + e + 24, UINT64_C(1) << 40);
        glmq_wr_le64(d.b + e + 32, UINT64_C(1) << 40);
        glmq_wr_le64(d.b + e + 56, glmq_row_bytes(glmq_rd_le32(d.b + e + 12), 1ll << 40));
        glmq_wr_le64(d.b + e + 72, 0);
        resign(d.b, d.n);
        emit(NAME("size-overflow"), d.b, d.n);
        free(d.b);
    }
    emit_set64(s, NAME("stride"), e + 56, glmq_rd_le64(s.b + e + 56) + 64, 1);
    emit_set64(s, NAME("data-size"), e + 72, dsz + 64, 1);
    /* offsets */
    emit_set64(s, NAME("data-misaligned"), e + 64, doff + 1, 1);
    emit_set64(s, NAME("data-beyond"), e + 64, (s.n + 63) / 64 * 64, 1);
    emit_set64(s, NAME("data-end-past-file"), e + 64, (s.n - dsz + 64) / 64 * 64, 1);
    emit_set64(s, NAME("data-overflow"), e + 64, UINT64_MAX - 63, 1);
    emit_set64(s, NAME("data-in-header"), e + 64, 0, 1);
    emit_set64(s, NAME("data-on-tdir"), e + 64, glmq_rd_le64(s.b + 40) / 64 * 64, 1);
    emit_set64(s, NAME("data-on-meta"), e + 64, glmq_rd_le64(s.b + 72) / 64 * 64, 1);
    emit_set64(s, NAME("scales-beyond"), e + 80, (s.n + 63) / 64 * 64, 1);
    emit_set64(s, NAME("scales-misaligned"), e + 80, soff + 2, 1);
    emit_set64(s, NAME("scales-on-data"), e + 80, doff, 1);
    emit_set64(s, NAME("scales-size"), e + 88, glmq_rd_le64(s.b + e + 88) + 2, 1);
    emit_set64(s, NAME("scales-on-float"), f + 80, soff, 1);
    emit_set64(s, NAME("scales-size-on-float"), f + 88, 2, 1);
    if (i != j) {
        emit_set64(s, NAME("overlap-tensors"), f + 64, doff, 1);
        emit_set64(s, NAME("overlap-scales"), f + 64, soff, 1);
    }
    if (glmq_rd_le64(s.b + 64) > 0) {
        const uint64_t b0 = bent(s, 0);
        emit_set64(s, NAME("overlap-blob-tensor"), b0 + 16, doff, 1);
        emit_set64(s, NAME("blob-misaligned"), b0 + 16, glmq_rd_le64(s.b + b0 + 16) + 1, 1);
        emit_set64(s, NAME("blob-beyond"), b0 + 16, (s.n + 63) / 64 * 64, 1);
        emit_set64(s, NAME("blob-size-huge"), b0 + 24, UINT64_MAX - 63, 1);
        emit_set64(s, NAME("blob-name-outside"), b0, st_off + st_size + 5, 1);
        emit_set32(s, NAME("blob-name-len0"), b0 + 8, 0);
        emit_set64(s, NAME("blob-checksum"), b0 + 32, glmq_rd_le64(s.b + b0 + 32) ^ 1, 1);
        emit_flip(s, NAME("blob-byte"), glmq_rd_le64(s.b + b0 + 16));
    }
    /* checksums behind the header: open succeeds, verify fails */
    emit_set64(s, NAME("tensor-checksum"), e + 96, glmq_rd_le64(s.b + e + 96) ^ 1, 1);
    emit_flip(s, NAME("data-byte"), doff + dsz - 1);
    if (soff) emit_flip(s, NAME("scales-byte"), soff);
#undef NAME
}

static void truncations(buf s, const char *base)
{
    char nm[128];
#define NAME(x) (snprintf(nm, sizeof nm, "trunc-%s-%s", base, x), nm)
    emit_trunc(s, NAME("0"), 0, 0);
    emit_trunc(s, NAME("1"), 1, 0);
    emit_trunc(s, NAME("64"), 64, 0);
    emit_trunc(s, NAME("127"), 127, 0);
    emit_trunc(s, NAME("128"), 128, 0);
    emit_trunc(s, NAME("128-consistent"), 128, 1);
    emit_trunc(s, NAME("strtab"), glmq_rd_le64(s.b + 24) + 3, 1);
    emit_trunc(s, NAME("tdir"), glmq_rd_le64(s.b + 40) + 100, 1);
    emit_trunc(s, NAME("data"), glmq_rd_le64(s.b + tent(s, 0) + 64) + 10, 1);
    emit_trunc(s, NAME("meta"), glmq_rd_le64(s.b + 72) + 1, 1);
    emit_trunc(s, NAME("last-byte"), s.n - 1, 0);
#undef NAME
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_pack_corpus SAMPLES_DIR OUT_DIR\n");
        return 2;
    }
    out_dir = argv[2];
    mkdir(out_dir, 0755);
    char tmp[] = "/tmp/gen_pack_corpus.XXXXXX";
    if (!mkdtemp(tmp)) die("mkdtemp", NULL);
    char src[4096], full[4096], out[4096];
    snprintf(src, sizeof src, "%s/glm2-tiny/st", argv[1]);
    const glmq_type types[3] = {GLMQ_TYPE_INT4, GLMQ_TYPE_INT8, GLMQ_TYPE_F16};
    for (int t = 0; t < 3; t++) {
        glmq_convert_opts o;
        glmq_convert_opts_default(&o);
        o.weight_type = types[t];
        o.threads = 1;
        glmq_err err = {0};
        snprintf(full, sizeof full, "%s/full.glmq", tmp);
        if (glmq_convert(src, full, &o, NULL, &err) != GLMQ_OK) die(src, &err);
        snprintf(out, sizeof out, "%s/valid-glm2-%s", out_dir, glmq_type_name(types[t]));
        shrink(full, out);
        unlink(full);
    }
    rmdir(tmp);
    snprintf(out, sizeof out, "%s/valid-types", out_dir);
    write_types(out);
    snprintf(out, sizeof out, "%s/valid-empty", out_dir);
    write_empty(out);
    snprintf(out, sizeof out, "%s/valid-allquant", out_dir);
    write_allquant(out);

    const char *seeds[] = {"valid-glm2-int4", "valid-types", "valid-empty"};
    buf s[3];
    for (int k = 0; k < 3; k++) {
        snprintf(out, sizeof out, "%s/%s", out_dir, seeds[k]);
        s[k].b = read_file(out, &s[k].n);
        char nm[128];
        snprintf(nm, sizeof nm, "sign0-%s", seeds[k] + 6);
        emit_set64(s[k], nm, 120, 0, 0);
    }
    /* valid-types: tensor 0 is INT4, tensor 4 is F32 */
    hostile_header(s[1], "types");
    hostile_tensor(s[1], "types", 0, 4);
    hostile_tensor(s[1], "types-int8", 1, 5);
    truncations(s[1], "types");
    {   /* the first four tensors (all quantized) and the first blob: still a valid pack */
        buf d = dup_buf(s[1]);
        glmq_wr_le64(d.b + 48, 4);
        glmq_wr_le64(d.b + 64, 1);
        resign(d.b, d.n);
        emit("mut-types-quant-only", d.b, d.n);
        glmq_wr_le64(d.b + 120, 0);
        emit("sign0-types-quant-only", d.b, d.n);
        free(d.b);
    }
    hostile_header(s[2], "empty");
    /* valid-glm2-int4: a few on the real layout (its first tensor is the F16 embedding) */
    truncations(s[0], "glm2");
    emit_set64(s[0], "mut-glm2-tcount-plus1", 48, glmq_rd_le64(s[0].b + 48) + 1, 1);
    emit_flip(s[0], "mut-glm2-header-checksum", 120);
    emit_flip(s[0], "mut-glm2-data-byte", glmq_rd_le64(s[0].b + tent(s[0], 1) + 64));
    for (int k = 0; k < 3; k++) free(s[k].b);
    return 0;
}
