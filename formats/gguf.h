/*
 * gguf.h - GGUF files (ggml's model format, version 2 and 3), read and written (internal).
 *
 * A GGUF file is, in order (all integers little-endian):
 *   magic "GGUF" | u32 version | u64 tensor count | u64 metadata count
 *   metadata: count × (string key | u32 value type | value)
 *   tensor infos: count × (string name | u32 n_dims | n_dims × u64 ne | u32 ggml type | u64 offset)
 *   padding to `general.alignment` (u32 metadata, default 32)
 *   tensor data: each tensor at data start + its offset (a multiple of the alignment)
 * where a string is u64 length + bytes (no NUL), and an array value is u32 element type + u64
 * count + elements. ne[0] is the fastest-moving dimension (a PyTorch [out, in] weight has
 * ne = {in, out}); a row is ne[0] elements, stored as ne[0] / block size blocks.
 *
 * The reader maps the file and validates everything before anyone uses it: every count, string
 * length, array length and element type, n_dims (1-4), every ne (> 0, product without overflow),
 * ne[0] a multiple of the type's block size, the tensor type, name uniqueness, each offset's
 * alignment, and that each tensor's bytes lie inside the data section without overlapping
 * another. An error names the file, the field (key or tensor name) and its byte offset.
 */
#ifndef GLMQ_FORMATS_GGUF_H
#define GLMQ_FORMATS_GGUF_H

#include "core/atomic.h"
#include "core/ggml_type.h"
#include "core/internal.h"

#define GLMQ_GGUF_DEFAULT_ALIGNMENT 32
#define GLMQ_GGUF_MAX_DIMS 4

/* Metadata value types. */
typedef enum {
    GLMQ_GGUF_U8 = 0,
    GLMQ_GGUF_I8 = 1,
    GLMQ_GGUF_U16 = 2,
    GLMQ_GGUF_I16 = 3,
    GLMQ_GGUF_U32 = 4,
    GLMQ_GGUF_I32 = 5,
    GLMQ_GGUF_F32 = 6,
    GLMQ_GGUF_BOOL = 7,
    GLMQ_GGUF_STRING = 8,
    GLMQ_GGUF_ARRAY = 9,
    GLMQ_GGUF_U64 = 10,
    GLMQ_GGUF_I64 = 11,
    GLMQ_GGUF_F64 = 12,
    GLMQ_GGUF_VTYPE_COUNT = 13
} glmq_gguf_vtype;

/* "uint32", "string", "array", ... ; NULL for an unknown value. */
const char *glmq_gguf_vtype_name(uint32_t t);
/* Bytes of one value of a fixed-size type (1, 2, 4 or 8); 0 for STRING, ARRAY and unknown. */
size_t glmq_gguf_vtype_size(uint32_t t);

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                     */

typedef struct glmq_gguf glmq_gguf;

/* A string inside the mapping: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} glmq_gguf_str;

typedef struct {
    glmq_gguf_str key;
    uint32_t type;        /* glmq_gguf_vtype */
    uint32_t arr_type;    /* element type when type == ARRAY (never ARRAY: nested arrays are
                             refused), else = type */
    uint64_t arr_n;       /* element count when type == ARRAY, else 1 */
    const uint8_t *value; /* first byte of the value (for an array, of its first element) */
    uint64_t offset;      /* byte offset of `value` in the file */
} glmq_gguf_kv;

typedef struct {
    const char *name;     /* NUL-terminated copy, owned by the glmq_gguf */
    uint32_t n_dims;      /* 1..4 */
    int64_t ne[GLMQ_GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims 1 */
    uint32_t type;        /* glmq_ggml_type; known (glmq_ggml_type_get != NULL) */
    int64_t rows;         /* ne[1] * ne[2] * ne[3] */
    uint64_t row_bytes;   /* glmq_ggml_row_bytes(type, ne[0]) */
    uint64_t size;        /* rows * row_bytes */
    uint64_t offset;      /* absolute byte offset of the data in the file */
    const uint8_t *data;  /* view into the mapping */
    uint64_t info_offset; /* byte offset of this tensor's info record (for messages) */
} glmq_gguf_tensor;

/* Map and validate `path` (see the top of this file). */
glmq_status glmq_gguf_open(const char *path, glmq_gguf **out, glmq_err *err);
/* The same with load != 0: read into anonymous memory instead of mapped (core/file.h
 * glmq_file_view; `--no-mmap`). */
glmq_status glmq_gguf_open_load(const char *path, int load, glmq_gguf **out, glmq_err *err);
/* The same on bytes in memory (borrowed: they must outlive the result); `label` names them in
 * messages. For the fuzzer and tests. */
glmq_status glmq_gguf_open_mem(const void *buf, size_t size, const char *label, glmq_gguf **out,
                               glmq_err *err);
void glmq_gguf_close(glmq_gguf *g); /* NULL-safe */

const char *glmq_gguf_path(const glmq_gguf *g);
uint32_t glmq_gguf_version(const glmq_gguf *g);
uint64_t glmq_gguf_alignment(const glmq_gguf *g);
uint64_t glmq_gguf_file_size(const glmq_gguf *g);
uint64_t glmq_gguf_data_offset(const glmq_gguf *g); /* start of the tensor data section */

int64_t glmq_gguf_kv_count(const glmq_gguf *g);
const glmq_gguf_kv *glmq_gguf_kv_at(const glmq_gguf *g, int64_t i);
/* The entry with key `key` (NUL-terminated), or NULL. */
const glmq_gguf_kv *glmq_gguf_find(const glmq_gguf *g, const char *key);

/* Typed getters. Each returns GLMQ_E_FORMAT naming the key and its offset when the key is
 * present with another type or an out-of-range value, GLMQ_E_FORMAT "missing" when absent and
 * `required`, and GLMQ_OK leaving *out untouched when absent and not required. Integer getters
 * accept any integer value type whose value fits. */
glmq_status glmq_gguf_get_u64(const glmq_gguf *g, const char *key, int required, uint64_t *out,
                              glmq_err *err);
glmq_status glmq_gguf_get_i64(const glmq_gguf *g, const char *key, int required, int64_t *out,
                              glmq_err *err);
glmq_status glmq_gguf_get_f32(const glmq_gguf *g, const char *key, int required, float *out,
                              glmq_err *err); /* F32 or F64 (must be finite) */
glmq_status glmq_gguf_get_bool(const glmq_gguf *g, const char *key, int required, int *out,
                               glmq_err *err);
glmq_status glmq_gguf_get_str(const glmq_gguf *g, const char *key, int required,
                              glmq_gguf_str *out, glmq_err *err);
/* An array with element type `elem_type`: *data = its first element, *n = its count. */
glmq_status glmq_gguf_get_arr(const glmq_gguf *g, const char *key, int required,
                              uint32_t elem_type, const uint8_t **data, uint64_t *n,
                              glmq_err *err);
/* Element i of a string array (kv->arr_type == STRING, i < kv->arr_n). The reader indexes
 * every string array when it opens the file, so this is O(1). */
glmq_gguf_str glmq_gguf_arr_str(const glmq_gguf *g, const glmq_gguf_kv *kv, uint64_t i);

int64_t glmq_gguf_tensor_count(const glmq_gguf *g);
const glmq_gguf_tensor *glmq_gguf_tensor_at(const glmq_gguf *g, int64_t i);
const glmq_gguf_tensor *glmq_gguf_find_tensor(const glmq_gguf *g, const char *name);

/* ------------------------------------------------------------------------------------------ */
/* Writing (streaming)                                                                         */
/*
 * Collect the metadata and the tensor table, then write the header with
 * glmq_gguf_writer_begin, then each tensor's bytes in table order with
 * glmq_gguf_writer_tensor_data (the writer pads between tensors), then glmq_gguf_writer_end.
 * Values that are known only after the data (checksums) go in a placeholder array reserved with
 * glmq_gguf_writer_add_u64_placeholder and filled with glmq_gguf_writer_patch_u64 before end.
 * Keys are written in the order added; the writer refuses a duplicate key or tensor name.
 */
typedef struct glmq_gguf_writer glmq_gguf_writer;

glmq_status glmq_gguf_writer_new(uint64_t alignment, glmq_gguf_writer **out, glmq_err *err);
void glmq_gguf_writer_free(glmq_gguf_writer *w); /* NULL-safe */

glmq_status glmq_gguf_writer_add_u32(glmq_gguf_writer *w, const char *key, uint32_t v,
                                     glmq_err *err);
glmq_status glmq_gguf_writer_add_i32(glmq_gguf_writer *w, const char *key, int32_t v,
                                     glmq_err *err);
glmq_status glmq_gguf_writer_add_u64(glmq_gguf_writer *w, const char *key, uint64_t v,
                                     glmq_err *err);
glmq_status glmq_gguf_writer_add_f32(glmq_gguf_writer *w, const char *key, float v,
                                     glmq_err *err);
glmq_status glmq_gguf_writer_add_bool(glmq_gguf_writer *w, const char *key, int v,
                                      glmq_err *err);
glmq_status glmq_gguf_writer_add_str(glmq_gguf_writer *w, const char *key, const char *v,
                                     glmq_err *err);
/* Arrays. Strings are given with explicit lengths (they may contain NUL bytes); with len NULL
 * each s[i] is a NUL-terminated string. */
glmq_status glmq_gguf_writer_add_arr_str(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const char *const *s, const uint64_t *len,
                                         glmq_err *err);
glmq_status glmq_gguf_writer_add_arr_f32(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const float *v, glmq_err *err);
glmq_status glmq_gguf_writer_add_arr_i32(glmq_gguf_writer *w, const char *key, uint64_t n,
                                         const int32_t *v, glmq_err *err);
glmq_status glmq_gguf_writer_add_arr_u8(glmq_gguf_writer *w, const char *key, uint64_t n,
                                        const uint8_t *v, glmq_err *err);
/* Any fixed-size scalar (`type` not STRING/ARRAY): *v is the native value (a uint8_t 0/1 for
 * BOOL, int16_t for I16, double for F64, ...). */
glmq_status glmq_gguf_writer_add_val(glmq_gguf_writer *w, const char *key, uint32_t type,
                                     const void *v, glmq_err *err);
/* An array of n native values of a fixed-size element type (as for glmq_gguf_writer_add_val). */
glmq_status glmq_gguf_writer_add_arr(glmq_gguf_writer *w, const char *key, uint32_t elem_type,
                                     uint64_t n, const void *v, glmq_err *err);
/* A u64 array of n zeros whose elements glmq_gguf_writer_patch_u64 fills in later. */
glmq_status glmq_gguf_writer_add_u64_placeholder(glmq_gguf_writer *w, const char *key, uint64_t n,
                                                 glmq_err *err);

/* A tensor: ne[0] fastest (see top); its data size is rows × glmq_ggml_row_bytes(type, ne[0]). */
glmq_status glmq_gguf_writer_add_tensor(glmq_gguf_writer *w, const char *name, uint32_t type,
                                        uint32_t n_dims, const int64_t *ne, glmq_err *err);

/* Total file size once everything added so far is written (for a disk-space check). */
uint64_t glmq_gguf_writer_file_size(const glmq_gguf_writer *w);
/* Where the data section will start (a multiple of the alignment). */
uint64_t glmq_gguf_writer_data_offset(const glmq_gguf_writer *w);

/* Write header, metadata and tensor infos, and the padding before the data section. */
glmq_status glmq_gguf_writer_begin(glmq_gguf_writer *w, glmq_atomic_file *af, glmq_err *err);
/* Append `n` bytes of the current tensor's data; when a tensor's size is complete the writer
 * moves to the next one (padding included). Chunks may split a tensor anywhere. */
glmq_status glmq_gguf_writer_tensor_data(glmq_gguf_writer *w, const void *data, size_t n,
                                         glmq_err *err);
/* Fill element i of a placeholder array (pwrite into the file already begun). */
glmq_status glmq_gguf_writer_patch_u64(glmq_gguf_writer *w, const char *key, uint64_t i,
                                       uint64_t v, glmq_err *err);
/* Check that every tensor was written in full. Does not commit `af`. */
glmq_status glmq_gguf_writer_end(glmq_gguf_writer *w, glmq_err *err);

#endif /* GLMQ_FORMATS_GGUF_H */
