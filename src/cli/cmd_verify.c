/*
 * cmd_verify.c - glmq verify QUANT --ref REF (--text FILE | --ids-file FILE) [thresholds]
 *
 * Exit 0 when every threshold given passes, 3 when one is missed, 1 on error, 2 on usage.
 * With --shard I/N --partial FILE it evaluates only every N-th window and writes a partial
 * result (verify/shard.h) for `glmq merge`, which applies the gate; the table, gate, report and
 * plot at the end are shared with cmd_merge.c (cli_verify_finish).
 */
#include "cli.h"
#include "verify/shard.h"
#include "core/atomic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq verify QUANT --ref REF (--text FILE | --ids-file FILE) [--ctx N] [--chunks K]\n"
    "                   [--strided [--stride S]] [--max-ppl-ratio X] [--max-kld X]\n"
    "                   [--max-kld-p99 X] [--min-top1 X] [--report FILE.json] [--plot FILE.svg]\n"
    "                   [--rank-tensors] [--threads N] [--no-mmap] [--quiet]\n"
    "       glmq verify QUANT --ref REF (--text FILE | --ids-file FILE) [--ctx N] [--chunks K]\n"
    "                   [--strided [--stride S]] [--kernels K] --shard I/N --partial OUT.part\n"
    "\n"
    "Runs the reference REF (the original checkpoint directory, or an f16 .glmq) and QUANT side by\n"
    "side on the same windows of the text and compares them position by position: KL(P_ref ||\n"
    "P_quant) over the full vocabulary (mean, median, p90, p99, max), top-1 agreement, change of\n"
    "the correct token's probability, logit error, perplexity of both and their ratio, and the\n"
    "relative error of the hidden state after every layer. Exit 0 when every threshold given is\n"
    "met, 3 when one is missed.\n"
    "\n"
    "  --max-ppl-ratio X   fail when ppl(QUANT) / ppl(REF) > X\n"
    "  --max-kld X         fail when the mean KL divergence > X (nats)\n"
    "  --max-kld-p99 X     fail when the 99th percentile of KL > X\n"
    "  --min-top1 X        fail when the top-1 agreement < X (0..1)\n"
    "  --report FILE.json  write every metric, threshold and verdict, model hashes, tokens\n"
    "  --plot FILE.svg     per-layer error and KL histogram, self-contained SVG\n"
    "  --rank-tensors      also rank quantized tensors by their effect on KL (restores one at a\n"
    "                      time: one more evaluation per tensor; small models)\n"
    "  --kernels K         how QUANT is run: fast (default; the exact path is reported beside\n"
    "                      it), exact, or reference (REF then also uses the reference path)\n"
    "  --shard I/N         evaluate only windows I, I+N, I+2N, ... (0 <= I < N; a Slurm array\n"
    "                      index or a Kubernetes completion index) and write them with --partial\n"
    "  --partial OUT.part  the partial result of this shard; 'glmq merge' combines all N of them\n"
    "                      into the report of one process and applies the thresholds\n"
    "  --text/--ids-file/--ctx/--stride/--strided/--chunks/--threads/--no-mmap as in 'glmq ppl'\n";

static int parse_limit(const char *cmd, int argc, char **argv, int *i, double *v)
{
    const char *opt = argv[*i];
    if (++*i >= argc) return cli_usage(cmd, "%s needs a number", opt);
    char *end;
    *v = strtod(argv[*i], &end);
    if (*end || !isfinite(*v) || *v < 0) return cli_usage(cmd, "%s: '%s' is not a number >= 0", opt, argv[*i]);
    return EXIT_OK;
}

int cli_gate_option(const char *cmd, int argc, char **argv, int *i, glmq_gate *g)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--max-ppl-ratio")) return parse_limit(cmd, argc, argv, i, &g->max_ppl_ratio);
    if (!strcmp(a, "--max-kld")) return parse_limit(cmd, argc, argv, i, &g->max_kld);
    if (!strcmp(a, "--max-kld-p99")) return parse_limit(cmd, argc, argv, i, &g->max_kld_p99);
    if (!strcmp(a, "--min-top1")) return parse_limit(cmd, argc, argv, i, &g->min_top1);
    return -1;
}

int cli_verify_finish(const glmq_drift *dp, glmq_report_ctx *ctx, const glmq_gate *gate,
                      const char *report, const char *plot, int quiet)
{
    glmq_gate_check checks[4];
    int nc = glmq_gate_eval(dp, gate, checks);
    int pass = 1;
    for (int i = 0; i < nc; i++) pass &= checks[i].pass;
    ctx->checks = checks;
    ctx->n_checks = nc;
    const glmq_drift *de = ctx->exact;
    if (!quiet) {
        printf("verify %s against %s: %lld positions in %lld windows (ctx %lld), %.1f s",
               ctx->quant.path, ctx->ref.path, (long long)dp->n_positions,
               (long long)dp->ppl_ref.n_windows, (long long)ctx->opts->ctx, ctx->seconds);
        if (ctx->n_shards > 0) printf(" in %lld shards", (long long)ctx->n_shards);
        printf("\n  %-22s %14s", "metric", glmq_forward_mode_name(ctx->opts->mode));
        if (de) printf(" %14s", "exact");
        printf("\n");
#define ROW(label, fmt, field)                                                                 \
    do {                                                                                       \
        printf("  %-22s " fmt, label, dp->field);                                              \
        if (de) printf(" " fmt, de->field);                                                    \
        printf("\n");                                                                          \
    } while (0)
        ROW("ppl reference", "%14.6f", ppl_ref.ppl);
        ROW("ppl quantized", "%14.6f", ppl_q.ppl);
        ROW("ppl ratio", "%14.6f", ppl_ratio);
        ROW("KL mean", "%14.4e", kld_mean);
        ROW("KL median", "%14.4e", kld_median);
        ROW("KL p90", "%14.4e", kld_p90);
        ROW("KL p99", "%14.4e", kld_p99);
        ROW("KL max", "%14.4e", kld_max);
        ROW("top-1 agreement", "%14.6f", top1_agreement);
        ROW("delta p mean", "%14.4e", dp_mean);
        ROW("delta p rms", "%14.4e", dp_rms);
        ROW("|delta logit| max", "%14.4e", dlogit_max);
        ROW("|delta logit| rms", "%14.4e", dlogit_rms);
#undef ROW
        printf("  hidden-state relative error by layer:");
        for (int64_t l = 0; l < dp->n_layers; l++) printf(" %.3g", dp->layer_rel_err[l]);
        printf("\n");
        for (int64_t i = 0; i < ctx->n_effects && i < 20; i++)
            printf("  restoring %-60s KL mean -> %.4e (%+.4e)\n", ctx->effects[i].name,
                   ctx->effects[i].kld_mean_without, -ctx->effects[i].kld_reduction);
        for (int i = 0; i < nc; i++)
            printf("  gate %-16s %.6g %s %.6g: %s\n", checks[i].metric, checks[i].value,
                   checks[i].is_max ? "<=" : ">=", checks[i].limit, checks[i].pass ? "pass" : "FAIL");
        printf("%s\n", nc ? (pass ? "PASS" : "FAIL") : "no thresholds given");
    }
    glmq_err err = {0};
    if (report) {
        char *json = glmq_report_json(dp, ctx);
        glmq_status st = json ? glmq_atomic_write_file(report, json, strlen(json), &err)
                              : glmq_fail(&err, GLMQ_E_NOMEM, "out of memory for the report");
        free(json);
        if (st != GLMQ_OK) return cli_error(&err);
    }
    if (plot) {
        char title[512];
        snprintf(title, sizeof title, "glmq verify: %s vs %s", ctx->quant.path, ctx->ref.path);
        if (glmq_report_svg(dp, title, plot, &err) != GLMQ_OK) return cli_error(&err);
    }
    return pass ? EXIT_OK : EXIT_GATE;
}

/* "I/N" with 0 <= I < N <= GLMQ_PART_MAX_SHARDS */
static int parse_shard(const char *s, int64_t *i, int64_t *n)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash - s > 15) return 0;
    char a[16];
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = 0;
    int x = glmq_parse_int(a, 0, GLMQ_PART_MAX_SHARDS - 1);
    int y = glmq_parse_int(slash + 1, 1, GLMQ_PART_MAX_SHARDS);
    if (x < 0 || y < 0 || x >= y) return 0;
    *i = x;
    *n = y;
    return 1;
}

int cmd_verify(int argc, char **argv)
{
    const char *quant = NULL, *ref = NULL, *text = NULL, *ids_file = NULL, *report = NULL,
               *plot = NULL, *partial = NULL;
    int quiet = 0, rank = 0;
    int64_t shard = -1, n_shards = 0;
    glmq_gate gate = {NAN, NAN, NAN, NAN};
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.ctx = 0;                   /* the protocol's default unless --ctx */
    o.mode = GLMQ_FWD_FAST;      /* what a runtime on glmq's kernels computes */
    o.ref_mode = GLMQ_FWD_EXACT; /* fp32 on the original weights, SIMD speed */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_eval_option("verify", argc, argv, &i, &o, &text, &ids_file);
        if (rc == EXIT_OK) continue;
        if (rc != -1) return rc;
        rc = cli_gate_option("verify", argc, argv, &i, &gate);
        if (rc == EXIT_OK) continue;
        if (rc != -1) return rc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--ref")) {
            if (++i >= argc) return cli_usage("verify", "--ref needs a model");
            ref = argv[i];
        } else if (!strcmp(a, "--report")) {
            if (++i >= argc) return cli_usage("verify", "--report needs a file");
            report = argv[i];
        } else if (!strcmp(a, "--plot")) {
            if (++i >= argc) return cli_usage("verify", "--plot needs a file");
            plot = argv[i];
        } else if (!strcmp(a, "--shard")) {
            if (++i >= argc || !parse_shard(argv[i], &shard, &n_shards))
                return cli_usage("verify", "--shard needs I/N with 0 <= I < N <= %d",
                                 GLMQ_PART_MAX_SHARDS);
        } else if (!strcmp(a, "--partial")) {
            if (++i >= argc) return cli_usage("verify", "--partial needs a file");
            partial = argv[i];
        } else if (!strcmp(a, "--rank-tensors")) {
            rank = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-') {
            return cli_usage("verify", "unknown option '%s'", a);
        } else if (!quant) {
            quant = a;
        } else {
            return cli_usage("verify", "unexpected argument '%s'", a);
        }
    }
    if (!quant) return cli_usage("verify", "missing QUANT model");
    if (!ref) return cli_usage("verify", "missing --ref REF");
    if (!text && !ids_file) return cli_usage("verify", "give --text FILE or --ids-file FILE");
    if (n_shards && !partial) return cli_usage("verify", "--shard needs --partial OUT.part");
    if (partial && !n_shards) return cli_usage("verify", "--partial needs --shard I/N");
    if (partial && (report || plot || rank || !isnan(gate.max_ppl_ratio) ||
                    !isnan(gate.max_kld) || !isnan(gate.max_kld_p99) || !isnan(gate.min_top1)))
        return cli_usage("verify", "a shard writes only its partial result: give thresholds, "
                                   "--report and --plot to 'glmq merge' (--rank-tensors is not "
                                   "sharded)");
    glmq_eval_opts_resolve(&o);

    glmq_err err = {0};
    glmq_model *mq = NULL, *mr = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    glmq_drift dd[2];
    memset(dd, 0, sizeof dd);
    glmq_tensor_effect *eff = NULL;
    int64_t neff = 0;
    glmq_part *part = NULL;
    int rc = EXIT_OK;
    if (glmq_model_open_flags(quant, o.open_flags, &mq, &err) != GLMQ_OK ||
        glmq_model_open_flags(ref, o.open_flags, &mr, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    /* tokenize with the reference's tokenizer (the original's is the ground truth) */
    if (glmq_eval_load_ids(mr, text, ids_file, &ids, &n, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    cli_progress prog;
    cli_eval_progress(&o, &prog, quiet);
    double t0 = glmq_now();
    /* the gated mode, and with the fast kernels also the exact path beside it */
    glmq_forward_mode modes[2] = {o.mode, GLMQ_FWD_EXACT};
    int nmodes = o.mode == GLMQ_FWD_FAST ? 2 : 1;
    if (partial) {
        if (glmq_shard_eval(mr, mq, ref, quant, text ? text : ids_file, ids, n, &o, modes, nmodes,
                            shard, n_shards, &part, &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
        part->seconds = glmq_now() - t0;
        if (glmq_part_write(part, partial, &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
        if (!quiet) {
            int64_t np = 0;
            for (int64_t r = 0; r < part->n_records; r++) np += part->rec[r].m[0].n_pos;
            printf("verify shard %lld/%lld: %lld of %lld windows, %lld positions, %.1f s -> %s\n",
                   (long long)shard, (long long)n_shards, (long long)part->n_records,
                   (long long)part->n_windows, (long long)np, part->seconds, partial);
        }
        goto done;
    }
    if (glmq_drift_eval_modes(mr, mq, ids, n, &o, modes, nmodes, dd, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    const glmq_drift *dp = &dd[0], *de = nmodes > 1 ? &dd[1] : NULL;
    if (rank && glmq_rank_tensors(mr, mq, ids, n, &o, dp->kld_mean, &eff, &neff, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    glmq_report_ctx ctx = {0};
    ctx.quant = glmq_model_describe(mq, quant);
    ctx.ref = glmq_model_describe(mr, ref);
    ctx.opts = &o;
    ctx.text_source = text ? text : ids_file;
    ctx.effects = eff;
    ctx.n_effects = neff;
    ctx.seconds = glmq_now() - t0;
    ctx.exact = de;
    rc = cli_verify_finish(dp, &ctx, &gate, report, plot, quiet);
done:
    glmq_part_free(part);
    free(eff);
    glmq_drift_free(&dd[0]);
    glmq_drift_free(&dd[1]);
    free(ids);
    glmq_model_close(mq);
    glmq_model_close(mr);
    return rc;
}
