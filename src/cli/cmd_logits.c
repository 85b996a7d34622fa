/*
 * cmd_logits.c - glmq logits MODEL --ids 1,2,3 -o OUT.npy [--threads N]: run the FP32 reference
 * forward pass (runtime/forward.h) over the given token ids and write the logits of every
 * position as a NumPy .npy file (format 1.0, '<f4', C order, shape [n_tokens, vocab]).
 *
 * MODEL is a packed .glmq file or a Hugging Face checkpoint directory. The ids are used as given:
 * no [gMASK] sop prefix is added (v2 family) and a ChatGLM-6B sequence must itself contain its
 * mask token and <sop>. The output is written to a temporary file beside OUT and renamed, so a
 * failure never leaves a partial OUT.
 */
#include "cli.h"

#include "runtime/forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: glmq logits MODEL --ids ID,ID,... -o OUT.npy [--threads N]\n"
    "\n"
    "Runs the FP32 reference forward pass (GLM-SPEC decision 1) over the token ids and writes\n"
    "the logits of every position to OUT.npy: float32, shape [n_tokens, vocab], NumPy format\n"
    "1.0, little-endian, C order.\n"
    "\n"
    "  MODEL          a .glmq file or a Hugging Face checkpoint directory\n"
    "  --ids LIST     comma-separated decimal token ids, each in [0, vocab). Used as given:\n"
    "                 ChatGLM2/3 and GLM-4 add no [gMASK] sop prefix (positions 0..n-1,\n"
    "                 causal); ChatGLM-6B needs [gMASK] (or [MASK]) and <sop> in the list\n"
    "                 (positions and the attention mask are derived from them, GLM-SPEC A.6)\n"
    "  -o, --output   the .npy file to write\n"
    "  --threads N    worker threads (default: online cores); the logits are bit-identical\n"
    "                 for any N\n"
    "\n"
    "Exit 0 on success, 1 on an error (bad model, malformed --ids, an id outside the\n"
    "vocabulary), 2 on a usage error.";

/* Parse "1,2,3" into a malloc'd array. Returns GLMQ_OK or GLMQ_E_INVALID with a message. */
static glmq_status parse_ids(const char *s, int32_t **out, int64_t *n, glmq_err *err)
{
    *out = NULL;
    *n = 0;
    int64_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    GLMQ_FAIL_IF(!ids, err, GLMQ_E_NOMEM, "out of memory");
    int64_t k = 0;
    const char *p = s;
    for (;;) {
        const char *start = p;
        if (*p == '-' || *p == '+') p++;
        const char *digits = p;
        while (*p >= '0' && *p <= '9') p++;
        if (p == digits || (*p && *p != ',')) {
            size_t len = strcspn(start, ",");
            free(ids);
            return glmq_fail(err, GLMQ_E_INVALID,
                             "--ids: item %lld ('%.*s') is not a decimal token id (expected a "
                             "comma-separated list such as 1,2,3)",
                             (long long)k + 1, (int)(len > 40 ? 40 : len), start);
        }
        errno = 0;
        long long v = strtoll(start, NULL, 10);
        if (errno || v < INT32_MIN || v > INT32_MAX) {
            free(ids);
            return glmq_fail(err, GLMQ_E_VALUE, "--ids: item %lld is out of range",
                             (long long)k + 1);
        }
        ids[k++] = (int32_t)v;
        if (!*p) break;
        p++; /* ',' */
    }
    *out = ids;
    *n = k;
    return GLMQ_OK;
}

/* Write logits [n][vocab] as .npy v1.0 to path (via path.tmp + rename). */
static glmq_status write_npy(const char *path, const float *x, int64_t n, int64_t vocab,
                             glmq_err *err)
{
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)n, (long long)vocab);
    /* pad with spaces so that magic(6)+version(2)+hlen(2)+header is a multiple of 64, end '\n' */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint16_t hlen = (uint16_t)(len + pad + 1);
    pre[8] = (char)(hlen & 0xff);
    pre[9] = (char)(hlen >> 8);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    GLMQ_FAIL_IF(!tmp, err, GLMQ_E_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        glmq_status st = glmq_fail(err, GLMQ_E_IO, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(hdr, 1, (size_t)len, fp) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    /* little-endian float32 payload, converted in blocks */
    uint8_t buf[4096];
    const int64_t count = n * vocab;
    for (int64_t i = 0; ok && i < count;) {
        size_t k = 0;
        for (; k + 4 <= sizeof buf && i < count; k += 4, i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            buf[k] = (uint8_t)u;
            buf[k + 1] = (uint8_t)(u >> 8);
            buf[k + 2] = (uint8_t)(u >> 16);
            buf[k + 3] = (uint8_t)(u >> 24);
        }
        ok = fwrite(buf, 1, k, fp) == k;
    }
    int e = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    glmq_status st = GLMQ_OK;
    if (!ok) {
        unlink(tmp);
        st = glmq_fail(err, GLMQ_E_IO, "cannot write '%s': %s", path, strerror(e));
    }
    free(tmp);
    return st;
}

int cmd_logits(int argc, char **argv)
{
    const char *model_path = NULL, *ids_arg = NULL, *out_path = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            puts(usage_text);
            return EXIT_OK;
        }
        if (!strcmp(a, "--ids") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
            !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return cli_usage("logits", "option '%s' needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--ids")) {
                ids_arg = v;
            } else if (!strcmp(a, "--threads")) {
                threads = cli_parse_int(v, 1, 1024);
                if (threads < 0) return cli_usage("logits", "bad --threads '%s'", v);
            } else {
                out_path = v;
            }
            continue;
        }
        if (a[0] == '-') return cli_usage("logits", "unknown option '%s'", a);
        if (model_path) return cli_usage("logits", "unexpected argument '%s'", a);
        model_path = a;
    }
    if (!model_path) return cli_usage("logits", "missing MODEL");
    if (!ids_arg) return cli_usage("logits", "missing --ids");
    if (!out_path) return cli_usage("logits", "missing -o OUT.npy");

    glmq_err err = {0};
    int32_t *ids = NULL;
    int64_t n = 0;
    if (parse_ids(ids_arg, &ids, &n, &err) != GLMQ_OK) return cli_error(&err);

    int rc = EXIT_ERR;
    glmq_model *m = NULL;
    glmq_forward *f = NULL;
    float *logits = NULL;
    if (glmq_model_open(model_path, &m, &err) != GLMQ_OK) goto done;
    const int64_t vocab = glmq_model_config(m)->vocab;
    /* reject bad ids before allocating the run state */
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            glmq_fail(&err, GLMQ_E_VALUE,
                      "--ids: token id %lld (item %lld) is outside the vocabulary [0, %lld) of "
                      "'%s'",
                      (long long)ids[i], (long long)i + 1, (long long)vocab, model_path);
            goto done;
        }
    }
    logits = malloc((size_t)n * (size_t)vocab * sizeof *logits);
    if (!logits) {
        glmq_fail(&err, GLMQ_E_NOMEM, "out of memory for %lld x %lld logits", (long long)n,
                  (long long)vocab);
        goto done;
    }
    if (glmq_forward_create(m, n, threads, &f, &err) != GLMQ_OK) goto done;
    if (glmq_forward_eval(f, ids, n, logits, &err) != GLMQ_OK) goto done;
    if (write_npy(out_path, logits, n, vocab, &err) != GLMQ_OK) goto done;
    rc = EXIT_OK;
done:
    glmq_forward_free(f);
    glmq_model_close(m);
    free(logits);
    free(ids);
    return rc == EXIT_OK ? EXIT_OK : cli_error(&err);
}
