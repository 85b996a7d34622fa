/*
 * report.h - quality gate, JSON report and SVG plot of a drift evaluation (internal).
 */
#ifndef GLMQ_VERIFY_REPORT_H
#define GLMQ_VERIFY_REPORT_H

#include "verify/metrics.h"

/* Thresholds; a NaN limit means "not set". */
typedef struct {
    double max_ppl_ratio, max_kld, max_kld_p99, min_top1;
} glmq_gate;

typedef struct {
    const char *metric; /* "ppl_ratio", "kld_mean", "kld_p99", "top1_agreement" */
    double value, limit;
    int is_max; /* 1: value must be <= limit; 0: >= limit */
    int pass;
} glmq_gate_check;

/* Evaluate the set thresholds; returns how many were set (<= 4) and fills `out`. */
int glmq_gate_eval(const glmq_drift *d, const glmq_gate *g, glmq_gate_check out[4]);

/* What the report says about a model (the strings are borrowed). */
typedef struct {
    const char *path, *kind, *weight_type, *arch;
    uint64_t hash; /* glmq_model_ident */
} glmq_model_desc;

glmq_model_desc glmq_model_describe(const glmq_model *m, const char *path);

typedef struct {
    glmq_model_desc quant, ref;
    const glmq_eval_opts *opts;
    const char *text_source; /* file name of the text or ids */
    const glmq_gate_check *checks;
    int n_checks;
    const glmq_tensor_effect *effects; /* may be NULL */
    int64_t n_effects;
    double seconds;
    const glmq_drift *exact; /* the exact-kernel drift when the gated run used the fast kernels */
    int64_t n_shards; /* > 0: merged from this many partial results (glmq merge) */
} glmq_report_ctx;

/* The whole report as a JSON string (malloc'd; free with free()). */
char *glmq_report_json(const glmq_drift *d, const glmq_report_ctx *ctx);

/* Write a self-contained SVG (no external assets): per-layer relative error of the hidden state
 * and the KL distribution (histogram, log-scale counts). Written atomically. */
glmq_status glmq_report_svg(const glmq_drift *d, const char *title, const char *path,
                            glmq_err *err);

#endif
