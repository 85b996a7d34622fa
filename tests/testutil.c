/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *k, const char *d)
{
    const char *v = getenv(k);
    return v && *v ? v : d;
}
const char *tu_samples(void) { return env_or("GLMQ_SAMPLES", "samples"); }
const char *tu_testdata(void) { return env_or("GLMQ_TESTDATA", "tests/data"); }
const char *tu_bin(void) { return env_or("GLMQ_BIN", "glmq"); }

char *tu_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

char *tu_mkdtemp(void)
{
    const char *base = env_or("GLMQ_TMP", "/tmp");
    mkdir(base, 0755);
    char *t = tu_path(base, "glmqtest.XXXXXX");
    if (!mkdtemp(t)) {
        free(t);
        return NULL;
    }
    return t;
}

void tu_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = tu_path(path, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                tu_rmtree(p);
            else
                unlink(p);
            free(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    int rc = fclose(f);
    return (w == n && rc == 0) ? 0 : -1;
}

uint8_t *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[sz] = 0;
        if (n) *n = (size_t)sz;
    }
    return b;
}

int tu_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int tu_copy_dir(const char *src, const char *dst)
{
    mkdir(dst, 0755);
    DIR *d = opendir(src);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *s = tu_path(src, e->d_name), *t = tu_path(dst, e->d_name);
        struct stat sb;
        if (stat(s, &sb) == 0 && S_ISREG(sb.st_mode)) {
            size_t n;
            uint8_t *b = tu_read_file(s, &n);
            if (!b || tu_write_file(t, b, n) != 0) rc = -1;
            free(b);
        }
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

int tu_run(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8300];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += r;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

void *tu_npy_load(const char *path, char dtype[8], int *ndim, int64_t shape[4], size_t *nbytes)
{
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    if (!b || n < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        free(b);
        return NULL;
    }
    size_t hlen, hoff;
    if (b[6] == 1) {
        hlen = b[8] | (b[9] << 8);
        hoff = 10;
    } else {
        hlen = b[8] | (b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hoff = 12;
    }
    if (hoff + hlen > n) {
        free(b);
        return NULL;
    }
    char *h = strndup((char *)b + hoff, hlen);
    char *dp = strstr(h, "'descr':");
    char *sp = strstr(h, "'shape':");
    char *fo = strstr(h, "'fortran_order':");
    if (!dp || !sp || !fo || strstr(fo, "True") == fo + 17) {
        free(h);
        free(b);
        return NULL;
    }
    dp = strchr(dp + 8, '\'');
    int k = 0;
    for (dp++; *dp && *dp != '\'' && k < 7; dp++) dtype[k++] = *dp;
    dtype[k] = 0;
    sp = strchr(sp, '(');
    *ndim = 0;
    size_t count = 1;
    while (sp && *sp && *sp != ')') {
        sp++;
        while (*sp == ' ') sp++;
        if (*sp >= '0' && *sp <= '9') {
            long long v = strtoll(sp, &sp, 10);
            if (*ndim < 4) shape[(*ndim)++] = v;
            count *= (size_t)v;
        } else if (*sp != ',' && *sp != ')') {
            break;
        }
        while (*sp == ' ') sp++;
    }
    free(h);
    size_t es = (size_t)atoi(dtype + 2);
    size_t need = count * es;
    if (hoff + hlen + need > n) {
        free(b);
        return NULL;
    }
    void *data = malloc(need ? need : 1);
    memcpy(data, b + hoff + hlen, need);
    free(b);
    if (nbytes) *nbytes = need;
    return data;
}

char *tu_sample_path(const char *model, const char *sub)
{
    char *m = tu_path(tu_samples(), model);
    char *d = tu_path(m, sub);
    free(m);
    return d;
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

uint64_t tu_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

cJSON *tu_manifest(const char *model)
{
    char *p = tu_sample_path(model, "golden/manifest.json");
    size_t n = 0;
    char *txt = (char *)tu_read_file(p, &n);
    free(p);
    if (!txt) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, n);
    free(txt);
    return j;
}

char *tu_convert_sample(const char *dir, const char *model, glmq_type type, glmq_err *err)
{
    char name[96];
    snprintf(name, sizeof name, "%s-%s.glmq", model, glmq_type_name(type));
    char *src = tu_sample_path(model, "st"), *out = tu_path(dir, name);
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    o.weight_type = type;
    if (type >= GLMQ_TYPE_INT8_G32 && type <= GLMQ_TYPE_INT4_G128) { /* a group-wise type */
        o.weight_type = type >= GLMQ_TYPE_INT4_G32 ? GLMQ_TYPE_INT4 : GLMQ_TYPE_INT8;
        o.group = 32 << ((type - GLMQ_TYPE_INT8_G32) % 3);
    }
    o.threads = 2;
    const glmq_status st = glmq_convert(src, out, &o, NULL, err);
    free(src);
    if (st != GLMQ_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* The checkpoint name of a tensor of llama.cpp's chatglm architecture (src/llama-arch.cpp),
 * written out here independently of formats/glm_tensors.c. */
void tu_gguf_hf_name(const char *gguf, char *out, size_t n)
{
    int l = -1;
    char rest[64] = "";
    if (sscanf(gguf, "blk.%d.%63s", &l, rest) == 2) {
        static const char *map[][2] = {
            {"attn_norm.weight", "input_layernorm.weight"},
            {"attn_qkv.weight", "self_attention.query_key_value.weight"},
            {"attn_qkv.bias", "self_attention.query_key_value.bias"},
            {"attn_output.weight", "self_attention.dense.weight"},
            {"ffn_norm.weight", "post_attention_layernorm.weight"},
            {"ffn_up.weight", "mlp.dense_h_to_4h.weight"},
            {"ffn_down.weight", "mlp.dense_4h_to_h.weight"},
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(rest, map[i][0])) {
                snprintf(out, n, "transformer.encoder.layers.%d.%s", l, map[i][1]);
                return;
            }
        ck_abort_msg("unexpected tensor %s", gguf);
    }
    static const char *tail[][2] = {
        {"token_embd.weight", "transformer.embedding.word_embeddings.weight"},
        {"output_norm.weight", "transformer.encoder.final_layernorm.weight"},
        {"output.weight", "transformer.output_layer.weight"},
    };
    const char *g = NULL;
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        if (!strcmp(gguf, tail[i][0])) g = tail[i][1];
    ck_assert_msg(g != NULL, "unexpected tensor %s", gguf);
    snprintf(out, n, "%s", g);
}
