/*
 * report.c - the quality gate, the JSON report and the SVG plot of `glmq verify`.
 *
 * The report carries every metric, every threshold with its verdict, the identity of both models
 * (kind, weight type, the pack header checksum or checkpoint hash), the tokens evaluated and the
 * glmq version; nothing machine-specific beyond the paths given on the command line. Both files
 * are written with the atomic writer (core/atomic.h): all or nothing, mode 0666 & ~umask.
 */
#include "verify/report.h"

#include "core/atomic.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int glmq_gate_eval(const glmq_drift *d, const glmq_gate *g, glmq_gate_check out[4])
{
    const struct {
        const char *m;
        double v, lim;
        int is_max;
    } all[4] = {{"ppl_ratio", d->ppl_ratio, g->max_ppl_ratio, 1},
                {"kld_mean", d->kld_mean, g->max_kld, 1},
                {"kld_p99", d->kld_p99, g->max_kld_p99, 1},
                {"top1_agreement", d->top1_agreement, g->min_top1, 0}};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (isnan(all[i].lim)) continue;
        out[n].metric = all[i].m;
        out[n].value = all[i].v;
        out[n].limit = all[i].lim;
        out[n].is_max = all[i].is_max;
        out[n].pass = all[i].is_max ? all[i].v <= all[i].lim : all[i].v >= all[i].lim;
        n++;
    }
    return n;
}

glmq_model_desc glmq_model_describe(const glmq_model *m, const char *path)
{
    glmq_model_desc d = {path, glmq_model_kind(m), glmq_model_weight_type(m),
                         glmq_arch_name(glmq_model_config(m)->arch), glmq_model_ident(m)};
    return d;
}

static void add_model(cJSON *o, const char *key, const glmq_model_desc *m)
{
    cJSON *j = cJSON_AddObjectToObject(o, key);
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)m->hash);
    cJSON_AddStringToObject(j, "path", m->path);
    cJSON_AddStringToObject(j, "kind", m->kind);
    cJSON_AddStringToObject(j, "weight_type", m->weight_type);
    cJSON_AddStringToObject(j, "hash", hx);
    cJSON_AddStringToObject(j, "architecture", m->arch);
}

char *glmq_report_json(const glmq_drift *d, const glmq_report_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "glmq_version", GLMQ_VERSION_STRING);
    int pass = 1;
    for (int i = 0; i < c->n_checks; i++) pass &= c->checks[i].pass;
    cJSON_AddStringToObject(o, "verdict", pass ? "pass" : "fail");
    add_model(o, "quant", &c->quant);
    add_model(o, "reference", &c->ref);
    cJSON *ev = cJSON_AddObjectToObject(o, "evaluation");
    cJSON_AddStringToObject(ev, "text", c->text_source);
    cJSON_AddStringToObject(ev, "protocol", c->opts->strided ? "strided (GLM-SPEC C.5)"
                                                             : "windows (GLM-SPEC decision 5)");
    cJSON_AddNumberToObject(ev, "ctx", (double)c->opts->ctx);
    if (c->opts->strided) cJSON_AddNumberToObject(ev, "stride", (double)c->opts->stride);
    cJSON_AddNumberToObject(ev, "windows", (double)d->ppl_ref.n_windows);
    cJSON_AddNumberToObject(ev, "tokens_evaluated", (double)d->n_positions);
    cJSON_AddNumberToObject(ev, "seconds", c->seconds);
    if (c->n_shards > 0) cJSON_AddNumberToObject(ev, "shards", (double)c->n_shards);
    cJSON_AddStringToObject(ev, "kernels", glmq_forward_mode_name(c->opts->mode));
    cJSON_AddStringToObject(ev, "reference_kernels", glmq_forward_mode_name(c->opts->ref_mode));
    if (c->exact) {
        cJSON *x = cJSON_AddObjectToObject(o, "metrics_exact_kernels");
        cJSON_AddNumberToObject(x, "ppl_quant", c->exact->ppl_q.ppl);
        cJSON_AddNumberToObject(x, "ppl_ratio", c->exact->ppl_ratio);
        cJSON_AddNumberToObject(x, "kld_mean", c->exact->kld_mean);
        cJSON_AddNumberToObject(x, "kld_p99", c->exact->kld_p99);
        cJSON_AddNumberToObject(x, "top1_agreement", c->exact->top1_agreement);
        cJSON_AddNumberToObject(x, "delta_logit_rms", c->exact->dlogit_rms);
    }
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddNumberToObject(m, "ppl_quant", d->ppl_q.ppl);
    cJSON_AddNumberToObject(m, "ppl_reference", d->ppl_ref.ppl);
    cJSON_AddNumberToObject(m, "ppl_ratio", d->ppl_ratio);
    cJSON_AddNumberToObject(m, "kld_mean", d->kld_mean);
    cJSON_AddNumberToObject(m, "kld_median", d->kld_median);
    cJSON_AddNumberToObject(m, "kld_p90", d->kld_p90);
    cJSON_AddNumberToObject(m, "kld_p99", d->kld_p99);
    cJSON_AddNumberToObject(m, "kld_max", d->kld_max);
    cJSON_AddNumberToObject(m, "top1_agreement", d->top1_agreement);
    cJSON_AddNumberToObject(m, "delta_p_mean", d->dp_mean);
    cJSON_AddNumberToObject(m, "delta_p_rms", d->dp_rms);
    cJSON_AddNumberToObject(m, "delta_logit_max", d->dlogit_max);
    cJSON_AddNumberToObject(m, "delta_logit_rms", d->dlogit_rms);
    cJSON *lr = cJSON_AddArrayToObject(m, "layer_rel_err");
    for (int64_t l = 0; l < d->n_layers; l++)
        cJSON_AddItemToArray(lr, cJSON_CreateNumber(d->layer_rel_err[l]));
    cJSON *th = cJSON_AddArrayToObject(o, "thresholds");
    for (int i = 0; i < c->n_checks; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "metric", c->checks[i].metric);
        cJSON_AddStringToObject(t, "condition", c->checks[i].is_max ? "<=" : ">=");
        cJSON_AddNumberToObject(t, "limit", c->checks[i].limit);
        cJSON_AddNumberToObject(t, "value", c->checks[i].value);
        cJSON_AddBoolToObject(t, "pass", c->checks[i].pass);
        cJSON_AddItemToArray(th, t);
    }
    if (c->effects) {
        cJSON *ef = cJSON_AddArrayToObject(o, "tensor_effects");
        for (int64_t i = 0; i < c->n_effects; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "tensor", c->effects[i].name);
            cJSON_AddNumberToObject(t, "kld_mean_if_restored", c->effects[i].kld_mean_without);
            cJSON_AddNumberToObject(t, "kld_reduction", c->effects[i].kld_reduction);
            cJSON_AddItemToArray(ef, t);
        }
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* ---- SVG ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) GLMQ_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->buf && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *p = realloc(b->buf, nc);
        if (!p) return;
        b->buf = p;
        b->cap = nc;
    }
}

static void xml_escape(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') sb_printf(b, "&lt;");
        else if (*s == '>') sb_printf(b, "&gt;");
        else if (*s == '&') sb_printf(b, "&amp;");
        else sb_printf(b, "%c", *s);
    }
}

glmq_status glmq_report_svg(const glmq_drift *d, const char *title, const char *path,
                            glmq_err *err)
{
    sbuf b = {0};
    const int W = 900, H = 380, pw = 390, ph = 250, top = 70, lx = 60, rx = 500;
    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
              W, H, W, H);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"20\" "
                  "y=\"24\" font-size=\"15\" font-weight=\"bold\">");
    xml_escape(&b, title);
    sb_printf(&b, "</text>\n<text x=\"20\" y=\"44\">ppl %.4f vs %.4f (ratio %.5f), mean KL %.3g, "
                  "p99 KL %.3g, top-1 agreement %.4f, %lld positions</text>\n",
              d->ppl_q.ppl, d->ppl_ref.ppl, d->ppl_ratio, d->kld_mean, d->kld_p99,
              d->top1_agreement, (long long)d->n_positions);

    /* left: per-layer relative error, bars on a linear axis */
    double mx = 1e-12;
    for (int64_t l = 0; l < d->n_layers; l++)
        if (d->layer_rel_err[l] > mx) mx = d->layer_rel_err[l];
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">relative error of the hidden "
                  "state after each block</text>\n",
              lx, top - 8);
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                  "stroke=\"#888\"/>\n",
              lx, top, pw, ph);
    double bw = (double)pw / (double)(d->n_layers ? d->n_layers : 1);
    for (int64_t l = 0; l < d->n_layers; l++) {
        double h = d->layer_rel_err[l] / mx * (ph - 10);
        sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"#3b6fb6\"><title>layer %lld: %.4g</title></rect>\n",
                  lx + l * bw + bw * 0.1, top + ph - h, bw * 0.8, h, (long long)l,
                  d->layer_rel_err[l]);
    }
    sb_printf(&b, "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\" "
                  "text-anchor=\"end\">%.3g</text>\n",
              lx - 12, top + ph, lx - 4, top + 12, mx);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">layer (0 .. %lld)</text>\n",
              lx + pw / 2, top + ph + 20, (long long)(d->n_layers - 1));

    /* right: histogram of KL over log10 bins, log-scale counts */
    enum { NB = 30 };
    int64_t cnt[NB] = {0}, zeros = 0;
    double lo = -8, hi = 1; /* 1e-8 .. 10 nats */
    for (int64_t i = 0; i < d->n_positions; i++) {
        double k = d->kld[i];
        if (k <= 0) {
            zeros++;
            continue;
        }
        double x = (log10(k) - lo) / (hi - lo) * NB;
        int bi = x < 0 ? 0 : x >= NB ? NB - 1 : (int)x;
        cnt[bi]++;
    }
    int64_t cmax = 1;
    for (int i = 0; i < NB; i++)
        if (cnt[i] > cmax) cmax = cnt[i];
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">KL(P_ref || P_quant) per "
                  "position (log scales)</text>\n",
              rx, top - 8);
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                  "stroke=\"#888\"/>\n",
              rx, top, pw, ph);
    double hb = (double)pw / NB, lmax = log10((double)cmax + 1);
    for (int i = 0; i < NB; i++) {
        if (!cnt[i]) continue;
        double h = log10((double)cnt[i] + 1) / lmax * (ph - 10);
        sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"#c0504d\"><title>1e%.1f..1e%.1f: %lld</title></rect>\n",
                  rx + i * hb, top + ph - h, hb * 0.9, h, lo + (hi - lo) * i / NB,
                  lo + (hi - lo) * (i + 1) / NB, (long long)cnt[i]);
    }
    for (int e = (int)lo; e <= (int)hi; e += 3)
        sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">1e%d</text>\n",
                  rx + (e - lo) / (hi - lo) * pw, top + ph + 16, e);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">KL (nats); %lld positions "
                  "exactly 0; max count %lld</text>\n",
              rx + pw / 2, top + ph + 34, (long long)zeros, (long long)cmax);
    sb_printf(&b, "</svg>\n");
    GLMQ_FAIL_IF(!b.buf, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = glmq_atomic_write_file(path, b.buf, b.len, err);
    free(b.buf);
    return st;
}
