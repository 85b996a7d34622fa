/*
 * gen_part_corpus.c - writes the seed corpus of fuzz_shard_part (tests/fuzz/corpus/shard_part/).
 *
 * Not built by CMake (its output is committed); to regenerate, from the repository root after
 * a build:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Isrc tests/fuzz/gen_part_corpus.c \
 *      build/libglmq_internal.a -lcjson -lxxhash -lz -lm -lpthread -o build/gen_part_corpus
 *   build/gen_part_corpus samples tests/fuzz/corpus/shard_part
 *
 * Valid parts, evaluated for real on samples/glm2-tiny (INT4 against the checkpoint, ctx 16,
 * at most 5 windows, so each file is a few KB):
 *   valid-fast-0of1      the fast kernels and the exact path beside them (2 modes), N = 1;
 *   valid-fast-1of2      shard 1 of 2 (windows 1 and 3);
 *   valid-strided-0of1   the strided protocol (stride 8) on the exact kernels (1 mode);
 *   valid-reference-2of3 the reference kernels, shard 2 of 3;
 *   valid-empty-6of8     shard 6 of 8 over 5 windows: no records at all.
 * sign0-*: the same with a zero trailer, which fuzz_shard_part signs before reading.
 * Mutations (mut-*) of valid-fast-1of2, re-signed so that the check itself is reached: every
 * header field out of its range, the string lengths, each field of a record (window index,
 * n_pos, agree, a negative sum or KL value), extra bytes; trunc-*: truncations at the header,
 * the strings, the records and the trailer; badsum-*: a flipped byte behind the checksum.
 */
#include "verify/shard.h"
#include "core/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *out_dir;

static void die(const char *what, const glmq_err *err)
{
    fprintf(stderr, "gen_part_corpus: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static void put(const char *name, const uint8_t *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) die(path, NULL);
}

static void resign(uint8_t *b, size_t n) { glmq_wr_le64(b + n - 8, XXH3_64bits(b, n - 8)); }

/* A valid part as bytes. */
static uint8_t *part(const glmq_model *r, const glmq_model *q, const int32_t *ids, int64_t n,
                     glmq_forward_mode mode, int strided, int shard, int n_shards, size_t *size)
{
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.ctx = 16;
    o.strided = strided;
    o.stride = 8;
    o.max_chunks = 5;
    o.threads = 1;
    o.mode = mode;
    o.ref_mode = mode == GLMQ_FWD_REFERENCE ? GLMQ_FWD_REFERENCE : GLMQ_FWD_EXACT;
    glmq_forward_mode modes[2] = {mode, GLMQ_FWD_EXACT};
    glmq_err err = {0};
    glmq_part *p = NULL;
    if (glmq_shard_eval(r, q, "glm2-tiny/st", "glm2-tiny-int4.glmq", "eval_en.txt", ids, n, &o,
                        modes, mode == GLMQ_FWD_FAST ? 2 : 1, shard, n_shards, &p, &err) != GLMQ_OK)
        die("shard", &err);
    p->seconds = 0.5;
    uint8_t *b = NULL;
    if (glmq_part_encode(p, &b, size, &err) != GLMQ_OK) die("encode", &err);
    glmq_part_free(p);
    return b;
}

static void with_sign0(const char *name, const uint8_t *b, size_t n)
{
    char nm[128];
    put(name, b, n);
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    memset(c + n - 8, 0, 8);
    snprintf(nm, sizeof nm, "sign0-%s", name + strlen("valid-"));
    put(nm, c, n);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_part_corpus SAMPLES_DIR OUT_DIR\n");
        return 2;
    }
    out_dir = argv[2];
    char src[4096], pack[4096];
    snprintf(src, sizeof src, "%s/glm2-tiny/st", argv[1]);
    snprintf(pack, sizeof pack, "%s/gen_part_corpus-q4.glmq", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                             : "/tmp");
    glmq_err err = {0};
    glmq_convert_opts co;
    glmq_convert_opts_default(&co);
    co.weight_type = GLMQ_TYPE_INT4;
    if (glmq_convert(src, pack, &co, NULL, &err) != GLMQ_OK) die("convert", &err);
    glmq_model *r = NULL, *q = NULL;
    if (glmq_model_open(src, &r, &err) != GLMQ_OK || glmq_model_open(pack, &q, &err) != GLMQ_OK)
        die("open", &err);
    char text[4096];
    snprintf(text, sizeof text, "%s/text/eval_en.txt", argv[1]);
    int32_t *ids = NULL;
    int64_t n = 0;
    if (glmq_eval_load_ids(r, text, NULL, &ids, &n, &err) != GLMQ_OK) die("ids", &err);

    size_t sz;
    uint8_t *b;
    b = part(r, q, ids, n, GLMQ_FWD_FAST, 0, 0, 1, &sz);
    with_sign0("valid-fast-0of1", b, sz);
    free(b);
    b = part(r, q, ids, n, GLMQ_FWD_EXACT, 1, 0, 1, &sz);
    with_sign0("valid-strided-0of1", b, sz);
    free(b);
    b = part(r, q, ids, n, GLMQ_FWD_REFERENCE, 0, 2, 3, &sz);
    with_sign0("valid-reference-2of3", b, sz);
    free(b);
    b = part(r, q, ids, n, GLMQ_FWD_FAST, 0, 6, 8, &sz);
    with_sign0("valid-empty-6of8", b, sz);
    free(b);
    size_t n0;
    uint8_t *good = part(r, q, ids, n, GLMQ_FWD_FAST, 0, 1, 2, &n0);
    with_sign0("valid-fast-1of2", good, n0);

    uint8_t *m = malloc(n0 + 64);
    const struct {
        const char *name;
        size_t off;
        int width;
        uint64_t v;
    } hdr[] = {
        {"magic", 0, 4, 0x51524c47},       {"version", 8, 4, 2},
        {"header-size", 12, 4, 64},         {"shard-eq-n", 16, 4, 2},
        {"shard-count-0", 20, 4, 0},        {"shard-count-big", 20, 4, 70000},
        {"ids-0", 24, 8, 0},                {"ids-big", 24, 8, 1ull << 41},
        {"windows-0", 40, 8, 0},            {"windows-gt-ids", 40, 8, 1ull << 40},
        {"windows-9", 40, 8, 9},            {"ctx-1", 48, 8, 1},
        {"ctx-big", 48, 8, 1ull << 30},     {"stride-default", 56, 8, 4},
        {"protocol-2", 64, 4, 2},           {"strided-no-stride", 64, 4, 1},
        {"modes-0", 68, 4, 0},              {"modes-3", 68, 4, 3},
        {"modes-1-with-second", 68, 4, 1},  {"mode-3", 72, 4, 3},
        {"refmode-9", 80, 4, 9},            {"layers-0", 84, 4, 0},
        {"layers-big", 84, 4, 1u << 20},    {"vocab-0", 88, 8, 0},
        {"vocab-big", 88, 8, 1ull << 32},   {"seconds-neg", 112, 8, 0xbff0000000000000ull},
        {"seconds-inf", 112, 8, 0x7ff0000000000000ull},
        {"seconds-nan", 112, 8, 0x7ff8000000000000ull},
        {"records-3", 120, 8, 3},           {"records-1", 120, 8, 1},
        {"string0-long", 128, 4, 5000},     {"string0-huge", 128, 4, 0xffffffffu},
        {"string0-nul", 132, 1, 0},
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        memcpy(m, good, n0);
        if (hdr[i].width == 8)
            glmq_wr_le64(m + hdr[i].off, hdr[i].v);
        else if (hdr[i].width == 4)
            glmq_wr_le32(m + hdr[i].off, (uint32_t)hdr[i].v);
        else
            m[hdr[i].off] = (uint8_t)hdr[i].v;
        resign(m, n0);
        char nm[128];
        snprintf(nm, sizeof nm, "mut-%s", hdr[i].name);
        put(nm, m, n0);
    }
    size_t off = 128;
    for (int i = 0; i < 10; i++) off += 4 + glmq_rd_le32(good + off);
    const size_t strings_end = off, m0 = off + 8;
    const uint64_t np = glmq_rd_le64(good + m0);
    const size_t mode_bytes = 16 + 8 * (7 + 2 * 2 + (size_t)np);
    const struct {
        const char *name;
        size_t off;
        uint64_t v;
    } rec[] = {
        {"rec-window-wrong", off, 3},
        {"rec-window-big", off, 1u << 20},
        {"rec-npos-gt-ctx", m0, 17},
        {"rec-npos-modes-differ", m0 + mode_bytes, 3},
        {"rec-npos-huge", m0 + 2 * mode_bytes + 8, 16},
        {"rec-agree-gt-npos", m0 + 8, np + 1},
        {"rec-kl-neg", m0 + 16 + 16, 0xbff0000000000000ull},
        {"rec-dlmax-neg", m0 + 16 + 48, 0x8000000000000001ull},
        {"rec-layer-num-neg", m0 + 16 + 56, 0xbff0000000000000ull},
        {"rec-layer-den-neg", m0 + 16 + 72 + 8, 0xbff0000000000000ull},
        {"rec-kld-neg", m0 + 16 + 88, 0xbff0000000000000ull},
        {"rec-kld-nan", m0 + 16 + 88, 0x7ff8000000000000ull},
        {"rec-kld-inf", m0 + 16 + 88 + 8, 0x7ff0000000000000ull},
        {"rec-kld-negzero", m0 + 16 + 88 + 16, 0x8000000000000000ull},
    };
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) {
        memcpy(m, good, n0);
        glmq_wr_le64(m + rec[i].off, rec[i].v);
        resign(m, n0);
        char nm[128];
        snprintf(nm, sizeof nm, "mut-%s", rec[i].name);
        put(nm, m, n0);
    }
    /* more positions than the ids / than the bytes */
    memcpy(m, good, n0);
    glmq_wr_le64(m + 24, 20); /* 20 text ids, but 28 scored positions */
    glmq_wr_le64(m + 40, 5);
    resign(m, n0);
    put("mut-scored-gt-ids", m, n0);
    memcpy(m, good, n0);
    glmq_wr_le64(m + 48, 1u << 20);
    glmq_wr_le64(m + m0 + 2 * mode_bytes + 8, 1u << 19);
    resign(m, n0);
    put("mut-npos-beyond-file", m, n0);
    /* extra bytes before the trailer */
    memcpy(m, good, n0 - 8);
    memset(m + n0 - 8, 0x5a, 16);
    resign(m, n0 + 8);
    put("mut-extra-bytes", m, n0 + 8);
    /* truncations, re-signed at the new end, and plain */
    const size_t cuts[] = {0, 7, 8, 11, 12, 100, 128, 135, 136, 140, strings_end,
                           strings_end + 8, m0 + 20, m0 + mode_bytes, n0 - 9, n0 - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char nm[128];
        snprintf(nm, sizeof nm, "trunc-%zu", cuts[i]);
        put(nm, good, cuts[i]);
        if (cuts[i] >= 144) {
            memcpy(m, good, cuts[i] - 8);
            resign(m, cuts[i]);
            snprintf(nm, sizeof nm, "trunc-signed-%zu", cuts[i]);
            put(nm, m, cuts[i]);
        }
    }
    const size_t flips[] = {20, 130, m0 + 30, n0 - 3};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(m, good, n0);
        m[flips[i]] ^= 0x10;
        char nm[128];
        snprintf(nm, sizeof nm, "badsum-%zu", flips[i]);
        put(nm, m, n0);
    }
    free(m);
    free(good);
    free(ids);
    glmq_model_close(q);
    glmq_model_close(r);
    remove(pack);
    return 0;
}
