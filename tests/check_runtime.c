/*
 * check_runtime.c - the forward pass's choice of matmul path (runtime/forward.h): EXACT and
 * FAST run every INT4/INT8/F16/BF16 matrix on the kernels or fail naming the tensor, never
 * falling back to the reference matmul; F32 matrices take the documented plain-C path; the
 * REFERENCE mode stays available for views the kernels reject.
 *
 * Views are swapped into a checkpoint model (glmq_model_swap) to build what the kernels cannot
 * take. Expected values are the other forward modes' logits on the unmodified sample model
 * (whose agreement with PyTorch check_forward and check_metrics establish), never a stored
 * output of the path under test.
 */
#include "testutil.h"
#include "runtime/forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const int32_t ids_tail[] = {5, 17, 300, 1000, 42, 7, 250, 3, 99};
#define NIDS 11

static glmq_model *open_sample(const char *model)
{
    char *dir = tu_sample_path(model, "st");
    glmq_model *m = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(dir, &m, &err) == GLMQ_OK, "open %s: %s", dir, err.msg);
    free(dir);
    return m;
}

/* [gMASK] sop + a few ordinary ids (valid for both architectures). */
static void make_ids(const glmq_model *m, int32_t *ids)
{
    const glmq_config *c = glmq_model_config(m);
    ids[0] = (int32_t)c->tok_gmask;
    ids[1] = (int32_t)c->tok_sop;
    for (int i = 2; i < NIDS; i++) ids[i] = ids_tail[i - 2];
}

/* The expected tensor filling `slot` in `layer` (from the one tensor table). */
static glmq_expected_tensor find_slot(const glmq_model *m, glmq_slot slot, int64_t layer)
{
    glmq_expected_tensor *t = NULL, r;
    int64_t n = 0;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_config_tensors(glmq_model_config(m), &t, &n, &err), GLMQ_OK);
    int found = 0;
    for (int64_t i = 0; i < n && !found; i++)
        if (t[i].slot == slot && t[i].layer == layer) {
            r = t[i];
            found = 1;
        }
    ck_assert_msg(found, "slot %d layer %lld not in the table", (int)slot, (long long)layer);
    free(t);
    return r;
}

/* Logits [NIDS][vocab] of one full forward in `mode`, or NULL with *st set when create or eval
 * fails (err holds the message). */
static float *run(const glmq_model *m, glmq_forward_mode mode, glmq_status *st, glmq_err *err)
{
    int32_t ids[NIDS];
    make_ids(m, ids);
    const int64_t V = glmq_model_config(m)->vocab;
    glmq_forward *f = NULL;
    *st = glmq_forward_create_mode(m, 32, 2, mode, &f, err);
    if (*st != GLMQ_OK) {
        ck_assert_ptr_null(f);
        return NULL;
    }
    float *lg = malloc((size_t)(NIDS * V) * sizeof *lg);
    ck_assert_ptr_nonnull(lg);
    *st = glmq_forward_eval(f, ids, NIDS, lg, err);
    glmq_forward_free(f);
    if (*st != GLMQ_OK) {
        free(lg);
        return NULL;
    }
    return lg;
}

static float *run_ok(const glmq_model *m, glmq_forward_mode mode)
{
    glmq_err err = {0};
    glmq_status st;
    float *lg = run(m, mode, &st, &err);
    ck_assert_msg(st == GLMQ_OK, "%s forward: %s", glmq_forward_mode_name(mode), err.msg);
    return lg;
}

static const char *models[] = {"glm2-tiny", "glm1-tiny"};

/*
 * _i = model * 2 + (0: EXACT, 1: FAST). An F16 matrix view that carries a scale table breaks
 * the kernels' contract (dot.h: scales exactly for INT4/INT8). The kernel modes used to fall
 * back to the reference matmul for it without a word; now create refuses it, naming the
 * tensor, and the REFERENCE mode, asked for explicitly, still runs it.
 */
START_TEST(kernel_mode_refuses_at_create)
{
    const glmq_forward_mode mode = _i % 2 ? GLMQ_FWD_FAST : GLMQ_FWD_EXACT;
    glmq_model *m = open_sample(models[_i / 2]);
    const glmq_expected_tensor e = find_slot(m, GLMQ_SLOT_FHH, 1);
    float *want = run_ok(m, GLMQ_FWD_REFERENCE);

    const glmq_tensor_info *t = glmq_model_tensor(m, e.name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->type, GLMQ_TYPE_F16);
    uint16_t *scales = calloc((size_t)t->rows, sizeof *scales);
    glmq_tensor_info bad = *t, saved;
    bad.scales = scales;
    bad.scales_size = (size_t)t->rows * sizeof *scales;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_model_swap(m, e.name, &bad, &saved, &err), GLMQ_OK);

    glmq_status st;
    memset(&err, 0, sizeof err);
    ck_assert_ptr_null(run(m, mode, &st, &err));
    ck_assert_int_eq(st, GLMQ_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, e.name) != NULL, "message lacks the tensor name: %s", err.msg);
    ck_assert_msg(strstr(err.msg, glmq_forward_mode_name(mode)) != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "scales") != NULL, "message lacks the reason: %s", err.msg);

    /* the reference path, when asked for, still runs (F16 widening ignores the scales) */
    float *got = run_ok(m, GLMQ_FWD_REFERENCE);
    const int64_t V = glmq_model_config(m)->vocab;
    ck_assert_mem_eq(got, want, (size_t)(NIDS * V) * sizeof *got);

    glmq_model_swap(m, e.name, &saved, NULL, NULL);
    free(got);
    free(want);
    free(scales);
    glmq_model_close(m);
}
END_TEST

/* _i = model: a view swapped in after create is checked at eval: EXACT and FAST eval fail
 * naming the tensor and leave the cache empty; with the view swapped back they run. */
START_TEST(kernel_mode_refuses_at_eval)
{
    glmq_model *m = open_sample(models[_i]);
    const glmq_expected_tensor e = find_slot(m, GLMQ_SLOT_QKV, 0);
    const glmq_tensor_info *t = glmq_model_tensor(m, e.name);
    ck_assert_ptr_nonnull(t);
    uint16_t *scales = calloc((size_t)t->rows, sizeof *scales);
    glmq_tensor_info bad = *t, saved;
    bad.scales = scales;
    int32_t ids[NIDS];
    make_ids(m, ids);
    const int64_t V = glmq_model_config(m)->vocab;
    float *lg = malloc((size_t)(NIDS * V) * sizeof *lg);
    for (int fast = 0; fast < 2; fast++) {
        glmq_forward *f = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_forward_create_mode(m, 32, 1, fast ? GLMQ_FWD_FAST : GLMQ_FWD_EXACT,
                                                  &f, &err),
                         GLMQ_OK);
        ck_assert_int_eq(glmq_model_swap(m, e.name, &bad, &saved, &err), GLMQ_OK);
        ck_assert_int_eq(glmq_forward_eval(f, ids, NIDS, lg, &err), GLMQ_E_UNSUPPORTED);
        ck_assert_msg(strstr(err.msg, e.name) != NULL, "%s", err.msg);
        ck_assert_int_eq(glmq_forward_n_cached(f), 0);
        int64_t cl = 0, mp = 0;
        ck_assert_int_eq(glmq_forward_positions(f, NULL, NULL, &cl, &mp), 0);
        ck_assert_int_eq(cl, -1);
        ck_assert_int_eq(mp, -1);
        glmq_model_swap(m, e.name, &saved, NULL, NULL);
        memset(&err, 0, sizeof err);
        ck_assert_msg(glmq_forward_eval(f, ids, NIDS, lg, &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_int_eq(glmq_forward_n_cached(f), NIDS);
        glmq_forward_free(f);
    }
    free(lg);
    free(scales);
    glmq_model_close(m);
}
END_TEST

/* _i = model. F32 matrices are the documented exception: no kernel exists for them, so every
 * mode multiplies them with the plain-C fp32 loop, and glmq_forward_plain_matrices says so.
 * An F32 copy of an F16 matrix holds the same values, so REFERENCE logits are bit-identical and
 * EXACT logits agree to summation order. */
START_TEST(f32_matrices_take_the_plain_path)
{
    glmq_model *m = open_sample(models[_i]);
    const int64_t L = glmq_model_config(m)->n_layers, V = glmq_model_config(m)->vocab;
    float *ref = run_ok(m, GLMQ_FWD_REFERENCE), *exact = run_ok(m, GLMQ_FWD_EXACT);

    glmq_forward *f = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_forward_create_mode(m, 8, 1, GLMQ_FWD_REFERENCE, &f, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_forward_plain_matrices(f), 4 * L + 1);
    glmq_forward_free(f);
    ck_assert_int_eq(glmq_forward_create_mode(m, 8, 1, GLMQ_FWD_FAST, &f, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_forward_plain_matrices(f), 0); /* the sample is all F16 */
    glmq_forward_free(f);

    const glmq_expected_tensor e = find_slot(m, GLMQ_SLOT_DENSE, L - 1);
    const glmq_tensor_info *t = glmq_model_tensor(m, e.name);
    float *w = malloc((size_t)(t->rows * t->cols) * sizeof *w);
    for (int64_t r = 0; r < t->rows; r++)
        ck_assert_int_eq(glmq_tensor_row_f32(t, r, w + r * t->cols, &err), GLMQ_OK);
    glmq_tensor_info f32 = *t, saved;
    f32.type = GLMQ_TYPE_F32;
    f32.data = w;
    f32.row_stride = t->cols * 4;
    f32.data_size = (size_t)(t->rows * t->cols) * 4;
    ck_assert_int_eq(glmq_model_swap(m, e.name, &f32, &saved, &err), GLMQ_OK);

    for (int mi = 0; mi < 2; mi++) {
        const glmq_forward_mode mode = mi ? GLMQ_FWD_FAST : GLMQ_FWD_EXACT;
        ck_assert_msg(glmq_forward_create_mode(m, 8, 1, mode, &f, &err) == GLMQ_OK, "%s",
                      err.msg);
        ck_assert_int_eq(glmq_forward_plain_matrices(f), 1);
        glmq_forward_free(f);
    }
    float *got = run_ok(m, GLMQ_FWD_REFERENCE);
    ck_assert_mem_eq(got, ref, (size_t)(NIDS * V) * sizeof *got);
    free(got);
    got = run_ok(m, GLMQ_FWD_EXACT);
    double num = 0, den = 0;
    for (int64_t i = 0; i < NIDS * V; i++) {
        num += (double)(got[i] - exact[i]) * (got[i] - exact[i]);
        den += (double)exact[i] * exact[i];
    }
    ck_assert_msg(sqrt(num / den) < 1e-5, "EXACT with an F32 matrix: rel error %g",
                  sqrt(num / den));
    free(got);

    glmq_model_swap(m, e.name, &saved, NULL, NULL);
    free(w);
    free(ref);
    free(exact);
    glmq_model_close(m);
}
END_TEST

/* _i = model. The kernels read rows `row_stride` bytes apart: a copy of an F16 matrix with
 * padded rows gives the EXACT logits of the packed original bit for bit (the kernels used to
 * read it as if packed), and rows closer than a packed row are refused naming the tensor. */
START_TEST(kernel_mode_honours_row_stride)
{
    glmq_model *m = open_sample(models[_i]);
    const int64_t V = glmq_model_config(m)->vocab;
    float *exact = run_ok(m, GLMQ_FWD_EXACT);
    const glmq_expected_tensor e = find_slot(m, GLMQ_SLOT_H4H, 0);
    const glmq_tensor_info *t = glmq_model_tensor(m, e.name);
    ck_assert_int_eq(t->type, GLMQ_TYPE_F16);
    const int64_t rb = t->cols * 2, stride = rb + 96;
    uint8_t *pad = malloc((size_t)(t->rows * stride));
    memset(pad, 0x7c, (size_t)(t->rows * stride)); /* fp16 NaNs in the padding */
    for (int64_t r = 0; r < t->rows; r++)
        memcpy(pad + r * stride, (const uint8_t *)t->data + r * t->row_stride, (size_t)rb);
    glmq_tensor_info v = *t, saved;
    v.data = pad;
    v.row_stride = stride;
    v.data_size = (size_t)(t->rows * stride);
    glmq_err err = {0};
    ck_assert_int_eq(glmq_model_swap(m, e.name, &v, &saved, &err), GLMQ_OK);
    float *got = run_ok(m, GLMQ_FWD_EXACT);
    ck_assert_mem_eq(got, exact, (size_t)(NIDS * V) * sizeof *got);
    free(got);

    v.row_stride = rb - 2; /* overlapping rows */
    ck_assert_int_eq(glmq_model_swap(m, e.name, &v, NULL, &err), GLMQ_OK);
    glmq_status st;
    memset(&err, 0, sizeof err);
    ck_assert_ptr_null(run(m, GLMQ_FWD_FAST, &st, &err));
    ck_assert_int_eq(st, GLMQ_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, e.name) != NULL, "%s", err.msg);

    glmq_model_swap(m, e.name, &saved, NULL, NULL);
    free(pad);
    free(exact);
    glmq_model_close(m);
}
END_TEST

START_TEST(unknown_mode)
{
    glmq_model *m = open_sample("glm2-tiny");
    glmq_forward *f = (glmq_forward *)1;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_forward_create_mode(m, 8, 1, (glmq_forward_mode)3, &f, &err),
                     GLMQ_E_INVALID);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err.msg, "mode") != NULL, "%s", err.msg);
    glmq_model_close(m);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("matmul_path");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, kernel_mode_refuses_at_create, 0, 4);
    tcase_add_loop_test(tc, kernel_mode_refuses_at_eval, 0, 2);
    tcase_add_loop_test(tc, f32_matrices_take_the_plain_path, 0, 2);
    tcase_add_loop_test(tc, kernel_mode_honours_row_stride, 0, 2);
    tcase_add_test(tc, unknown_mode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
