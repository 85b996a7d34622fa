/*
 * check_gguf_model.c - GGUF files as glmq models (runtime/model_gguf.c, quant/ggml_repack.c).
 *
 * repack: glmq INT4/INT8 rows <-> ggml Q4_0/Q8_0 blocks. The expected blocks are spelled out
 * here from ggml's block definitions (fp16 d, then for Q4_0 byte j = (q[j] + 8) | (q[j + 16] +
 * 8) << 4; for Q8_0 the 32 codes), independently of the code under test; that ggml decodes the
 * exported bytes to glmq's values is proved by ggml itself in check_export_peer.
 */
#include "formats/layout.h"
#include "quant/ggml_repack.h"
#include "testutil.h"

#include <stdlib.h>

/* glmq INT4 row of `cols` codes q[] (-7..7), built from formats/SPEC.md §5 directly. */
static void make_int4(const int *q, int64_t cols, uint8_t *row)
{
    memset(row, 0x88, (size_t)glmq_q4_row_bytes(cols));
    for (int64_t j = 0; j < cols; j++) {
        int64_t b = j / 128, k = j % 128;
        uint8_t *p = &row[b * 64 + (k % 64)];
        unsigned nib = (unsigned)(q[j] + 8);
        *p = k < 64 ? (uint8_t)((*p & 0xF0) | nib) : (uint8_t)((*p & 0x0F) | (nib << 4));
    }
}

START_TEST(repack_q4_0)
{
    static const int64_t cols_list[] = {32, 64, 128, 160, 4096, 13696};
    const int64_t cols = cols_list[_i];
    uint64_t s = 42 + (uint64_t)cols;
    int *q = malloc((size_t)cols * sizeof *q);
    uint8_t *row = malloc((size_t)glmq_q4_row_bytes(cols));
    uint8_t *blk = malloc((size_t)(cols / 32 * 18));
    uint8_t *back = malloc((size_t)glmq_q4_row_bytes(cols));
    for (int64_t j = 0; j < cols; j++) q[j] = (int)(tu_splitmix64(&s) % 15) - 7;
    const uint16_t scale = 0x2e66;
    make_int4(q, cols, row);
    glmq_int4_row_to_q4_0(row, scale, cols, blk);
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *o = blk + b * 18;
        ck_assert_uint_eq(o[0] | (o[1] << 8), scale);
        for (int j = 0; j < 16; j++)
            ck_assert_uint_eq(o[2 + j], (unsigned)(q[b * 32 + j] + 8) |
                                            ((unsigned)(q[b * 32 + j + 16] + 8) << 4));
    }
    uint16_t d = 0;
    ck_assert_int_eq(glmq_q4_0_row_to_int4(blk, cols, back, &d), 1);
    ck_assert_uint_eq(d, scale);
    ck_assert_mem_eq(back, row, (size_t)glmq_q4_row_bytes(cols));
    /* blocks with different scales, a -8 code, an infinite scale: not a glmq row */
    if (cols > 32) {
        blk[18] ^= 1;
        ck_assert_int_eq(glmq_q4_0_row_to_int4(blk, cols, back, &d), 0);
        blk[18] ^= 1;
    }
    blk[2 + 5] &= 0xF0;
    ck_assert_int_eq(glmq_q4_0_row_to_int4(blk, cols, back, &d), 0);
    blk[2 + 5] |= 0x01;
    blk[0] = 0x00;
    blk[1] = 0x7C;
    for (int64_t b = 1; b < cols / 32; b++) memcpy(blk + b * 18, blk, 2);
    ck_assert_int_eq(glmq_q4_0_row_to_int4(blk, cols, back, &d), 0);
    free(q);
    free(row);
    free(blk);
    free(back);
}
END_TEST

START_TEST(repack_q8_0)
{
    static const int64_t cols_list[] = {32, 96, 128, 4096};
    const int64_t cols = cols_list[_i];
    uint64_t s = 7 + (uint64_t)cols;
    int8_t *row = calloc((size_t)glmq_q8_row_bytes(cols), 1);
    uint8_t *blk = malloc((size_t)(cols / 32 * 34));
    int8_t *back = malloc((size_t)glmq_q8_row_bytes(cols));
    for (int64_t j = 0; j < cols; j++) row[j] = (int8_t)((int)(tu_splitmix64(&s) % 255) - 127);
    const uint16_t scale = 0x1a2b;
    glmq_int8_row_to_q8_0(row, scale, cols, blk);
    for (int64_t b = 0; b < cols / 32; b++) {
        ck_assert_uint_eq(blk[b * 34] | (blk[b * 34 + 1] << 8), scale);
        ck_assert_mem_eq(blk + b * 34 + 2, row + b * 32, 32);
    }
    uint16_t d = 0;
    ck_assert_int_eq(glmq_q8_0_row_to_int8(blk, cols, back, &d), 1);
    ck_assert_uint_eq(d, scale);
    ck_assert_mem_eq(back, row, (size_t)glmq_q8_row_bytes(cols));
    blk[2] = 0x80; /* -128: not an INT8 code */
    ck_assert_int_eq(glmq_q8_0_row_to_int8(blk, cols, back, &d), 0);
    free(row);
    free(blk);
    free(back);
}
END_TEST

static Suite *gguf_model_suite(void)
{
    Suite *s = suite_create("gguf_model");
    TCase *tc = tcase_create("repack");
    tcase_add_loop_test(tc, repack_q4_0, 0, 6);
    tcase_add_loop_test(tc, repack_q8_0, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gguf_model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
