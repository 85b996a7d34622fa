/*
 * pack.h - writer (and shared layout constants) of the glmq packed file; internal.
 *
 * The on-disk format is specified in formats/SPEC.md; the reader is the public glmq_pack_* API
 * in src/glmq.h (formats/pack_read.c). Layout in one line:
 *
 *   header(128) | string table | tensor directory | blob directory | blobs and tensor data
 *   (each region 64-byte aligned) | metadata JSON
 *
 * The writer computes the whole layout from the declared tensors and blobs up front, so tensor
 * data can be written in any order with pwrite; rows of one tensor must arrive in row order
 * (their checksum is streamed). It writes through the atomic writer (src/core/atomic.h: an
 * unnamed O_TMPFILE file next to the output, linked into place only in glmq_pack_writer_finish,
 * after fsync): on any failure, or if the process is killed, the output path is untouched and no
 * file is left behind. Errors are sticky (Redis rio style): a failed
 * write makes every later call a no-op and finish reports the first error.
 */
#ifndef GLMQ_FORMATS_PACK_H
#define GLMQ_FORMATS_PACK_H

#include "core/internal.h"
#include "formats/layout.h"

#define GLMQ_PACK_MAGIC "GLMQPACK"
#define GLMQ_PACK_VERSION_MAJOR 1
#define GLMQ_PACK_VERSION_MINOR 0
/* The minor version of a file holding a group-wise tensor (SPEC §9): 1.0 readers refuse the
 * type by its number; files without one stay 1.0, byte for byte as before. */
#define GLMQ_PACK_VERSION_MINOR_GROUPS 1
#define GLMQ_PACK_HEADER_SIZE 128
#define GLMQ_PACK_TENSOR_ENTRY 128
#define GLMQ_PACK_BLOB_ENTRY 64
#define GLMQ_PACK_ALIGN 64

/* glmq_pack_open, with load != 0: the file is read into anonymous memory instead of mapped
 * (core/file.h glmq_file_view; `--no-mmap`). Same validation, same views. */
glmq_status glmq_pack_open_load(const char *path, int load, glmq_pack **out, glmq_err *err);

typedef struct {
    const char *name;
    glmq_type type;
    int ndim;
    int64_t shape[GLMQ_MAX_DIMS];
} glmq_pack_tensor_decl;

typedef struct {
    const char *name;
    uint64_t size;
} glmq_pack_blob_decl;

typedef struct glmq_pack_writer glmq_pack_writer;

glmq_status glmq_pack_writer_create(const char *out_path, const glmq_pack_tensor_decl *tensors,
                                    int64_t n_tensors, const glmq_pack_blob_decl *blobs,
                                    int64_t n_blobs, glmq_pack_writer **out, glmq_err *err);

/* Write blob i whole. */
glmq_status glmq_pack_write_blob(glmq_pack_writer *w, int64_t i, const void *data, glmq_err *err);

/* Write rows [row0, row0+nrows) of tensor i: nrows * glmq_row_bytes() (formats/layout.h) bytes. Rows of one
 * tensor must be written in increasing order, without gaps. */
glmq_status glmq_pack_write_rows(glmq_pack_writer *w, int64_t i, int64_t row0, int64_t nrows,
                                 const void *data, glmq_err *err);

/*
 * For concurrent producers (convert.c): each worker writes its rows with glmq_pack_pwrite_at at
 * the offset glmq_pack_row_offset gives, in any order and from any thread; the checksum is
 * extended with glmq_pack_hash_rows, which the caller serialises in row order (it also counts the
 * rows as written). glmq_pack_pwrite_at returns 0 or an errno and does not touch the sticky
 * error; glmq_pack_fail_io records one.
 */
glmq_status glmq_pack_row_offset(const glmq_pack_writer *w, int64_t i, int64_t row0,
                                 uint64_t *off, int64_t *row_bytes, glmq_err *err);
glmq_status glmq_pack_hash_rows(glmq_pack_writer *w, int64_t i, int64_t row0, int64_t nrows,
                                const void *data, glmq_err *err);
int glmq_pack_pwrite_at(glmq_pack_writer *w, uint64_t off, const void *data, size_t n);
glmq_status glmq_pack_fail_io(glmq_pack_writer *w, int errnum, uint64_t off, size_t n,
                              glmq_err *err);

/* Write the scale table of quantized tensor i (rows x glmq_scales_per_row fp16 values, row
 * major), after all of its rows. */
glmq_status glmq_pack_write_scales(glmq_pack_writer *w, int64_t i, const uint16_t *scales,
                                   glmq_err *err);

/* Write metadata, directories and header; fsync; link over the output; fsync the directory.
 * Frees the writer in all cases. On failure nothing is left at or next to the output. */
glmq_status glmq_pack_writer_finish(glmq_pack_writer *w, const char *metadata_json, glmq_err *err);

/* Discard: drop the unfinished file and free. NULL-safe. */
void glmq_pack_writer_abort(glmq_pack_writer *w);

/* Total bytes the data regions occupy (for progress and reports). */
uint64_t glmq_pack_writer_size(const glmq_pack_writer *w);

#endif
