/*
 * cmd_info.c - glmq info FILE [--verbose | --json]: a short summary of a packed file by default;
 * --verbose adds the full config, every source file and every tensor; --json prints everything as
 * one object.
 *
 * A file that starts with the GGUF magic is shown as GGUF (formats/gguf.h): version, alignment,
 * data offset, every metadata entry (scalars in full, arrays as element type, count and the
 * first GGUF_HEAD elements, GGUF_HEAD_VERBOSE with --verbose), the tensor table (name, type, ne,
 * offset, bytes) and a summary (tensor count, total bytes, tensors and bytes per type). With
 * --json the same as one object; integers are exact (written as JSON number text, never through
 * a double), and strings that are not valid UTF-8 or contain NUL have those bytes replaced by
 * U+FFFD so that the output stays JSON.
 */
#include "cli.h"
#include "formats/gguf.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_HEAD 8           /* array elements shown by default */
#define GGUF_HEAD_VERBOSE 300 /* ... and with --verbose */

static void shape_str(const glmq_tensor_info *t, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : "?";
}
static long long jint(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* A short summary that fits a terminal: identity, shape, weights, bytes per type, source. */
static void print_summary(glmq_pack *p, const char *path, const cJSON *meta)
{
    const uint32_t v = glmq_pack_version(p);
    const int64_t n = glmq_pack_tensor_count(p);
    const cJSON *cfg = jget(meta, "config"), *q = jget(meta, "quantization");
    const cJSON *src = jget(meta, "source"), *tok = jget(meta, "tokenizer");
    printf("file:           %s\n", path);
    printf("format:         glmq %u.%u, written by glmq %s\n", v >> 16, v & 0xffff,
           jstr(meta, "glmq_version"));
    printf("architecture:   %s: %lld layers, hidden %lld, %lld heads x %lld (%lld KV groups), "
           "FFN %lld, vocab %lld\n",
           jstr(cfg, "architecture"), jint(cfg, "num_layers"), jint(cfg, "hidden_size"),
           jint(cfg, "num_heads"), jint(cfg, "head_dim"), jint(cfg, "num_kv_groups"),
           jint(cfg, "ffn_hidden_size"), jint(cfg, "vocab_size"));
    printf("weights:        %s (%s)\n", jstr(q, "weight_type"), jstr(q, "method"));
    printf("tokenizer:      %s\n", jstr(tok, "kind"));
    /* tensor count and bytes (data + scales) per storage type */
    enum { NTY = GLMQ_TYPE_INT4_G128 + 1 };
    int64_t cnt[NTY] = {0};
    double bytes[NTY] = {0}, total = 0, qbytes = 0, qelems = 0;
    for (int64_t i = 0; i < n; i++) {
        glmq_tensor_info t;
        if (glmq_pack_tensor(p, i, &t, NULL) != GLMQ_OK || (int)t.type < 0 || (int)t.type >= NTY)
            continue; /* the reader refuses other types */
        const double b = (double)t.data_size + (double)t.scales_size;
        cnt[t.type]++;
        bytes[t.type] += b;
        total += b;
        if (t.scales) { /* quantized: stored bits per weight, codes and scales (padding too) */
            qbytes += b;
            qelems += (double)t.rows * (double)t.cols;
        }
    }
    printf("tensors:        %lld, %.2f MB:", (long long)n, total / 1e6);
    for (int ty = 0; ty < NTY; ty++)
        if (cnt[ty])
            printf(" %lld %s (%.2f MB)", (long long)cnt[ty], glmq_type_name((glmq_type)ty),
                   bytes[ty] / 1e6);
    printf("\n");
    if (qelems > 0)
        printf("quantized:      %.3f bits per weight (codes and scales)\n", 8 * qbytes / qelems);
    const cJSON *files = jget(src, "files"), *f;
    double sbytes = 0;
    int nf = 0;
    cJSON_ArrayForEach(f, files)
    {
        const cJSON *sz = jget(f, "size");
        if (cJSON_IsNumber(sz)) sbytes += sz->valuedouble;
        nf++;
    }
    printf("source:         %s%s, %d files, %.2f MB (hashes: --verbose)\n", jstr(src, "format"),
           cJSON_IsTrue(jget(src, "sharded")) ? " (sharded)" : "", nf, sbytes / 1e6);
}

/* Everything else: the full config, every source file, every tensor. */
static void print_details(glmq_pack *p, const cJSON *meta)
{
    const int64_t n = glmq_pack_tensor_count(p);
    char *cs = cJSON_Print(jget(meta, "config"));
    printf("config:         %s\n", cs ? cs : "{}");
    cJSON_free(cs);
    const cJSON *f;
    printf("source files:\n");
    cJSON_ArrayForEach(f, jget(jget(meta, "source"), "files"))
    {
        const cJSON *sz = jget(f, "size");
        printf("  %-40s %14.0f bytes  xxh3 %s\n", jstr(f, "name"),
               cJSON_IsNumber(sz) ? sz->valuedouble : -1.0, jstr(f, "xxh3"));
    }
    printf("tensors (%lld):\n", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        glmq_tensor_info t;
        glmq_pack_tensor(p, i, &t, NULL);
        char sh[96];
        shape_str(&t, sh, sizeof sh);
        printf("  %-60s %-5s [%s] %016llx\n", t.name, glmq_type_name(t.type), sh,
               (unsigned long long)t.checksum);
    }
}

/* ---- GGUF ---------------------------------------------------------------------------------- */

/* A string for the terminal: quoted, with quotes, backslashes and control bytes escaped. */
static void print_quoted(const char *p, uint64_t n)
{
    putchar('"');
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static int utf8_len(const unsigned char *p, uint64_t n)
{
    int len;
    uint32_t cp;
    if (p[0] < 0x80) return p[0] ? 1 : 0;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if ((uint64_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string of GGUF bytes (invalid UTF-8 and NUL become U+FFFD). */
static cJSON *json_str(const char *p, uint64_t n)
{
    char *b = malloc((size_t)n * 3 + 1);
    if (!b) return cJSON_CreateNull();
    size_t k = 0;
    for (uint64_t i = 0; i < n;) {
        const int l = utf8_len((const unsigned char *)p + i, n - i);
        if (l == 0) {
            memcpy(b + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        } else {
            memcpy(b + k, p + i, (size_t)l);
            k += (size_t)l;
            i += (uint64_t)l;
        }
    }
    b[k] = 0;
    cJSON *j = cJSON_CreateString(b);
    free(b);
    return j;
}

/* Element i (fixed-size type t) at p, as text: exact integers, %.9g / %.17g floats. */
static void scalar_text(uint32_t t, const uint8_t *p, char *buf, size_t n)
{
    uint32_t u32;
    uint64_t u64;
    float f;
    double d;
    switch (t) {
    case GLMQ_GGUF_U8: snprintf(buf, n, "%u", p[0]); break;
    case GLMQ_GGUF_I8: snprintf(buf, n, "%d", (int8_t)p[0]); break;
    case GLMQ_GGUF_U16: snprintf(buf, n, "%u", glmq_rd_le16(p)); break;
    case GLMQ_GGUF_I16: snprintf(buf, n, "%d", (int16_t)glmq_rd_le16(p)); break;
    case GLMQ_GGUF_U32: snprintf(buf, n, "%" PRIu32, glmq_rd_le32(p)); break;
    case GLMQ_GGUF_I32: snprintf(buf, n, "%" PRId32, (int32_t)glmq_rd_le32(p)); break;
    case GLMQ_GGUF_U64: snprintf(buf, n, "%" PRIu64, glmq_rd_le64(p)); break;
    case GLMQ_GGUF_I64: snprintf(buf, n, "%" PRId64, (int64_t)glmq_rd_le64(p)); break;
    case GLMQ_GGUF_BOOL: snprintf(buf, n, "%s", p[0] ? "true" : "false"); break;
    case GLMQ_GGUF_F32:
        u32 = glmq_rd_le32(p);
        memcpy(&f, &u32, 4);
        snprintf(buf, n, "%.9g", (double)f);
        break;
    case GLMQ_GGUF_F64:
        u64 = glmq_rd_le64(p);
        memcpy(&d, &u64, 8);
        snprintf(buf, n, "%.17g", d);
        break;
    default: snprintf(buf, n, "?"); break;
    }
}

static int is_float(uint32_t t) { return t == GLMQ_GGUF_F32 || t == GLMQ_GGUF_F64; }

/* A JSON value of element i of kv (exact integers as raw number text; non-finite floats and
 * bools other than 0/1 as strings). */
static cJSON *json_elem(const glmq_gguf *g, const glmq_gguf_kv *kv, uint64_t i)
{
    if (kv->arr_type == GLMQ_GGUF_STRING) {
        const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, i);
        return json_str(s.ptr, s.len);
    }
    const uint8_t *p = kv->value + i * glmq_gguf_vtype_size(kv->arr_type);
    if (kv->arr_type == GLMQ_GGUF_BOOL && p[0] <= 1) return cJSON_CreateBool(p[0]);
    char buf[64];
    scalar_text(kv->arr_type, p, buf, sizeof buf);
    if (kv->arr_type == GLMQ_GGUF_BOOL || (is_float(kv->arr_type) && !isfinite(atof(buf))))
        return cJSON_CreateString(buf);
    return cJSON_CreateRaw(buf);
}

static void print_elem(const glmq_gguf *g, const glmq_gguf_kv *kv, uint64_t i)
{
    if (kv->arr_type == GLMQ_GGUF_STRING) {
        const glmq_gguf_str s = glmq_gguf_arr_str(g, kv, i);
        print_quoted(s.ptr, s.len);
        return;
    }
    char buf[64];
    scalar_text(kv->arr_type, kv->value + i * glmq_gguf_vtype_size(kv->arr_type), buf,
                sizeof buf);
    fputs(buf, stdout);
}

static void ne_text(const glmq_gguf_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, d ? ", " : "", t->ne[d]);
}

/* Tensors and bytes per ggml type. */
typedef struct {
    int64_t count[GLMQ_GGML_TYPE_LIMIT];
    uint64_t bytes[GLMQ_GGML_TYPE_LIMIT];
    uint64_t total;
} type_sums;

static void sum_types(const glmq_gguf *g, type_sums *s)
{
    memset(s, 0, sizeof *s);
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        s->count[t->type]++;
        s->bytes[t->type] += t->size;
        s->total += t->size;
    }
}

static void gguf_text(const glmq_gguf *g, const char *path, int verbose)
{
    const uint64_t head = verbose ? GGUF_HEAD_VERBOSE : GGUF_HEAD;
    char b1[32];
    printf("file:           %s\n", path);
    printf("format:         GGUF version %u, alignment %" PRIu64 ", data at byte %" PRIu64
           ", %" PRIu64 " bytes (%s)\n",
           glmq_gguf_version(g), glmq_gguf_alignment(g), glmq_gguf_data_offset(g),
           glmq_gguf_file_size(g), cli_bytes(b1, sizeof b1, (double)glmq_gguf_file_size(g)));
    const int64_t nkv = glmq_gguf_kv_count(g);
    printf("metadata (%" PRId64 "):\n", nkv);
    for (int64_t i = 0; i < nkv; i++) {
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        printf("  %-44.*s ", (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr);
        if (kv->type != GLMQ_GGUF_ARRAY) {
            printf("%-8s ", glmq_gguf_vtype_name(kv->type));
            print_elem(g, kv, 0);
        } else {
            printf("%s[%" PRIu64 "]: ", glmq_gguf_vtype_name(kv->arr_type), kv->arr_n);
            const uint64_t m = kv->arr_n < head ? kv->arr_n : head;
            for (uint64_t k = 0; k < m; k++) {
                if (k) fputs(", ", stdout);
                print_elem(g, kv, k);
            }
            if (m < kv->arr_n) printf(", ... (%" PRIu64 " more)", kv->arr_n - m);
        }
        putchar('\n');
    }
    const int64_t nt = glmq_gguf_tensor_count(g);
    printf("tensors (%" PRId64 "):\n", nt);
    printf("  %-48s %-8s %-24s %14s %14s\n", "name", "type", "ne", "offset", "bytes");
    for (int64_t i = 0; i < nt; i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        char ne[128];
        ne_text(t, ne, sizeof ne);
        printf("  %-48s %-8s %-24s %14" PRIu64 " %14" PRIu64 "\n", t->name,
               glmq_ggml_type_get(t->type)->name, ne, t->offset, t->size);
    }
    type_sums s;
    sum_types(g, &s);
    printf("summary:        %" PRId64 " tensors, %" PRIu64 " bytes (%s):", nt, s.total,
           cli_bytes(b1, sizeof b1, (double)s.total));
    for (uint32_t ty = 0; ty < GLMQ_GGML_TYPE_LIMIT; ty++)
        if (s.count[ty])
            printf(" %" PRId64 " %s (%s)", s.count[ty], glmq_ggml_type_get(ty)->name,
                   cli_bytes(b1, sizeof b1, (double)s.bytes[ty]));
    putchar('\n');
}

static cJSON *raw_u64(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *gguf_json(const glmq_gguf *g, const char *path, int verbose)
{
    const uint64_t head = verbose ? GGUF_HEAD_VERBOSE : GGUF_HEAD;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "format", "gguf");
    cJSON_AddItemToObject(o, "version", raw_u64(glmq_gguf_version(g)));
    cJSON_AddItemToObject(o, "alignment", raw_u64(glmq_gguf_alignment(g)));
    cJSON_AddItemToObject(o, "data_offset", raw_u64(glmq_gguf_data_offset(g)));
    cJSON_AddItemToObject(o, "file_size", raw_u64(glmq_gguf_file_size(g)));
    /* metadata: an array of entries in file order (keys are unique, but may not be UTF-8) */
    cJSON *md = cJSON_AddArrayToObject(o, "metadata");
    for (int64_t i = 0; i < glmq_gguf_kv_count(g); i++) {
        const glmq_gguf_kv *kv = glmq_gguf_kv_at(g, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "key", json_str(kv->key.ptr, kv->key.len));
        cJSON_AddStringToObject(e, "type", glmq_gguf_vtype_name(kv->type));
        if (kv->type != GLMQ_GGUF_ARRAY) {
            cJSON_AddItemToObject(e, "value", json_elem(g, kv, 0));
        } else {
            cJSON_AddStringToObject(e, "element_type", glmq_gguf_vtype_name(kv->arr_type));
            cJSON_AddItemToObject(e, "count", raw_u64(kv->arr_n));
            const uint64_t m = kv->arr_n < head ? kv->arr_n : head;
            cJSON *vals = cJSON_AddArrayToObject(e, "values");
            for (uint64_t k = 0; k < m; k++) cJSON_AddItemToArray(vals, json_elem(g, kv, k));
            cJSON_AddBoolToObject(e, "truncated", m < kv->arr_n);
        }
        cJSON_AddItemToArray(md, e);
    }
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (int64_t i = 0; i < glmq_gguf_tensor_count(g); i++) {
        const glmq_gguf_tensor *t = glmq_gguf_tensor_at(g, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "type", glmq_ggml_type_get(t->type)->name);
        cJSON *ne = cJSON_AddArrayToObject(e, "ne");
        for (uint32_t d = 0; d < t->n_dims; d++)
            cJSON_AddItemToArray(ne, raw_u64((uint64_t)t->ne[d]));
        cJSON_AddItemToObject(e, "offset", raw_u64(t->offset));
        cJSON_AddItemToObject(e, "bytes", raw_u64(t->size));
        cJSON_AddItemToArray(ts, e);
    }
    type_sums s;
    sum_types(g, &s);
    cJSON *sum = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddItemToObject(sum, "tensor_count", raw_u64((uint64_t)glmq_gguf_tensor_count(g)));
    cJSON_AddItemToObject(sum, "total_bytes", raw_u64(s.total));
    cJSON *types = cJSON_AddObjectToObject(sum, "types");
    for (uint32_t ty = 0; ty < GLMQ_GGML_TYPE_LIMIT; ty++)
        if (s.count[ty]) {
            cJSON *e = cJSON_AddObjectToObject(types, glmq_ggml_type_get(ty)->name);
            cJSON_AddItemToObject(e, "count", raw_u64((uint64_t)s.count[ty]));
            cJSON_AddItemToObject(e, "bytes", raw_u64(s.bytes[ty]));
        }
    return o;
}

static int is_gguf(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4];
    const int yes = fread(m, 1, 4, f) == 4 && memcmp(m, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

static int info_gguf(const char *path, int json, int verbose)
{
    glmq_err err = {0};
    glmq_gguf *g = NULL;
    if (glmq_gguf_open(path, &g, &err) != GLMQ_OK) return cli_error(&err);
    if (json) {
        cJSON *o = gguf_json(g, path, verbose);
        char *s = cJSON_Print(o);
        if (s) puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        gguf_text(g, path, verbose);
    }
    glmq_gguf_close(g);
    return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: glmq info FILE [--verbose | --json]\n\nPrints a short summary: format "
                 "version, model shape, weight type, tensor\nbytes per storage type and where the "
                 "weights came from. For a GGUF file: version,\nalignment, data offset, the "
                 "metadata (arrays: type, count and the first 8\nelements; --verbose: 300), the "
                 "tensor table and a summary.\n  -v, --verbose  also the full config, every "
                 "source file "
                 "with its hash and the\n                 tensor table (name, type, shape, "
                 "checksum)\n  --json         one JSON object with a 'tensors' array (name, type, "
                 "shape,\n                 checksum, ...) and the metadata under 'metadata'");
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = 1;
            continue;
        }
        if (argv[i][0] == '-') return cli_usage("info", "unknown option '%s'", argv[i]);
        if (path) return cli_usage("info", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return cli_usage("info", "missing FILE");
    if (is_gguf(path)) return info_gguf(path, json, verbose);
    glmq_err err = {0};
    glmq_pack *p = NULL;
    if (glmq_pack_open(path, &p, &err) != GLMQ_OK) return cli_error(&err);
    uint32_t v = glmq_pack_version(p);
    int64_t n = glmq_pack_tensor_count(p);
    cJSON *meta = cJSON_Parse(glmq_pack_metadata(p));
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char ver[32];
        snprintf(ver, sizeof ver, "%u.%u", v >> 16, v & 0xffff);
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddStringToObject(o, "format_version", ver);
        cJSON_AddItemToObject(o, "metadata", meta);
        meta = NULL;
        cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
        for (int64_t i = 0; i < n; i++) {
            glmq_tensor_info t;
            glmq_pack_tensor(p, i, &t, NULL);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t.name);
            cJSON_AddStringToObject(e, "type", glmq_type_name(t.type));
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < t.ndim; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t.shape[d]));
            char hx[17];
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)t.checksum);
            cJSON_AddStringToObject(e, "checksum", hx);
            cJSON_AddNumberToObject(e, "row_stride", (double)t.row_stride);
            cJSON_AddNumberToObject(e, "data_offset", (double)t.data_offset);
            cJSON_AddNumberToObject(e, "scales_offset", (double)t.scales_offset);
            cJSON_AddNumberToObject(e, "data_size", (double)t.data_size);
            cJSON_AddNumberToObject(e, "scales_size", (double)t.scales_size);
            cJSON_AddItemToArray(arr, e);
        }
        char *s = cJSON_Print(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        print_summary(p, path, meta);
        if (verbose) print_details(p, meta);
    }
    cJSON_Delete(meta);
    glmq_pack_close(p);
    return EXIT_OK;
}
