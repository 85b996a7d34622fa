/*
 * cmd_generate.c - glmq generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--seed S]
 *
 * A user's sanity check of a deployable artifact: the prompt is framed as the model's tokenizer
 * frames it ([gMASK] sop + text, or text + [gMASK] <sop> for ChatGLM-6B), run once through the
 * forward (prefill), then tokens are decoded one at a time on the KV cache and streamed to
 * stdout as text. Timings go to stderr.
 */
#include "cli.h"
#include "verify/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--seed S] [--threads N]\n"
    "                     [--exact] [--no-stream]\n"
    "\n"
    "Continues TEXT with MODEL (a .glmq file or a checkpoint directory). Greedy decoding when\n"
    "--temp is 0 (the default), else sampling from softmax(logits / T), restricted to the\n"
    "smallest set of tokens whose probability reaches --top-p (default 1). Stops after N tokens\n"
    "(default 64) or at an end-of-sequence token. Prints prefill and decode tokens/s to stderr.\n"
    "\n"
    "  --seed S      sampling seed (default 1): the same seed gives the same text\n"
    "  --exact       fp32 kernels instead of the fast int8-activation ones\n"
    "  --no-stream   print the text once at the end\n";

/* xorshift64* : deterministic, seedable */
static double next_uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    uint64_t v = *s * 0x2545F4914F6CDD1Dull;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    float p;
    int32_t id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : (x->id > y->id) - (x->id < y->id);
}

static int32_t pick(const float *logits, int64_t V, double temp, double top_p, uint64_t *rng,
                    cand *work)
{
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temp <= 0) return (int32_t)best;
    double z = 0;
    for (int64_t v = 0; v < V; v++) {
        work[v].p = (float)exp(((double)logits[v] - logits[best]) / temp);
        work[v].id = (int32_t)v;
        z += work[v].p;
    }
    int64_t n = V;
    if (top_p < 1) {
        qsort(work, (size_t)V, sizeof *work, cmp_cand);
        double acc = 0;
        for (n = 0; n < V; n++) {
            acc += work[n].p / z;
            if (acc >= top_p) {
                n++;
                break;
            }
        }
        z = 0;
        for (int64_t i = 0; i < n; i++) z += work[i].p;
    }
    double u = next_uniform(rng) * z, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += work[i].p;
        if (u < acc) return work[i].id;
    }
    return work[n - 1].id;
}

/* Print the bytes of the decoded continuation not printed yet, holding back an incomplete
 * UTF-8 character (which decodes as U+FFFD until its last byte arrives). */
static void stream(const glmq_tokenizer *t, const int32_t *ids, size_t n, size_t *printed,
                   int final)
{
    char *text = NULL;
    size_t len = 0;
    if (glmq_tokenizer_decode(t, ids, n, &text, &len, NULL) != GLMQ_OK) return;
    size_t end = len;
    if (!final && len >= 3 && !memcmp(text + len - 3, "\xef\xbf\xbd", 3)) end = len - 3;
    if (end > *printed) {
        fwrite(text + *printed, 1, end - *printed, stdout);
        fflush(stdout);
        *printed = end;
    }
    free(text);
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL;
    int n_new = 64, threads = 0, stream_out = 1;
    double temp = 0, top_p = 1;
    uint64_t seed = 1;
    glmq_forward_mode mode = GLMQ_FWD_FAST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (++i >= argc) return cli_usage("generate", "%s needs a text", a);
            prompt = argv[i];
        } else if (!strcmp(a, "-n")) {
            if (++i >= argc || (n_new = cli_parse_int(argv[i], 1, 1 << 20)) < 0)
                return cli_usage("generate", "-n needs a positive number");
        } else if (!strcmp(a, "--temp") || !strcmp(a, "--top-p")) {
            if (++i >= argc) return cli_usage("generate", "%s needs a number", a);
            double v = strtod(argv[i], &end);
            if (*end || !isfinite(v) || v < 0 || (a[2] == 't' && a[3] == 'o' && (v <= 0 || v > 1)))
                return cli_usage("generate", "%s: '%s' is out of range", a, argv[i]);
            if (a[2] == 't' && a[3] == 'e')
                temp = v;
            else
                top_p = v;
        } else if (!strcmp(a, "--seed")) {
            if (++i >= argc) return cli_usage("generate", "--seed needs a number");
            seed = strtoull(argv[i], &end, 10);
            if (*end) return cli_usage("generate", "--seed: '%s' is not a number", argv[i]);
            if (!seed) seed = 0x9E3779B97F4A7C15ull;
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (threads = cli_parse_int(argv[i], 1, 1024)) < 0)
                return cli_usage("generate", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--exact")) {
            mode = GLMQ_FWD_EXACT;
        } else if (!strcmp(a, "--no-stream")) {
            stream_out = 0;
        } else if (a[0] == '-') {
            return cli_usage("generate", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage("generate", "unexpected argument '%s'", a);
        }
    }
    if (!model) return cli_usage("generate", "missing MODEL");
    if (!prompt) return cli_usage("generate", "missing -p TEXT");

    glmq_err err = {0};
    glmq_model *m = NULL;
    glmq_tokenizer *tok = NULL;
    glmq_forward *f = NULL;
    glmq_ids ids = {0};
    float *logits = NULL;
    cand *work = NULL;
    int rc = EXIT_OK;
    if (glmq_model_open(model, &m, &err) != GLMQ_OK ||
        glmq_model_tokenizer_open(m, &tok, &err) != GLMQ_OK ||
        glmq_tokenizer_encode_prompt(tok, prompt, strlen(prompt), &ids, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    const glmq_config *c = glmq_model_config(m);
    int64_t np = (int64_t)ids.n, V = c->vocab;
    if (glmq_forward_create_mode(m, np + n_new, threads, mode, &f, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    logits = malloc((size_t)np * (size_t)V * sizeof *logits);
    work = malloc((size_t)V * sizeof *work);
    if (!logits || !work) {
        fprintf(stderr, "glmq: error: out of memory\n");
        rc = EXIT_ERR;
        goto done;
    }
    double t0 = cli_now();
    if (glmq_forward_eval(f, ids.ids, np, logits, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    double t_prefill = cli_now() - t0;
    uint64_t rng = seed;
    int32_t next = pick(logits + (size_t)(np - 1) * (size_t)V, V, temp, top_p, &rng, work);
    size_t printed = 0, first_gen = ids.n;
    int64_t produced = 0;
    t0 = cli_now();
    for (;;) {
        if (next == c->tok_eos || next == c->tok_eop) break;
        if (glmq_ids_push(&ids, next, &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
        produced++;
        if (stream_out) stream(tok, ids.ids + first_gen, ids.n - first_gen, &printed, 0);
        if (produced >= n_new) break;
        if (glmq_forward_eval(f, &next, 1, logits, &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
        next = pick(logits, V, temp, top_p, &rng, work);
    }
    double t_decode = cli_now() - t0;
    stream(tok, ids.ids + first_gen, ids.n - first_gen, &printed, 1);
    printf("\n");
    fprintf(stderr,
            "glmq: %lld prompt tokens in %.3f s (%.1f tokens/s), %lld generated in %.3f s (%.2f "
            "tokens/s), %s kernels\n",
            (long long)np, t_prefill, (double)np / t_prefill, (long long)produced, t_decode,
            produced > 1 ? (double)(produced - 1) / t_decode : 0.0, glmq_forward_mode_name(mode));
done:
    free(work);
    free(logits);
    glmq_ids_free(&ids);
    glmq_forward_free(f);
    glmq_tokenizer_free(tok);
    glmq_model_close(m);
    return rc;
}
