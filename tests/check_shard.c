/*
 * check_shard.c - sharded verify (verify/shard.h): partial results, their merge and `glmq merge`.
 *
 * The claim under test is that a run split into N shards and merged gives the single-process
 * result bit for bit. The single-process evaluation (glmq_drift_eval_modes, the path `glmq
 * verify` takes) is the reference; every metric of the merge, every KL value and every
 * per-layer error must be the same bits, and the JSON reports the same text apart from the
 * timing and the shard count, for N = 1, 2, 3, 7 (and the strided protocol and the reference
 * kernels). The partial file is also read as hostile input: every flipped byte, every
 * truncation and a re-signed mutation of every checked field must be refused with a message
 * naming the file, and merging parts that are not the N shards of one run must be refused
 * naming the offending file.
 */
#include "verify/shard.h"
#include "core/hash.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static char *tmpdir, *q4, *ref_dir, *text;

static void setup(void)
{
    tmpdir = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmpdir);
    glmq_err err = {0};
    q4 = tu_convert_sample(tmpdir, "glm2-tiny", GLMQ_TYPE_INT4, &err);
    ck_assert_msg(q4 != NULL, "%s", err.msg);
    ref_dir = tu_sample_path("glm2-tiny", "st");
    text = tu_path(tu_samples(), "text/eval_en.txt");
}

static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
    free(q4);
    free(ref_dir);
    free(text);
}

/* Both models and the ids of `text_file`, tokenized by the reference. */
typedef struct {
    glmq_model *q, *r;
    int32_t *ids;
    int64_t n;
} run;

static void run_open(run *x, const char *quant, const char *text_file)
{
    glmq_err err = {0};
    memset(x, 0, sizeof *x);
    ck_assert_msg(glmq_model_open(quant, &x->q, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_msg(glmq_model_open(ref_dir, &x->r, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_msg(glmq_eval_load_ids(x->r, text_file, NULL, &x->ids, &x->n, &err) == GLMQ_OK,
                  "%s", err.msg);
}

static void run_close(run *x)
{
    glmq_model_close(x->q);
    glmq_model_close(x->r);
    free(x->ids);
}

/* verify's options: ctx, protocol, kernels (fast: fast + exact beside it) */
static void opts(glmq_eval_opts *o, int64_t ctx, int strided, glmq_forward_mode mode,
                 glmq_forward_mode modes[2], int *nmodes)
{
    glmq_eval_opts_default(o);
    o->ctx = ctx;
    o->strided = strided;
    o->stride = strided ? ctx / 2 : 0;
    o->mode = mode;
    o->ref_mode = mode == GLMQ_FWD_REFERENCE ? GLMQ_FWD_REFERENCE : GLMQ_FWD_EXACT;
    o->threads = 2;
    o->max_chunks = 15; /* enough windows for 7 shards of 2-3 windows, and quick */
    glmq_eval_opts_resolve(o);
    modes[0] = mode;
    modes[1] = GLMQ_FWD_EXACT;
    *nmodes = mode == GLMQ_FWD_FAST ? 2 : 1;
}

/* Shard i of n as a file in tmpdir (written and read back through the file format). */
static char *write_shard(run *x, const glmq_eval_opts *o, const glmq_forward_mode *modes,
                         int nmodes, int i, int n, const char *tag)
{
    glmq_err err = {0};
    glmq_part *p = NULL;
    ck_assert_msg(glmq_shard_eval(x->r, x->q, ref_dir, q4, text, x->ids, x->n, o, modes, nmodes,
                                  i, n, &p, &err) == GLMQ_OK,
                  "%s", err.msg);
    p->seconds = 0.25 * (i + 1);
    char name[64];
    snprintf(name, sizeof name, "%s-%d-of-%d.part", tag, i, n);
    char *path = tu_path(tmpdir, name);
    ck_assert_msg(glmq_part_write(p, path, &err) == GLMQ_OK, "%s", err.msg);
    glmq_part_free(p);
    return path;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

#define SAME(field)                                                                            \
    ck_assert_msg(same_bits(a->field, b->field), "%s: %.17g vs %.17g", #field, a->field,       \
                  b->field)

static void assert_same_drift(const glmq_drift *a, const glmq_drift *b)
{
    ck_assert_int_eq(a->n_positions, b->n_positions);
    ck_assert_int_eq(a->n_layers, b->n_layers);
    ck_assert_int_eq(a->ppl_ref.n_windows, b->ppl_ref.n_windows);
    ck_assert_int_eq(a->ppl_q.n_scored, b->ppl_q.n_scored);
    SAME(ppl_ref.nll_sum);
    SAME(ppl_q.nll_sum);
    SAME(ppl_ref.ppl);
    SAME(ppl_q.ppl);
    SAME(ppl_ratio);
    SAME(kld_mean);
    SAME(kld_median);
    SAME(kld_p90);
    SAME(kld_p99);
    SAME(kld_max);
    SAME(top1_agreement);
    SAME(dp_mean);
    SAME(dp_rms);
    SAME(dlogit_max);
    SAME(dlogit_rms);
    ck_assert_mem_eq(a->layer_rel_err, b->layer_rel_err, (size_t)a->n_layers * sizeof(double));
    ck_assert_mem_eq(a->kld, b->kld, (size_t)a->n_positions * sizeof(double));
}

/* The report of a drift as a JSON object without the timing and the shard count. */
static cJSON *report_of(const glmq_drift *d, const glmq_drift *exact, const glmq_eval_opts *o,
                        glmq_model_desc mq, glmq_model_desc mr, const char *src, int64_t shards)
{
    glmq_report_ctx c = {0};
    c.quant = mq;
    c.ref = mr;
    c.opts = o;
    c.text_source = src;
    c.exact = exact;
    c.n_shards = shards;
    c.seconds = 1.5;
    char *s = glmq_report_json(d, &c);
    ck_assert_ptr_nonnull(s);
    cJSON *j = cJSON_Parse(s);
    free(s);
    ck_assert_ptr_nonnull(j);
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "evaluation");
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(ev, "seconds"));
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "shards");
    return j;
}

static const struct {
    int n, strided;
    int64_t ctx;
    glmq_forward_mode mode;
} cases[] = {
    {1, 0, 64, GLMQ_FWD_FAST},      {2, 0, 64, GLMQ_FWD_FAST}, {3, 0, 64, GLMQ_FWD_FAST},
    {7, 0, 64, GLMQ_FWD_FAST},      {7, 0, 256, GLMQ_FWD_FAST}, /* 9 windows: 2 shards have 2 */
    {4, 1, 96, GLMQ_FWD_EXACT},     {3, 0, 48, GLMQ_FWD_REFERENCE},
    {40, 0, 64, GLMQ_FWD_FAST}, /* more shards than the 15 windows: 25 empty parts */
};

/* Merged == single process, bit for bit, for each case. */
START_TEST(merge_equals_single)
{
    const int N = cases[_i].n;
    run x;
    run_open(&x, q4, text);
    glmq_eval_opts o;
    glmq_forward_mode modes[2];
    int nmodes;
    opts(&o, cases[_i].ctx, cases[_i].strided, cases[_i].mode, modes, &nmodes);
    glmq_err err = {0};
    glmq_drift one[2];
    memset(one, 0, sizeof one);
    ck_assert_msg(glmq_drift_eval_modes(x.r, x.q, x.ids, x.n, &o, modes, nmodes, one, &err) ==
                      GLMQ_OK,
                  "%s", err.msg);
    ck_assert_int_gt(one[0].n_positions, 100);

    glmq_part **parts = calloc((size_t)N, sizeof *parts);
    char **names = calloc((size_t)N, sizeof *names);
    /* give the parts in a scrambled order: the merge must not depend on it */
    for (int k = 0; k < N; k++) {
        int i = (k * 5 + 3) % N;
        if (N % 5 == 0) i = N - 1 - k;
        names[k] = write_shard(&x, &o, modes, nmodes, i, N, "case");
        ck_assert_msg(glmq_part_read(names[k], &parts[k], &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_int_eq(parts[k]->shard, i);
        /* the file round-trips byte for byte */
        uint8_t *enc = NULL;
        size_t enc_n = 0, file_n = 0;
        ck_assert_int_eq(glmq_part_encode(parts[k], &enc, &enc_n, &err), GLMQ_OK);
        uint8_t *file = tu_read_file(names[k], &file_n);
        ck_assert_uint_eq(enc_n, file_n);
        ck_assert_mem_eq(enc, file, file_n);
        free(enc);
        free(file);
    }
    glmq_drift merged[2];
    int nm = 0;
    const glmq_part *first = NULL;
    double secs = 0;
    ck_assert_msg(glmq_parts_merge(parts, (const char *const *)names, N, merged, &nm, &first,
                                   &secs, &err) == GLMQ_OK,
                  "%s", err.msg);
    ck_assert_int_eq(nm, nmodes);
    ck_assert_int_eq(first->shard, 0);
    ck_assert_double_eq_tol(secs, 0.25 * N * (N + 1) / 2.0, 1e-12);
    for (int i = 0; i < nmodes; i++) assert_same_drift(&one[i], &merged[i]);

    /* the reports, from the models and from the part, are the same JSON text */
    glmq_eval_opts po;
    glmq_part_opts(first, &po);
    cJSON *a = report_of(&one[0], nmodes > 1 ? &one[1] : NULL, &o,
                         glmq_model_describe(x.q, q4), glmq_model_describe(x.r, ref_dir), text,
                         0);
    cJSON *b = report_of(&merged[0], nmodes > 1 ? &merged[1] : NULL, &po, glmq_part_quant(first),
                         glmq_part_ref(first), first->str[GLMQ_PART_S_TEXT], N);
    char *sa = cJSON_Print(a), *sb = cJSON_Print(b);
    ck_assert_str_eq(sa, sb);
    free(sa);
    free(sb);
    cJSON_Delete(a);
    cJSON_Delete(b);

    for (int i = 0; i < 2; i++) {
        glmq_drift_free(&one[i]);
        glmq_drift_free(&merged[i]);
    }
    for (int k = 0; k < N; k++) {
        glmq_part_free(parts[k]);
        free(names[k]);
    }
    free(parts);
    free(names);
    run_close(&x);
}
END_TEST

/* Merge `n` files, expecting GLMQ_E_INVALID with all of `want` in the message. */
static void expect_merge_error(char **files, int n, const char *want1, const char *want2)
{
    glmq_err err = {0};
    glmq_part **parts = calloc((size_t)n, sizeof *parts);
    for (int k = 0; k < n; k++)
        ck_assert_msg(glmq_part_read(files[k], &parts[k], &err) == GLMQ_OK, "%s", err.msg);
    glmq_drift d[2];
    int nm = 7;
    const glmq_part *first = (const glmq_part *)parts;
    double secs = 1;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(glmq_parts_merge(parts, (const char *const *)files, n, d, &nm, &first, &secs,
                                      &err),
                     GLMQ_E_INVALID);
    ck_assert_msg(strstr(err.msg, want1) && strstr(err.msg, want2), "message: %s", err.msg);
    ck_assert_int_eq(nm, 0);
    ck_assert_ptr_null(first);
    ck_assert_ptr_null(d[0].kld);
    for (int k = 0; k < n; k++) glmq_part_free(parts[k]);
    free(parts);
}

/* Parts that are not the N shards of one run are refused, naming the file. */
START_TEST(merge_refuses_mismatch)
{
    run x;
    run_open(&x, q4, text);
    glmq_eval_opts o, o2;
    glmq_forward_mode modes[2];
    int nmodes;
    opts(&o, 64, 0, GLMQ_FWD_FAST, modes, &nmodes);
    char *p[3], *two1, *ctx1, *ref1, *zh1, *i81;
    for (int i = 0; i < 3; i++) p[i] = write_shard(&x, &o, modes, nmodes, i, 3, "a");
    two1 = write_shard(&x, &o, modes, nmodes, 1, 2, "two");
    opts(&o2, 128, 0, GLMQ_FWD_FAST, modes, &nmodes);
    ctx1 = write_shard(&x, &o2, modes, nmodes, 1, 3, "ctx");
    opts(&o2, 64, 0, GLMQ_FWD_EXACT, modes, &nmodes);
    ref1 = write_shard(&x, &o2, modes, nmodes, 1, 3, "exact");
    opts(&o2, 64, 0, GLMQ_FWD_FAST, modes, &nmodes);
    run y;
    char *zh = tu_path(tu_samples(), "text/eval_zh.txt");
    run_open(&y, q4, zh);
    zh1 = write_shard(&y, &o, modes, nmodes, 1, 3, "zh");
    run_close(&y);
    glmq_err err = {0};
    char *q8 = tu_convert_sample(tmpdir, "glm2-tiny", GLMQ_TYPE_INT8, &err);
    ck_assert_msg(q8 != NULL, "%s", err.msg);
    run_open(&y, q8, text);
    i81 = write_shard(&y, &o, modes, nmodes, 1, 3, "int8");
    run_close(&y);

    char *dup[3] = {p[0], p[2], p[2]};
    expect_merge_error(dup, 3, "both shard 2 of 3", "a-2-of-3.part");
    char *miss[2] = {p[0], p[2]};
    expect_merge_error(miss, 2, "shard 1 of 3 is missing", "a-0-of-3.part");
    char *more[4] = {p[0], p[1], p[2], p[1]};
    expect_merge_error(more, 4, "both shard 1 of 3", "a-1-of-3.part");
    char *n2[3] = {p[0], two1, p[2]};
    expect_merge_error(n2, 3, "two-1-of-2.part' is not from the same run", "number of shards");
    char *c[3] = {p[0], ctx1, p[2]};
    expect_merge_error(c, 3, "ctx-1-of-3.part", "the ctx differs");
    char *k[3] = {p[0], ref1, p[2]};
    expect_merge_error(k, 3, "exact-1-of-3.part", "kernels");
    char *t[3] = {p[0], zh1, p[2]};
    expect_merge_error(t, 3, "zh-1-of-3.part", "text");
    char *m[3] = {p[0], i81, p[2]};
    expect_merge_error(m, 3, "int8-1-of-3.part", "QUANT model");

    /* and the right three, in any order, merge */
    glmq_part *pp[3];
    for (int i = 0; i < 3; i++) ck_assert_int_eq(glmq_part_read(p[2 - i], &pp[i], &err), GLMQ_OK);
    glmq_drift d[2];
    int nm;
    const glmq_part *first;
    double secs;
    char *rev[3] = {p[2], p[1], p[0]};
    ck_assert_int_eq(glmq_parts_merge(pp, (const char *const *)rev, 3, d, &nm, &first, &secs, &err),
                     GLMQ_OK);
    glmq_drift_free(&d[0]);
    glmq_drift_free(&d[1]);
    for (int i = 0; i < 3; i++) {
        glmq_part_free(pp[i]);
        free(p[i]);
    }
    free(two1);
    free(ctx1);
    free(ref1);
    free(zh1);
    free(i81);
    free(zh);
    free(q8);
    run_close(&x);
}
END_TEST

/* A small valid part in memory (ctx 16, 3 windows of 5, shard 1 of 2). */
static uint8_t *small_part(size_t *n)
{
    run x;
    run_open(&x, q4, text);
    glmq_eval_opts o;
    glmq_forward_mode modes[2];
    int nmodes;
    opts(&o, 16, 0, GLMQ_FWD_FAST, modes, &nmodes);
    o.max_chunks = 5;
    glmq_err err = {0};
    glmq_part *p = NULL;
    ck_assert_int_eq(glmq_shard_eval(x.r, x.q, ref_dir, q4, text, x.ids, x.n, &o, modes, nmodes,
                                     1, 2, &p, &err),
                     GLMQ_OK);
    ck_assert_int_eq(p->n_records, 2);
    ck_assert_int_eq(p->n_windows, 5);
    uint8_t *b = NULL;
    ck_assert_int_eq(glmq_part_encode(p, &b, n, &err), GLMQ_OK);
    glmq_part_free(p);
    run_close(&x);
    return b;
}

static void resign(uint8_t *b, size_t n) { glmq_wr_le64(b + n - 8, XXH3_64bits(b, n - 8)); }

/* Decode must fail with `code`, *out NULL, the file name and every `want` in the message. */
static void expect_decode(const uint8_t *b, size_t n, glmq_status code, const char *want)
{
    glmq_err err = {0};
    glmq_part *p = (glmq_part *)(uintptr_t)1;
    glmq_status st = glmq_part_decode(b, n, "x.part", &p, &err);
    ck_assert_msg(st == code, "status %d, expected %d: %s", (int)st, (int)code, err.msg);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, "'x.part'") && (!want || strstr(err.msg, want)), "message: %s",
                  err.msg);
}

/* Every flipped byte, every truncation, and each checked field mutated and re-signed. */
START_TEST(corrupt_parts_refused)
{
    size_t n;
    uint8_t *good = small_part(&n);
    uint8_t *b = malloc(n + 16);
    glmq_err err = {0};
    glmq_part *p = NULL;
    ck_assert_int_eq(glmq_part_decode(good, n, "x.part", &p, &err), GLMQ_OK);
    glmq_part_free(p);
    for (size_t i = 0; i < n; i++) {
        memcpy(b, good, n);
        b[i] ^= (uint8_t)(1u << (i % 8));
        glmq_status want = i < 8 ? GLMQ_E_FORMAT : i < 12 ? GLMQ_E_UNSUPPORTED : GLMQ_E_CHECKSUM;
        expect_decode(b, n, want, NULL);
    }
    for (size_t l = 0; l < n; l++)
        expect_decode(good, l, l < 136 ? GLMQ_E_FORMAT : GLMQ_E_CHECKSUM, NULL);
    /* trailing garbage after a valid file */
    memcpy(b, good, n);
    memset(b + n, 0, 8);
    expect_decode(b, n + 8, GLMQ_E_CHECKSUM, "checksum");
    resign(b, n + 8);
    expect_decode(b, n + 8, GLMQ_E_FORMAT, "after the last window");

    /* re-signed mutations reach each field check */
    const struct {
        size_t off;
        int width;
        uint64_t value;
        const char *want;
    } mut[] = {
        {12, 4, 64, "header size"},
        {16, 4, 2, "shard 2 of 2"},
        {20, 4, 0, "shard count 0"},
        {20, 4, 70000, "shard count 70000"},
        {24, 8, 0, "text ids 0"},
        {24, 8, 1ull << 41, "text ids"},
        {40, 8, 0, "windows 0"},
        {40, 8, 1ull << 41, "windows"},
        {48, 8, 1, "ctx 1"},
        {48, 8, 1ull << 30, "ctx"},
        {56, 8, 4, "stride 4"},
        {64, 4, 2, "protocol 2"},
        {64, 4, 1, "stride 0"},
        {68, 4, 0, "0 kernel modes"},
        {68, 4, 3, "3 kernel modes"},
        {72, 4, 3, "kernel modes 3"},
        {80, 4, 9, "reference 9"},
        {84, 4, 0, "0 layers"},
        {84, 4, 1u << 20, "layers"},
        {88, 8, 0, "vocabulary 0"},
        {88, 8, 1ull << 32, "vocabulary"},
        {112, 8, 0xbff0000000000000ull, "seconds[0] = -1 is negative"},
        {112, 8, 0x7ff0000000000000ull, "not a finite number"},
        {120, 8, 3, "windows of this part 3"},
        {120, 8, 1, "1 windows, shard 1 of 2 over 5 windows has 2"},
        {40, 8, 9, "2 windows, shard 1 of 2 over 9 windows has 4"},
        {128, 4, 5000, "string 0 is 5000 bytes"},
        {128, 4, 1u << 30, "string 0"},
    };
    for (size_t i = 0; i < sizeof mut / sizeof mut[0]; i++) {
        memcpy(b, good, n);
        if (mut[i].width == 4)
            glmq_wr_le32(b + mut[i].off, (uint32_t)mut[i].value);
        else
            glmq_wr_le64(b + mut[i].off, mut[i].value);
        resign(b, n);
        glmq_status want = GLMQ_E_FORMAT;
        expect_decode(b, n, want, mut[i].want);
    }
    memcpy(b, good, n);
    glmq_wr_le32(b + 8, 2);
    resign(b, n);
    expect_decode(b, n, GLMQ_E_UNSUPPORTED, "version 2");
    memcpy(b, good, n);
    b[132] = 0; /* a NUL inside the version string */
    resign(b, n);
    expect_decode(b, n, GLMQ_E_FORMAT, "NUL");

    /* the records: find the first one after the ten strings */
    size_t off = 128;
    for (int i = 0; i < 10; i++) off += 4 + glmq_rd_le32(good + off);
    ck_assert_uint_eq(glmq_rd_le64(good + off), 1); /* shard 1 of 2: windows 1 and 3 */
    const size_t m0 = off + 8; /* n_pos of mode 0 */
    const int64_t np = (int64_t)glmq_rd_le64(good + m0);
    ck_assert_int_eq(np, 14);
    const size_t mode_bytes = 16 + 8 * (7 + 2 * 2 + (size_t)np);
    const struct {
        size_t off;
        uint64_t value;
        const char *want;
    } rec[] = {
        {off, 3, "record 0 is window 3"},
        {off, 5, "window index 5"},
        {m0, 17, "n_pos 17"},
        {m0, 14, "13 scored positions in mode 1, 14 in mode 0"}, /* mode 1 differs */
        {m0 + 8, 15, "agree 15"},
        {m0 + 16 + 2 * 8, 0xbff0000000000000ull, "kl[0] = -1 is negative"},
        {m0 + 16 + 6 * 8, 0x8010000000000000ull, "dl_max[0]"},
        {m0 + 16 + 7 * 8 + 8, 0xbff0000000000000ull, "layer_num[1]"},
        {m0 + 16 + 9 * 8 + 8, 0xbff0000000000000ull, "layer_den[1]"},
        {m0 + 16 + 11 * 8 + 13 * 8, 0xbff0000000000000ull, "kld[13]"},
        {m0 + mode_bytes, 0, "in mode 1, 14 in mode 0"},
    };
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) {
        memcpy(b, good, n);
        glmq_wr_le64(b + rec[i].off, rec[i].value);
        if (i == 3) glmq_wr_le64(b + m0 + mode_bytes, 13);
        resign(b, n);
        expect_decode(b, n, GLMQ_E_FORMAT, rec[i].want);
    }
    /* a record that claims more positions than the bytes that remain */
    memcpy(b, good, n);
    glmq_wr_le64(b + 48, 1 << 20);                   /* ctx */
    glmq_wr_le64(b + m0 + mode_bytes * 2 + 8, 1u << 19); /* record 1, mode 0: n_pos */
    resign(b, n);
    expect_decode(b, n, GLMQ_E_FORMAT, "truncated");
    /* NaN KL values are kept (a diverged model has them) and sort last */
    memcpy(b, good, n);
    glmq_wr_le64(b + m0 + 16 + 11 * 8, 0x7ff8000000000000ull);
    resign(b, n);
    ck_assert_int_eq(glmq_part_decode(b, n, "x.part", &p, &err), GLMQ_OK);
    ck_assert(isnan(p->rec[0].m[0].kld[0]));
    glmq_part_free(p);
    free(b);
    free(good);
}
END_TEST

/* Remove "seconds" and "shards" from a report file's evaluation; the rest as text. */
static char *report_text(const char *path)
{
    char *s = (char *)tu_read_file(path, NULL);
    ck_assert_msg(s != NULL, "no report %s", path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    ck_assert_ptr_nonnull(j);
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "evaluation");
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "shards");
    char *t = cJSON_Print(j);
    cJSON_Delete(j);
    return t;
}

/* The CLI: verify --shard/--partial, glmq merge, exit codes 0 / 3 / 1 / 2 and messages. */
START_TEST(cli_shard_merge)
{
    char *out = NULL, *single = tu_path(tmpdir, "single.json"), *merged = tu_path(tmpdir, "m.json");
    char *svg = tu_path(tmpdir, "m.svg"), *part[3];
    const char *gate = "--max-ppl-ratio 1.05 --max-kld 0.05 --max-kld-p99 0.5 --min-top1 0.8";
    int rc = tu_run(&out, "'%s' verify '%s' --ref '%s' --text '%s' --ctx 64 --chunks 15 %s "
                          "--report '%s' --quiet",
                    tu_bin(), q4, ref_dir, text, gate, single);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    free(out);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.part", i);
        part[i] = tu_path(tmpdir, name);
        rc = tu_run(&out, "'%s' verify '%s' --ref '%s' --text '%s' --ctx 64 --chunks 15 "
                          "--threads 1 --shard %d/3 --partial '%s'",
                    tu_bin(), q4, ref_dir, text, i, part[i]);
        ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
        ck_assert_msg(strstr(out, "shard") && strstr(out, "of 15 windows"), "%s", out);
        free(out);
    }
    rc = tu_run(&out, "'%s' merge '%s' '%s' '%s' %s --report '%s' --plot '%s'", tu_bin(), part[2],
                part[0], part[1], gate, merged, svg);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "PASS") && strstr(out, "in 3 shards"), "%s", out);
    free(out);
    char *a = report_text(single), *b = report_text(merged);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    char *js = (char *)tu_read_file(merged, NULL);
    ck_assert_ptr_nonnull(strstr(js, "\"shards\":\t3"));
    free(js);
    ck_assert(tu_file_exists(svg));
    /* a threshold that cannot pass: 3, like verify */
    rc = tu_run(&out, "'%s' merge '%s' '%s' '%s' --max-kld 1e-9 --quiet", tu_bin(), part[0],
                part[1], part[2]);
    ck_assert_msg(rc == 3, "exit %d: %s", rc, out);
    free(out);
    /* errors: 1 naming the file */
    rc = tu_run(&out, "'%s' merge '%s' '%s'", tu_bin(), part[0], part[2]);
    ck_assert_msg(rc == 1 && strstr(out, "glmq: error: ") && strstr(out, "shard 1 of 3 is missing"),
                  "exit %d: %s", rc, out);
    free(out);
    rc = tu_run(&out, "'%s' merge '%s' '%s' '%s' '%s'", tu_bin(), part[0], part[1], part[2],
                part[1]);
    ck_assert_msg(rc == 1 && strstr(out, "both shard 1 of 3"), "exit %d: %s", rc, out);
    free(out);
    char *bad = tu_path(tmpdir, "bad.part");
    size_t n;
    uint8_t *bytes = tu_read_file(part[1], &n);
    bytes[n / 2] ^= 0x40;
    tu_write_file(bad, bytes, n);
    free(bytes);
    rc = tu_run(&out, "'%s' merge '%s' '%s' '%s'", tu_bin(), part[0], bad, part[2]);
    ck_assert_msg(rc == 1 && strstr(out, "bad.part") && strstr(out, "checksum"), "exit %d: %s",
                  rc, out);
    free(out);
    rc = tu_run(&out, "'%s' merge '%s' '%s' '%s'", tu_bin(), part[0], q4, part[2]);
    ck_assert_msg(rc == 1 && strstr(out, "not a glmq partial result"), "exit %d: %s", rc, out);
    free(out);
    rc = tu_run(&out, "'%s' merge '%s/none.part'", tu_bin(), tmpdir);
    ck_assert_msg(rc == 1 && strstr(out, "none.part"), "exit %d: %s", rc, out);
    free(out);
    /* usage: 2 */
    const char *usage[] = {
        "merge",
        "merge --max-kld",
        "merge x.part --max-kld abc",
        "merge x.part --bogus",
        "verify Q --ref R --text T --shard 0/2",
        "verify Q --ref R --text T --partial x.part",
        "verify Q --ref R --text T --shard 3/3 --partial x.part",
        "verify Q --ref R --text T --shard 1 --partial x.part",
        "verify Q --ref R --text T --shard -1/2 --partial x.part",
        "verify Q --ref R --text T --shard 0/2 --partial x.part --max-kld 1",
        "verify Q --ref R --text T --shard 0/2 --partial x.part --report r.json",
        "verify Q --ref R --text T --shard 0/2 --partial x.part --rank-tensors",
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        rc = tu_run(&out, "'%s' %s", tu_bin(), usage[i]);
        ck_assert_msg(rc == 2, "'%s': exit %d: %s", usage[i], rc, out);
        free(out);
    }
    ck_assert_int_eq(tu_run(&out, "'%s' merge --help", tu_bin()), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: glmq merge"));
    free(out);
    for (int i = 0; i < 3; i++) free(part[i]);
    free(bad);
    free(single);
    free(merged);
    free(svg);
}
END_TEST

static Suite *shard_suite(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("shard");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, merge_equals_single, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, merge_refuses_mismatch);
    tcase_add_test(tc, corrupt_parts_refused);
    tcase_add_test(tc, cli_shard_merge);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shard_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
