/*
 * cmd_generate.c - glmq generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--seed S]
 *
 * A user's sanity check of a deployable artifact: the prompt is framed as the model's tokenizer
 * frames it ([gMASK] sop + text, or text + [gMASK] <sop> for ChatGLM-6B), run once through the
 * forward (prefill), then tokens are decoded one at a time on the KV cache and streamed to
 * stdout as text. Timings go to stderr. Written on the public API (src/glmq.h) alone, like
 * samples/generate.c: the tokenizer, the KV-cache session and the sampler are the library's.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq generate MODEL -p TEXT [-n N] [--temp T] [--top-p P] [--seed S] [--threads N]\n"
    "                     [--exact] [--no-mmap] [--no-stream]\n"
    "\n"
    "Continues TEXT with MODEL (a .glmq file or a checkpoint directory). Greedy decoding when\n"
    "--temp is 0 (the default), else sampling from softmax(logits / T), restricted to the\n"
    "smallest set of tokens whose probability reaches --top-p (default 1). Stops after N tokens\n"
    "(default 64) or at an end-of-sequence token. Prints prefill and decode tokens/s to stderr.\n"
    "\n"
    "  --seed S      sampling seed (default 1): the same seed gives the same text\n"
    "  --exact       fp32 kernels instead of the fast int8-activation ones\n"
    "  --no-mmap     read a .glmq / GGUF file into memory (huge pages where the kernel gives\n"
    "                them) instead of mapping it from the page cache\n"
    "  --no-stream   print the text once at the end\n";

/* Print the bytes of the decoded continuation not printed yet, holding back an incomplete
 * UTF-8 character (which decodes as U+FFFD until its last byte arrives). `buf` grows as the
 * text does; a decoding failure prints nothing. */
static void stream(const glmq_model *m, const int32_t *ids, size_t n, char **buf, size_t *cap,
                   size_t *printed, int final)
{
    size_t len = 0;
    if (glmq_detokenize(m, ids, n, *buf, *cap, &len, NULL) != GLMQ_OK) {
        if (len < *cap) return; /* not a matter of room */
        char *p = realloc(*buf, 2 * (len + 1));
        if (!p) return;
        *buf = p;
        *cap = 2 * (len + 1);
        if (glmq_detokenize(m, ids, n, *buf, *cap, &len, NULL) != GLMQ_OK) return;
    }
    const char *text = *buf;
    size_t end = len;
    if (!final && len >= 3 && !memcmp(text + len - 3, "\xef\xbf\xbd", 3)) end = len - 3;
    if (end > *printed) {
        fwrite(text + *printed, 1, end - *printed, stdout);
        fflush(stdout);
        *printed = end;
    }
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL;
    int n_new = 64, threads = 0, stream_out = 1;
    unsigned open_flags = 0;
    double temp = 0, top_p = 1;
    uint64_t seed = 1;
    glmq_kernel_mode kernels = GLMQ_KERNELS_FAST;
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
            if (++i >= argc || (n_new = glmq_parse_int(argv[i], 1, 1 << 20)) < 0)
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
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (threads = glmq_parse_int(argv[i], 1, 1024)) < 0)
                return cli_usage("generate", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--exact")) {
            kernels = GLMQ_KERNELS_EXACT;
        } else if (!strcmp(a, "--no-mmap")) {
            open_flags |= GLMQ_OPEN_LOAD;
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
    glmq_session *sess = NULL;
    glmq_sampler *smp = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    char *text = NULL;
    size_t text_cap = 256, np = 0;
    glmq_model_info info;
    int rc = EXIT_OK;
    /* the framed prompt: count its ids, then room for them and the continuation */
    if (glmq_model_open_flags(model, open_flags, &m, &err) != GLMQ_OK ||
        glmq_model_get_info(m, &info, &err) != GLMQ_OK ||
        glmq_tokenize(m, prompt, strlen(prompt), GLMQ_TOKENIZE_PROMPT, NULL, 0, &np, &err) !=
            GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    ids = malloc((np + (size_t)n_new) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "glmq: error: out of memory\n");
        rc = EXIT_ERR;
        goto done;
    }
    if (glmq_tokenize(m, prompt, strlen(prompt), GLMQ_TOKENIZE_PROMPT, ids, np, &np, &err) !=
        GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    int64_t V = info.vocab;
    glmq_session_opts so;
    glmq_session_opts_default(&so);
    so.kernels = kernels;
    so.threads = threads;
    so.max_tokens = (int64_t)np + n_new;
    glmq_sampler_params sp = {.temperature = temp, .top_p = top_p, .seed = seed};
    if (glmq_session_create(m, &so, &sess, &err) != GLMQ_OK ||
        glmq_sampler_create(&sp, V, &smp, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    logits = malloc(np * (size_t)V * sizeof *logits);
    text = malloc(text_cap);
    if (!logits || !text) {
        fprintf(stderr, "glmq: error: out of memory\n");
        rc = EXIT_ERR;
        goto done;
    }
    double t0 = glmq_now();
    if (glmq_session_eval(sess, ids, (int64_t)np, logits, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    double t_prefill = glmq_now() - t0;
    int32_t next;
    if (glmq_sampler_sample(smp, logits + (np - 1) * (size_t)V, &next, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    size_t printed = 0, n = np;
    int64_t produced = 0;
    t0 = glmq_now();
    for (;;) {
        if (next == info.tok_eos || next == info.tok_eop) break;
        ids[n++] = next;
        produced++;
        if (stream_out) stream(m, ids + np, n - np, &text, &text_cap, &printed, 0);
        if (produced >= n_new) break;
        if (glmq_session_eval(sess, &next, 1, logits, &err) != GLMQ_OK ||
            glmq_sampler_sample(smp, logits, &next, &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
    }
    double t_decode = glmq_now() - t0;
    stream(m, ids + np, n - np, &text, &text_cap, &printed, 1);
    printf("\n");
    fprintf(stderr,
            "glmq: %lld prompt tokens in %.3f s (%.1f tokens/s), %lld generated in %.3f s (%.2f "
            "tokens/s), %s kernels\n",
            (long long)np, t_prefill, (double)np / t_prefill, (long long)produced, t_decode,
            produced > 1 ? (double)(produced - 1) / t_decode : 0.0, glmq_kernel_mode_name(kernels));
done:
    free(text);
    free(logits);
    free(ids);
    glmq_sampler_free(smp);
    glmq_session_free(sess);
    glmq_model_close(m);
    return rc;
}
