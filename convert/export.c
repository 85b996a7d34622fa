/*
 * export.c - a .glmq packed file -> a GGUF file that llama.cpp's `chatglm` architecture loads.
 *
 * What is written (formats/SPEC.md "GGUF export" lists every key):
 *   general.* and chatglm.* hyper-parameters as llama.cpp's own converter writes them for
 *   ChatGLM2/3 and GLM-4; the tokenizer.ggml.* vocabulary (formats/gguf_vocab.c); glmq.* keys
 *   (config, quantization recipe, provenance, the tokenizer and config.json verbatim, and the
 *   XXH3-64 of every tensor's GGUF bytes) so that glmq can read and check its own exports; then
 *   every tensor under llama.cpp's name, in the pack's canonical order.
 *
 * Lossless by construction. Each tensor is re-encoded so that ggml's dequantization of the GGUF
 * bytes gives, bit for bit, the fp32 values glmq's own widening gives (glmq_tensor_row_f32):
 *   INT8 rows -> Q8_0: a Q8_0 block is an fp16 d and 32 int8 codes, value = code * fp32(d).
 *       glmq's value is code * fp32(row scale). With d = the row's fp16 scale in every block of
 *       the row and the row's codes copied, both compute the same fp32 product of the same two
 *       numbers.
 *   INT4 rows -> Q4_0: a block is an fp16 d and 16 bytes; element j (0..15) is the low nibble of
 *       byte j and element j+16 its high nibble, value = (nibble - 8) * fp32(d). glmq stores
 *       nibble = q + 8 with value q * fp32(scale): the same nibble, moved to ggml's position, and
 *       d = the row scale, give the same product.
 *   INT8_G* / INT4_G* rows (groups of 32, 64 or 128 columns): the same, with each block's d the
 *       scale of the group holding it (a group is a whole number of blocks).
 *   F32, F16, BF16 matrices: copied (ggml widens F16/BF16 exactly, as glmq does).
 *   A quantized matrix whose row length is not a multiple of ggml's block of 32 (glm2-tiny's
 *       ffn_down has 172 columns) cannot be Q8_0/Q4_0: it is written as F32 holding glmq's
 *       dequantized values, which are fp32 numbers to begin with, so F32 holds them exactly.
 *   1-D tensors (norm weights, the QKV bias): written as F32, as llama.cpp's converter does
 *       (its CPU element-wise ops expect F32 there); F16/BF16 widen to F32 exactly.
 *   Every tensor that is not copied or re-encoded code for code is listed in the report.
 *
 * Streaming: the pack is mapped; each tensor is encoded one row at a time into a buffer of about
 * 1 MiB, handed to the GGUF writer and hashed in the same order, and once written its pages are
 * dropped from the mapping (MADV_DONTNEED: the page cache keeps them, the process is no longer
 * charged for them), so memory does not grow with the model. Encoding is a copy and a shuffle of codes, so it runs on one thread and the file does
 * not depend on the thread count or the kernel level (no kernel is used). The output goes
 * through the atomic writer: on any failure nothing is left at the output path.
 */
#define _DEFAULT_SOURCE /* madvise */
#include "formats/gguf.h"
#include "formats/gguf_vocab.h"
#include "formats/glm_tensors.h"
#include "formats/layout.h"
#include "quant/ggml_repack.h"
#include "runtime/model.h"
#include "runtime/tokenize.h"
#include "core/hash.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT_CHUNK ((size_t)1 << 20)
#define NAME_MAX_GGUF 64 /* ggml's GGML_MAX_NAME, terminator included */

/* llama.cpp's file types (include/llama.h, enum llama_ftype): frozen there because on disk. */
#define FTYPE_ALL_F32 0
#define FTYPE_MOSTLY_F16 1
#define FTYPE_MOSTLY_Q4_0 2
#define FTYPE_MOSTLY_Q8_0 7
#define FTYPE_MOSTLY_BF16 32
/* ggml's GGML_QNT_VERSION, the block format version of the quantized types */
#define GGML_QUANT_VERSION 2

void glmq_export_opts_default(glmq_export_opts *o)
{
    memset(o, 0, sizeof *o);
}

void glmq_export_report_free(glmq_export_report *r)
{
    if (!r) return;
    free(r->tensors);
    memset(r, 0, sizeof *r);
}

/* ---- the per-tensor plan ---- */

typedef enum {
    ENC_COPY,    /* bytes copied row by row (F32/F16/BF16 -> the same type) */
    ENC_Q8_0,    /* INT8 codes + row scale -> Q8_0 blocks */
    ENC_Q4_0,    /* INT4 nibbles + row scale -> Q4_0 blocks */
    ENC_WIDEN    /* glmq's fp32 value of every element -> F32 */
} encoding;

typedef struct {
    const glmq_tensor_info *t; /* view into the pack (owned by the model) */
    encoding enc;
    uint32_t gtype;            /* ggml type written */
    char name[NAME_MAX_GGUF];
    uint64_t row_bytes;        /* GGUF bytes of one row */
} plan_entry;

static const char *enc_note(const plan_entry *p)
{
    switch (p->enc) {
    case ENC_COPY: return "copied";
    case ENC_Q8_0:
        return glmq_type_group(p->t->type) ? "int8 codes and group scales re-encoded as q8_0 blocks"
                                           : "int8 codes and row scales re-encoded as q8_0 blocks";
    case ENC_Q4_0:
        return glmq_type_group(p->t->type) ? "int4 codes and group scales re-encoded as q4_0 blocks"
                                           : "int4 codes and row scales re-encoded as q4_0 blocks";
    case ENC_WIDEN: break;
    }
    if (p->t->ndim == 1) return "1-D tensor written as f32 (what llama.cpp expects), values exact";
    return "row length not a multiple of 32 (ggml's block): dequantized values written as f32, "
           "exact";
}

static glmq_status plan_tensor(const glmq_tensor_info *t, const char *name, plan_entry *p,
                               glmq_err *err)
{
    memset(p, 0, sizeof *p);
    p->t = t;
    snprintf(p->name, sizeof p->name, "%s", name);
    const int blocks_fit = t->cols % 32 == 0;
    if (t->ndim == 1) {
        p->enc = t->type == GLMQ_TYPE_F32 ? ENC_COPY : ENC_WIDEN;
        p->gtype = GLMQ_GGML_F32;
    } else if (glmq_type_codes(t->type) == GLMQ_TYPE_INT8 && blocks_fit) {
        p->enc = ENC_Q8_0;
        p->gtype = GLMQ_GGML_Q8_0;
    } else if (glmq_type_codes(t->type) == GLMQ_TYPE_INT4 && blocks_fit) {
        p->enc = ENC_Q4_0;
        p->gtype = GLMQ_GGML_Q4_0;
    } else if (glmq_type_scaled(t->type)) {
        p->enc = ENC_WIDEN;
        p->gtype = GLMQ_GGML_F32;
    } else if (t->type == GLMQ_TYPE_F32 || t->type == GLMQ_TYPE_F16 ||
               t->type == GLMQ_TYPE_BF16) {
        p->enc = ENC_COPY;
        p->gtype = t->type == GLMQ_TYPE_F32   ? GLMQ_GGML_F32
                   : t->type == GLMQ_TYPE_F16 ? GLMQ_GGML_F16
                                              : GLMQ_GGML_BF16;
    } else {
        return glmq_fail(err, GLMQ_E_UNSUPPORTED, "tensor '%s': storage type %d has no GGUF "
                         "encoding", t->name, (int)t->type);
    }
    p->row_bytes = glmq_ggml_row_bytes(p->gtype, t->cols);
    GLMQ_FAIL_IF(!p->row_bytes, err, GLMQ_E_INTERNAL, "tensor '%s': no GGUF row size",
                 t->name);
    return GLMQ_OK;
}

/* ---- encoders: one row of the pack -> one row of GGUF bytes ---- */

static void encode_row(const plan_entry *p, int64_t r, uint8_t *out, float *tmp)
{
    const glmq_tensor_info *t = p->t;
    const uint8_t *row = (const uint8_t *)t->data + r * t->row_stride;
    const uint16_t *sc = t->scales ? t->scales + r * glmq_scales_per_row(t->type, t->cols) : NULL;
    switch (p->enc) {
    case ENC_COPY:
        memcpy(out, row, (size_t)p->row_bytes);
        break;
    case ENC_Q8_0: glmq_int8_row_to_q8_0(row, sc, glmq_type_group(t->type), t->cols, out); break;
    case ENC_Q4_0: glmq_int4_row_to_q4_0(row, sc, glmq_type_group(t->type), t->cols, out); break;
    case ENC_WIDEN: {
        glmq_tensor_row_f32(t, r, tmp, NULL); /* r is in range */
        for (int64_t c = 0; c < t->cols; c++) {
            uint32_t u;
            memcpy(&u, &tmp[c], 4);
            glmq_wr_le32(out + 4 * c, u);
        }
        break;
    }
    }
}

/* Drop the pages of [p, p+n) from this process's mapping (read-only file pages: they are read
 * again from the page cache if touched). Advisory; failures are ignored. */
static void release_pages(const void *p, size_t n)
{
    const long ps = sysconf(_SC_PAGESIZE);
    if (!p || !n || ps <= 0) return;
    const uintptr_t a = (uintptr_t)p / (uintptr_t)ps * (uintptr_t)ps;
    const uintptr_t e = (uintptr_t)p + n;
    (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

/* ---- metadata ---- */

static glmq_status add_json_str(glmq_gguf_writer *w, const char *key, const cJSON *j,
                                glmq_err *err)
{
    char *s = cJSON_PrintUnformatted(j);
    GLMQ_FAIL_IF(!s, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = glmq_gguf_writer_add_str(w, key, s, err);
    cJSON_free(s);
    return st;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* general.* and the chatglm.* hyper-parameters, as llama.cpp's converter writes them for
 * ChatGLM2/3 and GLM-4 (conversion/chatglm.py set_gguf_parameters) and its loader reads them. */
static glmq_status add_hparams(glmq_gguf_writer *w, const glmq_config *c, const char *name,
                               uint32_t ftype, glmq_err *err)
{
    GLMQ_TRY(glmq_gguf_writer_add_str(w, "general.architecture", "chatglm", err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "general.quantization_version", GGML_QUANT_VERSION,
                                      err));
    GLMQ_TRY(glmq_gguf_writer_add_str(w, "general.name", name, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "general.file_type", ftype, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.context_length", (uint32_t)c->seq_length, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.embedding_length", (uint32_t)c->hidden, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.feed_forward_length", (uint32_t)c->ffn, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.block_count", (uint32_t)c->n_layers, err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count", (uint32_t)c->n_heads,
                                      err));
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.attention.head_count_kv",
                                      (uint32_t)c->n_kv_groups, err));
    GLMQ_TRY(glmq_gguf_writer_add_f32(w, "chatglm.attention.layer_norm_rms_epsilon",
                                      (float)c->norm_eps, err));
    /* ChatGLM2's RoPE turns adjacent pairs of the first half of each head (GLM-SPEC B): ggml's
     * "normal" rope on head_dim / 2 dimensions, base 10000 * rope_ratio */
    GLMQ_TRY(glmq_gguf_writer_add_u32(w, "chatglm.rope.dimension_count",
                                      (uint32_t)(c->head_dim / 2), err));
    GLMQ_TRY(glmq_gguf_writer_add_f32(w, "chatglm.rope.freq_base",
                                      (float)(10000.0 * c->rope_ratio), err));
    return GLMQ_OK;
}

/* Refuse what llama.cpp's chatglm graph cannot run as glmq does. */
static glmq_status check_arch(const glmq_config *c, const char *path, glmq_err *err)
{
    GLMQ_FAIL_IF(c->arch == GLMQ_ARCH_CHATGLM1, err, GLMQ_E_UNSUPPORTED,
                 "'%s': ChatGLM-6B (v1) cannot be exported: llama.cpp has no architecture for "
                 "it (its `chatglm` architecture is ChatGLM2/3 and GLM-4)", path);
    GLMQ_FAIL_IF(c->arch == GLMQ_ARCH_GLM130B, err, GLMQ_E_UNSUPPORTED,
                 "'%s': GLM-130B cannot be exported: llama.cpp has no architecture for it (1-D "
                 "RoPE over the whole head, GeGLU, DeepNorm residuals on the LayerNorm output, "
                 "the GLM bidirectional-context mask)", path);
    GLMQ_FAIL_IF(c->arch != GLMQ_ARCH_CHATGLM2, err, GLMQ_E_UNSUPPORTED,
                 "'%s': unknown architecture", path);
    GLMQ_FAIL_IF(c->sandwich_norm, err, GLMQ_E_UNSUPPORTED,
                 "'%s': a glm4 (Glm4ForCausalLM) model cannot be exported: llama.cpp's chatglm "
                 "graph has no post_self_attn_layernorm / post_mlp_layernorm (its separate glm4 "
                 "architecture, with split tensors and other metadata, is not written by glmq)",
                 path);
    GLMQ_FAIL_IF(c->linear_bias, err, GLMQ_E_UNSUPPORTED,
                 "'%s': add_bias_linear: llama.cpp's chatglm graph has no bias on the dense "
                 "and MLP layers", path);
    GLMQ_FAIL_IF(!c->rmsnorm || !c->post_layer_norm, err, GLMQ_E_UNSUPPORTED,
                 "'%s': llama.cpp's chatglm graph needs RMSNorm and a final norm", path);
    GLMQ_FAIL_IF(c->n_heads * c->head_dim != c->hidden, err, GLMQ_E_UNSUPPORTED,
                 "'%s': heads x kv_channels (%lld x %lld) != hidden size %lld: llama.cpp's "
                 "chatglm graph assumes they are equal", path, (long long)c->n_heads,
                 (long long)c->head_dim, (long long)c->hidden);
    GLMQ_FAIL_IF(c->head_dim % 2 || c->alpha != 1.0, err, GLMQ_E_UNSUPPORTED,
                 "'%s': configuration outside what llama.cpp's chatglm graph computes", path);
    GLMQ_FAIL_IF(c->seq_length <= 0 || c->seq_length > UINT32_MAX || c->hidden > UINT32_MAX ||
                     c->ffn > UINT32_MAX || c->n_layers > UINT32_MAX,
                 err, GLMQ_E_UNSUPPORTED, "'%s': a dimension does not fit GGUF's u32", path);
    return GLMQ_OK;
}

/* ---- the export ---- */

glmq_status glmq_export_gguf(const char *pack_path, const char *out_path,
                             const glmq_export_opts *opts, glmq_export_report *report,
                             glmq_err *err)
{
    glmq_export_opts o;
    if (opts)
        o = *opts;
    else
        glmq_export_opts_default(&o);
    if (report) memset(report, 0, sizeof *report);
    GLMQ_FAIL_IF(!pack_path || !out_path, err, GLMQ_E_INVALID, "glmq_export_gguf: no path");

    glmq_status st = GLMQ_OK;
    const glmq_pack *pack = NULL;
    glmq_model *model = NULL;
    glmq_tokenizer *tok = NULL;
    glmq_gguf_writer *w = NULL;
    glmq_atomic_file *af = NULL;
    glmq_expected_tensor *ex = NULL;
    plan_entry *plan = NULL;
    cJSON *meta = NULL;
    uint8_t *buf = NULL;
    float *tmp = NULL;
    char *cfg_text = NULL, *name = NULL;
    XXH3_state_t *h = NULL;
    glmq_export_tensor *rt = NULL;
    char warn[GLMQ_ERR_SIZE] = {0};
    int64_t n_ex = 0, n = 0;

    /* one mapping: the model's views of the tensors, and its pack for metadata and blobs */
    GLMQ_TRY_G(glmq_model_open(pack_path, &model, err));
    pack = glmq_model_pack(model);
    GLMQ_FAIL_IF_G(!pack, err, GLMQ_E_INVALID, "'%s': not a .glmq file", pack_path);
    const glmq_config *c = glmq_model_config(model);
    GLMQ_TRY_G(check_arch(c, pack_path, err));
    meta = cJSON_Parse(glmq_pack_metadata(pack));
    GLMQ_FAIL_IF_G(!cJSON_IsObject(meta), err, GLMQ_E_FORMAT, "'%s': metadata is not JSON",
                   pack_path);

    /* the tensor table: expected tensors present in the pack, in canonical order */
    GLMQ_TRY_G(glmq_config_tensors(c, &ex, &n_ex, err));
    plan = calloc((size_t)n_ex + 1, sizeof *plan);
    rt = calloc((size_t)n_ex + 1, sizeof *rt);
    GLMQ_FAIL_IF_G(!plan || !rt, err, GLMQ_E_NOMEM, "out of memory");
    int64_t max_cols = 1;
    uint64_t max_row = 1, total = 0;
    uint32_t ftype = FTYPE_ALL_F32;
    for (int64_t i = 0; i < n_ex; i++) {
        const glmq_tensor_info *t = glmq_model_tensor(model, ex[i].name);
        if (!t) {
            GLMQ_FAIL_IF_G(!ex[i].optional, err, GLMQ_E_FORMAT, "'%s': tensor '%s' missing",
                           pack_path, ex[i].name);
            continue;
        }
        char gname[NAME_MAX_GGUF];
        GLMQ_FAIL_IF_G(!glmq_gguf_tensor_name(ex[i].slot, ex[i].layer, gname, sizeof gname), err,
                       GLMQ_E_UNSUPPORTED,
                       "'%s': tensor '%s' has no place in llama.cpp's chatglm graph", pack_path,
                       ex[i].name);
        GLMQ_TRY_G(plan_tensor(t, gname, &plan[n], err));
        if (t->cols > max_cols) max_cols = t->cols;
        if (plan[n].row_bytes > max_row) max_row = plan[n].row_bytes;
        total += plan[n].row_bytes * (uint64_t)t->rows;
        if (ex[i].slot == GLMQ_SLOT_QKV && ex[i].layer == 0)
            ftype = plan[n].gtype == GLMQ_GGML_Q4_0   ? FTYPE_MOSTLY_Q4_0
                    : plan[n].gtype == GLMQ_GGML_Q8_0 ? FTYPE_MOSTLY_Q8_0
                    : plan[n].gtype == GLMQ_GGML_F16  ? FTYPE_MOSTLY_F16
                    : plan[n].gtype == GLMQ_GGML_BF16 ? FTYPE_MOSTLY_BF16
                                                      : FTYPE_ALL_F32;
        glmq_export_tensor *r = &rt[n];
        snprintf(r->name, sizeof r->name, "%s", gname);
        snprintf(r->source, sizeof r->source, "%s", t->name);
        r->from = t->type;
        r->ggml_type = (int)plan[n].gtype;
        snprintf(r->ggml_type_name, sizeof r->ggml_type_name, "%s",
                 glmq_ggml_type_get(plan[n].gtype)->name);
        r->rows = t->rows;
        r->cols = t->cols;
        r->exact_copy = plan[n].enc != ENC_WIDEN;
        snprintf(r->note, sizeof r->note, "%s", enc_note(&plan[n]));
        n++;
    }

    /* metadata: general + hyper-parameters, vocabulary, glmq.* */
    GLMQ_TRY_G(glmq_gguf_writer_new(GLMQ_GGUF_DEFAULT_ALIGNMENT, &w, err));
    name = glmq_strdup(base_name(pack_path));
    GLMQ_FAIL_IF_G(!name, err, GLMQ_E_NOMEM, "out of memory");
    if (strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".glmq")) name[strlen(name) - 5] = 0;
    GLMQ_TRY_G(add_hparams(w, c, name, ftype, err));

    size_t tok_size = 0;
    const void *tok_bytes = glmq_model_tokenizer(model, &tok_size);
    if (tok_bytes && tok_size) {
        GLMQ_TRY_G(glmq_model_tokenizer_open(model, &tok, err));
        GLMQ_TRY_G(glmq_gguf_add_vocab(w, c, tok, warn, sizeof warn, err));
    } else {
        snprintf(warn, sizeof warn, "the pack has no tokenizer: the GGUF has no vocabulary, and "
                                    "llama.cpp will not load it");
    }

    GLMQ_TRY_G(add_json_str(w, "glmq.config", cJSON_GetObjectItemCaseSensitive(meta, "config"),
                            err));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(meta, "quantization");
    if (q) GLMQ_TRY_G(add_json_str(w, "glmq.quantization", q, err));
    {
        cJSON *src = cJSON_CreateObject();
        GLMQ_FAIL_IF_G(!src, err, GLMQ_E_NOMEM, "out of memory");
        char hx[17];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)glmq_pack_header_checksum(pack));
        cJSON_AddStringToObject(src, "file", base_name(pack_path));
        cJSON_AddStringToObject(src, "header_xxh3", hx);
        const cJSON *prov = cJSON_GetObjectItemCaseSensitive(meta, "source");
        if (prov) cJSON_AddItemToObject(src, "provenance", cJSON_Duplicate(prov, 1));
        st = add_json_str(w, "glmq.source", src, err);
        cJSON_Delete(src);
        if (st != GLMQ_OK) goto fail;
    }
    if (tok_bytes && tok_size)
        GLMQ_TRY_G(glmq_gguf_writer_add_arr_u8(w, "glmq.tokenizer.file", tok_size, tok_bytes,
                                               err));
    const void *cj = NULL;
    size_t cj_size = 0;
    if (glmq_pack_blob(pack, "config.json", &cj, &cj_size, NULL) == GLMQ_OK) {
        GLMQ_FAIL_IF_G(memchr(cj, 0, cj_size) != NULL, err, GLMQ_E_UNSUPPORTED,
                       "'%s': config.json holds a NUL byte: it cannot be a GGUF string",
                       pack_path);
        cfg_text = malloc(cj_size + 1);
        GLMQ_FAIL_IF_G(!cfg_text, err, GLMQ_E_NOMEM, "out of memory");
        memcpy(cfg_text, cj, cj_size);
        cfg_text[cj_size] = 0;
        GLMQ_TRY_G(glmq_gguf_writer_add_str(w, "glmq.config_json", cfg_text, err));
    }
    GLMQ_TRY_G(glmq_gguf_writer_add_u64_placeholder(w, "glmq.tensor_xxh3", (uint64_t)n, err));
    /* the file type the checksums belong to: llama.cpp's quantizer keeps every key of its input
     * but rewrites general.file_type, so a re-encoded file is told apart from a damaged one */
    GLMQ_TRY_G(glmq_gguf_writer_add_u32(w, "glmq.file_type", ftype, err));

    for (int64_t i = 0; i < n; i++) {
        /* GGUF order: ne[0] = columns (fastest), ne[1] = rows */
        const glmq_tensor_info *t = plan[i].t;
        int64_t ne[2] = {t->cols, t->rows};
        GLMQ_TRY_G(glmq_gguf_writer_add_tensor(w, plan[i].name, plan[i].gtype,
                                               t->ndim == 1 ? 1 : 2, ne, err));
    }

    /* data */
    size_t cap = EXPORT_CHUNK > max_row ? EXPORT_CHUNK : (size_t)max_row;
    buf = malloc(cap);
    tmp = malloc((size_t)max_cols * sizeof *tmp);
    h = XXH3_createState();
    GLMQ_FAIL_IF_G(!buf || !tmp || !h, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(glmq_atomic_open(out_path, &af, err));
    GLMQ_TRY_G(glmq_atomic_check_space(af, glmq_gguf_writer_file_size(w), err));
    GLMQ_TRY_G(glmq_gguf_writer_begin(w, af, err));
    uint64_t done = 0;
    for (int64_t i = 0; i < n; i++) {
        const plan_entry *p = &plan[i];
        XXH3_64bits_reset(h);
        size_t fill = 0;
        int64_t r_done = 0; /* rows before this one are written and released */
        for (int64_t r = 0; r < p->t->rows; r++) {
            if (fill + p->row_bytes > cap) {
                XXH3_64bits_update(h, buf, fill);
                GLMQ_TRY_G(glmq_gguf_writer_tensor_data(w, buf, fill, err));
                done += fill;
                fill = 0;
                release_pages((const uint8_t *)p->t->data + r_done * p->t->row_stride,
                              (size_t)((r - r_done) * p->t->row_stride));
                r_done = r;
                if (o.progress) o.progress(o.progress_user, done, total);
            }
            encode_row(p, r, buf + fill, tmp);
            fill += (size_t)p->row_bytes;
        }
        XXH3_64bits_update(h, buf, fill);
        GLMQ_TRY_G(glmq_gguf_writer_tensor_data(w, buf, fill, err));
        done += fill;
        if (o.progress) o.progress(o.progress_user, done, total);
        release_pages(p->t->data, p->t->data_size);
        release_pages(p->t->scales, p->t->scales_size);
        uint64_t x = XXH3_64bits_digest(h);
        rt[i].xxh3 = x;
        GLMQ_TRY_G(glmq_gguf_writer_patch_u64(w, "glmq.tensor_xxh3", (uint64_t)i, x, err));
    }
    GLMQ_TRY_G(glmq_gguf_writer_end(w, err));
    uint64_t out_size = glmq_gguf_writer_file_size(w);
    st = glmq_atomic_commit(af, err);
    af = NULL;
    if (st != GLMQ_OK) goto fail;

    if (report) {
        report->output_bytes = out_size;
        report->n_tensors = n;
        report->tensors = rt;
        rt = NULL;
        report->file_type = ftype;
        snprintf(report->tokenizer_warning, sizeof report->tokenizer_warning, "%s", warn);
    }
fail:
    glmq_atomic_discard(af);
    glmq_gguf_writer_free(w);
    glmq_tokenizer_free(tok);
    glmq_model_close(model);
    cJSON_Delete(meta);
    free(ex);
    free(plan);
    free(rt);
    free(buf);
    free(tmp);
    free(cfg_text);
    free(name);
    if (h) XXH3_freeState(h);
    return st;
}

/* ---- checking an export ---- */

glmq_status glmq_export_verify(const char *path, int64_t *n_tensors, glmq_err *err)
{
    if (n_tensors) *n_tensors = 0;
    glmq_gguf *g = NULL;
    GLMQ_TRY(glmq_gguf_open(path, &g, err));
    glmq_status st = GLMQ_OK;
    const uint8_t *sums = NULL;
    uint64_t n = 0;
    const glmq_gguf_kv *kv = glmq_gguf_find(g, "glmq.tensor_xxh3");
    GLMQ_FAIL_IF_G(!kv, err, GLMQ_E_UNSUPPORTED,
                   "'%s': not a glmq export: no checksums (no glmq.tensor_xxh3 key)", path);
    GLMQ_TRY_G(glmq_gguf_get_arr(g, "glmq.tensor_xxh3", 1, GLMQ_GGUF_U64, &sums, &n, err));
    uint64_t ft_glmq = UINT64_MAX, ft_now = UINT64_MAX;
    GLMQ_TRY_G(glmq_gguf_get_u64(g, "glmq.file_type", 0, &ft_glmq, err));
    GLMQ_TRY_G(glmq_gguf_get_u64(g, "general.file_type", 0, &ft_now, err));
    GLMQ_FAIL_IF_G(ft_glmq != UINT64_MAX && ft_glmq != ft_now, err, GLMQ_E_UNSUPPORTED,
                   "'%s': re-encoded since glmq exported it (general.file_type %llu, glmq wrote "
                   "%llu, e.g. by llama-quantize): glmq's checksums no longer apply; gate it "
                   "with glmq verify against the original instead",
                   path, (unsigned long long)ft_now, (unsigned long long)ft_glmq);
    const int64_t nt = glmq_gguf_tensor_count(g);
    GLMQ_FAIL_IF_G(n != (uint64_t)nt, err, GLMQ_E_FORMAT,
                   "'%s': glmq.tensor_xxh3 (offset %llu) has %llu checksums for %lld tensors",
                   path, (unsigned long long)kv->offset, (unsigned long long)n, (long long)nt);
    for (int64_t i = 0; i < nt; i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        const uint64_t want = glmq_rd_le64(sums + 8 * i);
        const uint64_t got = XXH3_64bits(t->data, (size_t)t->size);
        GLMQ_FAIL_IF_G(got != want, err, GLMQ_E_CHECKSUM,
                       "'%s': tensor '%s' (data at byte offset %llu, %llu bytes): XXH3-64 "
                       "%016llx, glmq.tensor_xxh3 says %016llx",
                       path, t->name, (unsigned long long)t->offset,
                       (unsigned long long)t->size, (unsigned long long)got,
                       (unsigned long long)want);
    }
    if (n_tensors) *n_tensors = nt;
fail:
    glmq_gguf_close(g);
    return st;
}
