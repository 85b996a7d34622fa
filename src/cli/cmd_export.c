/*
 * cmd_export.c - glmq export FILE.glmq -o OUT.gguf [--quiet]
 */
#include "cli.h"

#include <string.h>

static const char usage_text[] =
    "usage: glmq export FILE.glmq -o OUT.gguf [--quiet]\n"
    "\n"
    "Writes a GGUF file that llama.cpp (and the tools built on it) loads as architecture\n"
    "'chatglm', from a ChatGLM2-6B / ChatGLM3-6B / GLM-4-9B packed file. Lossless: INT8 rows\n"
    "become q8_0 blocks and INT4 rows q4_0 blocks with the same codes and scales, 16-bit and\n"
    "f32 matrices are copied; what cannot be a q8_0/q4_0 block (1-D tensors, rows that are not\n"
    "whole blocks of 32) is written as f32 holding the exact values, and listed. ChatGLM-6B (v1)\n"
    "has no llama.cpp architecture and is refused. 'glmq check OUT.gguf' verifies the file.\n"
    "\n"
    "  -o, --output FILE     output path (written atomically)\n"
    "  --quiet               no progress bar and no summary (warnings are still printed)\n";

int cmd_export(int argc, char **argv)
{
    const char *src = NULL, *outp = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc) return cli_usage("export", "%s needs a file name", a);
            outp = argv[i];
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-') {
            return cli_usage("export", "unknown option '%s'", a);
        } else if (!src) {
            src = a;
        } else {
            return cli_usage("export", "unexpected argument '%s'", a);
        }
    }
    if (!src) return cli_usage("export", "missing FILE.glmq");
    if (!outp) return cli_usage("export", "missing -o OUT.gguf");

    glmq_export_opts o;
    glmq_export_opts_default(&o);
    cli_progress prog;
    cli_progress_init(&prog, "exporting", quiet);
    o.progress = cli_progress_cb;
    o.progress_user = &prog;
    glmq_err err = {0};
    glmq_export_report rep;
    double t0 = glmq_now();
    glmq_status st = glmq_export_gguf(src, outp, &o, &rep, &err);
    double dt = glmq_now() - t0;
    cli_progress_end(&prog);
    if (st != GLMQ_OK) return cli_error(&err);
    if (rep.tokenizer_warning[0]) fprintf(stderr, "glmq: warning: %s\n", rep.tokenizer_warning);
    if (!quiet) {
        char b[32];
        printf("exported %s -> %s (llama.cpp architecture chatglm, file type %u)\n", src, outp,
               rep.file_type);
        printf("  output %s, %lld tensors, %.2f s\n", cli_bytes(b, sizeof b, (double)rep.output_bytes),
               (long long)rep.n_tensors, dt);
        int64_t n_widened = 0;
        for (int64_t i = 0; i < rep.n_tensors; i++) n_widened += !rep.tensors[i].exact_copy;
        if (n_widened) {
            printf("\n  not re-encoded one for one (values exact):\n");
            for (int64_t i = 0; i < rep.n_tensors; i++) {
                const glmq_export_tensor *t = &rep.tensors[i];
                if (t->exact_copy) continue;
                printf("  %-28s %-5s -> %-5s %s\n", t->name, glmq_type_name(t->from),
                       t->ggml_type_name, t->note);
            }
        }
    }
    glmq_export_report_free(&rep);
    return EXIT_OK;
}
