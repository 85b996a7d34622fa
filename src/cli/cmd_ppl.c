/*
 * cmd_ppl.c - glmq ppl MODEL (--text FILE | --ids-file FILE) [options]
 *
 * Also the option parser shared with `glmq verify` (cli_eval_option). Protocol defaults, the
 * kernel names, the text or id file and the perplexity itself are verify/metrics.h's.
 */
#include "cli.h"
#include "verify/metrics.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq ppl MODEL (--text FILE | --ids-file FILE) [--ctx N] [--strided [--stride S]]\n"
    "                [--chunks K] [--threads N] [--no-mmap] [--json]\n"
    "\n"
    "Perplexity of MODEL (a .glmq file or a Hugging Face checkpoint directory) with the FP32\n"
    "reference forward pass. Default protocol (GLM-SPEC decision 5): the text is tokenized once,\n"
    "cut into consecutive windows of N-2 tokens, each fed as [gMASK] sop + window in a fresh\n"
    "forward, every window token scored. --strided: the chatglm.cpp / HF protocol (windows of N\n"
    "tokens every S tokens, no prefix; not for ChatGLM-6B).\n"
    "\n"
    "  --text FILE      UTF-8 text, tokenized with the model's tokenizer (no special tokens)\n"
    "  --ids-file FILE  whitespace-separated token ids (already tokenized, no prefix)\n"
    "  --ctx N          tokens per forward incl. the prefix (default 256; strided: 2048)\n"
    "  --stride S       strided protocol stride (default 512)\n"
    "  --chunks K       evaluate only the first K windows\n"
    "  --threads N      worker threads (default: online cores); results are identical\n"
    "  --kernels K      fast (default): INT4/INT8 weights against int8 activations (per block\n"
    "                   of 32, integer dot products); exact: the same kernels in fp32 on the\n"
    "                   exactly dequantized weights; reference: the plain-C FP32 reference\n"
    "                   forward (bit-reproducible on any CPU). --exact = --kernels exact.\n"
    "  --no-mmap        read a .glmq / GGUF file into memory (huge pages where the kernel\n"
    "                   gives them) instead of mapping it from the page cache\n"
    "  --json           print one JSON object\n";

int cli_eval_option(const char *cmd, int argc, char **argv, int *i, glmq_eval_opts *o,
                    const char **text, const char **ids_file)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--text") || !strcmp(a, "--ids-file")) {
        if (++*i >= argc) return cli_usage(cmd, "%s needs a file", a);
        if (*text || *ids_file) return cli_usage(cmd, "give one of --text and --ids-file");
        if (a[2] == 't')
            *text = argv[*i];
        else
            *ids_file = argv[*i];
    } else if (!strcmp(a, "--ctx")) {
        int v;
        if (++*i >= argc || (v = glmq_parse_int(argv[*i], 3, 1 << 20)) < 0)
            return cli_usage(cmd, "--ctx needs a number from 3 to 1048576");
        o->ctx = v;
    } else if (!strcmp(a, "--stride")) {
        int v;
        if (++*i >= argc || (v = glmq_parse_int(argv[*i], 1, 1 << 20)) < 0)
            return cli_usage(cmd, "--stride needs a positive number");
        o->stride = v;
    } else if (!strcmp(a, "--strided")) {
        o->strided = 1;
    } else if (!strcmp(a, "--chunks")) {
        int v;
        if (++*i >= argc || (v = glmq_parse_int(argv[*i], 1, 1 << 30)) < 0)
            return cli_usage(cmd, "--chunks needs a positive number");
        o->max_chunks = v;
    } else if (!strcmp(a, "--threads")) {
        int v;
        if (++*i >= argc || (v = glmq_parse_int(argv[*i], 1, 1024)) < 0)
            return cli_usage(cmd, "--threads needs a number from 1 to 1024");
        o->threads = v;
    } else if (!strcmp(a, "--no-mmap")) {
        o->open_flags |= GLMQ_OPEN_LOAD;
    } else if (!strcmp(a, "--exact") || !strcmp(a, "--reference")) {
        glmq_eval_set_kernels(o, a + 2, NULL);
    } else if (!strcmp(a, "--kernels")) {
        if (++*i >= argc) return cli_usage(cmd, "--kernels needs fast, exact or reference");
        glmq_err err = {0};
        if (glmq_eval_set_kernels(o, argv[*i], &err) != GLMQ_OK)
            return cli_usage(cmd, "--kernels: %s", err.msg);
    } else {
        return -1;
    }
    return EXIT_OK;
}

static void progress(void *user, int64_t done, int64_t total, int64_t tokens)
{
    cli_progress *p = user;
    if (!p->enabled) return;
    double now = glmq_now();
    if (now - p->last < 0.2 && done < total) return;
    p->last = now;
    double el = now - p->t0, rate = el > 0 ? (double)tokens / el : 0;
    double eta = done ? el / (double)done * (double)(total - done) : 0;
    fprintf(stderr, "\r\033[Kwindow %lld/%lld  %.1f tokens/s  ETA %.0fs", (long long)done,
            (long long)total, rate, eta);
    if (done == total) fprintf(stderr, "\r\033[K");
}

void cli_eval_progress(glmq_eval_opts *o, cli_progress *p, int quiet)
{
    cli_progress_init(p, "evaluating", quiet);
    o->progress = progress;
    o->progress_user = p;
}

int cmd_ppl(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *ids_file = NULL;
    int json = 0;
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.ctx = 0; /* the protocol's default unless --ctx (glmq_eval_opts_resolve) */
    o.mode = GLMQ_FWD_FAST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_eval_option("ppl", argc, argv, &i, &o, &text, &ids_file);
        if (rc == EXIT_OK) continue;
        if (rc != -1) return rc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-') {
            return cli_usage("ppl", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage("ppl", "unexpected argument '%s'", a);
        }
    }
    if (!model) return cli_usage("ppl", "missing MODEL");
    if (!text && !ids_file) return cli_usage("ppl", "give --text FILE or --ids-file FILE");
    glmq_eval_opts_resolve(&o);
    glmq_err err = {0};
    glmq_model *m = NULL;
    if (glmq_model_open_flags(model, o.open_flags, &m, &err) != GLMQ_OK) return cli_error(&err);
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = EXIT_OK;
    if (glmq_eval_load_ids(m, text, ids_file, &ids, &n, &err) != GLMQ_OK) rc = cli_error(&err);
    if (rc == EXIT_OK) {
        cli_progress prog;
        cli_eval_progress(&o, &prog, json);
        glmq_ppl_result r;
        double t0 = glmq_now();
        if (glmq_perplexity(m, ids, n, &o, &r, &err) != GLMQ_OK) {
            rc = cli_error(&err);
        } else {
            double dt = glmq_now() - t0;
            if (json)
                printf("{\"ppl\": %.17g, \"nll_sum\": %.17g, \"tokens\": %lld, \"windows\": %lld, "
                       "\"ctx\": %lld, \"protocol\": \"%s\", \"kernels\": \"%s\", "
                       "\"seconds\": %.3f}\n",
                       r.ppl, r.nll_sum, (long long)r.n_scored, (long long)r.n_windows,
                       (long long)o.ctx, o.strided ? "strided" : "windows",
                       glmq_forward_mode_name(o.mode), dt);
            else
                printf("ppl %.6f over %lld tokens in %lld windows of ctx %lld (%s protocol, %s "
                       "kernels), %.2f s, %.1f tokens/s\n",
                       r.ppl, (long long)r.n_scored, (long long)r.n_windows, (long long)o.ctx,
                       o.strided ? "strided" : "window", glmq_forward_mode_name(o.mode), dt,
                       (double)r.n_scored / dt);
        }
    }
    free(ids);
    glmq_model_close(m);
    return rc;
}
