/*
 * cmd_merge.c - glmq merge PART... [--report FILE.json] [--plot FILE.svg] [thresholds] [--quiet]
 *
 * Reads the partial results of `glmq verify --shard I/N --partial PART` (verify/shard.h),
 * checks that they are the N shards of one run, adds their windows up in window order and ends
 * as verify does (cli_verify_finish): the same table, gate, report and plot, with the same exit
 * codes (0 pass, 3 a threshold missed, 1 error, 2 usage). The metrics equal those of the
 * single-process run bit for bit; the report adds "shards" and sums the shards' seconds.
 */
#include "cli.h"
#include "verify/shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq merge PART... [--report FILE.json] [--plot FILE.svg] [--max-ppl-ratio X]\n"
    "                  [--max-kld X] [--max-kld-p99 X] [--min-top1 X] [--quiet]\n"
    "\n"
    "Combines the partial results written by 'glmq verify ... --shard I/N --partial PART' for\n"
    "I = 0 .. N-1 into the result of one 'glmq verify' over the whole text, and applies the\n"
    "thresholds. Every part must come from the same run (glmq version, models, text, protocol,\n"
    "ctx, kernels, N) and each shard must be given exactly once. Exit 0 when every threshold\n"
    "given is met, 3 when one is missed, 1 on a bad or mismatched part.\n"
    "\n"
    "  --max-ppl-ratio X   fail when ppl(QUANT) / ppl(REF) > X\n"
    "  --max-kld X         fail when the mean KL divergence > X (nats)\n"
    "  --max-kld-p99 X     fail when the 99th percentile of KL > X\n"
    "  --min-top1 X        fail when the top-1 agreement < X (0..1)\n"
    "  --report FILE.json  the report of 'glmq verify' (plus \"shards\"; seconds summed)\n"
    "  --plot FILE.svg     per-layer error and KL histogram, self-contained SVG\n";

int cmd_merge(int argc, char **argv)
{
    const char *report = NULL, *plot = NULL;
    int quiet = 0, n = 0;
    glmq_gate gate = {NAN, NAN, NAN, NAN};
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    if (!names) {
        fputs("glmq: error: out of memory\n", stderr);
        return EXIT_ERR;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_gate_option("merge", argc, argv, &i, &gate);
        if (rc == EXIT_OK) continue;
        if (rc != -1) {
            free(names);
            return rc;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            free(names);
            return EXIT_OK;
        } else if (!strcmp(a, "--report") || !strcmp(a, "--plot")) {
            if (++i >= argc) {
                free(names);
                return cli_usage("merge", "%s needs a file", a);
            }
            *(a[2] == 'r' ? &report : &plot) = argv[i];
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            free(names);
            return cli_usage("merge", "unknown option '%s'", a);
        } else {
            names[n++] = a;
        }
    }
    if (!n) {
        free(names);
        return cli_usage("merge", "give the partial results (PART...) to merge");
    }

    glmq_err err = {0};
    glmq_part **parts = calloc((size_t)n, sizeof *parts);
    glmq_drift d[2];
    memset(d, 0, sizeof d);
    int rc = EXIT_OK, nmodes = 0;
    if (!parts) {
        glmq_fail(&err, GLMQ_E_NOMEM, "out of memory");
        rc = cli_error(&err);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (glmq_part_read(names[i], &parts[i], &err) != GLMQ_OK) {
            rc = cli_error(&err);
            goto done;
        }
    const glmq_part *first = NULL;
    double seconds = 0;
    if (glmq_parts_merge(parts, names, n, d, &nmodes, &first, &seconds, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    glmq_eval_opts o;
    glmq_part_opts(first, &o);
    glmq_report_ctx ctx = {0};
    ctx.quant = glmq_part_quant(first);
    ctx.ref = glmq_part_ref(first);
    ctx.opts = &o;
    ctx.text_source = first->str[GLMQ_PART_S_TEXT];
    ctx.seconds = seconds;
    ctx.exact = nmodes > 1 ? &d[1] : NULL;
    ctx.n_shards = first->n_shards;
    rc = cli_verify_finish(&d[0], &ctx, &gate, report, plot, quiet);
done:
    glmq_drift_free(&d[0]);
    glmq_drift_free(&d[1]);
    for (int i = 0; parts && i < n; i++) glmq_part_free(parts[i]);
    free(parts);
    free(names);
    return rc;
}
