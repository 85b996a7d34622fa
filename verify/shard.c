/*
 * shard.c - partial results of a sharded `glmq verify` and their merge (spec in shard.h).
 *
 * The evaluation itself is glmq_drift_eval_windows (metrics.c) restricted to every N-th window;
 * this file only keeps the window sums it hands over, writes and reads them, and adds them up in
 * window order with the same accumulator (glmq_drift_acc) the single-process path uses. That
 * shared accumulator is what makes a merged report equal a single-process one bit for bit.
 *
 * The reader treats the file as hostile: the trailer checksum is checked first, then every
 * field against its range, every count against the bytes that remain (before any allocation),
 * the window indices against the shard's, and the end against the file size. Every failure is
 * a status with a message naming the file, the field and its byte offset.
 */
#include "verify/shard.h"

#include "core/atomic.h"
#include "core/file.h"
#include "core/hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_IDS ((int64_t)1 << 40)
#define MAX_CTX ((int64_t)1 << 24)
#define MAX_LAYERS 65536
#define MAX_VOCAB ((int64_t)1 << 31)
#define N_SCALARS 7 /* nll_ref, nll_q, kl, dp, dp_sq, dl_sq, dl_max */

uint64_t glmq_ids_hash(const int32_t *ids, int64_t n)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h) return 0;
    XXH3_64bits_reset(h);
    uint8_t buf[4096];
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        glmq_wr_le32(buf + k, (uint32_t)ids[i]);
        k += 4;
        if (k == sizeof buf) {
            XXH3_64bits_update(h, buf, k);
            k = 0;
        }
    }
    XXH3_64bits_update(h, buf, k);
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

static void sums_free(glmq_window_sums *s)
{
    free(s->layer_num);
    free(s->layer_den);
    free(s->kld);
}

void glmq_part_free(glmq_part *p)
{
    if (!p) return;
    for (int64_t r = 0; r < p->n_records; r++)
        for (int i = 0; i < p->nmodes; i++) sums_free(&p->rec[r].m[i]);
    free(p->rec);
    for (int i = 0; i < 10; i++) free(p->str[i]);
    free(p);
}

/* Windows k < nw with k % n == i. */
static int64_t shard_windows(int64_t i, int64_t n, int64_t nw)
{
    return nw > i ? (nw - i + n - 1) / n : 0;
}

/* ---- evaluation ---- */

/* Allocate the arrays of s for L layers and np positions. */
static int sums_alloc(glmq_window_sums *s, int64_t L, int64_t np)
{
    s->layer_num = malloc((size_t)L * sizeof(double));
    s->layer_den = malloc((size_t)L * sizeof(double));
    s->kld = malloc(((size_t)np + 1) * sizeof(double));
    return s->layer_num && s->layer_den && s->kld;
}

static glmq_status keep_window(void *user, int64_t k, const glmq_window_sums *s, int nmodes,
                               glmq_err *err)
{
    glmq_part *p = user;
    glmq_part_window *rec = realloc(p->rec, (size_t)(p->n_records + 1) * sizeof *rec);
    GLMQ_FAIL_IF(!rec, err, GLMQ_E_NOMEM, "out of memory");
    p->rec = rec;
    glmq_part_window *w = &rec[p->n_records++];
    memset(w, 0, sizeof *w);
    w->window = k;
    for (int i = 0; i < nmodes; i++) {
        glmq_window_sums *d = &w->m[i];
        GLMQ_FAIL_IF(!sums_alloc(d, p->n_layers, s[i].n_pos), err, GLMQ_E_NOMEM,
                     "out of memory");
        double *num = d->layer_num, *den = d->layer_den, *kld = d->kld;
        *d = s[i];
        d->layer_num = num;
        d->layer_den = den;
        d->kld = kld;
        memcpy(num, s[i].layer_num, (size_t)p->n_layers * sizeof *num);
        memcpy(den, s[i].layer_den, (size_t)p->n_layers * sizeof *den);
        if (s[i].n_pos) memcpy(kld, s[i].kld, (size_t)s[i].n_pos * sizeof *kld);
    }
    return GLMQ_OK;
}

static glmq_status set_str(glmq_part *p, int i, const char *s, glmq_err *err)
{
    if (!s) s = "";
    GLMQ_FAIL_IF(strlen(s) > GLMQ_PART_MAX_STRING, err, GLMQ_E_INVALID,
                 "partial result: '%.64s...' is longer than %u bytes", s, GLMQ_PART_MAX_STRING);
    p->str[i] = glmq_strdup(s);
    GLMQ_FAIL_IF(!p->str[i], err, GLMQ_E_NOMEM, "out of memory");
    return GLMQ_OK;
}

glmq_status glmq_shard_eval(const glmq_model *ref, const glmq_model *q, const char *ref_path,
                            const char *quant_path, const char *text_source, const int32_t *ids,
                            int64_t n, const glmq_eval_opts *o, const glmq_forward_mode *modes,
                            int nmodes, int64_t shard, int64_t n_shards, glmq_part **out,
                            glmq_err *err)
{
    *out = NULL;
    const glmq_config *c = glmq_model_config(ref);
    GLMQ_FAIL_IF(nmodes < 1 || nmodes > 2, err, GLMQ_E_INVALID, "1 or 2 modes");
    GLMQ_FAIL_IF(n_shards < 1 || n_shards > GLMQ_PART_MAX_SHARDS || shard < 0 ||
                     shard >= n_shards,
                 err, GLMQ_E_INVALID, "shard %lld/%lld: need 0 <= I < N <= %d", (long long)shard,
                 (long long)n_shards, GLMQ_PART_MAX_SHARDS);
    GLMQ_FAIL_IF(n < 1 || n > MAX_IDS || o->ctx > MAX_CTX || c->n_layers < 1 ||
                     c->n_layers > MAX_LAYERS || c->vocab < 1 || c->vocab > MAX_VOCAB,
                 err, GLMQ_E_INVALID,
                 "a partial result holds at most 2^40 ids, ctx 2^24, %d layers and a vocabulary "
                 "of 2^31 (%lld ids, ctx %lld, %lld layers, vocabulary %lld)",
                 MAX_LAYERS, (long long)n, (long long)o->ctx, (long long)c->n_layers,
                 (long long)c->vocab);
    glmq_part *p = calloc(1, sizeof *p);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = GLMQ_OK;
    p->shard = shard;
    p->n_shards = n_shards;
    p->n_ids = n;
    p->ids_hash = glmq_ids_hash(ids, n);
    p->ctx = o->ctx;
    p->strided = o->strided != 0;
    p->stride = o->strided ? o->stride : 0;
    p->nmodes = nmodes;
    for (int i = 0; i < nmodes; i++) p->modes[i] = modes[i];
    p->ref_mode = o->ref_mode;
    p->n_layers = c->n_layers;
    p->vocab = c->vocab;
    p->quant_ident = glmq_model_ident(q);
    p->ref_ident = glmq_model_ident(ref);
    glmq_model_desc dq = glmq_model_describe(q, quant_path);
    glmq_model_desc dr = glmq_model_describe(ref, ref_path);
    const char *s[10] = {GLMQ_VERSION_STRING, dq.path, dq.kind, dq.weight_type, dq.arch,
                         dr.path, dr.kind, dr.weight_type, dr.arch, text_source};
    for (int i = 0; i < 10; i++) GLMQ_TRY_G(set_str(p, i, s[i], err));
    GLMQ_TRY_G(glmq_drift_eval_windows(ref, q, ids, n, o, modes, nmodes, shard, n_shards,
                                       keep_window, p, &p->n_windows, err));
    *out = p;
    return GLMQ_OK;
fail:
    glmq_part_free(p);
    return st;
}

/* ---- writing ---- */

typedef struct {
    uint8_t *b;
    size_t off;
} wbuf;

static void put32(wbuf *w, uint32_t v)
{
    glmq_wr_le32(w->b + w->off, v);
    w->off += 4;
}
static void put64(wbuf *w, uint64_t v)
{
    glmq_wr_le64(w->b + w->off, v);
    w->off += 8;
}
static void putf(wbuf *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put64(w, u);
}

glmq_status glmq_part_encode(const glmq_part *p, uint8_t **buf, size_t *size, glmq_err *err)
{
    *buf = NULL;
    *size = 0;
    size_t n = GLMQ_PART_HEADER + 8;
    for (int i = 0; i < 10; i++) n += 4 + strlen(p->str[i]);
    for (int64_t r = 0; r < p->n_records; r++) {
        n += 8;
        for (int i = 0; i < p->nmodes; i++)
            n += 16 + 8 * (N_SCALARS + 2 * (size_t)p->n_layers + (size_t)p->rec[r].m[i].n_pos);
    }
    wbuf w = {malloc(n), 0};
    GLMQ_FAIL_IF(!w.b, err, GLMQ_E_NOMEM, "out of memory for a partial result of %zu bytes", n);
    memcpy(w.b, GLMQ_PART_MAGIC, 8);
    w.off = 8;
    put32(&w, GLMQ_PART_VERSION);
    put32(&w, GLMQ_PART_HEADER);
    put32(&w, (uint32_t)p->shard);
    put32(&w, (uint32_t)p->n_shards);
    put64(&w, (uint64_t)p->n_ids);
    put64(&w, p->ids_hash);
    put64(&w, (uint64_t)p->n_windows);
    put64(&w, (uint64_t)p->ctx);
    put64(&w, (uint64_t)p->stride);
    put32(&w, (uint32_t)p->strided);
    put32(&w, (uint32_t)p->nmodes);
    put32(&w, (uint32_t)p->modes[0]);
    put32(&w, p->nmodes > 1 ? (uint32_t)p->modes[1] : 0);
    put32(&w, (uint32_t)p->ref_mode);
    put32(&w, (uint32_t)p->n_layers);
    put64(&w, (uint64_t)p->vocab);
    put64(&w, p->quant_ident);
    put64(&w, p->ref_ident);
    putf(&w, p->seconds);
    put64(&w, (uint64_t)p->n_records);
    for (int i = 0; i < 10; i++) {
        size_t l = strlen(p->str[i]);
        put32(&w, (uint32_t)l);
        memcpy(w.b + w.off, p->str[i], l);
        w.off += l;
    }
    for (int64_t r = 0; r < p->n_records; r++) {
        put64(&w, (uint64_t)p->rec[r].window);
        for (int i = 0; i < p->nmodes; i++) {
            const glmq_window_sums *s = &p->rec[r].m[i];
            put64(&w, (uint64_t)s->n_pos);
            put64(&w, (uint64_t)s->agree);
            const double sc[N_SCALARS] = {s->nll_ref, s->nll_q, s->kl,    s->dp,
                                          s->dp_sq,   s->dl_sq, s->dl_max};
            for (int j = 0; j < N_SCALARS; j++) putf(&w, sc[j]);
            for (int64_t l = 0; l < p->n_layers; l++) putf(&w, s->layer_num[l]);
            for (int64_t l = 0; l < p->n_layers; l++) putf(&w, s->layer_den[l]);
            for (int64_t j = 0; j < s->n_pos; j++) putf(&w, s->kld[j]);
        }
    }
    put64(&w, XXH3_64bits(w.b, w.off));
    if (w.off != n) { /* the size computed above and the bytes written disagree: a bug here */
        free(w.b);
        return glmq_fail(err, GLMQ_E_INTERNAL, "partial result: wrote %zu of %zu bytes", w.off, n);
    }
    *buf = w.b;
    *size = n;
    return GLMQ_OK;
}

glmq_status glmq_part_write(const glmq_part *p, const char *path, glmq_err *err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    GLMQ_TRY(glmq_part_encode(p, &b, &n, err));
    glmq_status st = glmq_atomic_write_file(path, b, n, err);
    free(b);
    return st;
}

/* ---- reading ---- */

typedef struct {
    const uint8_t *b;
    size_t size, off; /* size excludes the trailer */
    const char *name;
    glmq_err *err;
} rbuf;

/* The next n bytes, or NULL after an error naming `what` at the current offset. */
static const uint8_t *take(rbuf *r, size_t n, const char *what)
{
    if (n > r->size - r->off) {
        glmq_fail(r->err, GLMQ_E_FORMAT,
                  "partial '%s': %s at byte %zu needs %zu bytes, %zu remain (truncated)", r->name,
                  what, r->off, n, r->size - r->off);
        return NULL;
    }
    const uint8_t *p = r->b + r->off;
    r->off += n;
    return p;
}

static glmq_status bad(rbuf *r, size_t at, const char *fmt, ...) GLMQ_PRINTF(3, 4);
static glmq_status bad(rbuf *r, size_t at, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return glmq_fail(r->err, GLMQ_E_FORMAT, "partial '%s': byte %zu: %s", r->name, at, msg);
}

/* A u64 in [lo, hi] at the current offset into *v. */
static glmq_status get_range(rbuf *r, const char *what, uint64_t lo, uint64_t hi, int64_t *v)
{
    size_t at = r->off;
    const uint8_t *p = take(r, 8, what);
    if (!p) return GLMQ_E_FORMAT;
    uint64_t u = glmq_rd_le64(p);
    if (u < lo || u > hi)
        return bad(r, at, "%s %llu is outside [%llu, %llu]", what, (unsigned long long)u,
                   (unsigned long long)lo, (unsigned long long)hi);
    *v = (int64_t)u;
    return GLMQ_OK;
}

/* n doubles; each must not be negative when nonneg (NaN is kept: a diverged run has it). */
static glmq_status get_doubles(rbuf *r, const char *what, double *out, int64_t n, int nonneg)
{
    size_t at = r->off;
    const uint8_t *p = take(r, (size_t)n * 8, what);
    if (!p) return GLMQ_E_FORMAT;
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = glmq_rd_le64(p + 8 * i);
        memcpy(&out[i], &u, 8);
        if (nonneg && out[i] < 0)
            return bad(r, at + 8 * (size_t)i, "%s[%lld] = %g is negative", what, (long long)i,
                       out[i]);
    }
    return GLMQ_OK;
}

static glmq_status decode_record(rbuf *r, glmq_part *p, glmq_part_window *w, int64_t *scored)
{
    static const char *const names[N_SCALARS] = {"nll_ref", "nll_q", "kl",    "dp",
                                                 "dp_sq",   "dl_sq", "dl_max"};
    const int64_t L = p->n_layers;
    for (int i = 0; i < p->nmodes; i++) {
        glmq_window_sums *s = &w->m[i];
        size_t at = r->off;
        GLMQ_TRY(get_range(r, "n_pos", 0, (uint64_t)p->ctx, &s->n_pos));
        if (i > 0 && s->n_pos != w->m[0].n_pos)
            return bad(r, at, "window %lld: %lld scored positions in mode %d, %lld in mode 0",
                       (long long)w->window, (long long)s->n_pos, i, (long long)w->m[0].n_pos);
        GLMQ_TRY(get_range(r, "agree", 0, (uint64_t)s->n_pos, &s->agree));
        /* every byte this mode needs must be there before anything is allocated */
        size_t need = 8 * (N_SCALARS + 2 * (size_t)L + (size_t)s->n_pos);
        if (need > r->size - r->off)
            return bad(r, r->off, "window %lld needs %zu more bytes, %zu remain (truncated)",
                       (long long)w->window, need, r->size - r->off);
        if (!sums_alloc(s, L, s->n_pos))
            return glmq_fail(r->err, GLMQ_E_NOMEM, "partial '%s': out of memory", r->name);
        double sc[N_SCALARS];
        for (int j = 0; j < N_SCALARS; j++)
            GLMQ_TRY(get_doubles(r, names[j], &sc[j], 1, j >= 4 || j == 2));
        s->nll_ref = sc[0];
        s->nll_q = sc[1];
        s->kl = sc[2];
        s->dp = sc[3];
        s->dp_sq = sc[4];
        s->dl_sq = sc[5];
        s->dl_max = sc[6];
        GLMQ_TRY(get_doubles(r, "layer_num", s->layer_num, L, 1));
        GLMQ_TRY(get_doubles(r, "layer_den", s->layer_den, L, 1));
        GLMQ_TRY(get_doubles(r, "kld", s->kld, s->n_pos, 1));
    }
    *scored += w->m[0].n_pos;
    if (*scored > p->n_ids)
        return bad(r, r->off, "%lld scored positions, more than the %lld text ids",
                   (long long)*scored, (long long)p->n_ids);
    return GLMQ_OK;
}

glmq_status glmq_part_decode(const uint8_t *data, size_t size, const char *name, glmq_part **out,
                             glmq_err *err)
{
    *out = NULL;
    GLMQ_FAIL_IF(size < 8 || memcmp(data, GLMQ_PART_MAGIC, 8) != 0, err, GLMQ_E_FORMAT,
                 "partial '%s': not a glmq partial result (no \"GLMQPART\" magic at byte 0)",
                 name);
    GLMQ_FAIL_IF(size < 12, err, GLMQ_E_FORMAT, "partial '%s': truncated at byte %zu (header)",
                 name, size);
    GLMQ_FAIL_IF(glmq_rd_le32(data + 8) != GLMQ_PART_VERSION, err, GLMQ_E_UNSUPPORTED,
                 "partial '%s': byte 8: version %u, this glmq reads version %u", name,
                 glmq_rd_le32(data + 8), GLMQ_PART_VERSION);
    GLMQ_FAIL_IF(size < GLMQ_PART_HEADER + 8, err, GLMQ_E_FORMAT,
                 "partial '%s': %zu bytes, shorter than the %u-byte header and the checksum "
                 "(truncated)",
                 name, size, GLMQ_PART_HEADER);
    GLMQ_FAIL_IF(glmq_rd_le64(data + size - 8) != XXH3_64bits(data, size - 8), err,
                 GLMQ_E_CHECKSUM,
                 "partial '%s': byte %zu: checksum mismatch (the file is truncated or corrupt)",
                 name, size - 8);
    glmq_part *p = calloc(1, sizeof *p);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    rbuf r = {data, size - 8, 12, name, err};
    glmq_status st = GLMQ_OK;
    int64_t v;
    const uint8_t *h = data;
    if (glmq_rd_le32(h + 12) != GLMQ_PART_HEADER) {
        st = bad(&r, 12, "header size %u, expected %u", glmq_rd_le32(h + 12), GLMQ_PART_HEADER);
        goto fail;
    }
    p->n_shards = glmq_rd_le32(h + 20);
    p->shard = glmq_rd_le32(h + 16);
    if (p->n_shards < 1 || p->n_shards > GLMQ_PART_MAX_SHARDS) {
        st = bad(&r, 20, "shard count %lld is outside [1, %d]", (long long)p->n_shards,
                 GLMQ_PART_MAX_SHARDS);
        goto fail;
    }
    if (p->shard >= p->n_shards) {
        st = bad(&r, 16, "shard %lld of %lld", (long long)p->shard, (long long)p->n_shards);
        goto fail;
    }
    r.off = 24;
    GLMQ_TRY_G(get_range(&r, "text ids", 1, MAX_IDS, &p->n_ids));
    p->ids_hash = glmq_rd_le64(h + 32);
    r.off = 40;
    GLMQ_TRY_G(get_range(&r, "windows", 1, (uint64_t)p->n_ids, &p->n_windows));
    GLMQ_TRY_G(get_range(&r, "ctx", 2, MAX_CTX, &p->ctx));
    GLMQ_TRY_G(get_range(&r, "stride", 0, MAX_IDS, &p->stride));
    p->strided = (int)glmq_rd_le32(h + 64);
    if (p->strided != 0 && p->strided != 1) {
        st = bad(&r, 64, "protocol %u is neither 0 (default) nor 1 (strided)",
                 glmq_rd_le32(h + 64));
        goto fail;
    }
    if (p->strided != (p->stride > 0)) {
        st = bad(&r, 56, "stride %lld does not fit the %s protocol", (long long)p->stride,
                 p->strided ? "strided" : "default");
        goto fail;
    }
    uint32_t nm = glmq_rd_le32(h + 68), m0 = glmq_rd_le32(h + 72), m1 = glmq_rd_le32(h + 76),
             mr = glmq_rd_le32(h + 80);
    if (nm < 1 || nm > 2) {
        st = bad(&r, 68, "%u kernel modes (1 or 2)", nm);
        goto fail;
    }
    if (m0 > GLMQ_FWD_FAST || m1 > GLMQ_FWD_FAST || mr > GLMQ_FWD_FAST || (nm == 1 && m1 != 0)) {
        st = bad(&r, 72, "kernel modes %u, %u, reference %u: not 0 (reference), 1 (exact) or "
                         "2 (fast)",
                 m0, m1, mr);
        goto fail;
    }
    p->nmodes = (int)nm;
    p->modes[0] = (glmq_forward_mode)m0;
    p->modes[1] = (glmq_forward_mode)m1;
    p->ref_mode = (glmq_forward_mode)mr;
    p->n_layers = glmq_rd_le32(h + 84);
    if (p->n_layers < 1 || p->n_layers > MAX_LAYERS) {
        st = bad(&r, 84, "%lld layers (1 .. %d)", (long long)p->n_layers, MAX_LAYERS);
        goto fail;
    }
    r.off = 88;
    GLMQ_TRY_G(get_range(&r, "vocabulary", 1, MAX_VOCAB, &p->vocab));
    p->quant_ident = glmq_rd_le64(h + 96);
    p->ref_ident = glmq_rd_le64(h + 104);
    r.off = 112;
    GLMQ_TRY_G(get_doubles(&r, "seconds", &p->seconds, 1, 1));
    if (isnan(p->seconds) || isinf(p->seconds)) {
        st = bad(&r, 112, "seconds is not a finite number");
        goto fail;
    }
    int64_t want = shard_windows(p->shard, p->n_shards, p->n_windows);
    GLMQ_TRY_G(get_range(&r, "windows of this part", 0, (uint64_t)want, &v));
    if (v != want) {
        st = bad(&r, 120, "%lld windows, shard %lld of %lld over %lld windows has %lld",
                 (long long)v, (long long)p->shard, (long long)p->n_shards,
                 (long long)p->n_windows, (long long)want);
        goto fail;
    }
    for (int i = 0; i < 10; i++) {
        size_t at = r.off;
        const uint8_t *lp = take(&r, 4, "string length");
        if (!lp) {
            st = GLMQ_E_FORMAT;
            goto fail;
        }
        uint32_t l = glmq_rd_le32(lp);
        if (l > GLMQ_PART_MAX_STRING) {
            st = bad(&r, at, "string %d is %u bytes long (at most %u)", i, l,
                     GLMQ_PART_MAX_STRING);
            goto fail;
        }
        const uint8_t *sp = take(&r, l, "string");
        if (!sp) {
            st = GLMQ_E_FORMAT;
            goto fail;
        }
        if (memchr(sp, 0, l)) {
            st = bad(&r, at + 4, "string %d holds a NUL byte", i);
            goto fail;
        }
        p->str[i] = malloc((size_t)l + 1);
        GLMQ_FAIL_IF_G(!p->str[i], err, GLMQ_E_NOMEM, "out of memory");
        memcpy(p->str[i], sp, l);
        p->str[i][l] = 0;
    }
    /* the smallest record: index + per mode two counts, the scalars and the layer sums */
    size_t min_rec = 8 + (size_t)p->nmodes * (16 + 8 * (N_SCALARS + 2 * (size_t)p->n_layers));
    if ((uint64_t)want > (r.size - r.off) / min_rec) {
        st = bad(&r, r.off, "%lld windows of at least %zu bytes each do not fit in the %zu "
                            "bytes that remain (truncated)",
                 (long long)want, min_rec, r.size - r.off);
        goto fail;
    }
    p->rec = calloc((size_t)want + 1, sizeof *p->rec);
    GLMQ_FAIL_IF_G(!p->rec, err, GLMQ_E_NOMEM, "out of memory");
    int64_t scored = 0;
    for (int64_t k = 0; k < want; k++) {
        glmq_part_window *w = &p->rec[k];
        p->n_records = k + 1; /* so glmq_part_free releases what this record allocated */
        size_t at = r.off;
        int64_t expect = p->shard + k * p->n_shards;
        GLMQ_TRY_G(get_range(&r, "window index", 0, (uint64_t)p->n_windows - 1, &w->window));
        if (w->window != expect) {
            st = bad(&r, at, "record %lld is window %lld, shard %lld of %lld has window %lld "
                             "there",
                     (long long)k, (long long)w->window, (long long)p->shard,
                     (long long)p->n_shards, (long long)expect);
            goto fail;
        }
        GLMQ_TRY_G(decode_record(&r, p, w, &scored));
    }
    if (r.off != r.size) {
        st = bad(&r, r.off, "%zu bytes after the last window, before the checksum",
                 r.size - r.off);
        goto fail;
    }
    *out = p;
    return GLMQ_OK;
fail:
    glmq_part_free(p);
    return st;
}

glmq_status glmq_part_read(const char *path, glmq_part **out, glmq_err *err)
{
    *out = NULL;
    char *b = NULL;
    size_t n = 0;
    GLMQ_TRY(glmq_read_file(path, &b, &n, err));
    glmq_status st = glmq_part_decode((const uint8_t *)b, n, path, out, err);
    free(b);
    return st;
}

void glmq_part_opts(const glmq_part *p, glmq_eval_opts *o)
{
    glmq_eval_opts_default(o);
    o->ctx = p->ctx;
    o->strided = p->strided;
    o->stride = p->strided ? p->stride : o->stride;
    o->mode = p->modes[0];
    o->ref_mode = p->ref_mode;
}

glmq_model_desc glmq_part_quant(const glmq_part *p)
{
    glmq_model_desc d = {p->str[GLMQ_PART_S_QPATH], p->str[GLMQ_PART_S_QKIND],
                         p->str[GLMQ_PART_S_QTYPE], p->str[GLMQ_PART_S_QARCH], p->quant_ident};
    return d;
}

glmq_model_desc glmq_part_ref(const glmq_part *p)
{
    glmq_model_desc d = {p->str[GLMQ_PART_S_RPATH], p->str[GLMQ_PART_S_RKIND],
                         p->str[GLMQ_PART_S_RTYPE], p->str[GLMQ_PART_S_RARCH], p->ref_ident};
    return d;
}

/* ---- merging ---- */

/* The first field in which b differs from a (the run both must share), or NULL. */
static const char *run_mismatch(const glmq_part *a, const glmq_part *b)
{
    if (strcmp(a->str[GLMQ_PART_S_VERSION], b->str[GLMQ_PART_S_VERSION]))
        return "glmq version";
    if (a->quant_ident != b->quant_ident) return "QUANT model (hash)";
    if (a->ref_ident != b->ref_ident) return "REF model (hash)";
    if (a->n_ids != b->n_ids || a->ids_hash != b->ids_hash) return "text (token ids)";
    if (a->strided != b->strided || a->stride != b->stride) return "protocol";
    if (a->ctx != b->ctx) return "ctx";
    if (a->nmodes != b->nmodes || a->modes[0] != b->modes[0] ||
        (a->nmodes > 1 && a->modes[1] != b->modes[1]) || a->ref_mode != b->ref_mode)
        return "kernels";
    if (a->n_layers != b->n_layers || a->vocab != b->vocab) return "model shape";
    if (a->n_windows != b->n_windows) return "number of windows";
    if (a->n_shards != b->n_shards) return "number of shards";
    return NULL;
}

glmq_status glmq_parts_merge(glmq_part *const *parts, const char *const *names, int n,
                             glmq_drift d[2], int *nmodes, const glmq_part **first,
                             double *seconds, glmq_err *err)
{
    memset(d, 0, 2 * sizeof *d);
    *nmodes = 0;
    *first = NULL;
    *seconds = 0;
    GLMQ_FAIL_IF(n < 1, err, GLMQ_E_INVALID, "merge: no partial results given");
    const glmq_part *p0 = parts[0];
    for (int i = 1; i < n; i++) {
        const char *what = run_mismatch(p0, parts[i]);
        GLMQ_FAIL_IF(what, err, GLMQ_E_INVALID,
                     "merge: '%s' is not from the same run as '%s': the %s differs", names[i],
                     names[0], what);
    }
    const int64_t N = p0->n_shards;
    glmq_drift_acc acc[2];
    memset(acc, 0, sizeof acc);
    int *slot = malloc((size_t)N * sizeof *slot);
    GLMQ_FAIL_IF(!slot, err, GLMQ_E_NOMEM, "out of memory");
    for (int64_t s = 0; s < N; s++) slot[s] = -1;
    glmq_status st = GLMQ_OK;
    for (int i = 0; i < n; i++) {
        int64_t s = parts[i]->shard;
        GLMQ_FAIL_IF_G(slot[s] >= 0, err, GLMQ_E_INVALID,
                       "merge: '%s' and '%s' are both shard %lld of %lld", names[slot[s]],
                       names[i], (long long)s, (long long)N);
        slot[s] = i;
    }
    for (int64_t s = 0; s < N; s++)
        GLMQ_FAIL_IF_G(slot[s] < 0, err, GLMQ_E_INVALID,
                       "merge: shard %lld of %lld is missing (%d partial files given, '%s' "
                       "the first)",
                       (long long)s, (long long)N, n, names[0]);
    for (int i = 0; i < p0->nmodes; i++)
        GLMQ_TRY_G(glmq_drift_acc_init(&acc[i], p0->n_layers, p0->vocab, err));
    /* window order 0, 1, 2, ...: window k is record k / N of shard k % N */
    for (int64_t k = 0; k < p0->n_windows; k++) {
        const glmq_part *p = parts[slot[k % N]];
        const glmq_part_window *w = &p->rec[k / N];
        GLMQ_FAIL_IF_G(k / N >= p->n_records || w->window != k, err, GLMQ_E_INVALID,
                       "merge: '%s' has no window %lld", names[slot[k % N]], (long long)k);
        for (int i = 0; i < p0->nmodes; i++) GLMQ_TRY_G(glmq_drift_acc_add(&acc[i], &w->m[i], err));
    }
    GLMQ_FAIL_IF_G(acc[0].n_pos > p0->n_ids, err, GLMQ_E_INVALID,
                   "merge: %lld scored positions, more than the %lld text ids",
                   (long long)acc[0].n_pos, (long long)p0->n_ids);
    for (int i = 0; i < p0->nmodes; i++) GLMQ_TRY_G(glmq_drift_acc_finish(&acc[i], &d[i], err));
    for (int i = 0; i < n; i++) *seconds += parts[i]->seconds;
    *nmodes = p0->nmodes;
    *first = parts[slot[0]];
    free(slot);
    return GLMQ_OK;
fail:
    for (int i = 0; i < 2; i++) {
        glmq_drift_acc_free(&acc[i]);
        glmq_drift_free(&d[i]);
    }
    free(slot);
    return st;
}
