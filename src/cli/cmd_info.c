/*
 * cmd_info.c - glmq info FILE [--verbose | --json]: a short summary of a packed file by default;
 * --verbose adds the full config, every source file and every tensor; --json prints everything as
 * one object.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <string.h>

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
    int64_t cnt[8] = {0};
    double bytes[8] = {0}, total = 0;
    for (int64_t i = 0; i < n; i++) {
        glmq_tensor_info t;
        if (glmq_pack_tensor(p, i, &t, NULL) != GLMQ_OK) continue;
        const int ty = (int)t.type >= 0 && (int)t.type < 8 ? (int)t.type : 7;
        cnt[ty]++;
        bytes[ty] += (double)t.data_size + (double)t.scales_size;
        total += (double)t.data_size + (double)t.scales_size;
    }
    printf("tensors:        %lld, %.2f MB:", (long long)n, total / 1e6);
    for (int ty = 0; ty < 8; ty++)
        if (cnt[ty])
            printf(" %lld %s (%.2f MB)", (long long)cnt[ty], glmq_type_name((glmq_type)ty),
                   bytes[ty] / 1e6);
    printf("\n");
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

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: glmq info FILE [--verbose | --json]\n\nPrints a short summary: format "
                 "version, model shape, weight type, tensor\nbytes per storage type and where the "
                 "weights came from.\n  -v, --verbose  also the full config, every source file "
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
