/*
 * cmd_logits.c - glmq logits MODEL --ids 1,2,3 -o OUT.npy [--threads N]: run the FP32 reference
 * forward pass (runtime/forward.h) over the given token ids and write the logits of every
 * position as a NumPy .npy file (format 1.0, '<f4', C order, shape [n_tokens, vocab]).
 *
 * MODEL is a packed .glmq file or a Hugging Face checkpoint directory. The ids are used as given:
 * no [gMASK] sop prefix is added (v2 family) and a ChatGLM-6B sequence must itself contain its
 * mask token and <sop>. The file is written by formats/npy.c through the atomic writer, so a
 * failure or a kill never leaves a partial OUT (nor a temporary beside it).
 */
#include "cli.h"

#include "formats/npy.h"
#include "runtime/forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
                threads = glmq_parse_int(v, 1, 1024);
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
    if (glmq_npy_write_f32(out_path, logits, n, vocab, &err) != GLMQ_OK) goto done;
    rc = EXIT_OK;
done:
    glmq_forward_free(f);
    glmq_model_close(m);
    free(logits);
    free(ids);
    return rc == EXIT_OK ? EXIT_OK : cli_error(&err);
}
