/*
 * cmd_info.c - glmq info FILE [--json]: header, metadata and tensor table.
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

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: glmq info FILE [--json]\n\nPrints the format version, the metadata "
                 "(config, quantization recipe, provenance)\nand the tensor table. --json prints "
                 "one JSON object with a 'tensors' array\n(name, type, shape, checksum, ...) and "
                 "the metadata under 'metadata'.");
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
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
        printf("file:           %s\n", path);
        printf("format version: %u.%u\n", v >> 16, v & 0xffff);
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(meta, "config");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(meta, "quantization");
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architecture");
        const cJSON *wt = cJSON_GetObjectItemCaseSensitive(q, "weight_type");
        const cJSON *gv = cJSON_GetObjectItemCaseSensitive(meta, "glmq_version");
        printf("architecture:   %s\n", cJSON_IsString(arch) ? arch->valuestring : "?");
        printf("weights:        %s\n", cJSON_IsString(wt) ? wt->valuestring : "?");
        printf("written by:     glmq %s\n", cJSON_IsString(gv) ? gv->valuestring : "?");
        char *cs = cJSON_Print(cfg);
        printf("config:         %s\n", cs ? cs : "{}");
        cJSON_free(cs);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(meta, "source");
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(src, "files");
        const cJSON *f;
        printf("source files:\n");
        cJSON_ArrayForEach(f, files)
        {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
            const cJSON *sz = cJSON_GetObjectItemCaseSensitive(f, "size");
            const cJSON *hx = cJSON_GetObjectItemCaseSensitive(f, "xxh3");
            printf("  %-40s %14.0f bytes  xxh3 %s\n", cJSON_IsString(nm) ? nm->valuestring : "?",
                   cJSON_IsNumber(sz) ? sz->valuedouble : -1.0,
                   cJSON_IsString(hx) ? hx->valuestring : "?");
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
    cJSON_Delete(meta);
    glmq_pack_close(p);
    return EXIT_OK;
}
