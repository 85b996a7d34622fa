/*
 * cmd_convert.c - glmq convert SRC_DIR -o OUT.glmq [options]
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq convert SRC_DIR -o OUT.glmq [--type int4|int8|f16] [--group 32|64|128]\n"
    "                    [--tensor-type REGEX=TYPE[:gN]]... [--threads N]\n"
    "                    [--quantize-output] [--quantize-embedding] [--quiet]\n"
    "                    [--method rtn|search|gptq --calib TEXT [--calib-tokens N]\n"
    "                     [--calib-ctx N] [--damp X] [--act-order]]\n"
    "                    [--budget-kld X | --budget-bpw B [--budget-type T] [--budget-tokens N]]\n"
    "\n"
    "Reads a Hugging Face ChatGLM-6B / ChatGLM2-6B / ChatGLM3-6B / GLM-4-9B checkpoint directory\n"
    "(config.json, tokenizer, safetensors or PyTorch .bin, single or sharded) and writes one\n"
    "checksummed, mmap-able packed file. Memory stays near one chunk of one tensor.\n"
    "\n"
    "  -o, --output FILE     output path (written atomically)\n"
    "  --type T              int4 (default), int8 or f16 for the layer weights (a checkpoint\n"
    "                        THUDM quantized keeps its own int4/int8 unless T differs)\n"
    "                        (f16: no quantization; 16-bit sources kept bit-exact)\n"
    "  --group G             one fp16 scale per G columns (32, 64 or 128) instead of per row:\n"
    "                        types int4gG / int8gG; int4 codes -8..7 (round to nearest is\n"
    "                        llama.cpp's Q4_0 / Q8_0 rule); exports to GGUF exactly\n"
    "  --tensor-type R=T     the type of every 2-D weight whose checkpoint name matches the POSIX\n"
    "                        extended regex R: int4, int8 or f16, with :g32/:g64/:g128 after\n"
    "                        int4/int8 (repeatable; the first matching rule wins over --type;\n"
    "                        a rule that matches nothing is an error)\n"
    "  --quantize-output     also quantize the output layer (lm_head)\n"
    "  --quantize-embedding  also quantize the token embedding\n"
    "  --threads N           worker threads (default: online cores); output is identical\n"
    "  --quiet               no progress bar and no summary\n"
    "\n"
    "Calibrated INT4/INT8 (same format and kernels; only codes and scales change):\n"
    "  --method M            rtn (default): per-row amax scale, round to nearest;\n"
    "                        search: per-row scale minimizing the error weighted by the\n"
    "                        calibration inputs' E[x^2]; gptq: GPTQ against H = sum x x^T\n"
    "  --calib TEXT          calibration text (UTF-8), needed by search and gptq\n"
    "  --calib-tokens N      at most N calibration tokens (default 65536 = 128 x 512)\n"
    "  --calib-ctx N         tokens per calibration sequence, [gMASK] sop included (512)\n"
    "  --damp X              GPTQ damping, a fraction of mean(diag H) (default 0.01)\n"
    "  --act-order           GPTQ: quantize columns by decreasing H_jj\n"
    "\n"
    "Per-tensor precision under a budget (needs --calib; README \"Budgets\"):\n"
    "  --budget-kld X        keep the layer weights whose promotion lowers the mean KL most per\n"
    "                        extra bit at --budget-type until the predicted KL is <= X\n"
    "  --budget-bpw B        the same while the stored bits per quantized weight stay <= B\n"
    "  --budget-type T       the promoted type: int8 (default), or int4:g32 etc.\n"
    "  --budget-tokens N     calibration ids the sensitivities are measured on (--calib-tokens)\n";

static void calib_line(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "glmq: calibration: %s\n", line);
}

/* The budget types: what --budget-type accepts (as --tensor-type's TYPE). */
static glmq_type budget_type_of(const char *s)
{
    static const char *names[] = {"int8", "int8:g32", "int8:g64", "int8:g128",
                                  "int4:g32", "int4:g64", "int4:g128", "int4"};
    static const glmq_type types[] = {GLMQ_TYPE_INT8, GLMQ_TYPE_INT8_G32, GLMQ_TYPE_INT8_G64,
                                      GLMQ_TYPE_INT8_G128, GLMQ_TYPE_INT4_G32,
                                      GLMQ_TYPE_INT4_G64, GLMQ_TYPE_INT4_G128, GLMQ_TYPE_INT4};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) return types[i];
    return (glmq_type)-1;
}

/* convert with a budget: glmq_convert_budget, then the chosen type of every candidate tensor,
 * the bits per weight and the predicted and measured KL. */
static int run_budget(const char *src, const char *outp, glmq_convert_opts *o,
                      glmq_budget_opts *bo, const char *budget_type, cli_progress *prog,
                      int quiet)
{
    if (budget_type && (int)(bo->high = budget_type_of(budget_type)) < 0)
        return cli_usage("convert", "--budget-type '%s': int8, int4 or int8 with :g32/:g64/:g128",
                         budget_type);
    if (bo->budget_kld > 0 && bo->budget_bpw > 0)
        return cli_usage("convert", "give --budget-kld or --budget-bpw, not both");
    if (!o->calib_path) return cli_usage("convert", "a budget needs --calib TEXT");
    o->progress = NULL;
    cli_progress_end(prog);
    glmq_err err = {0};
    glmq_budget_report r;
    const double t0 = glmq_now();
    glmq_status st = glmq_convert_budget(src, outp, o, bo, &r, &err);
    if (st != GLMQ_OK) return cli_error(&err);
    if (!quiet) {
        printf("converted %s -> %s under a budget (%.1f s)\n", src, outp, glmq_now() - t0);
        printf("\n  %-60s %-8s %12s %10s\n", "tensor", "type", "KL saved", "extra bits");
        for (int64_t i = 0; i < r.n; i++)
            printf("  %-60s %-8s %12.4e %10.0f\n", r.t[i].name, glmq_type_name(r.t[i].type),
                   r.t[i].sensitivity, r.t[i].bits_high - r.t[i].bits_base);
        printf("\n  promoted %lld of %lld layer weights; bits per quantized weight %.4f "
               "(base %.4f)\n", (long long)r.n_promoted, (long long)r.n, r.bpw, r.bpw_base);
        printf("  mean KL on %lld calibration positions: base %.4e, predicted %.4e, measured "
               "%.4e\n", (long long)r.eval_positions, r.kld_base, r.kld_predicted,
               r.kld_measured);
    }
    glmq_budget_report_free(&r);
    return EXIT_OK;
}

int cmd_convert(int argc, char **argv)
{
    const char *src = NULL, *outp = NULL;
    int quiet = 0;
    glmq_convert_opts o;
    glmq_convert_opts_default(&o);
    const char *rules[64];
    int n_rules = 0;
    glmq_budget_opts bo = {0};
    const char *budget_type = NULL;
    o.tensor_types = rules;
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
        } else if (!strcmp(a, "--method")) {
            if (++i >= argc) return cli_usage("convert", "--method needs a value");
            if (!strcmp(argv[i], "rtn"))
                o.method = GLMQ_METHOD_RTN;
            else if (!strcmp(argv[i], "search"))
                o.method = GLMQ_METHOD_SEARCH;
            else if (!strcmp(argv[i], "gptq"))
                o.method = GLMQ_METHOD_GPTQ;
            else
                return cli_usage("convert", "unknown --method '%s' (rtn, search or gptq)",
                                 argv[i]);
        } else if (!strcmp(a, "--calib")) {
            if (++i >= argc) return cli_usage("convert", "--calib needs a file name");
            o.calib_path = argv[i];
        } else if (!strcmp(a, "--calib-tokens") || !strcmp(a, "--calib-ctx")) {
            int v;
            if (++i >= argc || (v = glmq_parse_int(argv[i], 16, 1 << 30)) < 0)
                return cli_usage("convert", "%s needs a number from 16 to 2^30", a);
            if (a[8] == 't')
                o.calib_tokens = v;
            else
                o.calib_ctx = v;
        } else if (!strcmp(a, "--damp")) {
            char *end = NULL;
            if (++i >= argc || (o.damp = strtod(argv[i], &end), !end || *end) ||
                !(o.damp >= 0 && o.damp <= 10))
                return cli_usage("convert", "--damp needs a number from 0 to 10");
        } else if (!strcmp(a, "--tensor-type")) {
            if (++i >= argc) return cli_usage("convert", "--tensor-type needs REGEX=TYPE");
            if (n_rules >= (int)(sizeof rules / sizeof rules[0]))
                return cli_usage("convert", "at most %d --tensor-type rules",
                                 (int)(sizeof rules / sizeof rules[0]));
            rules[n_rules++] = argv[i];
        } else if (!strcmp(a, "--budget-kld") || !strcmp(a, "--budget-bpw")) {
            if (++i >= argc) return cli_usage("convert", "%s needs a number", a);
            char *end;
            const double v = strtod(argv[i], &end);
            if (*end || !(v > 0) || !isfinite(v))
                return cli_usage("convert", "%s: '%s' is not a number > 0", a, argv[i]);
            if (!strcmp(a, "--budget-kld"))
                bo.budget_kld = v;
            else
                bo.budget_bpw = v;
        } else if (!strcmp(a, "--budget-type")) {
            if (++i >= argc) return cli_usage("convert", "--budget-type needs a type");
            budget_type = argv[i];
        } else if (!strcmp(a, "--budget-tokens")) {
            if (++i >= argc) return cli_usage("convert", "--budget-tokens needs a number");
            bo.eval_tokens = atoll(argv[i]);
            if (bo.eval_tokens < 16) return cli_usage("convert", "--budget-tokens: at least 16");
        } else if (!strcmp(a, "--group")) {
            if (++i >= argc) return cli_usage("convert", "--group needs a value");
            if (strcmp(argv[i], "32") && strcmp(argv[i], "64") && strcmp(argv[i], "128"))
                return cli_usage("convert", "--group must be 32, 64 or 128, not '%s'", argv[i]);
            o.group = atoi(argv[i]);
        } else if (!strcmp(a, "--act-order")) {
            o.act_order = 1;
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
    if (o.method != GLMQ_METHOD_RTN && !o.calib_path)
        return cli_usage("convert", "--method %s needs --calib TEXT",
                         o.method == GLMQ_METHOD_GPTQ ? "gptq" : "search");
    if (o.method != GLMQ_METHOD_RTN && o.weight_type == GLMQ_TYPE_F16)
        return cli_usage("convert", "--method needs --type int4 or int8");
    if (!quiet) {
        o.calib_log = calib_line;
    }

    cli_progress prog;
    cli_progress_init(&prog, "converting", quiet);
    o.progress = cli_progress_cb;
    o.progress_user = &prog;
    glmq_err err = {0};
    glmq_convert_report rep;
    double t0 = glmq_now();
    o.n_tensor_types = n_rules;
    if (bo.budget_kld > 0 || bo.budget_bpw > 0)
        return run_budget(src, outp, &o, &bo, budget_type, &prog, quiet);
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
        printf("\n  %-60s %-8s %12s %12s %9s\n", "tensor", "type", "rms err", "max |err|",
               "SQNR dB");
        for (int64_t i = 0; i < rep.n_tensors; i++) {
            const glmq_tensor_stats *s = &rep.stats[i];
            if ((s->type < GLMQ_TYPE_INT8 || s->type > GLMQ_TYPE_INT4_G128) && s->rms_err == 0)
                continue; /* stored as read */
            printf("  %-60s %-8s %12.4e %12.4e %9.2f\n", s->name, glmq_type_name(s->type),
                   s->rms_err, s->max_abs_err, isinf(s->sqnr_db) ? 999.99 : s->sqnr_db);
        }
    }
    glmq_convert_report_free(&rep);
    return EXIT_OK;
}
