/*
 * cmd_convert.c - glmq convert SRC_DIR -o OUT.glmq [options]
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq convert SRC_DIR -o OUT.glmq [--type int4|int8|f16] [--threads N]\n"
    "                    [--quantize-output] [--quantize-embedding] [--quiet]\n"
    "\n"
    "Reads a Hugging Face ChatGLM-6B / ChatGLM2-6B / ChatGLM3-6B / GLM-4-9B checkpoint directory\n"
    "(config.json, tokenizer, safetensors or PyTorch .bin, single or sharded) and writes one\n"
    "checksummed, mmap-able packed file. Memory stays near one chunk of one tensor.\n"
    "\n"
    "  -o, --output FILE     output path (written atomically)\n"
    "  --type T              int4 (default), int8 or f16 for the layer weights (a checkpoint\n"
    "                        THUDM quantized keeps its own int4/int8 unless T differs)\n"
    "                        (f16: no quantization; 16-bit sources kept bit-exact)\n"
    "  --quantize-output     also quantize the output layer (lm_head)\n"
    "  --quantize-embedding  also quantize the token embedding\n"
    "  --threads N           worker threads (default: online cores); output is identical\n"
    "  --quiet               no progress bar and no summary\n";

int cmd_convert(int argc, char **argv)
{
    const char *src = NULL, *outp = NULL;
    int quiet = 0;
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc) return cli_usage("convert", "%s needs a file name", a);
            outp = argv[i];
        } else if (!strcmp(a, "--type")) {
            if (++i >= argc) return cli_usage("convert", "--type needs a value");
            if (!strcmp(argv[i], "int4"))
                o.weight_type = GLMQ_TYPE_INT4;
            else if (!strcmp(argv[i], "int8"))
                o.weight_type = GLMQ_TYPE_INT8;
            else if (!strcmp(argv[i], "f16"))
                o.weight_type = GLMQ_TYPE_F16;
            else
                return cli_usage("convert", "unknown --type '%s' (int4, int8 or f16)", argv[i]);
            o.weight_type_given = 1;
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (o.threads = glmq_parse_int(argv[i], 1, 1024)) < 0)
                return cli_usage("convert", "--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--quantize-output")) {
            o.quantize_output = 1;
        } else if (!strcmp(a, "--quantize-embedding")) {
            o.quantize_embedding = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-') {
            return cli_usage("convert", "unknown option '%s'", a);
        } else if (!src) {
            src = a;
        } else {
            return cli_usage("convert", "unexpected argument '%s'", a);
        }
    }
    if (!src) return cli_usage("convert", "missing SRC_DIR");
    if (!outp) return cli_usage("convert", "missing -o OUT.glmq");

    cli_progress prog;
    cli_progress_init(&prog, "converting", quiet);
    o.progress = cli_progress_cb;
    o.progress_user = &prog;
    glmq_err err = {0};
    glmq_convert_report rep;
    double t0 = glmq_now();
    glmq_status st = glmq_convert(src, outp, &o, &rep, &err);
    double dt = glmq_now() - t0;
    cli_progress_end(&prog);
    if (st != GLMQ_OK) return cli_error(&err);
    for (int64_t i = 0; i < rep.n_warnings; i++) fprintf(stderr, "glmq: warning: %s\n", rep.warnings[i]);
    if (!quiet) {
        char b1[32], b2[32];
        printf("converted %s (%s) -> %s\n", src, rep.architecture, outp);
        printf("  input  %s of tensor data\n", cli_bytes(b1, sizeof b1, (double)rep.input_bytes));
        printf("  output %s (%.1f%% of input)\n", cli_bytes(b2, sizeof b2, (double)rep.output_bytes),
               100.0 * (double)rep.output_bytes / (double)(rep.input_bytes ? rep.input_bytes : 1));
        printf("  time   %.2f s (%.2f GB/s of input)\n", dt, (double)rep.input_bytes / dt / 1e9);
        printf("\n  %-60s %-5s %12s %12s %9s\n", "tensor", "type", "rms err", "max |err|",
               "SQNR dB");
        for (int64_t i = 0; i < rep.n_tensors; i++) {
            const glmq_tensor_stats *s = &rep.stats[i];
            if (s->type != GLMQ_TYPE_INT8 && s->type != GLMQ_TYPE_INT4 && s->rms_err == 0) continue;
            printf("  %-60s %-5s %12.4e %12.4e %9.2f\n", s->name, glmq_type_name(s->type),
                   s->rms_err, s->max_abs_err, isinf(s->sqnr_db) ? 999.99 : s->sqnr_db);
        }
    }
    glmq_convert_report_free(&rep);
    return EXIT_OK;
}
