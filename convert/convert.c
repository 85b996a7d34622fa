/*
 * convert.c - checkpoint directory -> packed file, streaming, in bounded memory.
 *
 * Pipeline: open and validate the checkpoint (checkpoint.c) -> choose a storage type per tensor
 * (policy below) -> declare the whole pack layout (pack_write.c) -> stream each tensor in chunks
 * of rows: read raw bytes (pread), widen + quantize rows in parallel (static partition over the
 * pool, so the bytes never depend on the thread count), write them at their planned offset ->
 * metadata -> atomic finish.
 *
 * Memory: one chunk of source rows (CHUNK_BYTES) plus its output and one fp32 row per thread, so
 * peak RSS is bounded by the chunk size, not by the model or even the largest tensor.
 *
 * Order: tensors are *processed* in source-file order (file, offset) so reads are sequential and
 * the provenance hash of every source file (XXH3-64) is computed from the same reads, with only
 * the gaps between tensors (headers) read a second time; they are *stored* in canonical order.
 *
 * Policy (GLM-SPEC decision 6): every 2-D weight inside the transformer layers gets the
 * requested type; the embedding and the output layer keep their stored precision unless asked;
 * norms and biases always do. `--type f16` keeps 16-bit sources bit-exact (F16 or BF16) and
 * narrows F32 weights to F16.
 */
#include "convert/checkpoint.h"
#include "core/pool.h"
#include "formats/pack.h"
#include "quant/quant.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/hash.h"

#define CHUNK_BYTES ((size_t)32 << 20)

void glmq_convert_opts_default(glmq_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->weight_type = GLMQ_TYPE_INT4;
}

void glmq_convert_report_free(glmq_convert_report *r)
{
    if (!r) return;
    free(r->stats);
    for (int64_t i = 0; i < r->n_warnings; i++) free(r->warnings[i]);
    free(r->warnings);
    memset(r, 0, sizeof *r);
}

/* ---- provenance: sequential XXH3 of every source file, fed by the conversion's own reads ---- */

typedef struct {
    XXH3_state_t *h;
    uint64_t pos;
} file_hash;

/* Hash file bytes up to `upto` that no read has covered yet (gaps between tensors). */
static glmq_status hash_gap(glmq_src_set *s, file_hash *fh, uint32_t f, uint64_t upto,
                            uint8_t *tmp, size_t tmp_size, glmq_err *err)
{
    while (fh->pos < upto) {
        size_t n = upto - fh->pos > tmp_size ? tmp_size : (size_t)(upto - fh->pos);
        GLMQ_TRY(glmq_src_pread(s, f, fh->pos, tmp, n, err));
        XXH3_64bits_update(fh->h, tmp, n);
        fh->pos += n;
    }
    return GLMQ_OK;
}

/* The conversion just read file bytes [off, off+n) into buf: extend the file's hash. */
static glmq_status hash_feed(glmq_src_set *s, file_hash *fh, uint32_t f, uint64_t off,
                             const uint8_t *buf, size_t n, uint8_t *tmp, size_t tmp_size,
                             glmq_err *err)
{
    GLMQ_TRY(hash_gap(s, fh, f, off, tmp, tmp_size, err));
    if (off + n > fh->pos) {
        uint64_t skip = fh->pos - off;
        XXH3_64bits_update(fh->h, buf + skip, n - skip);
        fh->pos = off + n;
    }
    return GLMQ_OK;
}

/* ---- per-chunk parallel quantization ---- */

/* Source hashing that thread 0 does before it joins the row loop (see chunk_run). */
typedef struct {
    glmq_src_set *set;
    file_hash *fh;
    uint32_t file;
    uint64_t off;
    size_t n;
    uint8_t *tmp;
    size_t tmp_size;
    glmq_status st;
    glmq_err err;
} hash_task;

typedef struct {
    const glmq_kernels *k;
    glmq_type out_type;
    glmq_dtype in_dtype;
    int convert;    /* 0: bytes are stored as they are (only the hash task runs) */
    const uint8_t *raw;
    uint8_t *out;
    uint16_t *scales;
    glmq_qstats *stats;
    float *scratch; /* nth * cols floats */
    int64_t nrows, cols, row_bytes;
    atomic_llong next; /* next block of rows to take */
    hash_task *hash;   /* may be NULL */
    int64_t bad_row[1024], bad_col[1024];
} qjob;

#define ROW_BLOCK 16

static void widen(const glmq_kernels *k, glmq_dtype dt, const void *src, float *dst, int64_t n)
{
    if (dt == GLMQ_DT_F16)
        k->f16_to_f32(src, dst, n);
    else if (dt == GLMQ_DT_BF16)
        k->bf16_to_f32(src, dst, n);
    else
        glmq_f32le_to_f32_row(src, dst, n);
}

/* Quantize (or narrow) rows. Rows are taken in blocks from a shared counter, so threads that
 * finish early help the others; which thread quantizes a row never changes its bytes, and the
 * per-row statistics are reduced in row order by the caller, so the output is the same for any
 * thread count. Thread 0 first extends the source file's hash over this chunk. */
static void qjob_run(void *arg, int ith, int nth)
{
    qjob *j = arg;
    (void)nth;
    j->bad_row[ith] = -1;
    if (ith == 0 && j->hash) {
        hash_task *h = j->hash;
        h->st = hash_feed(h->set, h->fh, h->file, h->off, j->raw, h->n, h->tmp, h->tmp_size,
                          &h->err);
    }
    if (!j->convert) return;
    float *w = j->scratch + (size_t)ith * (size_t)j->cols;
    size_t es = glmq_dtype_size(j->in_dtype);
    for (;;) {
        int64_t r0 = atomic_fetch_add(&j->next, ROW_BLOCK);
        if (r0 >= j->nrows) return;
        int64_t r1 = r0 + ROW_BLOCK < j->nrows ? r0 + ROW_BLOCK : j->nrows;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *src = j->raw + (size_t)r * (size_t)j->cols * es;
            uint8_t *dst = j->out + (size_t)r * (size_t)j->row_bytes;
            widen(j->k, j->in_dtype, src, w, j->cols);
            if (j->out_type == GLMQ_TYPE_F16) { /* F32 narrowed to F16 */
                j->k->f32_to_f16(w, (uint16_t *)(void *)dst, j->cols);
                glmq_qstats *st = &j->stats[r];
                memset(st, 0, sizeof *st);
                for (int64_t c = 0; c < j->cols; c++) {
                    double e = (double)glmq_f16_to_f32(((uint16_t *)(void *)dst)[c]) - w[c];
                    st->sum_sq_err += e * e;
                    st->sum_sq += (double)w[c] * w[c];
                    if (fabs(e) > st->max_abs_err) st->max_abs_err = fabs(e);
                }
                continue;
            }
            int64_t bad = j->out_type == GLMQ_TYPE_INT8
                              ? j->k->quantize_row_q8(w, j->cols, dst, &j->scales[r], &j->stats[r])
                              : j->k->quantize_row_q4(w, j->cols, dst, &j->scales[r], &j->stats[r]);
            if (bad >= 0 && (j->bad_row[ith] < 0 || r < j->bad_row[ith])) {
                j->bad_row[ith] = r;
                j->bad_col[ith] = bad;
            }
        }
    }
}

/* Parallel read of a contiguous byte range of one file: each thread preads a share. */
typedef struct {
    const glmq_src_set *set;
    uint32_t file;
    uint64_t off;
    uint8_t *dst;
    size_t n;
    glmq_status st[1024];
    glmq_err err[2]; /* the first failing thread's message is copied out */
    atomic_int failed;
} read_job;

static void read_run(void *arg, int ith, int nth)
{
    read_job *j = arg;
    size_t lines = (j->n + 4095) / 4096;
    size_t a = lines * (size_t)ith / (size_t)nth * 4096;
    size_t b = lines * (size_t)(ith + 1) / (size_t)nth * 4096;
    if (b > j->n) b = j->n;
    glmq_err e = {0};
    j->st[ith] = a < b ? glmq_src_pread(j->set, j->file, j->off + a, j->dst + a, b - a, &e)
                       : GLMQ_OK;
    if (j->st[ith] != GLMQ_OK && atomic_fetch_add(&j->failed, 1) == 0) j->err[0] = e;
}

/* ---- the conversion ---- */

typedef struct {
    int64_t ck;      /* index into ckpt->tensors */
    glmq_type type;  /* storage type in the pack */
} plan_entry;

static glmq_type stored_type(glmq_dtype d)
{
    return d == GLMQ_DT_F16 ? GLMQ_TYPE_F16 : d == GLMQ_DT_BF16 ? GLMQ_TYPE_BF16 : GLMQ_TYPE_F32;
}

static glmq_type choose_type(const glmq_convert_opts *o, glmq_role role, glmq_dtype src)
{
    int quantize = role == GLMQ_ROLE_LAYER_WEIGHT ||
                   (role == GLMQ_ROLE_EMBED && o->quantize_embedding) ||
                   (role == GLMQ_ROLE_OUTPUT && o->quantize_output);
    if (!quantize) return stored_type(src);
    if (o->weight_type == GLMQ_TYPE_F16) return src == GLMQ_DT_F32 ? GLMQ_TYPE_F16 : stored_type(src);
    return o->weight_type;
}

/* Processing order: by source file, then file offset (sequential reads, streamed hashes). */
typedef struct {
    uint32_t file;
    uint64_t off;
    int64_t pi; /* index into the plan (pack order) */
} order_entry;

static int cmp_order(const void *a, const void *b)
{
    const order_entry *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->pi < y->pi ? -1 : x->pi > y->pi;
}

/* Grow *buf to at least `need` bytes (contents not kept). */
static int reserve(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    free(*buf);
    *buf = malloc(need);
    *cap = *buf ? need : 0;
    return *buf ? 0 : -1;
}

static void hex64(char out[17], uint64_t v) { snprintf(out, 17, "%016llx", (unsigned long long)v); }

static void add_file_json(cJSON *files, const char *name, uint64_t size, uint64_t hash)
{
    char hx[17];
    hex64(hx, hash);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddNumberToObject(f, "size", (double)size);
    cJSON_AddStringToObject(f, "xxh3", hx);
    cJSON_AddItemToArray(files, f);
}

static char *build_metadata(const glmq_checkpoint *ck, const glmq_convert_opts *o,
                            const file_hash *fh)
{
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    cJSON_AddStringToObject(m, "format", "glmq");
    cJSON_AddStringToObject(m, "format_version", "1.0");
    cJSON_AddStringToObject(m, "glmq_version", GLMQ_VERSION_STRING);
    cJSON_AddItemToObject(m, "config", glmq_config_to_json(&ck->cfg));

    cJSON *q = cJSON_AddObjectToObject(m, "quantization");
    cJSON_AddStringToObject(q, "weight_type", glmq_type_name(o->weight_type));
    if (o->weight_type == GLMQ_TYPE_F16) {
        cJSON_AddStringToObject(q, "method", "none (16-bit sources kept bit-exact, F32 narrowed "
                                             "to F16 with round-to-nearest-even)");
    } else {
        cJSON_AddStringToObject(q, "method", "per-row symmetric round-to-nearest "
                                             "(GLM-SPEC decision 6)");
        cJSON_AddNumberToObject(q, "qmax", o->weight_type == GLMQ_TYPE_INT8 ? 127 : 7);
        cJSON_AddStringToObject(q, "scale_type", "f16");
        cJSON_AddStringToObject(q, "rounding", "rint-ties-to-even");
        cJSON_AddNumberToObject(q, "int4_block", GLMQ_Q4_BLOCK);
        cJSON_AddStringToObject(q, "int4_code", "nibble = q + 8");
        cJSON_AddNumberToObject(q, "int8_row_align", GLMQ_Q8_ALIGN);
    }
    cJSON_AddBoolToObject(q, "quantize_embedding", o->quantize_embedding);
    cJSON_AddBoolToObject(q, "quantize_output", o->quantize_output);
    cJSON_AddStringToObject(q, "policy", "2-D weights inside transformer layers; embedding and "
                                         "output layer only when asked; norms and biases never");

    if (ck->tokenizer.data) {
        cJSON *t = cJSON_AddObjectToObject(m, "tokenizer");
        cJSON_AddStringToObject(t, "kind", ck->cfg.tokenizer_kind);
        cJSON_AddStringToObject(t, "blob", "tokenizer.model");
        cJSON_AddStringToObject(t, "source_name", ck->tokenizer.name);
    } else {
        cJSON_AddNullToObject(m, "tokenizer");
    }

    cJSON *s = cJSON_AddObjectToObject(m, "source");
    cJSON_AddStringToObject(s, "format", ck->weights_format);
    cJSON_AddBoolToObject(s, "sharded", ck->sharded);
    cJSON *files = cJSON_AddArrayToObject(s, "files");
    const glmq_small_file *smalls[] = {&ck->config_json, &ck->tokenizer_cfg, &ck->tokenizer,
                                       &ck->index};
    for (size_t i = 0; i < sizeof smalls / sizeof smalls[0]; i++)
        if (smalls[i]->data)
            add_file_json(files, smalls[i]->name, smalls[i]->size,
                          XXH3_64bits(smalls[i]->data, smalls[i]->size));
    for (uint32_t f = 0; f < ck->set.nfiles; f++)
        add_file_json(files, ck->set.files[f].base, ck->set.files[f].size,
                      XXH3_64bits_digest(fh[f].h));

    cJSON *sk = cJSON_AddArrayToObject(m, "skipped");
    for (int64_t i = 0; i < ck->set.ntensors; i++) {
        int used = 0;
        for (int64_t j = 0; j < ck->n_tensors && !used; j++) used = ck->tensors[j].src == i;
        if (!used) cJSON_AddItemToArray(sk, cJSON_CreateString(ck->set.tensors[i].name));
    }
    char *out = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return out;
}

glmq_status glmq_convert(const char *src_dir, const char *out_path, const glmq_convert_opts *opts,
                         glmq_convert_report *report, glmq_err *err)
{
    glmq_convert_opts o;
    if (opts)
        o = *opts;
    else
        glmq_convert_opts_default(&o);
    if (report) memset(report, 0, sizeof *report);
    GLMQ_FAIL_IF(o.weight_type != GLMQ_TYPE_INT4 && o.weight_type != GLMQ_TYPE_INT8 &&
                     o.weight_type != GLMQ_TYPE_F16,
                 err, GLMQ_E_INVALID, "weight type must be int4, int8 or f16");

    glmq_status st = GLMQ_OK;
    glmq_checkpoint *ck = NULL;
    glmq_pool *pool = NULL;
    glmq_pack_writer *w = NULL;
    plan_entry *plan = NULL;
    order_entry *order = NULL;
    glmq_pack_tensor_decl *decl = NULL;
    glmq_tensor_stats *stats = NULL;
    file_hash *fh = NULL;
    void *raw = NULL, *out = NULL, *qst_v = NULL, *scales_v = NULL;
    size_t raw_cap = 0, out_cap = 0, qst_cap = 0, scales_cap = 0;
    uint8_t *tmp = NULL;
    float *scratch = NULL;
    char *meta = NULL;
    const size_t tmp_size = (size_t)4 << 20;
    const glmq_kernels *k = glmq_kernels_get();

    GLMQ_TRY_G(glmq_checkpoint_open(src_dir, &ck, err));
    GLMQ_TRY_G(glmq_pool_create(o.threads, &pool, err));
    int nth = glmq_pool_size(pool);

    /* plan: which tensors, which types, canonical order */
    int64_t n = 0;
    plan = calloc((size_t)ck->n_tensors + 1, sizeof *plan);
    decl = calloc((size_t)ck->n_tensors + 1, sizeof *decl);
    stats = calloc((size_t)ck->n_tensors + 1, sizeof *stats);
    GLMQ_FAIL_IF_G(!plan || !decl || !stats, err, GLMQ_E_NOMEM, "out of memory");
    int64_t max_cols = 1;
    uint64_t total_in = 0;
    for (int64_t i = 0; i < ck->n_tensors; i++) {
        const glmq_ckpt_tensor *ct = &ck->tensors[i];
        if (ct->src < 0) continue;
        const glmq_src_tensor *t = &ck->set.tensors[ct->src];
        plan[n].ck = i;
        plan[n].type = choose_type(&o, ct->want.role, t->dtype);
        decl[n].name = t->name;
        decl[n].type = plan[n].type;
        decl[n].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) decl[n].shape[d] = t->shape[d];
        if (glmq_src_cols(t) > max_cols) max_cols = glmq_src_cols(t);
        total_in += (uint64_t)t->nelem * glmq_dtype_size(t->dtype);
        n++;
    }

    glmq_pack_blob_decl blobs[3];
    const glmq_small_file *blob_src[3];
    int64_t nb = 0;
    blobs[nb] = (glmq_pack_blob_decl){"config.json", ck->config_json.size};
    blob_src[nb++] = &ck->config_json;
    if (ck->tokenizer.data) {
        blobs[nb] = (glmq_pack_blob_decl){"tokenizer.model", ck->tokenizer.size};
        blob_src[nb++] = &ck->tokenizer;
    }
    if (ck->tokenizer_cfg.data) {
        blobs[nb] = (glmq_pack_blob_decl){"tokenizer_config.json", ck->tokenizer_cfg.size};
        blob_src[nb++] = &ck->tokenizer_cfg;
    }
    GLMQ_TRY_G(glmq_pack_writer_create(out_path, decl, n, blobs, nb, &w, err));
    for (int64_t i = 0; i < nb; i++) GLMQ_TRY_G(glmq_pack_write_blob(w, i, blob_src[i]->data, err));

    /* buffers: chunks of rows grow on demand; one fp32 row per thread; a gap-hashing buffer */
    tmp = malloc(tmp_size);
    scratch = malloc((size_t)nth * (size_t)max_cols * sizeof(float));
    fh = calloc(ck->set.nfiles + 1, sizeof *fh);
    order = malloc((size_t)(n + 1) * sizeof *order);
    GLMQ_FAIL_IF_G(!tmp || !scratch || !fh || !order, err, GLMQ_E_NOMEM,
                   "out of memory for conversion buffers");
    for (uint32_t f = 0; f < ck->set.nfiles; f++) {
        fh[f].h = XXH3_createState();
        GLMQ_FAIL_IF_G(!fh[f].h, err, GLMQ_E_NOMEM, "out of memory");
        XXH3_64bits_reset(fh[f].h);
    }
    for (int64_t i = 0; i < n; i++) {
        const glmq_src_tensor *t = &ck->set.tensors[ck->tensors[plan[i].ck].src];
        const glmq_src_storage *sto = &ck->set.storages[t->storage];
        order[i] = (order_entry){sto->file, sto->offset + t->byte_offset, i};
    }
    qsort(order, (size_t)n, sizeof *order, cmp_order);

    uint64_t done_bytes = 0;
    for (int64_t oi = 0; oi < n; oi++) {
        int64_t pi = order[oi].pi;
        const glmq_ckpt_tensor *ct = &ck->tensors[plan[pi].ck];
        const glmq_src_tensor *t = &ck->set.tensors[ct->src];
        const glmq_src_storage *sto = &ck->set.storages[t->storage];
        glmq_type ty = plan[pi].type;
        int64_t rows = glmq_src_rows(t), cols = glmq_src_cols(t);
        size_t es = glmq_dtype_size(t->dtype);
        int64_t rb = glmq_pack_row_bytes(ty, cols);
        int quant = ty == GLMQ_TYPE_INT8 || ty == GLMQ_TYPE_INT4;
        int narrow = ty == GLMQ_TYPE_F16 && t->dtype == GLMQ_DT_F32;
        glmq_tensor_stats *ts = &stats[pi];
        snprintf(ts->name, sizeof ts->name, "%s", t->name);
        ts->type = ty;
        ts->rows = rows;
        ts->cols = cols;
        double sse = 0, ssq = 0, mx = 0;
        int64_t chunk_rows = (int64_t)(CHUNK_BYTES / ((size_t)cols * 4));
        if (chunk_rows < 1) chunk_rows = 1;
        if (chunk_rows > rows) chunk_rows = rows;
        GLMQ_FAIL_IF_G(reserve(&raw, &raw_cap, (size_t)chunk_rows * (size_t)cols * es) ||
                           reserve(&out, &out_cap, (size_t)chunk_rows * (size_t)rb) ||
                           reserve(&qst_v, &qst_cap, (size_t)chunk_rows * sizeof(glmq_qstats)) ||
                           (quant && reserve(&scales_v, &scales_cap, (size_t)rows * 2)),
                       err, GLMQ_E_NOMEM, "out of memory for tensor '%s'", t->name);
        uint16_t *scales = scales_v;
        glmq_qstats *qst = qst_v;
        for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
            int64_t nr = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
            size_t nbytes = (size_t)nr * (size_t)cols * es;
            /* 1. read: split over the pool when the rows are one plain byte range */
            uint64_t foff = sto->offset + t->byte_offset + (uint64_t)r0 * (uint64_t)cols * es;
            int plain = t->contiguous && !sto->deflated;
            if (plain && nth > 1 && nbytes >= ((size_t)1 << 20)) {
                read_job rj = {.set = &ck->set, .file = sto->file, .off = foff, .dst = raw,
                               .n = nbytes};
                atomic_init(&rj.failed, 0);
                glmq_pool_run(pool, read_run, &rj);
                if (atomic_load(&rj.failed)) {
                    if (err) *err = rj.err[0];
                    st = rj.err[0].code;
                    goto fail;
                }
            } else {
                GLMQ_TRY_G(glmq_src_read_rows_raw(&ck->set, t, r0, nr, raw, err));
            }
            /* 2. hash the source bytes (thread 0) while the pool converts the rows */
            hash_task ht = {.set = &ck->set, .fh = &fh[sto->file], .file = sto->file,
                            .off = foff, .n = nbytes, .tmp = tmp, .tmp_size = tmp_size};
            qjob j = {.k = k, .out_type = ty, .in_dtype = t->dtype, .convert = quant || narrow,
                      .raw = raw, .out = out, .scales = quant ? scales + r0 : NULL,
                      .stats = qst, .scratch = scratch, .nrows = nr, .cols = cols,
                      .row_bytes = rb, .hash = plain ? &ht : NULL};
            atomic_init(&j.next, 0);
            glmq_pool_run(pool, qjob_run, &j);
            if (plain && ht.st != GLMQ_OK) {
                if (err) *err = ht.err;
                st = ht.st;
                goto fail;
            }
            if (j.convert) {
                int64_t bad_row = -1, bad_col = -1;
                for (int i = 0; i < nth; i++)
                    if (j.bad_row[i] >= 0 && (bad_row < 0 || j.bad_row[i] < bad_row)) {
                        bad_row = j.bad_row[i];
                        bad_col = j.bad_col[i];
                    }
                GLMQ_FAIL_IF_G(bad_row >= 0, err, GLMQ_E_VALUE,
                               "'%s': tensor '%s' row %lld column %lld: %s", src_dir, t->name,
                               (long long)(r0 + bad_row), (long long)bad_col,
                               "weight is NaN or infinite, or the row's scale overflows fp16");
                for (int64_t r = 0; r < nr; r++) { /* reduce in row order: deterministic */
                    sse += qst[r].sum_sq_err;
                    ssq += qst[r].sum_sq;
                    if (qst[r].max_abs_err > mx) mx = qst[r].max_abs_err;
                }
            }
            /* 3. checksum and write the stored rows (spread over the pool) */
            GLMQ_TRY_G(glmq_pack_write_rows_pool(w, pi, r0, nr, j.convert ? out : raw, pool, err));
            done_bytes += nbytes;
            if (o.progress) o.progress(o.progress_user, done_bytes, total_in);
        }
        if (quant) GLMQ_TRY_G(glmq_pack_write_scales(w, pi, scales, err));
        double nel = (double)rows * (double)cols;
        ts->rms_err = sqrt(sse / nel);
        ts->max_abs_err = mx;
        ts->sqnr_db = sse > 0 ? 10.0 * log10(ssq / sse) : INFINITY;
    }
    /* finish provenance hashes: whatever the reads did not cover */
    for (uint32_t f = 0; f < ck->set.nfiles; f++)
        GLMQ_TRY_G(hash_gap(&ck->set, &fh[f], f, ck->set.files[f].size, tmp, tmp_size, err));

    meta = build_metadata(ck, &o, fh);
    GLMQ_FAIL_IF_G(!meta, err, GLMQ_E_NOMEM, "out of memory building metadata");
    uint64_t out_size = glmq_pack_writer_size(w) + strlen(meta);
    st = glmq_pack_writer_finish(w, meta, err);
    w = NULL;
    if (st != GLMQ_OK) goto fail;

    if (report) {
        report->input_bytes = total_in;
        report->output_bytes = out_size;
        report->n_tensors = n;
        report->stats = stats;
        stats = NULL;
        snprintf(report->architecture, sizeof report->architecture, "%s",
                 glmq_arch_name(ck->cfg.arch));
        report->warnings = ck->warnings;
        report->n_warnings = ck->n_warnings;
        ck->warnings = NULL;
        ck->n_warnings = 0;
    }
fail:
    glmq_pack_writer_abort(w);
    glmq_pool_free(pool);
    if (fh)
        for (uint32_t f = 0; ck && f < ck->set.nfiles; f++)
            if (fh[f].h) XXH3_freeState(fh[f].h);
    free(fh);
    glmq_checkpoint_close(ck);
    free(plan);
    free(order);
    free(decl);
    free(stats);
    free(raw);
    free(out);
    free(tmp);
    free(scales_v);
    free(qst_v);
    free(scratch);
    cJSON_free(meta);
    return st;
}
