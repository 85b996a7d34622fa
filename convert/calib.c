/*
 * calib.c - calibrated quantization, layer by layer (see calib.h).
 */
#define _DEFAULT_SOURCE /* madvise */
#include "convert/calib.h"
#include "convert/tensor_types.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/pool.h"
#include "formats/glm_tensors.h"
#include "formats/layout.h"
#include "formats/tokenizer.h"
#include "quant/gptq.h"
#include "quant/hacc.h"
#include "quant/quant.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/tokenize.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* One calibrated matrix: its stored rows and scales in the temporary file. */
typedef struct {
    char *name;
    glmq_type type;
    int64_t rows, cols, row_bytes, spr; /* spr: stored scales per row */
    uint64_t off_rows, off_scales;
    double err_method, err_rtn; /* H-weighted errors of the method and of round-to-nearest */
    int64_t rows_rtn;           /* GPTQ rows that kept round-to-nearest */
} calib_entry;

struct glmq_calib {
    int fd;
    int sfd; /* the residual stream during calibration (unlinked; the same directory) */
    char *path; /* for messages */
    calib_entry *e;
    int64_t n;
    cJSON *json;
};

/* The four matrices of a layer whose inputs the tap sees. */
static const glmq_slot slots[4] = {GLMQ_SLOT_QKV, GLMQ_SLOT_DENSE, GLMQ_SLOT_H4H, GLMQ_SLOT_FHH};
static const char *const slot_names[4] = {"qkv", "dense", "h_to_4h", "4h_to_h"};

static int slot_index(glmq_slot s)
{
    for (int i = 0; i < 4; i++)
        if (slots[i] == s) return i;
    return -1;
}

/* ---- H accumulation ------------------------------------------------------------------------ */

typedef struct {
    double *h[4];   /* the current layer's H (upper triangles), or NULL when not accumulated */
    int64_t n[4];
    int64_t layer;
    glmq_pool *pool;
    uint64_t tokens[4];
    glmq_hacc_fn fn; /* the kernel of the active level */
    double *xd;      /* glmq_hacc_add's scratch: GLMQ_HACC_TB x (largest n) */
    double t_acc;    /* seconds in glmq_hacc_add (for the log) */
} tap_state;

/* H += the inputs' products, every element summing its tokens in order (quant/hacc.h): the
 * same bits on every kernel level and thread count. */
static void tap_fn(void *arg, int64_t layer, glmq_slot slot, const float *x, int64_t ldx,
                   int64_t cols, int64_t nt)
{
    tap_state *ts = arg;
    int k = slot_index(slot);
    if (layer != ts->layer || k < 0 || !ts->h[k] || cols != ts->n[k]) return;
    double t0 = glmq_now();
    glmq_hacc_add(ts->h[k], cols, x, ldx, nt, ts->pool, ts->fn, ts->xd);
    ts->t_acc += glmq_now() - t0;
    ts->tokens[k] += (uint64_t)nt;
}

/* ---- one matrix ---------------------------------------------------------------------------- */

/* The whole of n bytes at off of a temporary file (fd: c->fd or c->sfd), written (wr) or read. */
static glmq_status fd_io(const glmq_calib *c, int fd, int wr, void *p, size_t n, uint64_t off,
                         glmq_err *err)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t k = wr ? pwrite(fd, b, n, (off_t)off) : pread(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        GLMQ_FAIL_IF(k <= 0, err, GLMQ_E_IO, "'%s': %s of %zu bytes at byte %llu failed: %s",
                     c->path, wr ? "write" : "read", n, (unsigned long long)off,
                     k < 0 ? strerror(errno) : wr ? "no space" : "short");
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return GLMQ_OK;
}

static glmq_status file_io(const glmq_calib *c, int wr, void *p, size_t n, uint64_t off,
                           glmq_err *err)
{
    return fd_io(c, c->fd, wr, p, n, off, err);
}

/* Drop this process's pages of a tensor of the calibration's own model that nothing reads again
 * (a matrix once read for quantization, a layer's tensors once the layer is done). Where the
 * model maps the checkpoint (runtime/model.c: PROT_READ, MAP_PRIVATE), its file pages count in
 * the RSS until dropped, layer after layer. MADV_DONTNEED on the whole pages inside [p, p + n)
 * only: for a mapped tensor they are re-read from the file if touched; for one the model owns
 * (assembled in memory) they read as zero, and nothing outside the tensor is affected.
 * MADV_PAGEOUT would skip pages other processes map too. Advisory; failures are ignored. */
static void release_pages(const void *p, size_t n)
{
    const long ps = sysconf(_SC_PAGESIZE);
    if (!p || n == 0 || ps <= 0) return;
    const uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    const uintptr_t e = ((uintptr_t)p + n) / (uintptr_t)ps * (uintptr_t)ps;
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

typedef struct {
    glmq_tensor_info q; /* the quantized view swapped into the model */
    glmq_tensor_info saved;
    const char *name;
    void *rows;
    uint16_t *scales;
} swapped;

/* Quantize matrix `t` against h (n x n, full) with the method; append it to the file and make
 * the quantized view in *sw. */
static glmq_status quantize_matrix(glmq_calib *c, const glmq_convert_opts *o, glmq_type ty,
                                   const glmq_tensor_info *t, const char *name, const double *h,
                                   glmq_pool *pool, uint64_t *file_end, swapped *sw,
                                   glmq_err *err)
{
    const int q4 = glmq_type_codes(ty) == GLMQ_TYPE_INT4;
    const int64_t group = glmq_type_group(ty);
    GLMQ_FAIL_IF(group && o->method == GLMQ_METHOD_SEARCH, err, GLMQ_E_UNSUPPORTED,
                 "tensor '%s' is %s: --method search has per-row scales only", name,
                 glmq_type_name(ty));
    const int64_t rows = t->rows, cols = t->cols, rb = glmq_row_bytes(ty, cols);
    /* scales per row: stored (glmq_scales_per_row, padding groups 0) and GPTQ's (ngs) */
    const int64_t spr = glmq_scales_per_row(ty, cols), ngs = group ? (cols + group - 1) / group : 1;
    glmq_status st = GLMQ_OK;
    float *w = malloc((size_t)rows * (size_t)cols * sizeof *w);
    int8_t *codes = malloc((size_t)rows * (size_t)cols);
    uint16_t *gs_scales = malloc((size_t)(rows * ngs) * sizeof *gs_scales);
    sw->rows = aligned_alloc(64, (size_t)(rows * rb));
    sw->scales = calloc((size_t)(rows * spr), sizeof *sw->scales);
    GLMQ_FAIL_IF_G(!w || !codes || !gs_scales || !sw->rows || !sw->scales, err, GLMQ_E_NOMEM,
                   "out of memory calibrating '%s'", name);
    for (int64_t r = 0; r < rows; r++) GLMQ_TRY_G(glmq_tensor_row_f32(t, r, w + r * cols, err));
    release_pages(t->data, t->data_size); /* the rest of the layer runs on the quantized view */
    calib_entry *e = &c->e[c->n];
    memset(e, 0, sizeof *e);
    glmq_gptq_stats gs;
    if (o->method == GLMQ_METHOD_GPTQ) {
        glmq_gptq_opts go = {.q4 = q4, .damp = o->damp, .act_order = o->act_order,
                             .group = group};
        st = glmq_gptq_quantize(w, rows, cols, h, &go, pool, codes, gs_scales, &gs, err);
    } else {
        st = glmq_search_quantize(w, rows, cols, h, q4, pool, codes, gs_scales, &gs, err);
    }
    if (st != GLMQ_OK) {
        glmq_err_prefix(err, st, "tensor '%s': ", name);
        goto fail;
    }
    e->err_method = gs.err_gptq;
    e->err_rtn = gs.err_rtn;
    e->rows_rtn = gs.rows_rtn;
    for (int64_t r = 0; r < rows; r++) {
        glmq_pack_codes_row(codes + r * cols, cols, q4, (uint8_t *)sw->rows + r * rb);
        for (int64_t g = 0; g < ngs; g++) glmq_wr_le16(&sw->scales[r * spr + g], gs_scales[r * ngs + g]);
    }
    e->name = glmq_strdup(name);
    GLMQ_FAIL_IF_G(!e->name, err, GLMQ_E_NOMEM, "out of memory");
    e->type = ty;
    e->rows = rows;
    e->cols = cols;
    e->row_bytes = rb;
    e->off_rows = *file_end;
    e->off_scales = *file_end + (uint64_t)(rows * rb);
    GLMQ_TRY_G(file_io(c, 1, sw->rows, (size_t)(rows * rb), e->off_rows, err));
    e->spr = spr;
    GLMQ_TRY_G(file_io(c, 1, sw->scales, (size_t)(rows * spr) * 2, e->off_scales, err));
    *file_end = e->off_scales + (uint64_t)(rows * spr) * 2;
    c->n++;
    sw->q = *t;
    sw->q.type = ty;
    sw->q.row_stride = rb;
    sw->q.data = sw->rows;
    sw->q.data_size = (size_t)(rows * rb);
    sw->q.scales = sw->scales;
    sw->q.scales_size = (size_t)(rows * spr) * 2;
    sw->name = t->name;
fail:
    free(w);
    free(codes);
    free(gs_scales);
    return st;
}

/* ---- the driver ------------------------------------------------------------------------------ */

glmq_status glmq_calibrate(const char *src_dir, const glmq_convert_opts *o, const char *tmp_dir,
                           glmq_calib **out, glmq_err *err)
{
    *out = NULL;
    GLMQ_FAIL_IF(o->method != GLMQ_METHOD_GPTQ && o->method != GLMQ_METHOD_SEARCH, err,
                 GLMQ_E_INVALID, "calibration: unknown method %d", (int)o->method);
    GLMQ_FAIL_IF(o->weight_type != GLMQ_TYPE_INT4 && o->weight_type != GLMQ_TYPE_INT8, err,
                 GLMQ_E_INVALID, "calibration needs --type int4 or int8");
    GLMQ_FAIL_IF(o->group && o->method == GLMQ_METHOD_SEARCH, err, GLMQ_E_UNSUPPORTED,
                 "--method search has per-row scales only; with --group use gptq (or rtn)");
    GLMQ_FAIL_IF(!o->calib_path, err, GLMQ_E_INVALID,
                 "the %s method needs a calibration text (--calib FILE)",
                 o->method == GLMQ_METHOD_GPTQ ? "gptq" : "search");
    GLMQ_FAIL_IF(o->calib_ctx < 16 || o->calib_tokens < o->calib_ctx || !(o->damp >= 0.0), err,
                 GLMQ_E_INVALID,
                 "calibration: --calib-ctx must be >= 16 and <= --calib-tokens, damping >= 0");
    glmq_status st = GLMQ_OK;
    glmq_calib *c = calloc(1, sizeof *c);
    glmq_model *m = NULL;
    glmq_forward *f = NULL;
    glmq_pool *pool = NULL;
    glmq_tokenizer *tok = NULL;
    glmq_expected_tensor *want = NULL;
    char *text = NULL;
    glmq_ids ids = {0};
    int32_t *seq_ids = NULL;
    float *scratch = NULL;
    tap_state ts = {0};
    glmq_ttypes *tt = NULL;
    glmq_type ty[4];
    swapped sw[4];
    memset(sw, 0, sizeof sw);
    cJSON *layers_json = NULL;
    GLMQ_FAIL_IF(!c, err, GLMQ_E_NOMEM, "out of memory");
    c->fd = c->sfd = -1;
    GLMQ_TRY_G(glmq_ttypes_compile(o, &tt, err));

    /* the temporary file */
    size_t plen = strlen(tmp_dir) + 32;
    c->path = malloc(plen);
    GLMQ_FAIL_IF_G(!c->path, err, GLMQ_E_NOMEM, "out of memory");
    snprintf(c->path, plen, "%s/.glmq-calib-XXXXXX", tmp_dir);
    c->fd = mkstemp(c->path);
    GLMQ_FAIL_IF_G(c->fd < 0, err, GLMQ_E_IO, "cannot create a temporary file in '%s': %s",
                   tmp_dir, strerror(errno));
    unlink(c->path);
    snprintf(c->path, plen, "%s/.glmq-calib-XXXXXX", tmp_dir);
    c->sfd = mkstemp(c->path);
    GLMQ_FAIL_IF_G(c->sfd < 0, err, GLMQ_E_IO, "cannot create a temporary file in '%s': %s",
                   tmp_dir, strerror(errno));
    unlink(c->path);

    /* model, tokens, sequences */
    GLMQ_TRY_G(glmq_model_open(src_dir, &m, err));
    const glmq_config *cfg = glmq_model_config(m);
    GLMQ_FAIL_IF_G(cfg->tok_gmask < 0 || cfg->tok_sop < 0, err, GLMQ_E_UNSUPPORTED,
                   "calibration: the model has no [gMASK]/sop ids for the sequence prefix");
    size_t text_len = 0;
    GLMQ_TRY_G(glmq_read_file(o->calib_path, &text, &text_len, err));
    GLMQ_TRY_G(glmq_model_tokenizer_open(m, &tok, err));
    GLMQ_TRY_G(glmq_tokenizer_encode(tok, text, text_len, &ids, err));
    const int64_t ctx = o->calib_ctx, per = ctx - 2;
    int64_t nseq = o->calib_tokens / ctx;
    if ((int64_t)ids.n / per < nseq) nseq = (int64_t)ids.n / per;
    GLMQ_FAIL_IF_G(nseq < 1, err, GLMQ_E_INVALID,
                   "'%s': %zu tokens are fewer than one calibration sequence of %lld",
                   o->calib_path, ids.n, (long long)per);
    seq_ids = malloc((size_t)(nseq * ctx) * sizeof *seq_ids);
    const int64_t h = cfg->hidden;
    const size_t seq_bytes = (size_t)ctx * (size_t)h * sizeof(float); /* one sequence's stream */
    scratch = malloc((size_t)ctx * (size_t)h * sizeof *scratch);
    GLMQ_FAIL_IF_G(!seq_ids || !scratch, err, GLMQ_E_NOMEM,
                   "out of memory for %lld calibration sequences of %lld tokens", (long long)nseq,
                   (long long)ctx);
    for (int64_t s = 0; s < nseq; s++) {
        int32_t *q = seq_ids + s * ctx;
        q[0] = (int32_t)cfg->tok_gmask;
        q[1] = (int32_t)cfg->tok_sop;
        memcpy(q + 2, ids.ids + s * per, (size_t)per * sizeof *q);
    }

    /* the expected tensors: which (layer, slot) matrices are calibrated */
    int64_t nwant = 0;
    GLMQ_TRY_G(glmq_config_tensors(cfg, &want, &nwant, err));
    c->e = calloc((size_t)nwant + 1, sizeof *c->e);
    GLMQ_FAIL_IF_G(!c->e, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(glmq_pool_create(o->threads, &pool, err));
    GLMQ_TRY_G(glmq_forward_create_mode(m, ctx, o->threads, GLMQ_FWD_REFERENCE, &f, err));
    ts.pool = pool;
    ts.fn = glmq_hacc_active();
    int64_t xd_n = 0;
    glmq_forward_set_tap(f, tap_fn, &ts);
    uint64_t file_end = 0;
    layers_json = cJSON_CreateArray();
    GLMQ_FAIL_IF_G(!layers_json, err, GLMQ_E_NOMEM, "out of memory");

    for (int64_t l = 0; l < cfg->n_layers; l++) {
        double t0 = glmq_now();
        const glmq_expected_tensor *lw[4] = {NULL, NULL, NULL, NULL};
        for (int64_t i = 0; i < nwant; i++) {
            int k = slot_index(want[i].slot);
            if (want[i].layer == l && k >= 0 && want[i].quant == GLMQ_QUANT_DEFAULT &&
                glmq_model_tensor(m, want[i].name))
                lw[k] = &want[i];
        }
        /* 1. H of the layer's matrices, from the stream entering it */
        ts.layer = l;
        ts.t_acc = 0.0;
        for (int k = 0; k < 4; k++) {
            ts.n[k] = lw[k] ? glmq_model_tensor(m, lw[k]->name)->cols : 0;
            ts.tokens[k] = 0;
            ty[k] = GLMQ_TYPE_F32;
            if (lw[k]) {
                const glmq_tensor_info *t = glmq_model_tensor(m, lw[k]->name);
                ty[k] = glmq_ttypes_choose(tt, o, lw[k]->name, 2, GLMQ_QUANT_DEFAULT,
                                           t->type == GLMQ_TYPE_F16    ? GLMQ_DT_F16
                                           : t->type == GLMQ_TYPE_BF16 ? GLMQ_DT_BF16
                                                                       : GLMQ_DT_F32);
            }
            if (!lw[k] || !glmq_type_scaled(ty[k])) continue; /* kept in 16 bits by a rule */
            ts.h[k] = calloc((size_t)ts.n[k] * (size_t)ts.n[k], sizeof(double));
            GLMQ_FAIL_IF_G(!ts.h[k], err, GLMQ_E_NOMEM,
                           "out of memory for the %lld x %lld H of '%s'", (long long)ts.n[k],
                           (long long)ts.n[k], lw[k]->name);
            if (ts.n[k] > xd_n) {
                free(ts.xd);
                xd_n = ts.n[k];
                ts.xd = malloc((size_t)GLMQ_HACC_TB * (size_t)xd_n * sizeof *ts.xd);
                GLMQ_FAIL_IF_G(!ts.xd, err, GLMQ_E_NOMEM, "out of memory");
            }
        }
        for (int64_t s = 0; s < nseq; s++) {
            if (l > 0)
                GLMQ_TRY_G(fd_io(c, c->sfd, 0, scratch, seq_bytes, (uint64_t)s * seq_bytes, err));
            GLMQ_TRY_G(glmq_forward_eval_layers(f, seq_ids + s * ctx, ctx, l, l + 1, scratch,
                                                err));
        }
        ts.layer = -1;
        double t1 = glmq_now();
        /* 2. quantize them, and run the stream through the quantized layer */
        cJSON *lj = cJSON_CreateObject();
        GLMQ_FAIL_IF_G(!lj, err, GLMQ_E_NOMEM, "out of memory");
        cJSON_AddItemToArray(layers_json, lj);
        cJSON_AddNumberToObject(lj, "layer", (double)l);
        char line[512];
        int ll = snprintf(line, sizeof line, "layer %lld/%lld:", (long long)(l + 1),
                          (long long)cfg->n_layers);
        for (int k = 0; k < 4; k++) {
            if (!ts.h[k]) continue;
            double *hk = ts.h[k];
            const int64_t n = ts.n[k];
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < i; j++) hk[i * n + j] = hk[j * n + i];
            const glmq_tensor_info *t = glmq_model_tensor(m, lw[k]->name);
            GLMQ_TRY_G(quantize_matrix(c, o, ty[k], t, lw[k]->name, hk, pool, &file_end, &sw[k],
                                       err));
            free(ts.h[k]);
            ts.h[k] = NULL;
            GLMQ_TRY_G(glmq_model_swap(m, lw[k]->name, &sw[k].q, &sw[k].saved, err));
            const calib_entry *e = &c->e[c->n - 1];
            double ratio = e->err_rtn > 0 ? e->err_method / e->err_rtn : 1.0;
            cJSON_AddNumberToObject(lj, slot_names[k], ratio);
            if (ll < (int)sizeof line)
                ll += snprintf(line + ll, sizeof line - (size_t)ll, " %s %.3f", slot_names[k],
                               ratio);
        }
        double t2 = glmq_now();
        for (int64_t s = 0; s < nseq && l + 1 < cfg->n_layers; s++) {
            if (l > 0)
                GLMQ_TRY_G(fd_io(c, c->sfd, 0, scratch, seq_bytes, (uint64_t)s * seq_bytes, err));
            GLMQ_TRY_G(glmq_forward_eval_layers(f, seq_ids + s * ctx, ctx, l, l + 1, scratch,
                                                err));
            GLMQ_TRY_G(fd_io(c, c->sfd, 1, scratch, seq_bytes, (uint64_t)s * seq_bytes, err));
        }
        for (int k = 0; k < 4; k++) {
            if (!sw[k].rows) continue;
            glmq_model_swap(m, lw[k]->name, &sw[k].saved, NULL, NULL);
            free(sw[k].rows);
            free(sw[k].scales);
            memset(&sw[k], 0, sizeof sw[k]);
        }
        for (int64_t i = 0; i < nwant; i++) { /* the layer's original tensors are done with */
            const glmq_tensor_info *t = want[i].layer == l ? glmq_model_tensor(m, want[i].name)
                                                           : NULL;
            if (t) release_pages(t->data, t->data_size);
        }
        double t3 = glmq_now();
        if (o->calib_log && ll < (int)sizeof line) {
            snprintf(line + ll, sizeof line - (size_t)ll,
                     " (error / round-to-nearest); H %.2f s, quantize %.2f s, forward %.2f s "
                     "(%.2f s + %.2f s)",
                     ts.t_acc, t2 - t1, t1 - t0 - ts.t_acc + (t3 - t2), t1 - t0 - ts.t_acc,
                     t3 - t2);
            o->calib_log(o->calib_log_user, line);
        }
    }

    close(c->sfd); /* frees the stream's disk space */
    c->sfd = -1;

    /* what the metadata records */
    c->json = cJSON_CreateObject();
    GLMQ_FAIL_IF_G(!c->json, err, GLMQ_E_NOMEM, "out of memory");
    cJSON_AddStringToObject(c->json, "method",
                            o->method == GLMQ_METHOD_GPTQ ? "gptq" : "activation-weighted scale "
                                                                     "search");
    const char *slash = strrchr(o->calib_path, '/');
    cJSON_AddStringToObject(c->json, "text", slash ? slash + 1 : o->calib_path);
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)XXH3_64bits(text, text_len));
    cJSON_AddStringToObject(c->json, "text_xxh3", hx);
    cJSON_AddNumberToObject(c->json, "text_bytes", (double)text_len);
    cJSON_AddNumberToObject(c->json, "tokens", (double)(nseq * ctx));
    cJSON_AddNumberToObject(c->json, "sequences", (double)nseq);
    cJSON_AddNumberToObject(c->json, "ctx", (double)ctx);
    cJSON_AddStringToObject(c->json, "sequence_layout", "[gMASK] sop + ctx-2 text ids");
    if (o->group)
        cJSON_AddNumberToObject(c->json, "group", o->group);
    else
        cJSON_AddStringToObject(c->json, "group", "row");
    if (o->method == GLMQ_METHOD_GPTQ) {
        cJSON_AddNumberToObject(c->json, "damp", o->damp);
        cJSON_AddStringToObject(c->json, "order", o->act_order ? "act-order" : "index");
        cJSON_AddStringToObject(c->json, "scales",
                                o->group ? "the group rule's (Q4_0/Q8_0), from the original "
                                           "weights before the sweep (static groups)"
                                         : "amax/qmax per row");
    }
    cJSON_AddItemToObject(c->json, "layers_error_ratio", layers_json);
    layers_json = NULL;
    *out = c;
    c = NULL;
fail:
    for (int k = 0; k < 4; k++) {
        free(ts.h[k]);
        if (sw[k].rows && m) glmq_model_swap(m, sw[k].name, &sw[k].saved, NULL, NULL);
        free(sw[k].rows);
        free(sw[k].scales);
    }
    cJSON_Delete(layers_json);
    glmq_ttypes_free(tt);
    glmq_forward_free(f);
    glmq_pool_free(pool);
    glmq_tokenizer_free(tok);
    glmq_model_close(m);
    glmq_ids_free(&ids);
    free(want);
    free(text);
    free(seq_ids);
    free(scratch);
    free(ts.xd);
    glmq_calib_free(c);
    return st;
}

void glmq_calib_free(glmq_calib *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    if (c->sfd >= 0) close(c->sfd);
    for (int64_t i = 0; i < c->n; i++) free(c->e[i].name);
    free(c->e);
    free(c->path);
    cJSON_Delete(c->json);
    free(c);
}

static const calib_entry *find(const glmq_calib *c, const char *name)
{
    for (int64_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->e[i].name, name)) return &c->e[i];
    return NULL;
}

int glmq_calib_has(const glmq_calib *c, const char *name, glmq_type type, int64_t rows,
                   int64_t cols)
{
    const calib_entry *e = find(c, name);
    return e && e->type == type && e->rows == rows && e->cols == cols;
}

glmq_status glmq_calib_rows(const glmq_calib *c, const char *name, int64_t r0, int64_t nr,
                            void *dst, uint16_t *scales, glmq_err *err)
{
    const calib_entry *e = find(c, name);
    GLMQ_FAIL_IF(!e || r0 < 0 || nr < 0 || r0 + nr > e->rows, err, GLMQ_E_INTERNAL,
                 "calibration: no rows [%lld, %lld) of '%s'", (long long)r0,
                 (long long)(r0 + nr), name);
    GLMQ_TRY(file_io(c, 0, dst, (size_t)(nr * e->row_bytes),
                     e->off_rows + (uint64_t)(r0 * e->row_bytes), err));
    return file_io(c, 0, scales, (size_t)(nr * e->spr) * 2,
                   e->off_scales + (uint64_t)(r0 * e->spr) * 2, err);
}

cJSON *glmq_calib_json(const glmq_calib *c)
{
    return c && c->json ? cJSON_Duplicate(c->json, 1) : NULL;
}
