/*
 * source.h - the tensor table that checkpoint readers fill (internal).
 *
 * A glmq_src_set describes tensors found in one or more checkpoint files without holding their
 * data: every tensor points into a "storage" (a byte range of a file, possibly a deflated zip
 * member), with an element offset, shape and strides. Readers (safetensors.c, torchzip.c) append
 * to a set; convert/ reads tensor bytes through glmq_src_read_* in bounded chunks.
 *
 * Invariants established by the readers before they return GLMQ_OK:
 *   - every storage lies inside its file (offset + comp_size <= file size);
 *   - every tensor's elements lie inside its storage: byte_offset + (span of shape/strides) *
 *     elem_size <= storage.size, computed with overflow checks;
 *   - names are unique within the set, non-empty, NUL-terminated, < GLMQ_SRC_NAME_MAX bytes;
 *   - ndim <= GLMQ_MAX_DIMS, every dim >= 0, nelem = product of dims (no overflow), nelem * elem
 *     size fits in int64.
 */
#ifndef GLMQ_FORMATS_SOURCE_H
#define GLMQ_FORMATS_SOURCE_H

#include "core/internal.h"

#include <stdio.h>

#define GLMQ_SRC_NAME_MAX 256

/* Element types a checkpoint may contain. Readers accept these; convert/ needs F16/BF16/F32 for
 * the tensors the architecture uses and reports (skips) the others. */
typedef enum {
    GLMQ_DT_F32 = 0,
    GLMQ_DT_F16,
    GLMQ_DT_BF16,
    GLMQ_DT_F64,
    GLMQ_DT_I64,
    GLMQ_DT_I32,
    GLMQ_DT_I16,
    GLMQ_DT_I8,
    GLMQ_DT_U8,
    GLMQ_DT_BOOL,
    GLMQ_DT_COUNT
} glmq_dtype;

size_t glmq_dtype_size(glmq_dtype t);      /* bytes per element */
const char *glmq_dtype_name(glmq_dtype t); /* "F16", "BF16", ... (safetensors spelling) */

typedef struct {
    char *path;        /* as opened (owned) */
    const char *base;  /* basename within path */
    int fd;
    uint64_t size;
} glmq_src_file;

typedef struct {
    uint32_t file;      /* index into set->files */
    uint64_t offset;    /* byte offset in the file where the storage bytes (or deflate stream)
                           begin */
    uint64_t size;      /* bytes once uncompressed */
    uint64_t comp_size; /* bytes in the file (== size when stored) */
    int deflated;       /* 1: raw deflate stream (zip method 8) */
    int has_crc;        /* 1: crc32 must match the uncompressed bytes (checked when read) */
    uint32_t crc32;
    char *label;        /* for messages, e.g. "pytorch_model/data/3" (owned, may be NULL) */
} glmq_src_storage;

typedef struct {
    char name[GLMQ_SRC_NAME_MAX];
    glmq_dtype dtype;
    int ndim;
    int64_t shape[GLMQ_MAX_DIMS];
    int64_t stride[GLMQ_MAX_DIMS]; /* in elements; row-major for safetensors */
    int64_t nelem;
    uint32_t storage;              /* index into set->storages */
    uint64_t byte_offset;          /* offset of element 0 within the storage, in bytes */
    int contiguous;                /* 1 when strides are row-major (dims of size 1 ignored) */
    /* composite tensors (glmq_src_add_composite): n_pieces > 0; storage/byte_offset are the
     * first piece's (for messages and file order), contiguous is 0, strides are unused */
    int32_t n_pieces;
    int32_t axis;                  /* 0: pieces stacked along dim 0; 1: along the last dim */
    int64_t piece0;                /* index of the first piece in set->pieces */
    int used_as_piece;             /* 1 when a composite or an alias reads this tensor */
    int64_t alias_of;              /* glmq_src_add_alias: index + 1 of the tensor this one
                                      renames; 0 for none */
} glmq_src_tensor;

/* One piece of a composite tensor: `count` slices starting at `first` along the composite's
 * axis (rows of a 2-D tensor for axis 0, columns for axis 1, elements of a 1-D tensor). */
typedef struct {
    int64_t tensor; /* index into set->tensors */
    int64_t first, count;
} glmq_src_piece;

typedef struct glmq_src_set {
    glmq_src_file *files;
    uint32_t nfiles, cap_files;
    glmq_src_storage *storages;
    uint32_t nstorages, cap_storages;
    glmq_src_tensor *tensors;
    int64_t ntensors, cap_tensors;
    /* hash index over tensor names (glmq_src_find) */
    int64_t *index;
    uint64_t index_cap, index_used;
    /* pieces of the composite tensors */
    glmq_src_piece *pieces;
    int64_t npieces, cap_pieces;
    /* single-entry cache of the last inflated storage (deflated zip members) */
    uint32_t cache_storage;
    uint8_t *cache;
} glmq_src_set;

void glmq_src_set_init(glmq_src_set *s);
void glmq_src_set_free(glmq_src_set *s); /* closes files, frees everything; NULL-safe */

/* Open `path` read-only and append it. *index receives its file index. */
glmq_status glmq_src_add_file(glmq_src_set *s, const char *path, uint32_t *index, glmq_err *err);
/* Append a storage (copied; label is duplicated). Validates it lies inside its file. */
glmq_status glmq_src_add_storage(glmq_src_set *s, const glmq_src_storage *st, uint32_t *index,
                                 glmq_err *err);
/* Append a tensor (copied). Validates name uniqueness and that its span fits its storage, and
 * computes nelem and contiguous. */
glmq_status glmq_src_add_tensor(glmq_src_set *s, const glmq_src_tensor *t, glmq_err *err);

/*
 * Append a composite tensor `name`: the concatenation of `n` pieces of tensors already in the set
 * along `axis` (0: the first dimension; 1: the last dimension of 2-D pieces). This is how a
 * checkpoint whose layout splits one glmq tensor into several (separate q/k/v projections,
 * tensor-parallel shards) presents the glmq tensor; it is read through glmq_src_read_rows_raw
 * like any other (never mapped). Pieces must share dtype and rank (1 or 2) and agree on the other
 * dimension, and every range must lie inside its tensor. The piece tensors are marked
 * used_as_piece.
 */
glmq_status glmq_src_add_composite(glmq_src_set *s, const char *name, int axis,
                                   const glmq_src_piece *pieces, int n, glmq_err *err);

/* Append `name` as a second name of tensor `index`: the same bytes, shape and strides (so a
 * contiguous tensor stays one byte range that can be mapped or read in one piece). This is how
 * a checkpoint layout that only names a glmq tensor differently presents it. The renamed tensor
 * is marked used_as_piece. */
glmq_status glmq_src_add_alias(glmq_src_set *s, int64_t index, const char *name, glmq_err *err);

/* Index of the tensor called `name`, or -1 (hash lookup). */
int64_t glmq_src_find(const glmq_src_set *s, const char *name);
/* Undo everything appended since the set held nf files, ns storages and nt tensors (a reader's
 * rollback after a failed load): closes the files, drops the inflate cache if it belonged to a
 * removed storage, and rebuilds the name index. */
void glmq_src_set_truncate(glmq_src_set *s, uint32_t nf, uint32_t ns, int64_t nt);

/* pread exactly n bytes at offset of file f; short read or error -> GLMQ_E_IO/GLMQ_E_FORMAT
 * with file name and offset. */
glmq_status glmq_src_pread(const glmq_src_set *s, uint32_t file, uint64_t offset, void *dst,
                           size_t n, glmq_err *err);

/* Read bytes [off, off+n) of storage `st` (uncompressed view) into dst. Deflated storages are
 * inflated whole into the set's cache on first use (and their CRC checked); the CRC of stored
 * members is checked only when they are read whole (glmq_src_storage_slurp). */
glmq_status glmq_src_storage_read(glmq_src_set *s, uint32_t st, uint64_t off, void *dst,
                                  size_t n, glmq_err *err);

/* Inflate a deflated storage once, streaming through a small buffer, and check its size and
 * CRC-32 without keeping the output: a corrupt member is reported before anything is written.
 * Stored members are not read (their CRC would cost a full pass over the checkpoint). */
glmq_status glmq_src_storage_verify(glmq_src_set *s, uint32_t st, glmq_err *err);

/* Read the whole storage into a new malloc'd buffer (*out, size in *n); verifies the CRC when
 * known. Used for small members such as data.pkl. */
glmq_status glmq_src_storage_slurp(glmq_src_set *s, uint32_t st, uint8_t **out, size_t *n,
                                   glmq_err *err);

/*
 * Read rows [row0, row0+nrows) of tensor t as raw little-endian elements in row-major order
 * (rows = product of all dims but the last, cols = last dim; a 1-D tensor is one row) into dst,
 * which holds nrows*cols*elem_size bytes. Handles non-contiguous strides by gathering, and
 * composite tensors by reading their pieces.
 */
glmq_status glmq_src_read_rows_raw(glmq_src_set *s, const glmq_src_tensor *t, int64_t row0,
                                   int64_t nrows, void *dst, glmq_err *err);

/* rows/cols view of a tensor as described above (0-D tensors: 1 x 1). */
static inline int64_t glmq_src_cols(const glmq_src_tensor *t)
{
    return t->ndim == 0 ? 1 : t->shape[t->ndim - 1];
}
static inline int64_t glmq_src_rows(const glmq_src_tensor *t)
{
    int64_t c = glmq_src_cols(t);
    return c == 0 ? 0 : t->nelem / c;
}

/* ---- readers ---- */

/* Parse a safetensors file (GLM-SPEC D.1-D.4), appending its tensors to s. Every rule of D.3 is
 * enforced; errors name the file, tensor and byte offset. */
glmq_status glmq_safetensors_load(glmq_src_set *s, const char *path, glmq_err *err);

/* Parse a torch.save zip file (GLM-SPEC E), appending its tensors to s. Uses the restricted
 * unpickler: nothing is ever executed. Legacy/TorchScript formats are refused. */
glmq_status glmq_torchzip_load(glmq_src_set *s, const char *path, glmq_err *err);
/* The same with `prefix` (may be NULL) put before every tensor name: the ranks of a
 * tensor-parallel checkpoint (formats/sat.c) share their names. */
glmq_status glmq_torchzip_load_prefix(glmq_src_set *s, const char *path, const char *prefix,
                                      glmq_err *err);

#endif /* GLMQ_FORMATS_SOURCE_H */
