/*
 * check_convert.c - end-to-end conversion of the bundled samples.
 *
 * Goldens are PyTorch's (samples/<model>/golden, written by samples/gen_samples.py from torch,
 * never from glmq): quantized codes and scales of decision 6, bit for bit, for real trained
 * tensors and for an edge-case matrix, at every kernel level the CPU supports. Provenance hashes
 * are recomputed here with XXH3 directly on the source files.
 */
#include "formats/pack.h"
#include "quant/quant.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

static const char *models[] = {"glm2-tiny", "glm1-tiny"};
static const char *variants[] = {"st", "st-sharded", "bin", "bin-sharded"};
static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
}


static char *convert(const char *model, const char *variant, glmq_type type, int threads,
                     const char *out_name)
{
    char *src = tu_sample_path(model, variant);
    char *out = tu_path(tmpdir, out_name);
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = type;
    o.threads = threads;
    glmq_err err = {0};
    glmq_convert_report rep;
    glmq_status st = glmq_convert(src, out, &o, &rep, &err);
    ck_assert_msg(st == GLMQ_OK, "convert %s: %s", src, err.msg);
    ck_assert_int_gt(rep.n_tensors, 0);
    glmq_convert_report_free(&rep);
    free(src);
    return out;
}

/* The four variants (safetensors, sharded safetensors, .bin, sharded .bin) of one model give the
 * same tensors: same names, types, shapes and checksums of the stored bytes. */
START_TEST(variants_identical)
{
    const char *model = models[_i / 3];
    glmq_type type = (glmq_type[]){GLMQ_TYPE_INT4, GLMQ_TYPE_INT8, GLMQ_TYPE_F16}[_i % 3];
    glmq_pack *ref = NULL;
    glmq_err err = {0};
    for (int v = 0; v < 4; v++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%s.glmq", model, variants[v]);
        char *out = convert(model, variants[v], type, 2, name);
        glmq_pack *p = NULL;
        ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
        ck_assert_int_eq(glmq_pack_verify(p, &err), GLMQ_OK);
        if (!ref) {
            ref = p;
        } else {
            ck_assert_int_eq(glmq_pack_tensor_count(p), glmq_pack_tensor_count(ref));
            for (int64_t i = 0; i < glmq_pack_tensor_count(p); i++) {
                glmq_tensor_info a, b;
                glmq_pack_tensor(ref, i, &a, NULL);
                glmq_pack_tensor(p, i, &b, NULL);
                ck_assert_str_eq(a.name, b.name);
                ck_assert_int_eq(a.type, b.type);
                ck_assert_int_eq(a.rows, b.rows);
                ck_assert_int_eq(a.cols, b.cols);
                ck_assert_msg(a.checksum == b.checksum, "%s: tensor %s differs in %s", model,
                              a.name, variants[v]);
                ck_assert_mem_eq(a.data, b.data, a.data_size);
            }
            glmq_pack_close(p);
        }
        free(out);
    }
    glmq_pack_close(ref);
}
END_TEST

static void *golden(const char *model, const char *file, char dt[8], int64_t shape[4])
{
    char *m = tu_path(tu_samples(), model);
    char *g = tu_path(m, "golden");
    char *p = tu_path(g, file);
    int nd;
    void *d = tu_npy_load(p, dt, &nd, shape, NULL);
    ck_assert_msg(d != NULL, "cannot load golden %s", p);
    free(p);
    free(g);
    free(m);
    return d;
}

static cJSON *manifest(const char *model)
{
    char *m = tu_path(tu_samples(), model);
    char *g = tu_path(m, "golden");
    char *p = tu_path(g, "manifest.json");
    char *txt = (char *)tu_read_file(p, NULL);
    ck_assert_ptr_nonnull(txt);
    cJSON *j = cJSON_Parse(txt);
    ck_assert_ptr_nonnull(j);
    free(txt);
    free(p);
    free(g);
    free(m);
    return j;
}

/* Signed code of element (r, c) of a stored INT8/INT4 tensor (layout of quant.h / SPEC §5). */
static int code_at(glmq_type type, const uint8_t *data, int64_t stride, int64_t r, int64_t c)
{
    const uint8_t *row = data + r * stride;
    if (type == GLMQ_TYPE_INT8) return (int8_t)row[c];
    int64_t b = c / 128, j = c % 128;
    uint8_t byte = row[64 * b + (j % 64)];
    return (j < 64 ? (byte & 15) : (byte >> 4)) - 8;
}

/* Codes and scales of the converted sample equal PyTorch's, bit for bit. */
START_TEST(quant_goldens_tensors)
{
    const char *model = models[_i / 2];
    glmq_type type = _i % 2 ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4;
    const char *tn = type == GLMQ_TYPE_INT8 ? "int8" : "int4";
    char *out = convert(model, "st", type, 2, "q.glmq");
    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    cJSON *man = manifest(model);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(man, "quantization"), *e;
    int checked = 0;
    cJSON_ArrayForEach(e, q)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "tensor");
        if (!cJSON_IsString(name)) continue;
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(e, tn);
        char dt[8], st[8];
        int64_t cs[4], ss[4];
        int8_t *codes = golden(model, cJSON_GetObjectItemCaseSensitive(files, "codes")->valuestring,
                               dt, cs);
        uint16_t *scales = golden(model,
                                  cJSON_GetObjectItemCaseSensitive(files, "scales")->valuestring,
                                  st, ss);
        ck_assert_str_eq(dt, "|i1");
        ck_assert_str_eq(st, "<u2");
        glmq_tensor_info t;
        ck_assert_int_eq(glmq_pack_find(p, name->valuestring, &t, &err), GLMQ_OK);
        ck_assert_int_eq(t.type, type);
        ck_assert_int_eq(t.rows, cs[0]);
        ck_assert_int_eq(t.cols, cs[1]);
        for (int64_t r = 0; r < t.rows; r++) {
            ck_assert_msg(glmq_rd_le16(&t.scales[r]) == scales[r], "%s row %lld scale %04x != %04x",
                          t.name, (long long)r, glmq_rd_le16(&t.scales[r]), scales[r]);
            for (int64_t c = 0; c < t.cols; c++)
                ck_assert_msg(code_at(type, t.data, t.row_stride, r, c) == codes[r * t.cols + c],
                              "%s %s [%lld,%lld]: %d != golden %d", model, t.name, (long long)r,
                              (long long)c, code_at(type, t.data, t.row_stride, r, c),
                              codes[r * t.cols + c]);
            /* padding is exactly zero */
            int64_t padded = type == GLMQ_TYPE_INT8 ? glmq_q8_padded_cols(t.cols)
                                                    : glmq_q4_padded_cols(t.cols);
            for (int64_t c = t.cols; c < padded; c++)
                ck_assert_int_eq(code_at(type, t.data, t.row_stride, r, c), 0);
        }
        free(codes);
        free(scales);
        checked++;
    }
    ck_assert_int_ge(checked, 3);
    cJSON_Delete(man);
    glmq_pack_close(p);
    free(out);
}
END_TEST

/* The edge-case matrix through every kernel level the machine supports. */
START_TEST(quant_goldens_edges)
{
    const char *model = "glm2-tiny";
    cJSON *man = manifest(model);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(man, "quantization"), *e, *edge = NULL;
    cJSON_ArrayForEach(e, q) if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "input")))
        edge = e;
    ck_assert_ptr_nonnull(edge);
    char dt[8];
    int64_t sh[4];
    /* the edge inputs are fp16 bit patterns (the checkpoint's own element type) */
    uint16_t *bits = golden(model, cJSON_GetObjectItemCaseSensitive(edge, "input")->valuestring,
                            dt, sh);
    ck_assert_str_eq(dt, "<u2");
    int64_t rows = sh[0], cols = sh[1];
    float *in = malloc((size_t)(rows * cols) * sizeof *in);
    for (int64_t i = 0; i < rows * cols; i++) in[i] = glmq_f16_to_f32(bits[i]);
    free(bits);
    int levels = 0;
    for (int ti = 0; ti < 2; ti++) {
        const char *tn = ti ? "int8" : "int4";
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(edge, tn);
        char d1[8], d2[8];
        int64_t s1[4], s2[4];
        int8_t *codes = golden(model, cJSON_GetObjectItemCaseSensitive(files, "codes")->valuestring,
                               d1, s1);
        uint16_t *scales = golden(
            model, cJSON_GetObjectItemCaseSensitive(files, "scales")->valuestring, d2, s2);
        for (int lv = GLMQ_CPU_REF; lv <= GLMQ_CPU_MAX; lv++) {
            const glmq_kernels *k = glmq_kernels_for((glmq_cpu_level)lv);
            if (!k) continue;
            levels++;
            uint8_t buf[256];
            for (int64_t r = 0; r < rows; r++) {
                uint16_t s;
                glmq_status qs = ti ? k->quantize_row_q8(in + r * cols, cols, buf, &s, NULL, NULL)
                                    : k->quantize_row_q4(in + r * cols, cols, buf, &s, NULL, NULL);
                ck_assert_int_eq(qs, GLMQ_OK);
                ck_assert_msg(s == scales[r], "level %d %s row %lld: scale %04x != %04x", lv, tn,
                              (long long)r, s, scales[r]);
                for (int64_t c = 0; c < cols; c++)
                    ck_assert_msg(code_at(ti ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4, buf, 0, 0, c) ==
                                      codes[r * cols + c],
                                  "level %d %s row %lld col %lld", lv, tn, (long long)r,
                                  (long long)c);
            }
        }
        free(codes);
        free(scales);
    }
    ck_assert_int_ge(levels, 2);
    free(in);
    cJSON_Delete(man);
}
END_TEST

/* --threads 1 and --threads 2 give byte-identical files; and so do two runs. */
START_TEST(threads_identical)
{
    char *a = convert(models[_i], "st", GLMQ_TYPE_INT4, 1, "t1.glmq");
    char *b = convert(models[_i], "st", GLMQ_TYPE_INT4, 2, "t2.glmq");
    char *c = convert(models[_i], "st", GLMQ_TYPE_INT4, 3, "t3.glmq");
    size_t na, nb, nc;
    uint8_t *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb), *dc = tu_read_file(c, &nc);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(na, nc);
    ck_assert_mem_eq(da, db, na);
    ck_assert_mem_eq(da, dc, na);
    free(da);
    free(db);
    free(dc);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* Metadata: provenance hashes (recomputed here), embedded tokenizer and config bytes. */
START_TEST(metadata_provenance)
{
    const char *model = models[_i / 2];
    const char *variant = _i % 2 ? "bin-sharded" : "st";
    char *out = convert(model, variant, GLMQ_TYPE_INT8, 2, "m.glmq");
    char *src = tu_sample_path(model, variant);
    glmq_pack *p = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    ck_assert_ptr_nonnull(m);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "source"), "files");
    int nfiles = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring;
        char *path = tu_path(src, name);
        size_t n;
        uint8_t *bytes = tu_read_file(path, &n);
        ck_assert_ptr_nonnull(bytes);
        ck_assert_uint_eq((uint64_t)cJSON_GetObjectItemCaseSensitive(f, "size")->valuedouble, n);
        char hx[17];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)XXH3_64bits(bytes, n));
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(f, "xxh3")->valuestring, hx);
        free(bytes);
        free(path);
        nfiles++;
    }
    ck_assert_int_ge(nfiles, 3); /* config, tokenizer, weights */
    const void *tok;
    size_t ts, tn;
    ck_assert_int_eq(glmq_pack_blob(p, "tokenizer.model", &tok, &ts, &err), GLMQ_OK);
    char *tp = tu_path(src, "tokenizer.model");
    uint8_t *tb = tu_read_file(tp, &tn);
    ck_assert_uint_eq(ts, tn);
    ck_assert_mem_eq(tok, tb, tn);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architecture");
    ck_assert_str_eq(arch->valuestring, _i < 2 ? "chatglm2" : "chatglm");
    /* no timestamps or paths of this machine in the metadata */
    ck_assert_ptr_null(strstr(glmq_pack_metadata(p), tmpdir));
    ck_assert_ptr_null(strstr(glmq_pack_metadata(p), tu_samples()));
    free(tb);
    free(tp);
    cJSON_Delete(m);
    glmq_pack_close(p);
    free(src);
    free(out);
}
END_TEST

/* Default policy: layer weights quantized; embedding, output, norms, biases as stored; options
 * quantize the output layer and the embedding too. */
START_TEST(policy)
{
    char *src = tu_sample_path("glm2-tiny", "st");
    char *out = tu_path(tmpdir, "pol.glmq");
    glmq_convert_opts o;
    glmq_err err = {0};
    for (int opt = 0; opt < 2; opt++) {
        glmq_convert_opts_default(&o);
        o.weight_type = GLMQ_TYPE_INT8;
        o.quantize_output = o.quantize_embedding = opt;
        ck_assert_int_eq(glmq_convert(src, out, &o, NULL, &err), GLMQ_OK);
        glmq_pack *p = NULL;
        ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
        for (int64_t i = 0; i < glmq_pack_tensor_count(p); i++) {
            glmq_tensor_info t;
            glmq_pack_tensor(p, i, &t, NULL);
            int layer_w = strstr(t.name, ".layers.") && t.ndim == 2;
            int io = strstr(t.name, "word_embeddings") || strstr(t.name, "output_layer");
            glmq_type want = layer_w || (io && opt) ? GLMQ_TYPE_INT8 : GLMQ_TYPE_F16;
            ck_assert_msg(t.type == want, "%s: type %d, want %d", t.name, t.type, want);
        }
        glmq_pack_close(p);
    }
    free(out);
    free(src);
}
END_TEST

/*
 * A NaN weight in a quantized tensor fails the conversion with GLMQ_E_VALUE and a message naming
 * the tensor, row and column (the quantizer's status tells it from a scale overflow, which an
 * F16 source cannot reach: 65504 / 7 < 65520). The NaN goes into a copy of the sample at a
 * position computed from the safetensors header, read here with plain byte arithmetic.
 */
START_TEST(nan_weight_message)
{
    char *src = tu_sample_path("glm2-tiny", "st");
    char *dir = tu_path(tmpdir, "nan-st");
    ck_assert_int_eq(tu_copy_dir(src, dir), 0);
    char *st = tu_path(dir, "model.safetensors");
    size_t n = 0;
    uint8_t *b = tu_read_file(st, &n);
    ck_assert_ptr_nonnull(b);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    const char *name = "transformer.encoder.layers.0.self_attention.dense.weight";
    ck_assert_uint_lt(8 + hlen, n);
    char *h = calloc((size_t)hlen + 1, 1);
    memcpy(h, b + 8, (size_t)hlen);
    const char *at = strstr(h, name), *off = at ? strstr(at, "\"data_offsets\"") : NULL;
    ck_assert_ptr_nonnull(off);
    const uint64_t begin = strtoull(strchr(off, '[') + 1, NULL, 10);
    const int64_t row = 5, col = 7, cols = 128; /* shape [128, 128], F16 */
    const size_t pos = 8 + (size_t)hlen + (size_t)begin + (size_t)(row * cols + col) * 2;
    ck_assert_uint_lt(pos + 1, n);
    b[pos] = 0x00, b[pos + 1] = 0x7e; /* fp16 quiet NaN, little-endian */
    ck_assert_int_eq(tu_write_file(st, b, n), 0);

    char *out = tu_path(tmpdir, "nan.glmq");
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = GLMQ_TYPE_INT4;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_convert(dir, out, &o, NULL, &err), GLMQ_E_VALUE);
    ck_assert_msg(strstr(err.msg, name) && strstr(err.msg, "NaN/Inf at row 5 column 7"), "%s",
                  err.msg);
    free(out);
    free(h);
    free(b);
    free(st);
    free(dir);
    free(src);
}
END_TEST

/* Group-wise types: pack format 1.1, every layer weight in the group type with one scale per
 * group (padding groups 0), the recipe in the metadata, the same bytes for 1 and 2 threads; the
 * values are ggml's Q4_0/Q8_0 rule (judged by ggml itself in check_ggml_peer). */
START_TEST(grouped)
{
    static const glmq_type gt[] = {GLMQ_TYPE_INT4_G32, GLMQ_TYPE_INT8_G128, GLMQ_TYPE_INT4_G64};
    glmq_err err = {0};
    char *out = tu_convert_sample(tmpdir, "glm2-tiny", gt[_i], &err);
    ck_assert_msg(out != NULL, "%s", err.msg);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_verify(p, &err), GLMQ_OK);
    ck_assert_uint_eq(glmq_pack_version(p), 0x10001);
    const int64_t g = glmq_type_group(gt[_i]);
    int n_grouped = 0;
    for (int64_t i = 0; i < glmq_pack_tensor_count(p); i++) {
        glmq_tensor_info t;
        glmq_pack_tensor(p, i, &t, NULL);
        if (!strstr(t.name, "layers.") || t.ndim != 2) continue;
        ck_assert_msg(t.type == gt[_i], "%s is %s", t.name, glmq_type_name(t.type));
        const int64_t pc = glmq_type_codes(t.type) == GLMQ_TYPE_INT4 ? (t.cols + 127) / 128 * 128
                                                                      : (t.cols + 63) / 64 * 64;
        const int64_t spr = (pc + g - 1) / g;
        ck_assert_uint_eq(t.scales_size, (size_t)(t.rows * spr * 2));
        for (int64_t r = 0; r < t.rows; r++)
            for (int64_t k = (t.cols + g - 1) / g; k < spr; k++)
                ck_assert_uint_eq(t.scales[r * spr + k], 0);
        n_grouped++;
    }
    ck_assert_int_eq(n_grouped, 8); /* 2 layers x 4 matrices */
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    ck_assert_str_eq(cJSON_GetObjectItem(m, "format_version")->valuestring, "1.1");
    cJSON *q = cJSON_GetObjectItem(m, "quantization");
    ck_assert_str_eq(cJSON_GetObjectItem(q, "weight_type")->valuestring, glmq_type_name(gt[_i]));
    ck_assert_int_eq(cJSON_GetObjectItem(q, "group")->valueint, (int)g);
    cJSON_Delete(m);
    glmq_pack_close(p);
    /* one thread: the same file */
    char *src = tu_sample_path("glm2-tiny", "st"), *one = tu_path(tmpdir, "one.glmq");
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = glmq_type_codes(gt[_i]);
    o.group = (int)g;
    o.threads = 1;
    ck_assert_msg(glmq_convert(src, one, &o, NULL, &err) == GLMQ_OK, "%s", err.msg);
    size_t na = 0, nb = 0;
    uint8_t *a = tu_read_file(out, &na), *b = tu_read_file(one, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(a, b, na);
    /* a group size the format has no type for, or f16 with a group, is refused */
    o.group = 48;
    ck_assert_int_eq(glmq_convert(src, one, &o, NULL, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "group size 48"));
    o.group = 32;
    o.weight_type = GLMQ_TYPE_F16;
    ck_assert_int_eq(glmq_convert(src, one, &o, NULL, &err), GLMQ_E_INVALID);
    free(a);
    free(b);
    free(src);
    free(one);
    free(out);
}
END_TEST

/* --tensor-type: the first matching rule sets a 2-D weight's type over the recipe (a group-wise
 * type, int8, f16 kept as stored, or int4 for the embedding); the rules go to the metadata; a
 * rule that matches nothing, a bad type and a bad regex are refused by name. */
START_TEST(tensor_types)
{
    const char *rules[] = {"layers\\.0\\..*dense_4h_to_h=int8", "dense_4h_to_h=f16",
                           "query_key_value=int4:g32", "^transformer\\.embedding\\.word=int4"};
    char *src = tu_sample_path("glm2-tiny", "st"), *out = tu_path(tmpdir, "tt.glmq");
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.tensor_types = rules;
    o.n_tensor_types = 4;
    glmq_err err = {0};
    ck_assert_msg(glmq_convert(src, out, &o, NULL, &err) == GLMQ_OK, "%s", err.msg);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(out, &p, &err), GLMQ_OK);
    static const struct {
        const char *name;
        glmq_type type;
    } want[] = {
        {"transformer.encoder.layers.0.mlp.dense_4h_to_h.weight", GLMQ_TYPE_INT8},
        {"transformer.encoder.layers.1.mlp.dense_4h_to_h.weight", GLMQ_TYPE_F16},
        {"transformer.encoder.layers.1.self_attention.query_key_value.weight", GLMQ_TYPE_INT4_G32},
        {"transformer.encoder.layers.0.self_attention.dense.weight", GLMQ_TYPE_INT4},
        {"transformer.embedding.word_embeddings.weight", GLMQ_TYPE_INT4},
        {"transformer.output_layer.weight", GLMQ_TYPE_F16},
        {"transformer.encoder.layers.0.input_layernorm.weight", GLMQ_TYPE_F16},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        glmq_tensor_info t;
        ck_assert_msg(glmq_pack_find(p, want[i].name, &t, &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_msg(t.type == want[i].type, "%s is %s, not %s", want[i].name,
                      glmq_type_name(t.type), glmq_type_name(want[i].type));
    }
    ck_assert_uint_eq(glmq_pack_version(p), 0x10001); /* an int4g32 tensor */
    cJSON *m = cJSON_Parse(glmq_pack_metadata(p));
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "quantization"), "tensor_types");
    ck_assert_int_eq(cJSON_GetArraySize(a), 4);
    ck_assert_str_eq(cJSON_GetArrayItem(a, 2)->valuestring, rules[2]);
    cJSON_Delete(m);
    glmq_pack_close(p);
    /* the model's weight type says what the layer weights are, not the recipe's base type */
    glmq_model *gm = NULL;
    glmq_model_info mi;
    ck_assert_msg(glmq_model_open(out, &gm, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_model_get_info(gm, &mi, &err), GLMQ_OK);
    ck_assert_str_eq(mi.weight_type, "mixed");
    glmq_model_close(gm);
    /* a rule after one that already took the tensors matches nothing: refused */
    const char *rules2[] = {"query_key_value=int4", "layers\\.1\\..*query_key_value=int8"};
    o.tensor_types = rules2;
    o.n_tensor_types = 2;
    ck_assert_int_eq(glmq_convert(src, out, &o, NULL, &err), GLMQ_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "matches no 2-D weight"));
    const char *bad[] = {"dense=int5", "(=int8", "=int8", "dense=f16:g32"};
    for (int i = 0; i < 4; i++) {
        o.tensor_types = &bad[i];
        o.n_tensor_types = 1;
        ck_assert_int_eq(glmq_convert(src, out, &o, NULL, &err), GLMQ_E_INVALID);
        ck_assert_ptr_nonnull(strstr(err.msg, bad[i]));
    }
    free(src);
    free(out);
}
END_TEST

/* Progress callback of write_fails: after the first tensor, the process may write at most 4 KiB
 * more (RLIMIT_FSIZE), so every later write of tensor data fails as on a full disk. */
static void limit_after_first(void *user, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    int *calls = user;
    if ((*calls)++ == 0) {
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
}

/* A write that fails mid-conversion (after the space check passed) at 1, 2 and 3 threads: the
 * conversion returns GLMQ_E_IO naming the output file and the byte offset, and leaves no file. */
START_TEST(write_fails)
{
    const int threads = _i + 1;
    char *src = tu_sample_path("glm2-tiny", "st");
    char *out = tu_path(tmpdir, "fail.glmq");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        int calls = 0;
        glmq_convert_opts o;
        glmq_convert_opts_default(&o);
        o.weight_type = GLMQ_TYPE_F16;
        o.threads = threads;
        o.progress = limit_after_first;
        o.progress_user = &calls;
        glmq_err err = {0};
        glmq_convert_report rep;
        glmq_status st = glmq_convert(src, out, &o, &rep, &err);
        _exit(calls > 0 && st == GLMQ_E_IO && strstr(err.msg, "fail.glmq") &&
                      strstr(err.msg, "at byte")
                  ? 0
                  : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(tu_count_entries(tmpdir), 0);
    free(src);
    free(out);
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, variants_identical, 0, 6);
    tcase_add_loop_test(tc, quant_goldens_tensors, 0, 4);
    tcase_add_test(tc, quant_goldens_edges);
    tcase_add_loop_test(tc, threads_identical, 0, 2);
    tcase_add_loop_test(tc, write_fails, 0, 3);
    tcase_add_loop_test(tc, metadata_provenance, 0, 4);
    tcase_add_test(tc, policy);
    tcase_add_test(tc, nan_weight_message);
    tcase_add_loop_test(tc, grouped, 0, 3);
    tcase_add_test(tc, tensor_types);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(convert_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
