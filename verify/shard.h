/*
 * shard.h - sharded drift evaluation: partial results of `glmq verify --shard I/N --partial F`
 * and their merge (`glmq merge`) into the report a single process gives (internal).
 *
 * Shard I of N evaluates windows k = I, I + N, I + 2N, ... of the protocol (the same windows
 * glmq_windows cuts for one process) and keeps, per window and per Q mode, the exact window sums
 * of verify/metrics.h (glmq_window_sums: fp64 sums, counts, the maximum, per-layer sums and the
 * KL value of every scored position). The merge adds the windows of all N parts in window order
 * 0, 1, 2, ... exactly as glmq_drift_eval_modes does, so every metric is the same bits as a
 * single-process run; only timings differ.
 *
 * The partial file (".part"), version 1. All integers little-endian, every double the raw
 * IEEE-754 binary64 bits little-endian (fp64 round-trips exactly). A reader refuses any other
 * magic or version, and checks every count against the bytes that remain before allocating.
 *
 *   1. Header, 128 bytes:
 *        off size field
 *          0    8 magic "GLMQPART"
 *          8    4 version (1)
 *         12    4 header size (128)
 *         16    4 shard index I            (I < N)
 *         20    4 shard count N            (1 .. GLMQ_PART_MAX_SHARDS)
 *         24    8 text ids n_ids           (1 .. 2^40)
 *         32    8 XXH3-64 of the text ids  (int32 little-endian)
 *         40    8 windows of the protocol  (1 .. n_ids)
 *         48    8 ctx                      (2 .. 2^24)
 *         56    8 stride                   (strided protocol; 0 otherwise)
 *         64    4 protocol                 (0 default, 1 strided)
 *         68    4 Q modes M                (1 or 2)
 *         72    4 Q mode 0                 (glmq_forward_mode: 0 reference, 1 exact, 2 fast)
 *         76    4 Q mode 1                 (0 when M = 1)
 *         80    4 reference mode
 *         84    4 layers L                 (1 .. 65536)
 *         88    8 vocabulary V             (1 .. 2^31)
 *         96    8 ident of QUANT           (glmq_model_ident)
 *        104    8 ident of REF
 *        112    8 seconds this shard took  (f64, >= 0)
 *        120    8 windows R in this part   (must be the count of k < windows with k % N == I)
 *   2. Ten strings, each u32 length (<= 4096) + bytes without NUL: glmq version, QUANT path,
 *      kind, weight type, architecture, REF path, kind, weight type, architecture, text source.
 *   3. R window records, windows I, I + N, ... in that order:
 *        u64 window index k
 *        M times (Q mode order):  u64 n_pos (<= ctx), u64 agree (<= n_pos),
 *                                 f64 nll_ref, nll_q, kl, dp, dp_sq, dl_sq, dl_max,
 *                                 f64 layer_num[L], f64 layer_den[L], f64 kld[n_pos]
 *      n_pos is the same in every mode of a record; the n_pos of all records add up to at most
 *      n_ids; kl, dp_sq, dl_sq, dl_max, layer sums and KL values are never negative.
 *   4. u64 XXH3-64 of every byte before it; the file ends there.
 */
#ifndef GLMQ_VERIFY_SHARD_H
#define GLMQ_VERIFY_SHARD_H

#include "verify/report.h"

#define GLMQ_PART_MAGIC "GLMQPART"
#define GLMQ_PART_VERSION 1u
#define GLMQ_PART_HEADER 128u
#define GLMQ_PART_MAX_SHARDS 65536
#define GLMQ_PART_MAX_STRING 4096u

/* One window of a part: its index and the sums of each Q mode (arrays owned by the part). */
typedef struct {
    int64_t window;
    glmq_window_sums m[2];
} glmq_part_window;

/* A partial result in memory. */
typedef struct glmq_part {
    int64_t shard, n_shards;
    int64_t n_ids, n_windows; /* text ids and windows of the whole protocol */
    uint64_t ids_hash;
    int64_t ctx, stride;
    int strided, nmodes;
    glmq_forward_mode modes[2], ref_mode;
    int64_t n_layers, vocab;
    uint64_t quant_ident, ref_ident;
    double seconds;
    /* owned strings: glmq version, QUANT path/kind/weight type/arch, REF the same, text source */
    char *str[10];
    int64_t n_records;
    glmq_part_window *rec; /* [n_records] */
} glmq_part;

enum {
    GLMQ_PART_S_VERSION, GLMQ_PART_S_QPATH, GLMQ_PART_S_QKIND, GLMQ_PART_S_QTYPE,
    GLMQ_PART_S_QARCH, GLMQ_PART_S_RPATH, GLMQ_PART_S_RKIND, GLMQ_PART_S_RTYPE,
    GLMQ_PART_S_RARCH, GLMQ_PART_S_TEXT
};

/* XXH3-64 of n text ids as int32 little-endian. */
uint64_t glmq_ids_hash(const int32_t *ids, int64_t n);

/* Evaluate shard `shard` of `n_shards` of the drift of q against ref (as glmq_drift_eval_modes
 * with the same o, modes and nmodes <= 2) into a new part; the paths and the text source name
 * are recorded for the report. seconds is left 0 for the caller. Free with glmq_part_free. */
glmq_status glmq_shard_eval(const glmq_model *ref, const glmq_model *q, const char *ref_path,
                            const char *quant_path, const char *text_source, const int32_t *ids,
                            int64_t n, const glmq_eval_opts *o, const glmq_forward_mode *modes,
                            int nmodes, int64_t shard, int64_t n_shards, glmq_part **out,
                            glmq_err *err);

/* The file bytes of a part (malloc'd). */
glmq_status glmq_part_encode(const glmq_part *p, uint8_t **buf, size_t *size, glmq_err *err);

/* Write a part to `path` atomically (core/atomic.h). */
glmq_status glmq_part_write(const glmq_part *p, const char *path, glmq_err *err);

/* Parse a part from bytes; `name` (the file) starts every error message. A malformed input is
 * GLMQ_E_FORMAT (GLMQ_E_CHECKSUM for a wrong trailer, GLMQ_E_UNSUPPORTED for another version)
 * naming the field and byte offset; *out is NULL on failure. */
glmq_status glmq_part_decode(const uint8_t *data, size_t size, const char *name, glmq_part **out,
                             glmq_err *err);

/* Read and parse the file `path`. */
glmq_status glmq_part_read(const char *path, glmq_part **out, glmq_err *err);

void glmq_part_free(glmq_part *p);

/* The options of the run a part records, as an evaluation's (for the report). */
void glmq_part_opts(const glmq_part *p, glmq_eval_opts *o);

/* The model descriptions a part records (strings borrowed from p). */
glmq_model_desc glmq_part_quant(const glmq_part *p);
glmq_model_desc glmq_part_ref(const glmq_part *p);

/* Merge n parts (names[i] is the file of parts[i], for messages): they must be one run (same
 * glmq version, models, text, protocol, ctx, kernels, windows, shard count N == n) and shards
 * 0 .. N-1 each exactly once, else GLMQ_E_INVALID naming the file. d[0 .. nmodes) receive the
 * drift of each Q mode (release with glmq_drift_free); *first is the part of shard 0, *seconds
 * the sum of the parts' seconds. */
glmq_status glmq_parts_merge(glmq_part *const *parts, const char *const *names, int n,
                             glmq_drift d[2], int *nmodes, const glmq_part **first,
                             double *seconds, glmq_err *err);

#endif
