/*
 * check_export.c - glmq export: a .glmq -> a GGUF file for llama.cpp's `chatglm` architecture.
 *
 * The GGUF files are read here by a small parser of the test's own, written from ggml's
 * docs/gguf.md, and the blocks are decoded by this file's own reading of ggml's block formats
 * (ggml-common.h: Q8_0 = fp16 d + 32 int8, value q * d; Q4_0 = fp16 d + 16 bytes, element j in
 * the low nibble of byte j and element j + 16 in its high nibble, value (nibble - 8) * d), never
 * by glmq's reader. Every decoded row must equal glmq_tensor_row_f32 of the pack's tensor bit
 * for bit, and the codes and scales must be the pack's own. The hyper-parameters are checked
 * against the sample's config.json, the embedded files against the sample's files. The real
 * llama.cpp judges the same files in check_export_peer.c.
 */
#include "quant/ggml_repack.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static char *tmpdir;
static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* ---- a minimal GGUF parser (docs/gguf.md), independent of formats/gguf_*.c ---- */

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_BF16 = 30 };

typedef struct {
    char key[128];
    uint32_t type, arr_type;
    uint64_t arr_n;
    const uint8_t *val; /* first byte of the value (of the first element for an array) */
} gkv;

typedef struct {
    char name[96];
    uint32_t nd, type;
    int64_t ne[4];
    uint64_t off;
    const uint8_t *data;
    uint64_t size;
} gti;

typedef struct {
    uint8_t *buf;
    size_t size;
    uint32_t version;
    int nkv, nt;
    gkv kv[64];
    gti t[64];
} gfile;

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* the test machines are little-endian, like GGUF */
    return v;
}
static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static size_t scalar_size(uint32_t t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

/* Bytes of one value of type t at p (t != ARR). */
static size_t value_size(uint32_t t, const uint8_t *p)
{
    return t == G_STR ? 8 + (size_t)rd64(p) : scalar_size(t);
}

static size_t block_bytes(uint32_t type, int64_t ne0)
{
    switch (type) {
    case T_F32: return (size_t)ne0 * 4;
    case T_F16:
    case T_BF16: return (size_t)ne0 * 2;
    case T_Q8_0: return (size_t)ne0 / 32 * 34;
    case T_Q4_0: return (size_t)ne0 / 32 * 18;
    }
    ck_abort_msg("unexpected ggml type %u", type);
    return 0;
}

static void gguf_parse(const char *path, gfile *g)
{
    memset(g, 0, sizeof *g);
    g->buf = tu_read_file(path, &g->size);
    ck_assert_msg(g->buf != NULL, "cannot read %s", path);
    const uint8_t *p = g->buf;
    ck_assert_mem_eq(p, "GGUF", 4);
    g->version = rd32(p + 4);
    ck_assert_uint_eq(g->version, 3);
    uint64_t nt = rd64(p + 8), nkv = rd64(p + 16);
    ck_assert_uint_le(nt, 64);
    ck_assert_uint_le(nkv, 64);
    g->nt = (int)nt;
    g->nkv = (int)nkv;
    size_t o = 24;
    uint64_t align = 32;
    for (int i = 0; i < g->nkv; i++) {
        gkv *k = &g->kv[i];
        uint64_t kl = rd64(p + o);
        ck_assert_uint_lt(kl, sizeof k->key);
        memcpy(k->key, p + o + 8, kl);
        o += 8 + kl;
        k->type = rd32(p + o);
        o += 4;
        if (k->type == G_ARR) {
            k->arr_type = rd32(p + o);
            k->arr_n = rd64(p + o + 4);
            o += 12;
            k->val = p + o;
            for (uint64_t e = 0; e < k->arr_n; e++) o += value_size(k->arr_type, p + o);
        } else {
            k->arr_type = k->type;
            k->arr_n = 1;
            k->val = p + o;
            o += value_size(k->type, p + o);
        }
        ck_assert_uint_le(o, g->size);
        if (!strcmp(k->key, "general.alignment")) align = rd32(k->val);
    }
    for (int i = 0; i < g->nt; i++) {
        gti *t = &g->t[i];
        uint64_t nl = rd64(p + o);
        ck_assert_uint_lt(nl, sizeof t->name);
        memcpy(t->name, p + o + 8, nl);
        o += 8 + nl;
        t->nd = rd32(p + o);
        o += 4;
        ck_assert(t->nd >= 1 && t->nd <= 4);
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->nd; d++, o += 8) t->ne[d] = (int64_t)rd64(p + o);
        t->type = rd32(p + o);
        t->off = rd64(p + o + 4);
        o += 12;
        ck_assert_uint_eq(t->off % align, 0);
    }
    const size_t data = (o + align - 1) / align * align;
    for (int i = 0; i < g->nt; i++) {
        gti *t = &g->t[i];
        t->size = block_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        ck_assert_uint_le(data + t->off + t->size, g->size);
        t->data = p + data + t->off;
    }
}

static const gkv *gfind(const gfile *g, const char *key)
{
    for (int i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

static const gkv *gget(const gfile *g, const char *key, uint32_t type)
{
    const gkv *k = gfind(g, key);
    ck_assert_msg(k != NULL, "key %s missing", key);
    ck_assert_msg(k->type == type, "key %s has type %u, want %u", key, k->type, type);
    return k;
}

/* A string value as a malloc'd C string. */
static char *gstr(const gfile *g, const char *key)
{
    const gkv *k = gget(g, key, G_STR);
    size_t n = (size_t)rd64(k->val);
    char *s = malloc(n + 1);
    memcpy(s, k->val + 8, n);
    s[n] = 0;
    return s;
}

static const gti *gtensor(const gfile *g, const char *name)
{
    for (int i = 0; i < g->nt; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

/* ---- decoding ggml blocks (the test's own reading of ggml-common.h) ---- */

static float h2f(uint16_t h)
{
    const uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t u;
    if (e == 0) {
        float f = ldexpf((float)m, -24); /* zero or subnormal: exact */
        return s ? -f : f;
    }
    u = e == 31 ? s | 0x7f800000u | (m << 13) : s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Decode row r of a GGUF tensor into out (ne[0] floats). */
static void decode_row(const gti *t, int64_t r, float *out)
{
    const int64_t n = t->ne[0];
    const uint8_t *p = t->data + (size_t)r * block_bytes(t->type, n);
    for (int64_t b = 0; b < n / 32 && (t->type == T_Q4_0 || t->type == T_Q8_0); b++) {
        if (t->type == T_Q8_0) {
            const uint8_t *x = p + 34 * b;
            const float d = h2f((uint16_t)(x[0] | x[1] << 8));
            for (int j = 0; j < 32; j++) out[32 * b + j] = (float)(int8_t)x[2 + j] * d;
        } else {
            const uint8_t *x = p + 18 * b;
            const float d = h2f((uint16_t)(x[0] | x[1] << 8));
            for (int j = 0; j < 16; j++) {
                out[32 * b + j] = (float)((x[2 + j] & 15) - 8) * d;
                out[32 * b + 16 + j] = (float)((x[2 + j] >> 4) - 8) * d;
            }
        }
    }
    for (int64_t c = 0; c < n; c++) {
        if (t->type == T_F32) {
            memcpy(&out[c], p + 4 * c, 4);
        } else if (t->type == T_F16) {
            out[c] = h2f((uint16_t)(p[2 * c] | p[2 * c + 1] << 8));
        } else if (t->type == T_BF16) {
            uint32_t u = (uint32_t)(p[2 * c] | p[2 * c + 1] << 8) << 16;
            memcpy(&out[c], &u, 4);
        }
    }
}


/* The row encoder alone, on rows the samples do not have: lengths that are not whole 128-element
 * INT4 blocks (32, 96, 160, 4096 + 32), extreme codes, subnormal / zero / large scales. The glmq
 * row is packed here by hand from formats/SPEC.md §5; the blocks are decoded by decode_row. */
START_TEST(row_encoder)
{
    static const int64_t lens[] = {32, 96, 160, 4128};
    static const uint16_t scales[] = {0x3c00, 0x0001, 0x0000, 0x7bff, 0x2e66};
    const int64_t cols = lens[(unsigned)_i % 4];
    const uint16_t scale = scales[(unsigned)_i % 5];
    const glmq_type type = _i < 20 ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
    const int qmax = type == GLMQ_TYPE_INT8 ? 127 : 7;
    uint64_t seed = 42 + (uint64_t)_i;
    static int8_t q[4128];
    static uint8_t row[4224], blocks[4128 / 32 * 34];
    static float a[4128], w[4128];
    for (int64_t c = 0; c < cols; c++) {
        int v = (int)(tu_splitmix64(&seed) % (uint64_t)(2 * qmax + 1)) - qmax;
        q[c] = (int8_t)(c == 0 ? -qmax : c == 1 ? qmax : v);
    }
    /* the glmq row: INT8 codes padded to 64, INT4 nibbles q + 8 in 128-element blocks */
    const size_t rb = type == GLMQ_TYPE_INT8 ? (size_t)(cols + 63) / 64 * 64
                                             : (size_t)(cols + 127) / 128 * 64;
    memset(row, 0, sizeof row);
    for (int64_t c = 0; c < cols; c++) {
        if (type == GLMQ_TYPE_INT8) {
            row[c] = (uint8_t)q[c];
        } else {
            const int64_t b = c / 128, j = c % 128;
            row[64 * b + j % 64] |= (uint8_t)((q[c] + 8) << (j < 64 ? 0 : 4));
        }
    }
    for (int64_t c = cols; type == GLMQ_TYPE_INT4 && c < (int64_t)rb * 2; c++) {
        const int64_t b = c / 128, j = c % 128;
        row[64 * b + j % 64] |= (uint8_t)(8 << (j < 64 ? 0 : 4));
    }
    const size_t bb = type == GLMQ_TYPE_INT8 ? 34 : 18;
    if (type == GLMQ_TYPE_INT8)
        glmq_int8_row_to_q8_0(row, &scale, 0, cols, blocks);
    else
        glmq_int4_row_to_q4_0(row, &scale, 0, cols, blocks);
    gti t = {.type = type == GLMQ_TYPE_INT8 ? T_Q8_0 : T_Q4_0, .ne = {cols, 1, 1, 1},
             .data = blocks};
    decode_row(&t, 0, a);
    glmq_tensor_info ti = {.name = "row", .type = type, .ndim = 2, .rows = 1, .cols = cols,
                           .row_stride = (int64_t)rb, .data = row, .scales = &scale};
    glmq_err err = {0};
    ck_assert_int_eq(glmq_tensor_row_f32(&ti, 0, w, &err), GLMQ_OK);
    for (int64_t c = 0; c < cols; c++) {
        ck_assert_msg(!memcmp(&a[c], &w[c], 4), "col %lld: %g vs %g", (long long)c, a[c], w[c]);
        ck_assert(a[c] == (float)q[c] * h2f(scale)); /* the codes themselves */
    }
    for (int64_t k = 0; k < cols / 32; k++)
        ck_assert_uint_eq(blocks[bb * k] | blocks[bb * k + 1] << 8, scale);
}
END_TEST

static char *export_pack(const char *pack, const char *name, glmq_export_report *rep)
{
    char *out = tu_path(tmpdir, name);
    glmq_err err = {0};
    glmq_status st = glmq_export_gguf(pack, out, NULL, rep, &err);
    ck_assert_msg(st == GLMQ_OK, "export %s: %s", pack, err.msg);
    return out;
}

static const glmq_type qtypes[] = {GLMQ_TYPE_INT4, GLMQ_TYPE_INT8, GLMQ_TYPE_F16};

/* Every tensor of the GGUF, decoded here, equals glmq's widening of the pack's tensor bit for
 * bit; quantized blocks carry the pack's scales and codes; the types are the documented ones. */
START_TEST(lossless)
{
    glmq_err err = {0};
    char *pack = tu_convert_sample(tmpdir, "glm2-tiny", qtypes[_i], &err);
    ck_assert_msg(pack != NULL, "%s", err.msg);
    glmq_export_report rep;
    char *out = export_pack(pack, "x.gguf", &rep);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(pack, &p, &err), GLMQ_OK);
    gfile g;
    gguf_parse(out, &g);
    ck_assert_int_eq(g.nt, glmq_pack_tensor_count(p)); /* glm2-tiny: every tensor is exported */
    ck_assert_int_eq(g.nt, rep.n_tensors);
    const gkv *sums = gget(&g, "glmq.tensor_xxh3", G_ARR);
    ck_assert_uint_eq(sums->arr_type, G_U64);
    ck_assert_uint_eq(sums->arr_n, (uint64_t)g.nt);
    int seen_q = 0, seen_widened = 0, seen_copy = 0;
    for (int i = 0; i < g.nt; i++) {
        const gti *t = &g.t[i];
        char hf[160];
        tu_gguf_hf_name(t->name, hf, sizeof hf);
        glmq_tensor_info ti;
        ck_assert_msg(glmq_pack_find(p, hf, &ti, &err) == GLMQ_OK, "%s: %s", t->name, err.msg);
        ck_assert_int_eq(t->ne[0], ti.cols);
        ck_assert_int_eq(t->ne[1] * t->ne[2] * t->ne[3], ti.rows);
        ck_assert_uint_eq(t->nd, (uint32_t)ti.ndim);
        /* the documented choice of type */
        uint32_t want;
        if (ti.ndim == 1)
            want = T_F32;
        else if ((ti.type == GLMQ_TYPE_INT8 || ti.type == GLMQ_TYPE_INT4) && ti.cols % 32)
            want = T_F32;
        else
            want = ti.type == GLMQ_TYPE_INT8   ? T_Q8_0
                   : ti.type == GLMQ_TYPE_INT4 ? T_Q4_0
                   : ti.type == GLMQ_TYPE_F16  ? T_F16
                   : ti.type == GLMQ_TYPE_BF16 ? T_BF16
                                               : T_F32;
        ck_assert_msg(t->type == want, "%s: ggml type %u, want %u", t->name, t->type, want);
        ck_assert_int_eq(rep.tensors[i].ggml_type, (int)want);
        ck_assert_str_eq(rep.tensors[i].name, t->name);
        ck_assert_str_eq(rep.tensors[i].source, hf);
        seen_q += want == T_Q8_0 || want == T_Q4_0;
        seen_widened += want == T_F32 && ti.type != GLMQ_TYPE_F32;
        seen_copy += want == (uint32_t)T_F16;
        ck_assert_int_eq(rep.tensors[i].exact_copy, !(want == T_F32 && ti.type != GLMQ_TYPE_F32));
        /* the checksum */
        ck_assert_msg(rd64(sums->val + 8 * i) == XXH3_64bits(t->data, t->size),
                      "%s: glmq.tensor_xxh3 entry is not the XXH3 of its bytes", t->name);
        /* every row, bit for bit */
        float *a = malloc((size_t)ti.cols * 4), *b = malloc((size_t)ti.cols * 4);
        for (int64_t r = 0; r < ti.rows; r++) {
            decode_row(t, r, a);
            ck_assert_int_eq(glmq_tensor_row_f32(&ti, r, b, &err), GLMQ_OK);
            ck_assert_msg(!memcmp(a, b, (size_t)ti.cols * 4), "%s row %lld differs", t->name,
                          (long long)r);
            if (want == T_Q8_0 || want == T_Q4_0) {
                /* d = the row's fp16 scale bits, in every block */
                const size_t bb = want == T_Q8_0 ? 34 : 18;
                const uint8_t *row = t->data + (size_t)r * block_bytes(t->type, ti.cols);
                for (int64_t k = 0; k < ti.cols / 32; k++)
                    ck_assert_uint_eq(row[bb * k] | row[bb * k + 1] << 8, ti.scales[r]);
            }
            if (want == T_F16) /* copied: the same bytes */
                ck_assert_mem_eq(t->data + (size_t)r * 2 * ti.cols,
                                 (const uint8_t *)ti.data + r * ti.row_stride,
                                 (size_t)ti.cols * 2);
        }
        free(a);
        free(b);
    }
    /* glm2-tiny has all the cases: norms and the QKV bias (1-D, F16 -> F32), ffn_down (172
     * columns: quantized -> F32), and quantized (or, for f16, copied) matrices */
    ck_assert_int_gt(seen_widened, 0);
    if (qtypes[_i] == GLMQ_TYPE_F16)
        ck_assert_int_gt(seen_copy, 0);
    else
        ck_assert_int_gt(seen_q, 0);
    ck_assert_uint_eq(rep.output_bytes, g.size);
    ck_assert_uint_eq(rep.file_type, qtypes[_i] == GLMQ_TYPE_INT4   ? 2u
                                     : qtypes[_i] == GLMQ_TYPE_INT8 ? 7u
                                                                    : 1u);
    free(g.buf);
    glmq_pack_close(p);
    glmq_export_report_free(&rep);
    free(out);
    free(pack);
}
END_TEST

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(v), "config.json: %s", k);
    return v->valuedouble;
}

static uint32_t gu32(const gfile *g, const char *key) { return rd32(gget(g, key, G_U32)->val); }
static float gf32(const gfile *g, const char *key)
{
    float f;
    memcpy(&f, gget(g, key, G_F32)->val, 4);
    return f;
}

/* Hyper-parameters as llama.cpp's converter derives them from config.json, and the glmq.* keys:
 * the embedded files are the sample's own bytes. */
START_TEST(metadata)
{
    glmq_err err = {0};
    char *pack = tu_convert_sample(tmpdir, "glm2-tiny", GLMQ_TYPE_INT4, &err);
    ck_assert_msg(pack != NULL, "%s", err.msg);
    char *out = export_pack(pack, "m.gguf", NULL);
    gfile g;
    gguf_parse(out, &g);
    char *dir = tu_sample_path("glm2-tiny", "st");
    char *cfg_path = tu_path(dir, "config.json"), *tok_path = tu_path(dir, "tokenizer.model");
    size_t cfg_n = 0, tok_n = 0;
    uint8_t *cfg_bytes = tu_read_file(cfg_path, &cfg_n), *tok_bytes = tu_read_file(tok_path, &tok_n);
    ck_assert(cfg_bytes && tok_bytes);
    cJSON *cfg = cJSON_Parse((const char *)cfg_bytes);
    ck_assert(cfg != NULL);

    char *s = gstr(&g, "general.architecture");
    ck_assert_str_eq(s, "chatglm");
    free(s);
    ck_assert_uint_eq(gu32(&g, "general.file_type"), 2);
    ck_assert_uint_eq(gu32(&g, "general.quantization_version"), 2);
    ck_assert_uint_eq(gu32(&g, "chatglm.context_length"), (uint32_t)jnum(cfg, "seq_length"));
    ck_assert_uint_eq(gu32(&g, "chatglm.embedding_length"), (uint32_t)jnum(cfg, "hidden_size"));
    ck_assert_uint_eq(gu32(&g, "chatglm.feed_forward_length"),
                      (uint32_t)jnum(cfg, "ffn_hidden_size"));
    ck_assert_uint_eq(gu32(&g, "chatglm.block_count"), (uint32_t)jnum(cfg, "num_layers"));
    ck_assert_uint_eq(gu32(&g, "chatglm.attention.head_count"),
                      (uint32_t)jnum(cfg, "num_attention_heads"));
    ck_assert_uint_eq(gu32(&g, "chatglm.attention.head_count_kv"),
                      (uint32_t)jnum(cfg, "multi_query_group_num"));
    ck_assert(gf32(&g, "chatglm.attention.layer_norm_rms_epsilon") ==
              (float)jnum(cfg, "layernorm_epsilon"));
    /* half of each head rotates (hidden / heads * 0.5, as llama.cpp's converter computes it) */
    ck_assert_uint_eq(gu32(&g, "chatglm.rope.dimension_count"),
                      (uint32_t)(jnum(cfg, "hidden_size") / jnum(cfg, "num_attention_heads") / 2));
    ck_assert(gf32(&g, "chatglm.rope.freq_base") == (float)(10000 * jnum(cfg, "rope_ratio")));

    /* glmq.* */
    s = gstr(&g, "glmq.config_json");
    ck_assert_uint_eq(strlen(s), cfg_n);
    ck_assert_mem_eq(s, cfg_bytes, cfg_n);
    free(s);
    const gkv *tk = gget(&g, "glmq.tokenizer.file", G_ARR);
    ck_assert_uint_eq(tk->arr_type, G_U8);
    ck_assert_uint_eq(tk->arr_n, tok_n);
    ck_assert_mem_eq(tk->val, tok_bytes, tok_n);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(pack, &p, &err), GLMQ_OK);
    cJSON *meta = cJSON_Parse(glmq_pack_metadata(p));
    s = gstr(&g, "glmq.config");
    cJSON *c = cJSON_Parse(s);
    ck_assert(cJSON_Compare(c, cJSON_GetObjectItemCaseSensitive(meta, "config"), 1));
    cJSON_Delete(c);
    free(s);
    s = gstr(&g, "glmq.quantization");
    c = cJSON_Parse(s);
    ck_assert(cJSON_Compare(c, cJSON_GetObjectItemCaseSensitive(meta, "quantization"), 1));
    cJSON_Delete(c);
    free(s);
    s = gstr(&g, "glmq.source");
    c = cJSON_Parse(s);
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)glmq_pack_header_checksum(p));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "header_xxh3")->valuestring, hx);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "file")->valuestring,
                     "glm2-tiny-int4.glmq");
    ck_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(c, "provenance"),
                            cJSON_GetObjectItemCaseSensitive(meta, "source"), 1));
    cJSON_Delete(c);
    free(s);
    /* order: general + hyper-parameters, then tokenizer.ggml.*, then glmq.* */
    int last_tok = -1, first_glmq = g.nkv;
    for (int i = 0; i < g.nkv; i++) {
        if (!strncmp(g.kv[i].key, "tokenizer.ggml.", 15)) last_tok = i;
        if (!strncmp(g.kv[i].key, "glmq.", 5) && i < first_glmq) first_glmq = i;
    }
    ck_assert_int_gt(last_tok, 0);
    ck_assert_int_lt(last_tok, first_glmq);

    cJSON_Delete(meta);
    glmq_pack_close(p);
    cJSON_Delete(cfg);
    free(cfg_bytes);
    free(tok_bytes);
    free(cfg_path);
    free(tok_path);
    free(dir);
    free(g.buf);
    free(out);
    free(pack);
}
END_TEST

/* The same pack gives the same bytes: twice in a row, and through the CLI at the scalar kernel
 * level (nothing in the export may depend on the CPU). */
START_TEST(deterministic)
{
    glmq_err err = {0};
    char *pack = tu_convert_sample(tmpdir, "glm2-tiny", qtypes[_i], &err);
    ck_assert_msg(pack != NULL, "%s", err.msg);
    char *a = export_pack(pack, "a.gguf", NULL), *b = export_pack(pack, "b.gguf", NULL);
    char *c = tu_path(tmpdir, "c.gguf");
    char *log = NULL;
    int rc = tu_run(&log, "GLMQ_CPU=ref '%s' export '%s' -o '%s' --quiet", tu_bin(), pack, c);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    size_t na, nb, nc;
    uint8_t *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb), *z = tu_read_file(c, &nc);
    ck_assert(x && y && z);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(na, nc);
    ck_assert_mem_eq(x, y, na);
    ck_assert_mem_eq(x, z, na);
    free(x);
    free(y);
    free(z);
    free(a);
    free(b);
    free(c);
    free(pack);
}
END_TEST

/* ChatGLM-6B has no llama.cpp architecture: refused, and nothing written. */
START_TEST(refuses_v1)
{
    glmq_err err = {0};
    char *pack = tu_convert_sample(tmpdir, "glm1-tiny", GLMQ_TYPE_INT8, &err);
    ck_assert_msg(pack != NULL, "%s", err.msg);
    char *out = tu_path(tmpdir, "v1.gguf");
    glmq_export_report rep;
    ck_assert_int_eq(glmq_export_gguf(pack, out, NULL, &rep, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "llama.cpp has no architecture"), "%s", err.msg);
    ck_assert_int_eq(rep.n_tensors, 0);
    ck_assert(!tu_file_exists(out));
    ck_assert_int_eq(tu_count_entries(tmpdir), 1); /* the pack only */
    free(out);
    free(pack);
}
END_TEST

/* A GGUF with one key and no tensor, as another tool would write one. */
static void write_foreign_gguf(const char *path)
{
    uint8_t b[256];
    size_t n = 0;
    const char *key = "general.architecture", *val = "chatglm";
    uint32_t v3 = 3, ts = G_STR;
    uint64_t nt = 0, nkv = 1, kl = strlen(key), vl = strlen(val);
    memcpy(b, "GGUF", 4);
    memcpy(b + 4, &v3, 4);
    memcpy(b + 8, &nt, 8);
    memcpy(b + 16, &nkv, 8);
    n = 24;
    memcpy(b + n, &kl, 8);
    memcpy(b + n + 8, key, kl);
    n += 8 + kl;
    memcpy(b + n, &ts, 4);
    memcpy(b + n + 4, &vl, 8);
    memcpy(b + n + 12, val, vl);
    n += 12 + vl;
    ck_assert_int_eq(tu_write_file(path, b, n), 0);
}

/* glmq export / glmq check on the command line: usage (2), errors (1), and check of a good, a
 * corrupted and a foreign GGUF. */
START_TEST(cli)
{
    glmq_err err = {0};
    char *pack = tu_convert_sample(tmpdir, "glm2-tiny", GLMQ_TYPE_INT4, &err);
    ck_assert_msg(pack != NULL, "%s", err.msg);
    char *out = tu_path(tmpdir, "o.gguf"), *log = NULL;
    ck_assert_int_eq(tu_run(&log, "'%s' export '%s'", tu_bin(), pack), 2);
    ck_assert_msg(strstr(log, "missing -o"), "%s", log);
    free(log);
    ck_assert_int_eq(tu_run(&log, "'%s' export '%s' -o x --frobnicate", tu_bin(), pack), 2);
    free(log);
    ck_assert_int_eq(tu_run(&log, "'%s' export '%s/none.glmq' -o '%s'", tu_bin(), tmpdir, out),
                     1);
    ck_assert_msg(strstr(log, "glmq: error: "), "%s", log);
    free(log);
    ck_assert(!tu_file_exists(out));
    ck_assert_int_eq(tu_run(&log, "'%s' export '%s' -o '%s'", tu_bin(), pack, out), 0);
    /* the tensors that are not re-encoded one for one are listed */
    ck_assert_msg(strstr(log, "blk.0.ffn_down.weight") && strstr(log, "output_norm.weight"), "%s",
                  log);
    ck_assert_msg(!strstr(log, "blk.0.attn_qkv.weight"), "%s", log);
    free(log);
    ck_assert_int_eq(tu_run(&log, "'%s' check '%s'", tu_bin(), out), 0);
    ck_assert_msg(strstr(log, "ok"), "%s", log);
    free(log);

    /* flip one bit inside the data of blk.1.attn_qkv.weight */
    gfile g;
    gguf_parse(out, &g);
    const gti *t = gtensor(&g, "blk.1.attn_qkv.weight");
    ck_assert(t != NULL);
    g.buf[(size_t)(t->data - g.buf) + 100] ^= 4;
    char *bad = tu_path(tmpdir, "bad.gguf");
    ck_assert_int_eq(tu_write_file(bad, g.buf, g.size), 0);
    ck_assert_int_eq(tu_run(&log, "'%s' check '%s'", tu_bin(), bad), 1);
    ck_assert_msg(strstr(log, "glmq: error: ") && strstr(log, "blk.1.attn_qkv.weight"), "%s", log);
    free(log);
    free(g.buf);

    char *foreign = tu_path(tmpdir, "foreign.gguf");
    write_foreign_gguf(foreign);
    ck_assert_int_eq(tu_run(&log, "'%s' check '%s'", tu_bin(), foreign), 1);
    ck_assert_msg(strstr(log, "not a glmq export: no checksums"), "%s", log);
    free(log);
    ck_assert_int_eq(glmq_export_verify(foreign, NULL, &err), GLMQ_E_UNSUPPORTED);

    /* an output in a directory that does not exist: an error, nothing written */
    ck_assert_int_eq(tu_run(&log, "'%s' export '%s' -o '%s/no/such/dir.gguf'", tu_bin(), pack,
                            tmpdir), 1);
    free(log);
    free(foreign);
    free(bad);
    free(out);
    free(pack);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, row_encoder, 0, 40);
    tcase_add_loop_test(tc, lossless, 0, 3);
    tcase_add_test(tc, metadata);
    tcase_add_loop_test(tc, deterministic, 0, 3);
    tcase_add_test(tc, refuses_v1);
    tcase_add_test(tc, cli);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(export_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
