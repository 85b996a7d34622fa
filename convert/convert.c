/*
 * convert.c - checkpoint directory -> packed file, streaming, in bounded memory.
 *
 * Pipeline: open and validate the checkpoint (checkpoint.c) -> choose a storage type per tensor
 * (policy below) -> declare the whole pack layout (pack_write.c) -> stream each tensor in chunks
 * of rows: read raw bytes (pread), widen + quantize rows in parallel (static partition over the
 * pool, so the bytes never depend on the thread count), write them at their planned offset ->
 * metadata -> atomic finish.
 *
 * Memory: per worker one chunk of source rows (CHUNK_TARGET, 1 MB), its output and one fp32 row,
 * plus per-row scales of one tensor, so peak RSS does not grow with the model or its tensors.
 *
 * Order: tensors are *processed* in source-file order (file, offset) so reads are sequential and
 * the provenance hash of every source file (XXH3-64) is computed from the same reads, with only
 * the gaps between tensors (headers) read a second time; they are *stored* in canonical order.
 *
 * Policy (GLM-SPEC decision 6): every 2-D weight inside the transformer layers gets the
 * requested type; the embedding and the output layer keep their stored precision unless asked;
 * norms and biases always do. `--type f16` keeps 16-bit sources bit-exact (F16 or BF16) and
 * narrows F32 weights to F16.
 *
 * THUDM's quantized releases (config.json quantization_bit; formats/thudm_quant.h): without an
 * explicit type that differs, their int8 / int4 codes and fp16 scales are repacked into glmq's
 * INT8 / INT4 rows as they are (no second rounding; the recipe is the source's width, and the
 * metadata's quantization.source_quantization says where it came from). An explicit type that
 * differs dequantizes them (code * scale, fp32, exact) and re-rounds (INT8/INT4, decision 6) or
 * rounds to F16, with a warning in the report and `requantized` in the metadata.
 */
#include "convert/calib.h"
#include "formats/checkpoint.h"
#include "core/pool.h"
#include "formats/thudm_quant.h"
#include "formats/pack.h"
#include "quant/quant.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/hash.h"
#include "convert/tensor_types.h"


void glmq_convert_opts_default(glmq_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->weight_type = GLMQ_TYPE_INT4;
    o->method = GLMQ_METHOD_RTN;
    o->calib_tokens = 128 * 512;
    o->calib_ctx = 512;
    o->damp = 0.01;
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

/* ---- per-tensor parallel pipeline ---- */

/*
 * Workers claim chunks of rows (about CHUNK_TARGET source bytes, so a chunk stays in L2 from the
 * read to the write) and take each chunk through every step themselves: pread, source hash,
 * widen + quantize, stored-bytes checksum, pwrite at the planned offset. The two checksums are
 * streams and must see the chunks in order, so each is taken under a ticket (chunk c waits until
 * chunk c-1 has been hashed); everything else runs concurrently. Which worker does a chunk never
 * changes its bytes, and the per-row statistics land in per-row slots that the caller reduces in
 * row order, so the file and the report are the same for any thread count.
 */
#define CHUNK_TARGET ((size_t)1 << 20)

typedef struct {
    glmq_src_set *set;
    const glmq_src_tensor *t;
    const glmq_src_storage *sto;
    glmq_pack_writer *w;
    int64_t pi; /* tensor index in the pack */
    const glmq_kernels *k;
    glmq_type out_type;
    int convert; /* 0: stored as read */
    int thudm_bits;              /* 4 / 8: THUDM's int8-stored codes (0: a float tensor) */
    const uint16_t *src_scales;  /* THUDM's fp16 scales [rows] */
    int64_t src_row_bytes;       /* bytes of one source row */
    int plain;   /* one contiguous uncompressed byte range: pread + source hash */
    int workers; /* threads that take chunks (1 when reads are not thread-safe) */
    int64_t rows, cols, row_bytes, chunk_rows, n_chunks;
    size_t es;
    file_hash *fh;
    uint8_t *tmp; /* gap reads of the source hash, used under src_ticket */
    size_t tmp_size;
    uint8_t **raw, **out; /* per thread */
    float **scratch;      /* per thread, cols floats */
    uint16_t *scales;     /* [rows][spr] */
    int64_t spr;          /* scales per row (glmq_scales_per_row) */
    glmq_qstats *stats;   /* [rows] */
    const glmq_convert_opts *o;
    const glmq_calib *cal; /* the tensor's rows come from calibration (convert/calib.h) */
    uint64_t bytes_before, total_bytes;
    atomic_llong next, src_ticket, out_ticket, done_bytes;
    atomic_int failed;
    pthread_mutex_t mu; /* guards sleeping on the tickets */
    pthread_cond_t cv;
    glmq_status st; /* first failure */
    glmq_err err;
    int write_errno;
    uint64_t write_off;
    size_t write_n;
} tjob;

/* Wake every worker sleeping on a ticket (after a ticket moved or a failure). */
static void wake_all(tjob *j)
{
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_fail(tjob *j, glmq_status st, const glmq_err *e)
{
    if (atomic_fetch_add(&j->failed, 1) == 0) {
        j->st = st;
        if (e) j->err = *e;
    }
    wake_all(j);
}

/* Wait until *ticket == c: a short spin (the holder usually finishes within microseconds), then
 * sleep on the condition variable, so an oversubscribed machine is not burnt by spinning.
 * Returns -1 when another worker failed meanwhile. */
static int wait_ticket(tjob *j, atomic_llong *ticket, int64_t c)
{
    for (int spin = 0; spin < 200; spin++) {
        if (atomic_load_explicit(ticket, memory_order_acquire) == c) return 0;
        if (atomic_load(&j->failed)) return -1;
    }
    pthread_mutex_lock(&j->mu);
    while (atomic_load_explicit(ticket, memory_order_acquire) != c && !atomic_load(&j->failed))
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    return atomic_load(&j->failed) ? -1 : 0;
}

static void advance_ticket(tjob *j, atomic_llong *ticket, int64_t next)
{
    atomic_store_explicit(ticket, next, memory_order_release);
    wake_all(j);
}

static void widen(const glmq_kernels *k, glmq_dtype dt, const void *src, float *dst, int64_t n)
{
    const glmq_type t = dt == GLMQ_DT_F16    ? GLMQ_TYPE_F16
                        : dt == GLMQ_DT_BF16 ? GLMQ_TYPE_BF16
                                             : GLMQ_TYPE_F32;
    glmq_widen_row(k, t, src, NULL, n, dst);
}

/* Error statistics of one stored row (approx, widened) against its source row w. */
static void row_stats(glmq_qstats *st, const float *w, const float *approx, int64_t n)
{
    memset(st, 0, sizeof *st);
    for (int64_t c = 0; c < n; c++) {
        double e = (double)approx[c] - w[c];
        st->sum_sq_err += e * e;
        st->sum_sq += (double)w[c] * w[c];
        if (fabs(e) > st->max_abs_err) st->max_abs_err = fabs(e);
    }
}

/* Rows [r0, r0+nr) of a calibrated tensor: the stored rows and scales calibration chose, and
 * their error statistics against the source (w: 2 * cols floats of scratch). */
static glmq_status calibrated_rows(const tjob *j, int64_t r0, int64_t nr, const uint8_t *raw,
                                   uint8_t *out, float *w, glmq_err *err)
{
    GLMQ_TRY(glmq_calib_rows(j->cal, j->t->name, r0, nr, out, &j->scales[r0 * j->spr], err));
    float *dq = w + j->cols;
    for (int64_t r = 0; r < nr; r++) {
        widen(j->k, j->t->dtype, raw + (size_t)r * (size_t)j->cols * j->es, w, j->cols);
        glmq_widen_row(j->k, j->out_type, out + (size_t)r * (size_t)j->row_bytes,
                       &j->scales[(r0 + r) * j->spr], j->cols, dq);
        row_stats(&j->stats[r0 + r], w, dq, j->cols);
    }
    return GLMQ_OK;
}

/*
 * Convert rows [r0, r0+nr) from raw to out. Returns -1, or the first row the quantizer refused:
 * its status in *bad_st (quant.h: GLMQ_E_VALUE with the NaN/Inf column in *bad_col, or
 * GLMQ_E_UNSUPPORTED when the row's scale overflows fp16; GLMQ_E_FORMAT for a THUDM row whose
 * scale or codes glmq cannot hold, with the message in *e). w holds 2 * cols floats.
 */
static int64_t convert_rows(const tjob *j, int64_t r0, int64_t nr, const uint8_t *raw,
                            uint8_t *out, float *w, glmq_status *bad_st, int64_t *bad_col,
                            glmq_err *e)
{
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *src = raw + (size_t)r * (size_t)j->cols * j->es;
        uint8_t *dst = out + (size_t)r * (size_t)j->row_bytes;
        glmq_qstats *st = &j->stats[r0 + r];
        if (j->thudm_bits) {
            const int8_t *codes = (const int8_t *)(raw + (size_t)r * (size_t)j->src_row_bytes);
            const uint16_t sc = j->src_scales[r0 + r];
            const int kept = j->out_type == glmq_thudm_type(j->thudm_bits); /* codes and scale */
            if (glmq_thudm_row(codes, j->thudm_bits, j->cols, sc, kept ? dst : NULL, j->t->name,
                               r0 + r, e) != GLMQ_OK) {
                *bad_st = GLMQ_E_FORMAT; /* the message is in *e */
                return r0 + r;
            }
            if (kept) {
                j->scales[r0 + r] = sc;
                memset(st, 0, sizeof *st);
                continue;
            }
            glmq_thudm_dequant_row(codes, j->thudm_bits, j->cols, sc, w); /* then re-rounded */
        } else {
            widen(j->k, j->t->dtype, src, w, j->cols);
        }
        if (j->out_type == GLMQ_TYPE_F16) { /* F32 narrowed to F16 */
            uint16_t *h = (uint16_t *)(void *)dst;
            j->k->f32_to_f16(w, h, j->cols);
            j->k->f16_to_f32(h, w + j->cols, j->cols);
            row_stats(st, w, w + j->cols, j->cols);
            continue;
        }
        uint16_t *sc = &j->scales[(r0 + r) * j->spr];
        glmq_status qs;
        if (glmq_type_group(j->out_type))
            qs = glmq_quantize_row_grouped(j->out_type, w, j->cols, dst, sc, st, bad_col);
        else
            qs = (j->out_type == GLMQ_TYPE_INT8 ? j->k->quantize_row_q8
                                                : j->k->quantize_row_q4)(w, j->cols, dst, sc, st,
                                                                         bad_col);
        if (qs != GLMQ_OK) {
            *bad_st = qs;
            return r0 + r;
        }
    }
    return -1;
}

static void tjob_run(void *arg, int ith, int nth)
{
    tjob *j = arg;
    (void)nth;
    if (ith >= j->workers) return;
    while (!atomic_load(&j->failed)) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->n_chunks) return;
        int64_t r0 = c * j->chunk_rows;
        int64_t nr = j->rows - r0 < j->chunk_rows ? j->rows - r0 : j->chunk_rows;
        size_t nbytes = (size_t)nr * (size_t)j->src_row_bytes;
        uint64_t foff =
            j->sto->offset + j->t->byte_offset + (uint64_t)r0 * (uint64_t)j->src_row_bytes;
        uint8_t *raw = j->raw[ith];
        glmq_err e = {0};
        glmq_status st = j->plain ? glmq_src_pread(j->set, j->sto->file, foff, raw, nbytes, &e)
                                  : glmq_src_read_rows_raw(j->set, j->t, r0, nr, raw, &e);
        /* 1. the source file's hash, in file order */
        if (wait_ticket(j, &j->src_ticket, c)) return;
        if (st == GLMQ_OK && j->plain)
            st = hash_feed(j->set, j->fh, j->sto->file, foff, raw, nbytes, j->tmp, j->tmp_size,
                           &e);
        advance_ticket(j, &j->src_ticket, c + 1);
        if (st != GLMQ_OK) {
            job_fail(j, st, &e);
            return;
        }
        /* 2. convert */
        const uint8_t *stored = raw;
        if (j->cal) {
            st = calibrated_rows(j, r0, nr, raw, j->out[ith], j->scratch[ith], &e);
            if (st != GLMQ_OK) {
                job_fail(j, st, &e);
                return;
            }
            stored = j->out[ith];
        } else if (j->convert) {
            glmq_status bad_st = GLMQ_OK;
            int64_t bad_col = -1;
            int64_t bad =
                convert_rows(j, r0, nr, raw, j->out[ith], j->scratch[ith], &bad_st, &bad_col, &e);
            if (bad >= 0) {
                if (bad_st == GLMQ_E_VALUE)
                    glmq_fail(&e, GLMQ_E_VALUE, "tensor '%s': NaN/Inf at row %lld column %lld",
                              j->t->name, (long long)bad, (long long)bad_col);
                else if (bad_st == GLMQ_E_FORMAT)
                    ; /* a THUDM row: glmq_thudm_row wrote the message */
                else
                    glmq_fail(&e, GLMQ_E_VALUE,
                              "tensor '%s' row %lld: max |w| / qmax overflows fp16 (qmax %d)",
                              j->t->name, (long long)bad,
                              glmq_type_codes(j->out_type) == GLMQ_TYPE_INT8 ? 127 : 7);
                job_fail(j, GLMQ_E_VALUE, &e);
                return;
            }
            stored = j->out[ith];
        }
        /* 3. the stored bytes' checksum, in row order; then the write, in any order */
        if (wait_ticket(j, &j->out_ticket, c)) return;
        st = glmq_pack_hash_rows(j->w, j->pi, r0, nr, stored, &e);
        advance_ticket(j, &j->out_ticket, c + 1);
        if (st != GLMQ_OK) {
            job_fail(j, st, &e);
            return;
        }
        uint64_t off;
        int64_t rb;
        glmq_pack_row_offset(j->w, j->pi, r0, &off, &rb, NULL);
        int en = glmq_pack_pwrite_at(j->w, off, stored, (size_t)(nr * rb));
        if (en) {
            if (atomic_fetch_add(&j->failed, 1) == 0) {
                j->st = GLMQ_E_IO;
                j->write_errno = en;
                j->write_off = off;
                j->write_n = (size_t)(nr * rb);
            }
            wake_all(j);
            return;
        }
        long long done = atomic_fetch_add(&j->done_bytes, (long long)nbytes) + (long long)nbytes;
        if (ith == 0 && j->o->progress)
            j->o->progress(j->o->progress_user, j->bytes_before + (uint64_t)done, j->total_bytes);
    }
}

/* ---- the conversion ---- */

typedef struct {
    int64_t ck;      /* index into ckpt->tensors */
    glmq_type type;  /* storage type in the pack */
} plan_entry;

/* The storage type of a tensor THUDM quantized (`bits`): a --tensor-type rule's, else its own
 * width (kept exactly), unless the caller asked for a type or group explicitly and the tensor
 * follows the recipe. */
static glmq_type choose_type_thudm(glmq_ttypes *tt, const glmq_convert_opts *o, const char *name,
                                   glmq_quant_rule rule, int bits)
{
    glmq_type t;
    if (glmq_ttypes_rule(tt, name, 2, rule, &t)) return t;
    int recipe = rule == GLMQ_QUANT_DEFAULT ||
                 (rule == GLMQ_QUANT_IF_EMBEDDING && o->quantize_embedding) ||
                 (rule == GLMQ_QUANT_IF_OUTPUT && o->quantize_output);
    if (recipe && (o->weight_type_given || o->group) && o->weight_type != GLMQ_TYPE_F16)
        return (glmq_type)glmq_type_grouped(o->weight_type, o->group);
    return recipe && o->weight_type_given ? o->weight_type : glmq_thudm_type(bits);
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
                            const file_hash *fh, int requant, const glmq_calib *cal,
                            const glmq_ttypes *tt, int grouped)
{
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    cJSON_AddStringToObject(m, "format", "glmq");
    cJSON_AddStringToObject(m, "format_version", grouped ? "1.1" : "1.0");
    cJSON_AddStringToObject(m, "glmq_version", GLMQ_VERSION_STRING);
    cJSON_AddItemToObject(m, "config", glmq_config_to_json(&ck->cfg));

    cJSON *q = cJSON_AddObjectToObject(m, "quantization");
    cJSON_AddStringToObject(q, "weight_type",
                            glmq_type_name(o->weight_type == GLMQ_TYPE_F16
                                               ? GLMQ_TYPE_F16
                                               : (glmq_type)glmq_type_grouped(o->weight_type,
                                                                              o->group)));
    const int tbits = ck->cfg.quant_bits, kept = tbits && !requant;
    if (!kept && o->weight_type == GLMQ_TYPE_F16) {
        cJSON_AddStringToObject(q, "method", "none (16-bit sources kept bit-exact, F32 narrowed "
                                             "to F16 with round-to-nearest-even)");
    } else {
        if (kept) {
            cJSON_AddStringToObject(q, "method", "from the source: THUDM's per-row symmetric "
                                                 "codes and fp16 scales, kept exactly");
        } else if (cal) {
            cJSON *cj = glmq_calib_json(cal);
            cJSON *mt = cJSON_GetObjectItemCaseSensitive(cj, "method");
            cJSON_AddStringToObject(q, "method", cJSON_IsString(mt) ? mt->valuestring : "?");
            cJSON_AddItemToObject(q, "calibration", cj);
        } else if (o->group) {
            cJSON_AddStringToObject(q, "method", "group-wise symmetric round-to-nearest (ggml's "
                                                 "Q4_0 / Q8_0 rule per group)");
        } else {
            cJSON_AddStringToObject(q, "method", "per-row symmetric round-to-nearest "
                                                 "(GLM-SPEC decision 6)");
        }
        /* kept: o->weight_type is the source's width (glmq_convert sets it) */
        cJSON_AddNumberToObject(q, "qmax", o->weight_type == GLMQ_TYPE_INT8 ? 127 : 7);
        if (o->group) { /* formats/SPEC.md §5: INT4 groups use -8..7 */
            cJSON_AddNumberToObject(q, "group", o->group);
            cJSON_AddNumberToObject(q, "qmin", o->weight_type == GLMQ_TYPE_INT8 ? -127 : -8);
        }
        cJSON_AddStringToObject(q, "scale_type", "f16");
        cJSON_AddStringToObject(q, "rounding",
                                kept ? "the source's (no second rounding)"
                                : cal ? "rint-ties-to-even"
                                : o->group ? (o->weight_type == GLMQ_TYPE_INT8
                                                  ? "w * (1/d), half away from zero"
                                                  : "w * (1/d), half up")
                                           : "rint-ties-to-even");
        cJSON_AddNumberToObject(q, "int4_block", GLMQ_Q4_BLOCK);
        cJSON_AddStringToObject(q, "int4_code", "nibble = q + 8");
        cJSON_AddNumberToObject(q, "int8_row_align", GLMQ_Q8_ALIGN);
    }
    if (tt) /* the rules as given; each tensor's type is in the directory */
        cJSON_AddItemToObject(q, "tensor_types", glmq_ttypes_json(tt));
    cJSON_AddBoolToObject(q, "quantize_embedding", o->quantize_embedding);
    cJSON_AddBoolToObject(q, "quantize_output", o->quantize_output);
    cJSON_AddStringToObject(q, "policy", "2-D weights inside transformer layers; embedding and "
                                         "output layer only when asked; norms and biases never");
    if (tbits) { /* formats/SPEC.md §7: where the quantization came from */
        cJSON *sq = cJSON_AddObjectToObject(q, "source_quantization");
        cJSON_AddStringToObject(sq, "origin", "THUDM quantization.py (config.json "
                                              "quantization_bit)");
        cJSON_AddNumberToObject(sq, "bits", tbits);
        cJSON_AddBoolToObject(sq, "embeddings", ck->cfg.quant_embeddings);
        cJSON_AddStringToObject(sq, "rule", "per row: scale = fp16(max|w| / (2^(bits-1) - 1)), "
                                            "q = round(w / scale); value = q * scale");
        cJSON_AddBoolToObject(sq, "requantized", requant);
        cJSON_AddStringToObject(
            sq, "kept",
            requant ? (o->weight_type == GLMQ_TYPE_F16
                           ? "no: the requested f16 dequantizes THUDM's codes (q * scale, "
                             "rounded to fp16)"
                           : "no: the requested type re-rounds THUDM's dequantized codes "
                             "(q * scale) per row, a second rounding")
                    : "yes: codes and scales as in the source");
    }

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
        for (int64_t j = 0; j < ck->n_tensors && !used; j++)
            used = ck->tensors[j].src == i || ck->tensors[j].scale_src == i;
        if (!used && !ck->set.tensors[i].used_as_piece)
            cJSON_AddItemToArray(sk, cJSON_CreateString(ck->set.tensors[i].name));
    }
    char *out = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return out;
}

glmq_status glmq_convert(const char *src_dir, const char *out_path, const glmq_convert_opts *opts,
                         glmq_convert_report *report, glmq_err *err)
{
    return glmq_convert_calib(src_dir, out_path, opts, report, NULL, err);
}

glmq_status glmq_convert_calib(const char *src_dir, const char *out_path,
                               const glmq_convert_opts *opts, glmq_convert_report *report,
                               glmq_calib **keep, glmq_err *err)
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
    GLMQ_FAIL_IF(o.group != 0 && (glmq_type_grouped(GLMQ_TYPE_INT4, o.group) < 0 ||
                                  o.weight_type == GLMQ_TYPE_F16),
                 err, GLMQ_E_INVALID, "group size %d: must be 32, 64 or 128, with int4 or int8",
                 o.group);

    glmq_status st = GLMQ_OK;
    glmq_checkpoint *ck = NULL;
    glmq_pool *pool = NULL;
    glmq_pack_writer *w = NULL;
    plan_entry *plan = NULL;
    order_entry *order = NULL;
    glmq_pack_tensor_decl *decl = NULL;
    glmq_tensor_stats *stats = NULL;
    file_hash *fh = NULL;
    void **bufs = NULL; /* per thread: raw chunk, output chunk, fp32 row */
    uint16_t *scales = NULL, *src_scales = NULL;
    glmq_qstats *qst = NULL;
    uint8_t *tmp = NULL;
    char *meta = NULL;
    GLMQ_FAIL_IF(keep && *keep && o.method == GLMQ_METHOD_RTN, err, GLMQ_E_INVALID,
                 "a kept calibration needs a calibrated method (gptq or search)");
    glmq_calib *calib = keep ? *keep : NULL; /* given: used, not redone, not freed */
    const int own_calib = !calib;
    glmq_ttypes *tt = NULL;
    const size_t tmp_size = (size_t)4 << 20;
    const glmq_kernels *k = glmq_kernels_get();
    int nth = 1;

    GLMQ_TRY_G(glmq_ttypes_compile(&o, &tt, err));
    GLMQ_TRY_G(glmq_checkpoint_open(src_dir, &ck, err));
    /* THUDM's quantized release: the recipe is the source's width unless asked otherwise */
    if (ck->cfg.quant_bits && !o.weight_type_given)
        o.weight_type = glmq_thudm_type(ck->cfg.quant_bits);
    int requant = 0;
    if (o.method != GLMQ_METHOD_RTN) {
        GLMQ_FAIL_IF_G(ck->cfg.quant_bits != 0, err, GLMQ_E_UNSUPPORTED,
                       "'%s': --method gptq/search needs an unquantized checkpoint; this one was "
                       "quantized by THUDM (quantization_bit %d)",
                       src_dir, (int)ck->cfg.quant_bits);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", out_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir] = 0;
        else
            snprintf(dir, sizeof dir, ".");
        if (!calib) GLMQ_TRY_G(glmq_calibrate(src_dir, &o, dir, &calib, err));
    }
    GLMQ_TRY_G(glmq_pool_create(o.threads, &pool, err));
    nth = glmq_pool_size(pool);

    /* plan: which tensors, which types, canonical order */
    int64_t n = 0;
    plan = calloc((size_t)ck->n_tensors + 1, sizeof *plan);
    decl = calloc((size_t)ck->n_tensors + 1, sizeof *decl);
    stats = calloc((size_t)ck->n_tensors + 1, sizeof *stats);
    GLMQ_FAIL_IF_G(!plan || !decl || !stats, err, GLMQ_E_NOMEM, "out of memory");
    int64_t max_cols = 1;
    uint64_t total_in = 0;
    int grouped = 0; /* a group-wise tensor: format 1.1 */
    for (int64_t i = 0; i < ck->n_tensors; i++) {
        const glmq_ckpt_tensor *ct = &ck->tensors[i];
        if (ct->src < 0) continue;
        const glmq_src_tensor *t = &ck->set.tensors[ct->src];
        plan[n].ck = i;
        plan[n].type = ct->qbits ? choose_type_thudm(tt, &o, t->name, ct->want.quant, ct->qbits)
                                 : glmq_ttypes_choose(tt, &o, t->name, t->ndim, ct->want.quant,
                                                      t->dtype);
        if (ct->qbits && plan[n].type != glmq_thudm_type(ct->qbits)) requant = 1;
        decl[n].name = t->name;
        decl[n].type = plan[n].type;
        decl[n].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) decl[n].shape[d] = t->shape[d];
        if (ct->qbits) decl[n].shape[1] = ct->want.shape[1]; /* codes -> elements */
        if (decl[n].shape[t->ndim - 1] > max_cols) max_cols = decl[n].shape[t->ndim - 1];
        total_in += (uint64_t)t->nelem * glmq_dtype_size(t->dtype);
        if (glmq_type_group(plan[n].type)) grouped = 1;
        n++;
    }
    GLMQ_TRY_G(glmq_ttypes_check_used(tt, err));
    if (requant)
        GLMQ_TRY_G(glmq_checkpoint_warn(
            ck, err,
            "'%s' was quantized by THUDM (quantization_bit %d): --type %s differs, so its codes "
            "are dequantized (q * scale) and %s; without --type they are kept exactly",
            src_dir, ck->cfg.quant_bits, glmq_type_name(o.weight_type),
            o.weight_type == GLMQ_TYPE_F16 ? "rounded to f16"
                                           : "re-rounded per row (a second rounding)"));

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
    fh = calloc(ck->set.nfiles + 1, sizeof *fh);
    order = malloc((size_t)(n + 1) * sizeof *order);
    GLMQ_FAIL_IF_G(!tmp || !fh || !order, err, GLMQ_E_NOMEM,
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

    /* per-thread chunk buffers, sized for the largest chunk of any tensor */
    size_t raw_need = 0, out_need = 0;
    int64_t max_rows = 1, max_spr = 1;
    for (int64_t i = 0; i < n; i++) {
        const glmq_src_tensor *t = &ck->set.tensors[ck->tensors[plan[i].ck].src];
        int64_t rows = glmq_src_rows(t), cols = glmq_src_cols(t);
        size_t es = glmq_dtype_size(t->dtype);
        int64_t cr = (int64_t)(CHUNK_TARGET / ((size_t)cols * es));
        if (cr < 1) cr = 1;
        if (cr > rows) cr = rows;
        if ((size_t)cr * (size_t)cols * es > raw_need) raw_need = (size_t)cr * (size_t)cols * es;
        const glmq_ckpt_tensor *ct = &ck->tensors[plan[i].ck];
        size_t ob = (size_t)cr * (size_t)glmq_row_bytes(plan[i].type,
                                                        ct->qbits ? ct->want.shape[1] : cols);
        if (ob > out_need) out_need = ob;
        if (rows > max_rows) max_rows = rows;
        const int64_t spr = glmq_scales_per_row(plan[i].type, ct->qbits ? ct->want.shape[1] : cols);
        if (spr > max_spr) max_spr = spr;
    }
    bufs = calloc((size_t)nth * 3, sizeof *bufs);
    scales = malloc((size_t)max_rows * (size_t)max_spr * sizeof *scales);
    src_scales = malloc((size_t)max_rows * sizeof *src_scales);
    qst = malloc((size_t)max_rows * sizeof *qst);
    GLMQ_FAIL_IF_G(!bufs || !scales || !src_scales || !qst, err, GLMQ_E_NOMEM, "out of memory");
    uint8_t **raws = (uint8_t **)bufs, **outs = (uint8_t **)bufs + nth;
    float **scr = (float **)(void *)((uint8_t **)bufs + 2 * nth);
    for (int i = 0; i < nth; i++) {
        raws[i] = malloc(raw_need);
        outs[i] = malloc(out_need);
        scr[i] = malloc(2 * (size_t)max_cols * sizeof(float)); /* a row and its copy */
        GLMQ_FAIL_IF_G(!raws[i] || !outs[i] || !scr[i], err, GLMQ_E_NOMEM,
                       "out of memory for conversion buffers");
    }

    uint64_t done_bytes = 0;
    for (int64_t oi = 0; oi < n; oi++) {
        int64_t pi = order[oi].pi;
        const glmq_ckpt_tensor *ct = &ck->tensors[plan[pi].ck];
        const glmq_src_tensor *t = &ck->set.tensors[ct->src];
        const glmq_src_storage *sto = &ck->set.storages[t->storage];
        glmq_type ty = plan[pi].type;
        int64_t rows = glmq_src_rows(t), cols = glmq_src_cols(t);
        size_t es = glmq_dtype_size(t->dtype);
        const int64_t src_row_bytes = cols * (int64_t)es;
        if (ct->qbits) { /* THUDM's codes: `cols` elements in src_row_bytes; its fp16 scales */
            cols = ct->want.shape[1];
            GLMQ_TRY_G(glmq_src_read_rows_raw(&ck->set, &ck->set.tensors[ct->scale_src], 0, 1,
                                              src_scales, err));
        }
        int quant = glmq_type_scaled(ty);
        int narrow = ty == GLMQ_TYPE_F16 && t->dtype == GLMQ_DT_F32;
        int plain = t->contiguous && !sto->deflated;
        int64_t cr = (int64_t)(CHUNK_TARGET / (size_t)src_row_bytes);
        if (cr < 1) cr = 1;
        if (cr > rows) cr = rows;
        tjob *j = calloc(1, sizeof *j);
        GLMQ_FAIL_IF_G(!j, err, GLMQ_E_NOMEM, "out of memory");
        *j = (tjob){.set = &ck->set, .t = t, .sto = sto, .w = w, .pi = pi, .k = k,
                    .out_type = ty, .convert = quant || narrow || ct->qbits, .plain = plain,
                    .thudm_bits = ct->qbits, .src_scales = src_scales,
                    .src_row_bytes = src_row_bytes,
                    .workers = plain ? nth : 1, .rows = rows, .cols = cols,
                    .row_bytes = glmq_row_bytes(ty, cols), .chunk_rows = cr,
                    .n_chunks = (rows + cr - 1) / cr, .es = es, .fh = &fh[sto->file],
                    .tmp = tmp, .tmp_size = tmp_size, .raw = raws, .out = outs, .scratch = scr,
                    .scales = scales, .spr = glmq_scales_per_row(ty, cols), .stats = qst, .o = &o,
                    .cal = quant && glmq_calib_has(calib, t->name, ty, rows, cols) ? calib : NULL,
                    .bytes_before = done_bytes,
                    .total_bytes = total_in};
        atomic_init(&j->next, 0);
        atomic_init(&j->src_ticket, 0);
        atomic_init(&j->out_ticket, 0);
        atomic_init(&j->done_bytes, 0);
        atomic_init(&j->failed, 0);
        pthread_mutex_init(&j->mu, NULL);
        pthread_cond_init(&j->cv, NULL);
        glmq_pool_run(pool, tjob_run, j);
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        if (atomic_load(&j->failed)) {
            st = j->write_errno ? glmq_pack_fail_io(w, j->write_errno, j->write_off, j->write_n, err)
                                : j->st;
            if (!j->write_errno && err) *err = j->err;
            if (j->st == GLMQ_E_VALUE) glmq_err_prefix(err, st, "'%s': ", src_dir);
            free(j);
            goto fail;
        }
        free(j);
        done_bytes += (uint64_t)rows * (uint64_t)src_row_bytes;
        if (o.progress) o.progress(o.progress_user, done_bytes, total_in);
        if (quant) GLMQ_TRY_G(glmq_pack_write_scales(w, pi, scales, err));
        /* statistics, reduced in row order */
        glmq_tensor_stats *ts = &stats[pi];
        snprintf(ts->name, sizeof ts->name, "%s", t->name);
        ts->type = ty;
        ts->rows = rows;
        ts->cols = cols;
        double sse = 0, ssq = 0, mx = 0;
        if (quant || narrow || ct->qbits)
            for (int64_t r = 0; r < rows; r++) {
                sse += qst[r].sum_sq_err;
                ssq += qst[r].sum_sq;
                if (qst[r].max_abs_err > mx) mx = qst[r].max_abs_err;
            }
        double nel = (double)rows * (double)cols;
        ts->rms_err = sqrt(sse / nel);
        ts->max_abs_err = mx;
        ts->sqnr_db = sse > 0 ? 10.0 * log10(ssq / sse) : INFINITY;
    }
    /* finish provenance hashes: whatever the reads did not cover */
    for (uint32_t f = 0; f < ck->set.nfiles; f++)
        GLMQ_TRY_G(hash_gap(&ck->set, &fh[f], f, ck->set.files[f].size, tmp, tmp_size, err));

    meta = build_metadata(ck, &o, fh, requant, calib, tt, grouped);
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
    if (keep && own_calib && st == GLMQ_OK)
        *keep = calib; /* handed to the caller */
    else if (own_calib)
        glmq_calib_free(calib);
    glmq_ttypes_free(tt);
    free(plan);
    free(order);
    free(decl);
    free(stats);
    if (bufs)
        for (int i = 0; i < 3 * nth; i++) free(bufs[i]);
    free(bufs);
    free(tmp);
    free(scales);
    free(src_scales);
    free(qst);
    cJSON_free(meta);
    return st;
}
