/*
 * check_ggml_peer.c - glmq's decoding of ggml tensor types (quant/ggml_dequant.c) judged by the
 * real ggml: the libggml-base.so of the pinned llama.cpp peer (tests/peer/ggml_peer.h), loaded
 * with dlopen. Built and run only when the peer is installed (CI always installs it).
 *
 *   type table   src/core/ggml_type.c against ggml_type_name / ggml_blck_size / ggml_type_size
 *                for every id 0..39 ggml knows; the decodable flag against the decoder.
 *   unsupported  every known type glmq does not decode is refused by name; bad lengths too.
 *   quantized    rows made by ggml's own quantize_<type> (with and without an importance
 *                matrix) from gaussian, heavy-outlier, all-zero, tiny (fp16- and
 *                fp32-subnormal scale), constant and negative-only inputs: ggml's
 *                dequantize_row_<type> and glmq's give the same bits (memcmp).
 *   random       rows of random bytes (every bit pattern; see RANDOM below for the one mask),
 *                plus every one of the 65536 fp16 values in each scale field, and every f16 and
 *                bf16 value: the same bits.
 *   widen        glmq_widen_row(GLMQ_TYPE_GGML + t) (the forward pass's path) gives the same
 *                bits as ggml, with the scalar and the dispatched kernel table.
 *   groups       glmq's group-wise round-to-nearest of 32 columns (INT4_G32 / INT8_G32,
 *                glmq_quantize_row_grouped) written as Q4_0 / Q8_0 blocks (the export's repack)
 *                is byte for byte what ggml's quantize_q4_0 / quantize_q8_0 write for the same
 *                rows, on every input kind above; and the repack back (the import of any Q4_0 /
 *                Q8_0 row) gives the same rows and scales.
 *   quantizer    peer_quantize (tests/peer/llama_quantize.c, llama.cpp's llama_model_quantize)
 *                turns an F32 GGUF of a tiny `chatglm` model, written here, into Q4_0 ... Q6_K
 *                files; every row of every tensor of each file decodes to the same bits.
 * Our decoder is always fed a misaligned copy of the bytes (ggml gets aligned ones).
 * Counts of rows and blocks compared per type are printed ("ggml-peer: ...").
 */
#include "core/ggml_type.h"
#include "peer/ggml_peer.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_repack.h"
#include "quant/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ggml_peer peer;
static int peer_ok;

static void peer_setup(void)
{
    char why[256] = "";
    const char *dir = ggml_peer_libdir(NULL);
    ck_assert_msg(dir != NULL, "GLMQ_PEER_LIBDIR is not set");
    peer_ok = ggml_peer_open(&peer, dir, why) == 0;
    ck_assert_msg(peer_ok, "cannot load the ggml peer from '%s': %s", dir, why);
}

/* The types glmq decodes. */
static const uint32_t dec_types[] = {
    GLMQ_GGML_F32,  GLMQ_GGML_F16,  GLMQ_GGML_BF16, GLMQ_GGML_Q4_0, GLMQ_GGML_Q4_1,
    GLMQ_GGML_Q5_0, GLMQ_GGML_Q5_1, GLMQ_GGML_Q8_0, GLMQ_GGML_Q2_K, GLMQ_GGML_Q3_K,
    GLMQ_GGML_Q4_K, GLMQ_GGML_Q5_K, GLMQ_GGML_Q6_K,
};
#define N_DEC ((int)(sizeof dec_types / sizeof dec_types[0]))

/* Byte offsets of the fp16 scale fields in one block of a quantized type (-1 ends). */
static const int *scale_fields(uint32_t t)
{
    static const int at0[] = {0, -1}, at02[] = {0, 2, -1}, q2k[] = {80, 82, -1},
                     q3k[] = {108, -1}, q6k[] = {208, -1}, none[] = {-1};
    switch (t) {
    case GLMQ_GGML_Q4_0:
    case GLMQ_GGML_Q5_0:
    case GLMQ_GGML_Q8_0: return at0;
    case GLMQ_GGML_Q4_1:
    case GLMQ_GGML_Q5_1:
    case GLMQ_GGML_Q4_K:
    case GLMQ_GGML_Q5_K: return at02;
    case GLMQ_GGML_Q2_K: return q2k;
    case GLMQ_GGML_Q3_K: return q3k;
    case GLMQ_GGML_Q6_K: return q6k;
    default: return none;
    }
}

/* ggml's decoding of n elements of type t from src (aligned) into y. F32 has no to-float
 * function in ggml (its rows are used as they are): the reference is the bytes themselves. */
static void peer_decode(uint32_t t, const void *src, int64_t n, float *y)
{
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t);
    switch (t) {
    case GLMQ_GGML_F32: memcpy(y, src, (size_t)n * 4); break;
    case GLMQ_GGML_F16: peer.fp16_to_fp32_row(src, y, n); break;
    case GLMQ_GGML_BF16: peer.bf16_to_fp32_row(src, y, n); break;
    default: {
        ggml_peer_dequant_fn f = ggml_peer_dequant(&peer, ti->name);
        ck_assert_msg(f != NULL, "peer lacks dequantize_row_%s", ti->name);
        f(src, y, n);
    }
    }
}

/* glmq's decoding of the same bytes, from a copy at an odd address. */
static glmq_status glmq_decode(uint32_t t, const void *src, int64_t n, float *y)
{
    const uint64_t bytes = glmq_ggml_row_bytes(t, n);
    uint8_t *buf = malloc(bytes + 1);
    memcpy(buf + 1, src, bytes);
    glmq_err err = {0};
    glmq_status st = glmq_ggml_dequant_row(t, buf + 1, n, y, &err);
    free(buf);
    return st;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Compare n decoded floats bit for bit; on a difference fail naming the element. */
static void assert_same_bits(const float *want, const float *got, int64_t n, const char *what,
                             uint32_t t, int64_t row)
{
    if (memcmp(want, got, (size_t)n * sizeof(float)) == 0) return;
    for (int64_t i = 0; i < n; i++) {
        if (fbits(want[i]) != fbits(got[i]))
            ck_abort_msg("%s: type %s row %lld element %lld: ggml 0x%08x (%g), glmq 0x%08x (%g)",
                         what, glmq_ggml_type_get(t)->name, (long long)row, (long long)i,
                         fbits(want[i]), (double)want[i], fbits(got[i]), (double)got[i]);
    }
}

/* Decode `rows` rows of n elements by ggml and by glmq (and through glmq_widen_row when
 * `widen`), all equal. */
static void compare_rows(uint32_t t, const uint8_t *data, int64_t rows, int64_t n,
                         const char *what, int widen)
{
    const uint64_t rb = glmq_ggml_row_bytes(t, n);
    ck_assert_uint_gt(rb, 0);
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = data + r * rb;
        peer_decode(t, row, n, a);
        memset(b, 0xa5, (size_t)n * sizeof(float));
        ck_assert_int_eq(glmq_decode(t, row, n, b), GLMQ_OK);
        assert_same_bits(a, b, n, what, t, r);
        if (widen) {
            const glmq_type gt = (glmq_type)(GLMQ_TYPE_GGML + t);
            memset(b, 0x5a, (size_t)n * sizeof(float));
            glmq_widen_row(NULL, gt, row, NULL, n, b);
            assert_same_bits(a, b, n, "widen (scalar table)", t, r);
            memset(b, 0x5a, (size_t)n * sizeof(float));
            glmq_widen_row(glmq_kernels_get(), gt, row, NULL, n, b);
            assert_same_bits(a, b, n, "widen (active table)", t, r);
        }
    }
    free(a);
    free(b);
}

static double gauss(uint64_t *s)
{
    double u1 = ((double)(tu_splitmix64(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(tu_splitmix64(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- the type table ------------------------------------------------------------------------- */

START_TEST(test_type_table)
{
    peer_setup();
    int known = 0;
    for (int id = 0; id < GLMQ_GGML_TYPE_LIMIT; id++) {
        const glmq_ggml_type_info *ti = glmq_ggml_type_get((uint32_t)id);
        /* ggml keeps retired ids in its table with block size 0 */
        const int64_t blk = peer.blck_size(id);
        if (blk == 0) {
            ck_assert_msg(ti == NULL, "id %d is retired in ggml but glmq names it '%s'", id,
                          ti ? ti->name : "");
            continue;
        }
        known++;
        ck_assert_msg(ti != NULL, "ggml type %d (%s) is missing from glmq's table", id,
                      peer.type_name(id));
        ck_assert_str_eq(ti->name, peer.type_name(id));
        ck_assert_int_eq(ti->block, blk);
        ck_assert_int_eq(ti->block_bytes, (int64_t)peer.type_size(id));
        /* the decodable flag is what the decoder does */
        float y[256];
        uint8_t zero[512] = {0};
        const glmq_status st = glmq_ggml_dequant_row((uint32_t)id, zero, ti->block, y, NULL);
        ck_assert_int_eq(st, ti->decodable ? GLMQ_OK : GLMQ_E_UNSUPPORTED);
    }
    int dec = 0;
    for (int id = 0; id < GLMQ_GGML_TYPE_LIMIT; id++)
        dec += glmq_ggml_type_get((uint32_t)id) && glmq_ggml_type_get((uint32_t)id)->decodable;
    ck_assert_int_eq(dec, N_DEC);
    printf("ggml-peer: type table: %d known ids of 0..%d agree with ggml\n", known,
           GLMQ_GGML_TYPE_LIMIT - 1);
}
END_TEST

START_TEST(test_unsupported)
{
    float y[512];
    uint8_t zero[1024] = {0};
    glmq_err err;
    for (int id = 0; id < GLMQ_GGML_TYPE_LIMIT; id++) {
        const glmq_ggml_type_info *ti = glmq_ggml_type_get((uint32_t)id);
        if (!ti || ti->decodable) continue;
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(glmq_ggml_dequant_row((uint32_t)id, zero, ti->block, y, &err),
                         GLMQ_E_UNSUPPORTED);
        char want[64];
        snprintf(want, sizeof want, "ggml type %s is not supported", ti->name);
        ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s'", err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "q4_K"));
    }
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_IQ2_XS, zero, 256, y, &err),
                     GLMQ_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "iq2_xs"));
    ck_assert_int_eq(glmq_ggml_dequant_row(4, zero, 32, y, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_TYPE_LIMIT, zero, 32, y, &err),
                     GLMQ_E_UNSUPPORTED);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_Q4_0, zero, 48, y, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "48"));
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_Q4_K, zero, 128, y, &err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_F16, zero, -2, y, &err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_F16, zero, 0, y, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_ggml_dequant_row(GLMQ_GGML_F16, NULL, 2, y, &err), GLMQ_E_INVALID);
}
END_TEST

/* ---- rows made by ggml's quantizer ----------------------------------------------------------- */

enum { IN_GAUSS, IN_OUTLIERS, IN_ZERO, IN_TINY16, IN_TINY32, IN_CONST, IN_NEG, IN_KINDS };
static const char *const in_names[IN_KINDS] = {
    "gaussian", "outliers", "zero", "tiny (fp16 subnormal)", "tiny (fp32 subnormal)", "constant",
    "negative-only"};

static void fill_input(int kind, float *x, int64_t n, uint64_t *s)
{
    for (int64_t i = 0; i < n; i++) {
        const double g = gauss(s);
        switch (kind) {
        case IN_GAUSS: x[i] = (float)g; break;
        case IN_OUTLIERS: x[i] = (float)(tu_splitmix64(s) % 50 == 0 ? g * 1000.0 : g * 0.01); break;
        case IN_ZERO: x[i] = 0.0f; break;
        case IN_TINY16: x[i] = (float)(g * 1e-7); break;
        case IN_TINY32: x[i] = (float)(g * 1e-39); break;
        case IN_CONST: x[i] = 0.7f; break;
        default: x[i] = (float)-fabs(g); break;
        }
    }
}

START_TEST(test_quantized_rows)
{
    peer_setup();
    const uint32_t t = dec_types[_i];
    if (t == GLMQ_GGML_F32) return; /* nothing to quantize */
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t);
    const int64_t lens32[] = {32, 96, 1024, 4352}, lensK[] = {256, 1024, 4352};
    const int64_t *lens = ti->block == 256 ? lensK : lens32;
    const int nlens = ti->block == 256 ? 3 : 4;
    const int64_t nrows = 3;
    uint64_t seed = 0x6a09e667f3bcc908ull + t;
    long rows_done = 0, blocks_done = 0;
    for (int li = 0; li < nlens; li++) {
        const int64_t n = lens[li];
        float *x = malloc((size_t)(n * nrows) * sizeof(float));
        float *imat = malloc((size_t)n * sizeof(float));
        const uint64_t rb = glmq_ggml_row_bytes(t, n);
        uint8_t *q = malloc(rb * nrows + 64);
        for (int kind = 0; kind < IN_KINDS; kind++) {
            fill_input(kind, x, n * nrows, &seed);
            for (int with_im = 0; with_im < 2; with_im++) {
                for (int64_t j = 0; j < n; j++)
                    imat[j] = (float)(0.05 + (double)(tu_splitmix64(&seed) % 1000) / 100.0);
                memset(q, 0, rb * nrows);
                if (t == GLMQ_GGML_F16 || t == GLMQ_GGML_BF16) {
                    if (with_im) continue; /* no importance matrix for plain types */
                    (t == GLMQ_GGML_F16 ? peer.fp32_to_fp16_row
                                        : peer.fp32_to_bf16_row)(x, q, n * nrows);
                } else {
                    ggml_peer_quant_fn f = ggml_peer_quant(&peer, ti->name);
                    ck_assert_msg(f != NULL, "peer lacks quantize_%s", ti->name);
                    const size_t w = f(x, q, nrows, n, with_im ? imat : NULL);
                    ck_assert_uint_eq(w, rb * nrows);
                }
                char what[96];
                snprintf(what, sizeof what, "quantized %s%s n=%lld", in_names[kind],
                         with_im ? " +imatrix" : "", (long long)n);
                compare_rows(t, q, nrows, n, what, 1);
                rows_done += nrows;
                blocks_done += (long)(nrows * n / ti->block);
            }
        }
        free(x);
        free(imat);
        free(q);
    }
    printf("ggml-peer: %s: %ld rows (%ld blocks) made by ggml's quantizer decode identically\n",
           ti->name, rows_done, blocks_done);
}
END_TEST

/* glmq's group-wise RTN of 32 columns against ggml's quantizer of the same type, byte for byte. */
START_TEST(test_group_rtn)
{
    peer_setup();
    const int q4 = _i == 0;
    const glmq_type gt = q4 ? GLMQ_TYPE_INT4_G32 : GLMQ_TYPE_INT8_G32;
    const uint32_t t = q4 ? GLMQ_GGML_Q4_0 : GLMQ_GGML_Q8_0;
    ggml_peer_quant_fn f = ggml_peer_quant(&peer, q4 ? "q4_0" : "q8_0");
    ck_assert_ptr_nonnull(f);
    const int64_t lens[] = {32, 96, 128, 1024, 4352};
    uint64_t seed = 0x3c6ef372fe94f82bull + (uint64_t)_i;
    long rows_done = 0;
    for (int li = 0; li < 5; li++) {
        const int64_t n = lens[li], nrows = 4;
        const uint64_t rb = glmq_ggml_row_bytes(t, n);
        float *x = malloc((size_t)(n * nrows) * sizeof(float));
        uint8_t *want = malloc(rb * (uint64_t)nrows), *got = malloc(rb), *back = malloc(rb);
        uint8_t *row = malloc((size_t)glmq_row_bytes(gt, n)), *row2 = malloc((size_t)glmq_row_bytes(gt, n));
        const int64_t spr = glmq_scales_per_row(gt, n);
        uint16_t *sc = malloc((size_t)spr * 2), *sc2 = malloc((size_t)spr * 2);
        for (int kind = 0; kind < IN_KINDS; kind++) {
            fill_input(kind, x, n * nrows, &seed);
            ck_assert_uint_eq(f(x, want, nrows, n, NULL), rb * (uint64_t)nrows);
            for (int64_t r = 0; r < nrows; r++) {
                ck_assert_int_eq(glmq_quantize_row_grouped(gt, x + r * n, n, row, sc, NULL, NULL),
                                 GLMQ_OK);
                for (int64_t g = 0; g < spr; g++) glmq_wr_le16(&sc[g], sc[g]); /* as stored */
                (q4 ? glmq_int4_row_to_q4_0 : glmq_int8_row_to_q8_0)(row, sc, 32, n, got);
                ck_assert_msg(memcmp(got, want + (uint64_t)r * rb, rb) == 0,
                              "%s %s n=%lld row %lld: glmq's blocks differ from ggml's",
                              glmq_type_name(gt), in_names[kind], (long long)n, (long long)r);
                /* and back: any such row imports as the same codes and scales */
                ck_assert_int_eq((q4 ? glmq_q4_0_row_to_int4g32 : glmq_q8_0_row_to_int8g32)(
                                     want + (uint64_t)r * rb, n, row2, sc2),
                                 1);
                ck_assert_mem_eq(row2, row, (size_t)glmq_row_bytes(gt, n));
                ck_assert_mem_eq(sc2, sc, (size_t)spr * 2);
                rows_done++;
            }
        }
        free(x);
        free(want);
        free(got);
        free(back);
        free(row);
        free(row2);
        free(sc);
        free(sc2);
    }
    printf("ggml-peer: %s round-to-nearest of %ld rows is ggml's %s, byte for byte\n",
           glmq_type_name(gt), rows_done, glmq_ggml_type_get(t)->name);
}
END_TEST

/* ---- random bytes ----------------------------------------------------------------------------
 * RANDOM: every byte random, except in one case: when both fp16 fields of a block (d and m, or
 * d and dmin) hold a NaN, the second is made finite (its exponent bit 14 cleared). Both decoders
 * then give NaN, but which of the two NaN payloads survives `x * d + m` depends on the operand
 * order each compiler picked for the commutative add (x86 keeps the first operand's payload);
 * that is not a property of the format (the peer's own q4_1 and q5_1 differ in it). A single NaN
 * field, infinities and every other pattern are kept, and the sweep below puts each of the
 * 65536 patterns, NaNs included, in each scale field. */

static void mask_nan_pair(uint32_t t, uint8_t *blk)
{
    const int *f = scale_fields(t);
    if (f[0] < 0 || f[1] < 0) return;
    const uint16_t a = glmq_rd_le16(blk + f[0]), b = glmq_rd_le16(blk + f[1]);
    const int a_nan = (a & 0x7c00) == 0x7c00 && (a & 0x3ff);
    const int b_nan = (b & 0x7c00) == 0x7c00 && (b & 0x3ff);
    if (a_nan && b_nan) glmq_wr_le16(blk + f[1], (uint16_t)(b & ~0x4000));
}

START_TEST(test_random_rows)
{
    peer_setup();
    const uint32_t t = dec_types[_i];
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t);
    uint64_t seed = 0xbb67ae8584caa73bull + t;
    const int64_t blocks_per_row = ti->block == 1 ? 4096 : (ti->block == 32 ? 64 : 16);
    const int64_t n = blocks_per_row * ti->block, rows = 256;
    const uint64_t rb = glmq_ggml_row_bytes(t, n);
    uint8_t *data = malloc(rb * rows);
    for (uint64_t i = 0; i < rb * rows; i++) data[i] = (uint8_t)tu_splitmix64(&seed);
    if (ti->block > 1)
        for (int64_t b = 0; b < blocks_per_row * rows; b++)
            mask_nan_pair(t, data + b * ti->block_bytes);
    compare_rows(t, data, rows, n, "random bytes", 1);
    long sweep_blocks = 0;
    if (ti->block > 1) {
        /* Scale sweep: block v has first scale field = v (all 65536 patterns, NaNs included),
         * the other scale field a finite value, the rest random. */
        const int64_t nb = 65536;
        uint8_t *sw = malloc((size_t)nb * ti->block_bytes);
        for (int64_t v = 0; v < nb; v++) {
            uint8_t *blk = sw + v * ti->block_bytes;
            for (int i = 0; i < ti->block_bytes; i++) blk[i] = (uint8_t)tu_splitmix64(&seed);
            const int *f = scale_fields(t);
            if (f[1] >= 0) { /* second field: finite */
                uint16_t h = (uint16_t)tu_splitmix64(&seed);
                if ((h & 0x7c00) == 0x7c00) h = (uint16_t)(h & ~0x4000);
                glmq_wr_le16(blk + f[1], h);
            }
            glmq_wr_le16(blk + f[0], (uint16_t)v);
        }
        compare_rows(t, sw, nb / 64, 64 * ti->block, "scale sweep", 0);
        /* and the same with the roles swapped: every pattern in the second field */
        if (scale_fields(t)[1] >= 0) {
            for (int64_t v = 0; v < nb; v++) {
                uint8_t *blk = sw + v * ti->block_bytes;
                const int *f = scale_fields(t);
                uint16_t h = glmq_rd_le16(blk + f[1]);
                glmq_wr_le16(blk + f[1], (uint16_t)v);
                glmq_wr_le16(blk + f[0], h);
            }
            compare_rows(t, sw, nb / 64, 64 * ti->block, "scale sweep (second field)", 0);
            sweep_blocks += nb;
        }
        sweep_blocks += nb;
        free(sw);
    } else if (t != GLMQ_GGML_F32) {
        /* every 16-bit pattern once */
        uint8_t all[65536 * 2];
        for (int v = 0; v < 65536; v++) glmq_wr_le16(all + 2 * v, (uint16_t)v);
        compare_rows(t, all, 1, 65536, "all 65536 patterns", 1);
        sweep_blocks = 65536;
    }
    printf("ggml-peer: %s: %lld random rows (%lld blocks) and %ld sweep blocks decode "
           "identically\n",
           ti->name, (long long)rows, (long long)(rows * blocks_per_row), sweep_blocks);
    free(data);
}
END_TEST

/* ---- llama.cpp's quantizer on a tiny chatglm GGUF -------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v)
{
    uint8_t x[4];
    glmq_wr_le32(x, v);
    put(b, x, 4);
}
static void put_u64(buf *b, uint64_t v)
{
    uint8_t x[8];
    glmq_wr_le64(x, v);
    put(b, x, 8);
}
static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_u32(buf *b, const char *k, uint32_t v)
{
    put_str(b, k);
    put_u32(b, 4); /* GGUF uint32 */
    put_u32(b, v);
}

/* The tiny model: hidden 256, 2 layers, 4 heads of 64, 2 KV groups, ffn 512, vocab 320 (every
 * matrix row a multiple of 256, so the K types apply everywhere). */
#define TM_EMBD 256
#define TM_FF 512
#define TM_VOCAB 320
#define TM_QKV (TM_EMBD + 2 * 2 * 64)
typedef struct {
    char name[48];
    int64_t ne0, ne1; /* ne1 = 1 for vectors */
} tm_tensor;

static int tiny_tensors(tm_tensor *t)
{
    int n = 0;
#define ADD(nm, a, b)                                                                           \
    (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].ne0 = a, t[n].ne1 = b, n++)
    ADD("token_embd.weight", TM_EMBD, TM_VOCAB);
    for (int l = 0; l < 2; l++) {
        char s[48];
        snprintf(s, sizeof s, "blk.%d.attn_norm.weight", l), ADD(s, TM_EMBD, 1);
        snprintf(s, sizeof s, "blk.%d.attn_qkv.weight", l), ADD(s, TM_EMBD, TM_QKV);
        snprintf(s, sizeof s, "blk.%d.attn_qkv.bias", l), ADD(s, TM_QKV, 1);
        snprintf(s, sizeof s, "blk.%d.attn_output.weight", l), ADD(s, TM_EMBD, TM_EMBD);
        snprintf(s, sizeof s, "blk.%d.ffn_norm.weight", l), ADD(s, TM_EMBD, 1);
        snprintf(s, sizeof s, "blk.%d.ffn_up.weight", l), ADD(s, TM_EMBD, 2 * TM_FF);
        snprintf(s, sizeof s, "blk.%d.ffn_down.weight", l), ADD(s, TM_FF, TM_EMBD);
    }
    ADD("output_norm.weight", TM_EMBD, 1);
    ADD("output.weight", TM_EMBD, TM_VOCAB);
#undef ADD
    return n;
}

/* Write the tiny model as a GGUF v3 file of F32 tensors (a writer of our own, from the GGUF
 * spec: header, metadata, tensor infos, padding to 32, data). */
static int write_tiny_gguf(const char *path)
{
    tm_tensor tt[32];
    const int nt = tiny_tensors(tt);
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)nt);
    put_u64(&b, 10);
    put_str(&b, "general.architecture");
    put_u32(&b, 8); /* string */
    put_str(&b, "chatglm");
    put_str(&b, "general.name");
    put_u32(&b, 8);
    put_str(&b, "glmq tiny peer test");
    kv_u32(&b, "general.file_type", 0); /* all F32 */
    kv_u32(&b, "chatglm.context_length", 512);
    kv_u32(&b, "chatglm.embedding_length", TM_EMBD);
    kv_u32(&b, "chatglm.feed_forward_length", TM_FF);
    kv_u32(&b, "chatglm.block_count", 2);
    kv_u32(&b, "chatglm.attention.head_count", 4);
    kv_u32(&b, "chatglm.attention.head_count_kv", 2);
    put_str(&b, "chatglm.attention.layer_norm_rms_epsilon");
    put_u32(&b, 6); /* float32 */
    float eps = 1e-5f;
    uint32_t eb;
    memcpy(&eb, &eps, 4);
    put_u32(&b, eb);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        put_str(&b, tt[i].name);
        const int vec = tt[i].ne1 == 1;
        put_u32(&b, vec ? 1 : 2);
        put_u64(&b, (uint64_t)tt[i].ne0);
        if (!vec) put_u64(&b, (uint64_t)tt[i].ne1);
        put_u32(&b, GLMQ_GGML_F32);
        put_u64(&b, off);
        off += (uint64_t)(tt[i].ne0 * tt[i].ne1 * 4);
        off = (off + 31) / 32 * 32;
    }
    while (b.n % 32) put(&b, "", 1);
    const size_t data0 = b.n;
    uint64_t seed = 0x3c6ef372fe94f82bull;
    for (int i = 0; i < nt; i++) {
        while ((b.n - data0) % 32) put(&b, "", 1);
        const int norm = strstr(tt[i].name, "norm") != NULL;
        for (int64_t j = 0; j < tt[i].ne0 * tt[i].ne1; j++) {
            double g = gauss(&seed);
            /* mostly small weights with a few outliers, as in real checkpoints */
            float v = norm ? (float)(1.0 + 0.1 * g)
                           : (float)(tu_splitmix64(&seed) % 500 == 0 ? g : 0.02 * g);
            uint32_t u;
            memcpy(&u, &v, 4);
            put_u32(&b, u);
        }
    }
    const int rc = tu_write_file(path, b.p, b.n);
    free(b.p);
    return rc;
}

/* A minimal GGUF reader for the quantizer's output (the files are trusted here: llama.cpp
 * wrote them; every read is still bounds-checked so that a bad file fails, not crashes). */
typedef struct {
    char name[96];
    uint32_t type;
    int64_t ne[4];
    uint32_t n_dims;
    uint64_t off;
} rd_tensor;

static int rd(const uint8_t *p, size_t n, size_t *at, void *out, size_t k)
{
    if (*at > n || n - *at < k) return -1;
    if (out) memcpy(out, p + *at, k);
    *at += k;
    return 0;
}

static int skip_value(const uint8_t *p, size_t n, size_t *at, uint32_t vt)
{
    static const int sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8};
    if (vt > 12) return -1;
    if (vt == 8) {
        uint8_t l[8];
        if (rd(p, n, at, l, 8)) return -1;
        return rd(p, n, at, NULL, glmq_rd_le64(l));
    }
    if (vt == 9) {
        uint8_t h[12];
        if (rd(p, n, at, h, 12)) return -1;
        const uint32_t et = glmq_rd_le32(h);
        const uint64_t cnt = glmq_rd_le64(h + 4);
        if (et == 9 || et > 12 || cnt > n) return -1;
        for (uint64_t i = 0; i < cnt; i++)
            if (skip_value(p, n, at, et)) return -1;
        return 0;
    }
    return rd(p, n, at, NULL, (size_t)sz[vt]);
}

/* Parse the tensor table; returns the count (<= max) or -1; *data0 = start of the data. */
static int read_gguf_tensors(const uint8_t *p, size_t n, rd_tensor *t, int max, size_t *data0)
{
    size_t at = 0;
    uint8_t h[24];
    if (rd(p, n, &at, h, 24) || memcmp(h, "GGUF", 4) != 0) return -1;
    const uint64_t nt = glmq_rd_le64(h + 8), nkv = glmq_rd_le64(h + 16);
    if (nt > (uint64_t)max) return -1;
    uint64_t align = 32;
    for (uint64_t i = 0; i < nkv; i++) {
        uint8_t l[8], vt[4];
        char key[128] = "";
        if (rd(p, n, &at, l, 8)) return -1;
        const uint64_t kl = glmq_rd_le64(l);
        if (kl < sizeof key) {
            if (rd(p, n, &at, key, kl)) return -1;
        } else if (rd(p, n, &at, NULL, kl)) {
            return -1;
        }
        if (rd(p, n, &at, vt, 4)) return -1;
        const size_t vat = at;
        if (skip_value(p, n, &at, glmq_rd_le32(vt))) return -1;
        if (strcmp(key, "general.alignment") == 0 && glmq_rd_le32(vt) == 4)
            align = glmq_rd_le32(p + vat);
    }
    for (uint64_t i = 0; i < nt; i++) {
        uint8_t l[8], v[8];
        if (rd(p, n, &at, l, 8) || glmq_rd_le64(l) >= sizeof t[i].name) return -1;
        memset(t[i].name, 0, sizeof t[i].name);
        if (rd(p, n, &at, t[i].name, glmq_rd_le64(l)) || rd(p, n, &at, v, 4)) return -1;
        t[i].n_dims = glmq_rd_le32(v);
        if (t[i].n_dims < 1 || t[i].n_dims > 4) return -1;
        for (int d = 0; d < 4; d++) t[i].ne[d] = 1;
        for (uint32_t d = 0; d < t[i].n_dims; d++) {
            if (rd(p, n, &at, v, 8)) return -1;
            t[i].ne[d] = (int64_t)glmq_rd_le64(v);
        }
        if (rd(p, n, &at, v, 4)) return -1;
        t[i].type = glmq_rd_le32(v);
        if (rd(p, n, &at, v, 8)) return -1;
        t[i].off = glmq_rd_le64(v);
    }
    if (align == 0) return -1;
    *data0 = (at + align - 1) / align * align;
    return (int)nt;
}

static const struct {
    const char *ftype;
    uint32_t main_type; /* the ggml type most matrices of the file get */
} qfiles[] = {
    {"Q4_0", GLMQ_GGML_Q4_0}, {"Q4_1", GLMQ_GGML_Q4_1},     {"Q5_0", GLMQ_GGML_Q5_0},
    {"Q5_1", GLMQ_GGML_Q5_1}, {"Q8_0", GLMQ_GGML_Q8_0},     {"Q2_K", GLMQ_GGML_Q2_K},
    {"Q3_K_M", GLMQ_GGML_Q3_K}, {"Q4_K_M", GLMQ_GGML_Q4_K}, {"Q5_K_M", GLMQ_GGML_Q5_K},
    {"Q6_K", GLMQ_GGML_Q6_K},
};

START_TEST(test_llama_quantize)
{
    peer_setup();
    const char *tool = getenv("GLMQ_PEER_QUANTIZE");
    ck_assert_msg(tool && *tool, "GLMQ_PEER_QUANTIZE is not set");
    char *dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(dir);
    char *in = tu_path(dir, "tiny-f32.gguf");
    char *out = tu_path(dir, "tiny-q.gguf");
    ck_assert_int_eq(write_tiny_gguf(in), 0);

    char *log = NULL;
    const int rc = tu_run(&log, "'%s' --quiet --threads 2 '%s' '%s' %s", tool, in, out,
                          qfiles[_i].ftype);
    ck_assert_msg(rc == 0, "peer_quantize %s failed (%d): %s", qfiles[_i].ftype, rc,
                  log ? log : "");
    free(log);

    size_t n = 0;
    uint8_t *p = tu_read_file(out, &n);
    ck_assert_ptr_nonnull(p);
    rd_tensor t[64];
    size_t data0 = 0;
    const int nt = read_gguf_tensors(p, n, t, 64, &data0);
    tm_tensor src[32];
    ck_assert_int_eq(nt, tiny_tensors(src));
    int per_type[GLMQ_GGML_TYPE_LIMIT] = {0};
    long rows = 0;
    for (int i = 0; i < nt; i++) {
        const glmq_ggml_type_info *ti = glmq_ggml_type_get(t[i].type);
        ck_assert_msg(ti && ti->decodable, "%s: tensor %s has type %u", qfiles[_i].ftype,
                      t[i].name, t[i].type);
        const int64_t r = t[i].ne[1] * t[i].ne[2] * t[i].ne[3];
        const uint64_t rb = glmq_ggml_row_bytes(t[i].type, t[i].ne[0]);
        ck_assert_uint_le(data0 + t[i].off + rb * (uint64_t)r, n);
        compare_rows(t[i].type, p + data0 + t[i].off, r, t[i].ne[0], t[i].name, 1);
        per_type[t[i].type]++;
        rows += r;
    }
    ck_assert_msg(per_type[qfiles[_i].main_type] > 0, "%s: no tensor of type %s",
                  qfiles[_i].ftype, glmq_ggml_type_get(qfiles[_i].main_type)->name);
    printf("ggml-peer: llama_model_quantize %s: %d tensors, %ld rows decode identically (",
           qfiles[_i].ftype, nt, rows);
    for (int ty = 0; ty < GLMQ_GGML_TYPE_LIMIT; ty++)
        if (per_type[ty]) printf(" %s:%d", glmq_ggml_type_get((uint32_t)ty)->name, per_type[ty]);
    printf(" )\n");
    free(p);
    tu_rmtree(dir);
    free(in);
    free(out);
    free(dir);
}
END_TEST

static Suite *ggml_peer_suite(void)
{
    Suite *s = suite_create("ggml_peer");
    TCase *tc = tcase_create("ggml_peer");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_type_table);
    tcase_add_test(tc, test_unsupported);
    tcase_add_loop_test(tc, test_quantized_rows, 0, N_DEC);
    tcase_add_loop_test(tc, test_random_rows, 0, N_DEC);
    tcase_add_loop_test(tc, test_group_rtn, 0, 2);
    tcase_add_loop_test(tc, test_llama_quantize, 0, (int)(sizeof qfiles / sizeof qfiles[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ggml_peer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
