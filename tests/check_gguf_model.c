/*
 * check_gguf_model.c - GGUF files as glmq models (runtime/model_gguf.c, quant/ggml_repack.c).
 *
 * repack: glmq INT4/INT8 rows <-> ggml Q4_0/Q8_0 blocks. The expected blocks are spelled out
 * here from ggml's block definitions (fp16 d, then for Q4_0 byte j = (q[j] + 8) | (q[j + 16] +
 * 8) << 4; for Q8_0 the 32 codes), independently of the code under test; that ggml decodes the
 * exported bytes to glmq's values is proved by ggml itself in check_export_peer.
 */
#include "formats/config.h"
#include "formats/gguf.h"
#include "formats/layout.h"
#include "quant/ggml_repack.h"
#include "runtime/model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static char *tmpdir;
static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

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
    glmq_int4_row_to_q4_0(row, &scale, 0, cols, blk);
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
    glmq_int8_row_to_q8_0(row, &scale, 0, cols, blk);
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

/* ---- GGUF files as models ------------------------------------------------------------------ */

static const glmq_type export_types[] = {GLMQ_TYPE_INT4, GLMQ_TYPE_INT8, GLMQ_TYPE_F16};

/* glm2-tiny converted to `type` and exported; paths malloc'd. */
static void make_export(glmq_type type, char **glmq_path, char **gguf_path)
{
    glmq_err err = {0};
    *glmq_path = tu_convert_sample(tmpdir, "glm2-tiny", type, &err);
    ck_assert_msg(*glmq_path, "%s", err.msg);
    char name[64];
    snprintf(name, sizeof name, "glm2-tiny-%s.gguf", glmq_type_name(type));
    *gguf_path = tu_path(tmpdir, name);
    ck_assert_msg(glmq_export_gguf(*glmq_path, *gguf_path, NULL, NULL, &err) == GLMQ_OK, "%s",
                  err.msg);
}

/* All logits of `ids` (prefix included by the caller), malloc'd: n * vocab floats. */
static float *all_logits(const char *path, glmq_kernel_mode mode, const int32_t *ids, int64_t n,
                         int64_t *vocab)
{
    glmq_err err = {0};
    glmq_model *m = NULL;
    ck_assert_msg(glmq_model_open(path, &m, &err) == GLMQ_OK, "%s: %s", path, err.msg);
    glmq_model_info info;
    ck_assert_int_eq(glmq_model_get_info(m, &info, &err), GLMQ_OK);
    *vocab = info.vocab;
    glmq_session_opts o;
    glmq_session_opts_default(&o);
    o.kernels = mode;
    o.threads = 2;
    o.max_tokens = n;
    glmq_session *s = NULL;
    ck_assert_msg(glmq_session_create(m, &o, &s, &err) == GLMQ_OK, "%s", err.msg);
    float *l = malloc((size_t)(n * info.vocab) * sizeof *l);
    ck_assert_msg(glmq_session_eval(s, ids, n, l, &err) == GLMQ_OK, "%s", err.msg);
    glmq_session_free(s);
    glmq_model_close(m);
    return l;
}

/* The ids of samples/text/eval_en.txt's first bytes by glm2-tiny's tokenizer, after the
 * [gMASK] sop prefix. */
static int32_t *sample_ids(const char *model_path, int64_t *n)
{
    glmq_err err = {0};
    glmq_model *m = NULL;
    ck_assert_msg(glmq_model_open(model_path, &m, &err) == GLMQ_OK, "%s", err.msg);
    char *tp = tu_path(tu_samples(), "text/eval_en.txt");
    size_t len = 0;
    uint8_t *text = tu_read_file(tp, &len);
    ck_assert_ptr_nonnull(text);
    if (len > 1500) len = 1500;
    size_t cnt = 0;
    static int32_t ids[4096];
    ck_assert_msg(glmq_tokenize(m, (const char *)text, len, GLMQ_TOKENIZE_PROMPT, ids, 4096, &cnt,
                                &err) == GLMQ_OK,
                  "%s", err.msg);
    free(text);
    free(tp);
    glmq_model_close(m);
    *n = (int64_t)cnt;
    int32_t *out = malloc(cnt * sizeof *out);
    memcpy(out, ids, cnt * sizeof *out);
    return out;
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* The export read back as a model: the same config, tokenizer and logits as the .glmq (bit for
 * bit in the reference mode, where every matrix is widened exactly and dotted in one order;
 * in the exact/fast modes bit for bit where the matrix types match one for one, which the
 * Q4_0/Q8_0 repack restores for every matrix whose rows are whole 32-element blocks). */
START_TEST(export_reads_back)
{
    const glmq_type type = export_types[_i];
    char *gp = NULL, *up = NULL;
    make_export(type, &gp, &up);
    glmq_err err = {0};
    glmq_model *a = NULL, *b = NULL;
    ck_assert_int_eq(glmq_model_open(gp, &a, &err), GLMQ_OK);
    ck_assert_msg(glmq_model_open(up, &b, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_str_eq(glmq_model_kind(b), "gguf");
    ck_assert_mem_eq(glmq_model_config(a), glmq_model_config(b), sizeof(glmq_config));
    size_t ta = 0, tb = 0;
    const void *pa = glmq_model_tokenizer(a, &ta), *pb = glmq_model_tokenizer(b, &tb);
    ck_assert_uint_eq(ta, tb);
    ck_assert_mem_eq(pa, pb, ta);
    /* a 128-column matrix comes back in glmq's own row type (repacked), the 172-column
     * ffn_down, written as f32, stays f32 */
    const char *qkv = "transformer.encoder.layers.0.self_attention.query_key_value.weight";
    const char *fhh = "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight";
    ck_assert_int_eq(glmq_model_tensor(b, qkv)->type, type);
    ck_assert_int_eq(glmq_model_tensor(b, fhh)->type,
                     type == GLMQ_TYPE_F16 ? GLMQ_TYPE_F16 : GLMQ_TYPE_F32);
    glmq_model_close(a);
    glmq_model_close(b);

    int64_t n = 0, va = 0, vb = 0;
    int32_t *ids = sample_ids(gp, &n);
    ck_assert_int_gt(n, 100);
    const glmq_kernel_mode modes[] = {GLMQ_KERNELS_REFERENCE, GLMQ_KERNELS_EXACT,
                                      GLMQ_KERNELS_FAST};
    for (int k = 0; k < 3; k++) {
        float *la = all_logits(gp, modes[k], ids, n, &va);
        float *lb = all_logits(up, modes[k], ids, n, &vb);
        ck_assert_int_eq(va, vb);
        const double d = max_abs_diff(la, lb, n * va);
        if (modes[k] == GLMQ_KERNELS_REFERENCE || type == GLMQ_TYPE_F16)
            ck_assert_msg(memcmp(la, lb, (size_t)(n * va) * sizeof *la) == 0,
                          "%s %s: logits differ (max %g)", glmq_type_name(type),
                          glmq_kernel_mode_name(modes[k]), d);
        else if (modes[k] == GLMQ_KERNELS_EXACT) /* ffn_down: fp32 loop, other order */
            ck_assert_msg(d < 1e-3, "%s exact: max |dlogit| %g", glmq_type_name(type), d);
        else {
            /* FAST: the .gguf runs ffn_down exactly (f32), the .glmq with int8 activations, so
             * the two differ by at most about what FAST differs from EXACT on the .glmq */
            float *le = all_logits(gp, GLMQ_KERNELS_EXACT, ids, n, &va);
            const double fe = max_abs_diff(la, le, n * va);
            ck_assert_msg(d <= 1.5 * fe + 1e-4, "%s fast: max |dlogit| %g, fast vs exact %g",
                          glmq_type_name(type), d, fe);
            free(le);
        }
        free(la);
        free(lb);
    }
    free(ids);
    free(gp);
    free(up);
}
END_TEST

/* Copy a GGUF, leaving out the keys for which drop() says so and renaming/retyping through
 * edit(): how a file from llama.cpp's own converter looks (no glmq.* keys), and hostile
 * variants. */
typedef struct {
    const char *drop_prefix;   /* keys starting with this are left out (NULL: none) */
    const char *arch;          /* replaces general.architecture (NULL: kept) */
    const char *retype_tensor; /* this tensor's type becomes retype_to (NULL: none) */
    uint32_t retype_to;
} copy_edit;

static void gguf_copy(const char *src, const char *dst, const copy_edit *e)
{
    glmq_err err = {0};
    glmq_gguf *g = NULL;
    ck_assert_msg(glmq_gguf_open(src, &g, &err) == GLMQ_OK, "%s", err.msg);
    glmq_gguf_writer *w = NULL;
    ck_assert_int_eq(glmq_gguf_writer_new(glmq_gguf_alignment(g), &w, &err), GLMQ_OK);
    for (int64_t i = 0; i < glmq_gguf_kv_count(g); i++) {
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        char key[256];
        ck_assert_uint_lt(kv->key.len, sizeof key);
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        if (!strcmp(key, "general.alignment")) continue; /* the writer adds it */
        if (e->drop_prefix && !strncmp(key, e->drop_prefix, strlen(e->drop_prefix))) continue;
        glmq_status st = GLMQ_E_INTERNAL;
        const uint8_t *v = kv->value;
        if (kv->type == GLMQ_GGUF_STRING) {
            char *sv = NULL;
            if (e->arch && !strcmp(key, "general.architecture")) {
                sv = glmq_strdup(e->arch);
            } else {
                glmq_gguf_str s = {0};
                ck_assert_int_eq(glmq_gguf_get_str(g, key, 1, &s, &err), GLMQ_OK);
                sv = malloc(s.len + 1);
                memcpy(sv, s.ptr, s.len);
                sv[s.len] = 0;
            }
            st = glmq_gguf_writer_add_str(w, key, sv, &err);
            free(sv);
        } else if (kv->type == GLMQ_GGUF_U32) {
            st = glmq_gguf_writer_add_u32(w, key, glmq_rd_le32(v), &err);
        } else if (kv->type == GLMQ_GGUF_I32) {
            st = glmq_gguf_writer_add_i32(w, key, (int32_t)glmq_rd_le32(v), &err);
        } else if (kv->type == GLMQ_GGUF_U64) {
            st = glmq_gguf_writer_add_u64(w, key, glmq_rd_le64(v), &err);
        } else if (kv->type == GLMQ_GGUF_F32) {
            float f;
            memcpy(&f, v, 4);
            st = glmq_gguf_writer_add_f32(w, key, f, &err);
        } else if (kv->type == GLMQ_GGUF_BOOL) {
            st = glmq_gguf_writer_add_bool(w, key, v[0], &err);
        } else if (kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == GLMQ_GGUF_STRING) {
            const char **ss = malloc(kv->arr_n * sizeof *ss + 1);
            uint64_t *ls = malloc(kv->arr_n * sizeof *ls + 1);
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                glmq_gguf_str s = glmq_gguf_arr_str(g, kv, k);
                ss[k] = s.ptr;
                ls[k] = s.len;
            }
            st = glmq_gguf_writer_add_arr_str(w, key, kv->arr_n, ss, ls, &err);
            free(ss);
            free(ls);
        } else if (kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == GLMQ_GGUF_F32) {
            float *f = malloc(kv->arr_n * 4 + 1);
            memcpy(f, v, kv->arr_n * 4);
            st = glmq_gguf_writer_add_arr_f32(w, key, kv->arr_n, f, &err);
            free(f);
        } else if (kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == GLMQ_GGUF_I32) {
            int32_t *x = malloc(kv->arr_n * 4 + 1);
            memcpy(x, v, kv->arr_n * 4);
            st = glmq_gguf_writer_add_arr_i32(w, key, kv->arr_n, x, &err);
            free(x);
        } else if (kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == GLMQ_GGUF_U8) {
            st = glmq_gguf_writer_add_arr_u8(w, key, kv->arr_n, v, &err);
        } else if (kv->type == GLMQ_GGUF_ARRAY && kv->arr_type == GLMQ_GGUF_U64) {
            st = glmq_gguf_writer_add_u64_placeholder(w, key, kv->arr_n, &err);
        }
        ck_assert_msg(st == GLMQ_OK, "key %s (type %u/%u): %s", key, kv->type, kv->arr_type,
                      err.msg);
    }
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        uint32_t type = t->type;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (e->retype_tensor && !strcmp(t->name, e->retype_tensor)) {
            type = e->retype_to;
            /* keep the byte size: q4_0 (18 B / 32) -> iq4_nl (18 B / 32) */
        }
        ck_assert_int_eq(glmq_gguf_writer_add_tensor(w, t->name, type, t->n_dims, ne, &err),
                         GLMQ_OK);
    }
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(dst, &af, &err), GLMQ_OK);
    ck_assert_msg(glmq_gguf_writer_begin(w, af, &err) == GLMQ_OK, "%s", err.msg);
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        ck_assert_int_eq(glmq_gguf_writer_tensor_data(w, t->data, (size_t)t->size, &err),
                         GLMQ_OK);
    }
    ck_assert_msg(glmq_gguf_writer_end(w, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    glmq_gguf_writer_free(w);
    glmq_gguf_close(g);
}

/* A GGUF without glmq's keys (as llama.cpp's converter writes them): the configuration derived
 * from the chatglm.* keys, the tensor shapes and the vocabulary's special pieces equals the one
 * glmq stored, and the reference logits are the same. Without a tokenizer file glmq says what
 * to do instead. */
START_TEST(foreign_config)
{
    char *gp = NULL, *up = NULL;
    make_export(GLMQ_TYPE_INT4, &gp, &up);
    char *fp = tu_path(tmpdir, "foreign.gguf");
    const copy_edit e = {"glmq.", NULL, NULL, 0};
    gguf_copy(up, fp, &e);
    glmq_err err = {0};
    glmq_model *a = NULL, *b = NULL;
    ck_assert_int_eq(glmq_model_open(gp, &a, &err), GLMQ_OK);
    ck_assert_msg(glmq_model_open(fp, &b, &err) == GLMQ_OK, "%s", err.msg);
    const glmq_config *ca = glmq_model_config(a), *cb = glmq_model_config(b);
    ck_assert_int_eq(ca->arch, cb->arch);
    ck_assert_int_eq(ca->hidden, cb->hidden);
    ck_assert_int_eq(ca->n_layers, cb->n_layers);
    ck_assert_int_eq(ca->n_heads, cb->n_heads);
    ck_assert_int_eq(ca->head_dim, cb->head_dim);
    ck_assert_int_eq(ca->n_kv_groups, cb->n_kv_groups);
    ck_assert_int_eq(ca->ffn, cb->ffn);
    ck_assert_int_eq(ca->vocab, cb->vocab);
    ck_assert_int_eq(ca->seq_length, cb->seq_length);
    ck_assert_msg(fabs(ca->norm_eps - cb->norm_eps) < 1e-12, "eps %g %g", ca->norm_eps,
                  cb->norm_eps);
    ck_assert_msg(ca->rope_ratio == cb->rope_ratio, "rope %g %g", ca->rope_ratio,
                  cb->rope_ratio);
    ck_assert_int_eq(ca->qkv_bias, cb->qkv_bias);
    ck_assert_int_eq(ca->linear_bias, cb->linear_bias);
    ck_assert_int_eq(ca->post_layer_norm, cb->post_layer_norm);
    ck_assert_int_eq(ca->tok_gmask, cb->tok_gmask);
    ck_assert_int_eq(ca->tok_sop, cb->tok_sop);
    ck_assert_int_eq(ca->tok_eos, cb->tok_eos);
    ck_assert_str_eq(ca->tokenizer_kind, cb->tokenizer_kind);
    size_t cnt = 0;
    ck_assert_int_eq(glmq_tokenize(b, "hello", 5, 0, NULL, 0, &cnt, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "--ref"));
    glmq_model_close(a);
    glmq_model_close(b);

    int64_t n = 0, va = 0, vb = 0;
    int32_t *ids = sample_ids(gp, &n);
    float *la = all_logits(gp, GLMQ_KERNELS_REFERENCE, ids, n, &va);
    float *lb = all_logits(fp, GLMQ_KERNELS_REFERENCE, ids, n, &vb);
    ck_assert_mem_eq(la, lb, (size_t)(n * va) * sizeof *la);
    free(la);
    free(lb);
    free(ids);
    free(gp);
    free(up);
    free(fp);
}
END_TEST

/* Refusals name what is wrong: another architecture; a tensor type glmq does not decode. */
START_TEST(foreign_refusals)
{
    char *gp = NULL, *up = NULL;
    make_export(GLMQ_TYPE_INT4, &gp, &up);
    char *fp = tu_path(tmpdir, "other.gguf");
    glmq_err err = {0};
    glmq_model *m = NULL;
    const copy_edit arch = {NULL, "llama", NULL, 0};
    gguf_copy(up, fp, &arch);
    ck_assert_int_eq(glmq_model_open(fp, &m, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "'llama'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "general.architecture"));
    const copy_edit iq = {NULL, NULL, "blk.1.attn_qkv.weight", GLMQ_GGML_IQ4_NL};
    gguf_copy(up, fp, &iq);
    ck_assert_int_eq(glmq_model_open(fp, &m, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "iq4_nl"));
    ck_assert_ptr_nonnull(strstr(err.msg, "blk.1.attn_qkv.weight"));
    ck_assert_ptr_null(m);
    free(gp);
    free(up);
    free(fp);
}
END_TEST

/* Files made by llama.cpp's own quantizer (llama_model_quantize, through peer_quantize) from
 * glmq's F16 export: glmq opens them, decodes their K-quant and legacy blocks (proved bit for
 * bit against ggml in check_ggml_peer), gates them against the original checkpoint, and tells
 * a re-encoded export from a damaged one. */
START_TEST(llama_quantized)
{
    const char *pq = getenv("GLMQ_PEER_QUANTIZE");
    if (!pq) {
        /* CI requires the peer (GLMQ_REQUIRE_PEER=1): there a missing quantizer is a failure */
        const char *req = getenv("GLMQ_REQUIRE_PEER");
        ck_assert_msg(!req || strcmp(req, "1") != 0,
                      "GLMQ_REQUIRE_PEER=1 but no llama.cpp quantizer (GLMQ_PEER_QUANTIZE)");
        fprintf(stderr, "llama_quantized: no llama.cpp peer (GLMQ_PEER_QUANTIZE): skipped\n");
        return;
    }
    char *gp = NULL, *up = NULL;
    make_export(GLMQ_TYPE_F16, &gp, &up);
    char *ref = tu_sample_path("glm2-tiny", "st");
    glmq_err err = {0};
    glmq_model *r = NULL;
    ck_assert_int_eq(glmq_model_open(ref, &r, &err), GLMQ_OK);
    int64_t n = 0;
    int32_t *ids = sample_ids(gp, &n);
    /* text ids without the prefix */
    const int32_t *text = ids + 2;
    const int64_t nt = n - 2;
    /* glm2-tiny's rows are 128 or 172 wide: too short for 256-element K-quant blocks, so
     * llama.cpp stores its K-quant files in legacy types (Q2_K -> q4_0/q5_0 ..., "required
     * fallback quantization"); the K blocks themselves are decoded in check_ggml_peer */
    static const char *const kinds[] = {"Q8_0", "Q5_0", "Q2_K"};
    double kl_prev = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "llama-%s.gguf", kinds[k]);
        char *qp = tu_path(tmpdir, name);
        char *out = NULL;
        ck_assert_int_eq(tu_run(&out, "'%s' --quiet '%s' '%s' %s 2>&1", pq, up, qp, kinds[k]),
                         0);
        free(out);
        ck_assert_int_eq(glmq_export_verify(qp, NULL, &err), GLMQ_E_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(err.msg, "re-encoded"));
        glmq_model *q = NULL;
        ck_assert_msg(glmq_model_open(qp, &q, &err) == GLMQ_OK, "%s", err.msg);
        glmq_eval_params p;
        glmq_eval_params_default(&p);
        p.threads = 2;
        glmq_drift d;
        ck_assert_msg(glmq_eval_drift(q, r, text, nt, &p, &d, &err) == GLMQ_OK, "%s", err.msg);
        fprintf(stderr, "llama.cpp %s (glmq weight type %s): KL mean %.3e, top-1 %.4f\n",
                kinds[k], glmq_model_weight_type(q), d.kld_mean, d.top1_agreement);
        /* more bits, less drift; and none of them is far from the original */
        ck_assert_msg(d.kld_mean > kl_prev && d.kld_mean < 5e-3, "%s: KL mean %g (previous %g)",
                      kinds[k], d.kld_mean, kl_prev);
        ck_assert(d.top1_agreement > 0.9);
        kl_prev = d.kld_mean;
        glmq_drift_free(&d);
        glmq_model_close(q);
        free(qp);
    }
    glmq_model_close(r);
    free(ids);
    free(ref);
    free(gp);
    free(up);
}
END_TEST

static Suite *gguf_model_suite(void)
{
    Suite *s = suite_create("gguf_model");
    TCase *tc = tcase_create("repack");
    tcase_add_loop_test(tc, repack_q4_0, 0, 6);
    tcase_add_loop_test(tc, repack_q8_0, 0, 4);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("model");
    tcase_add_checked_fixture(tm, setup, teardown);
    tcase_set_timeout(tm, 600);
    tcase_add_loop_test(tm, export_reads_back, 0, 3);
    tcase_add_test(tm, foreign_config);
    tcase_add_test(tm, foreign_refusals);
    tcase_add_test(tm, llama_quantized);
    suite_add_tcase(s, tm);
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
