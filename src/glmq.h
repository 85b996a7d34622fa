/*
 * glmq.h - public API of libglmq.
 *
 * glmq turns GLM-family checkpoints (ChatGLM-6B, ChatGLM2/3-6B, GLM-4-9B) into one mmap-able,
 * checksummed packed file (".glmq") holding per-row INT8/INT4 (or 16-bit) weights, the model
 * config, the tokenizer and provenance. The file format is specified in formats/SPEC.md; this
 * header is the small C API another runtime needs to read it.
 *
 * Conventions (all functions):
 *   - Every fallible function returns a glmq_status and takes a `glmq_err *err` last. `err` may
 *     be NULL. On failure err->msg names the file, tensor and byte offset involved.
 *   - The library never prints, exits or aborts on bad input.
 *   - Pointer parameters are borrowed unless the contract says otherwise.
 *   - _open/_close pairs: _close accepts NULL. A failed _open leaves *out == NULL.
 *   - Objects are not thread-safe to mutate; a glmq_pack opened read-only may be read from any
 *     number of threads at once.
 */
#ifndef GLMQ_H
#define GLMQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GLMQ_BUILDING_LIBRARY) && defined(__GNUC__)
#define GLMQ_API __attribute__((visibility("default")))
#else
#define GLMQ_API
#endif

#define GLMQ_VERSION_STRING "0.1.0"

/* Status codes. The numeric values are frozen. */
typedef enum {
    GLMQ_OK = 0,
    GLMQ_E_INVALID = 1,     /* bad argument or option */
    GLMQ_E_NOMEM = 2,       /* allocation failed */
    GLMQ_E_IO = 3,          /* open/read/write/fsync/rename failed */
    GLMQ_E_FORMAT = 4,      /* malformed input file */
    GLMQ_E_UNSUPPORTED = 5, /* well-formed but not supported (legacy torch format, dtype, ...) */
    GLMQ_E_SHAPE = 6,       /* tensor shape does not match the config */
    GLMQ_E_CHECKSUM = 7,    /* stored checksum does not match the bytes */
    GLMQ_E_INTERNAL = 8,    /* a glmq bug */
    GLMQ_E_VALUE = 9        /* NaN/Inf weight, out-of-range id, ... */
} glmq_status;

#define GLMQ_ERR_SIZE 512
typedef struct {
    glmq_status code;
    char msg[GLMQ_ERR_SIZE];
} glmq_err;

/* A short lower-case name of a status ("format error", ...). Never NULL. */
GLMQ_API const char *glmq_status_str(glmq_status st);

/* ------------------------------------------------------------------------------------------ */
/* Storage types of tensors in a packed file. Values are frozen (they are on disk).            */

typedef enum {
    GLMQ_TYPE_F32 = 0,
    GLMQ_TYPE_F16 = 1,
    GLMQ_TYPE_BF16 = 2,
    GLMQ_TYPE_INT8 = 3, /* per-row symmetric, int8 codes in [-127,127], fp16 scale per row   */
    GLMQ_TYPE_INT4 = 4  /* per-row symmetric, codes in [-7,7] stored as nibble q+8 (SPEC §5) */
} glmq_type;

/* "f32", "f16", "bf16", "int8", "int4"; NULL for an unknown value. */
GLMQ_API const char *glmq_type_name(glmq_type t);

/* ------------------------------------------------------------------------------------------ */
/* Reading packed files.                                                                       */

typedef struct glmq_pack glmq_pack;

#define GLMQ_MAX_DIMS 4

typedef struct {
    const char *name;     /* NUL-terminated, valid until glmq_pack_close */
    glmq_type type;
    int ndim;             /* 1..GLMQ_MAX_DIMS */
    int64_t shape[GLMQ_MAX_DIMS]; /* as in the checkpoint, e.g. {rows, cols} for a weight */
    int64_t rows;         /* product of all dims but the last (1 for a vector) */
    int64_t cols;         /* last dim */
    int64_t row_stride;   /* bytes from one row to the next in `data` (rows are padded) */
    const void *data;     /* 64-byte aligned view into the mapping */
    size_t data_size;     /* bytes */
    const uint16_t *scales; /* fp16 per-row scales for INT8/INT4 (rows entries), else NULL */
    size_t scales_size;   /* bytes */
    uint64_t checksum;    /* XXH3-64 of the data bytes followed by the scale bytes */
    uint64_t data_offset; /* byte offset of `data` in the file (0 for non-pack sources) */
    uint64_t scales_offset; /* byte offset of `scales` in the file, or 0 */
} glmq_tensor_info;

/*
 * Map and validate a packed file: magic, version, header checksum, metadata JSON, and every
 * directory entry (offsets, sizes, types, shapes, alignment, no overlap). Tensor bytes are not
 * hashed here (see glmq_pack_verify).
 * @return GLMQ_OK and *out, or an error naming the file, the entry and the byte offset.
 */
GLMQ_API glmq_status glmq_pack_open(const char *path, glmq_pack **out, glmq_err *err);

/* Unmap and free. NULL is a no-op. Every pointer obtained from the pack becomes invalid. */
GLMQ_API void glmq_pack_close(glmq_pack *p);

/* Format version of the file (major << 16 | minor). */
GLMQ_API uint32_t glmq_pack_version(const glmq_pack *p);

/* The header checksum (SPEC §3), verified on open: it covers the directories, which hold every
 * tensor's checksum, so it identifies the file's whole content. */
GLMQ_API uint64_t glmq_pack_header_checksum(const glmq_pack *p);

/* The metadata JSON (SPEC §7) as a NUL-terminated UTF-8 string, valid until close. */
GLMQ_API const char *glmq_pack_metadata(const glmq_pack *p);

/* Number of tensors, and the i-th tensor (0 <= i < count). */
GLMQ_API int64_t glmq_pack_tensor_count(const glmq_pack *p);
GLMQ_API glmq_status glmq_pack_tensor(const glmq_pack *p, int64_t i, glmq_tensor_info *out,
                                      glmq_err *err);

/* Find a tensor by name. Returns GLMQ_E_INVALID (with a message) when it is absent. */
GLMQ_API glmq_status glmq_pack_find(const glmq_pack *p, const char *name, glmq_tensor_info *out,
                                    glmq_err *err);

/* A named embedded blob ("tokenizer", "config.json"): pointer and size, valid until close. */
GLMQ_API glmq_status glmq_pack_blob(const glmq_pack *p, const char *name, const void **data,
                                    size_t *size, glmq_err *err);

/*
 * Hash every tensor and blob and compare with the stored checksums.
 * @return GLMQ_OK, or GLMQ_E_CHECKSUM naming the first bad tensor.
 */
GLMQ_API glmq_status glmq_pack_verify(const glmq_pack *p, glmq_err *err);

/* Dequantize/widen row `row` of tensor `t` into `dst` (t->cols floats). */
GLMQ_API glmq_status glmq_tensor_row_f32(const glmq_tensor_info *t, int64_t row, float *dst,
                                         glmq_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Conversion.                                                                                 */

typedef struct {
    glmq_type weight_type;   /* GLMQ_TYPE_INT4, GLMQ_TYPE_INT8 or GLMQ_TYPE_F16 */
    int quantize_output;     /* also quantize the output layer (lm_head) */
    int quantize_embedding;  /* also quantize the token embedding */
    int threads;             /* worker threads; <= 0 means online cores */
    /* Optional progress callback: done/total in bytes of source tensor data. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} glmq_convert_opts;

/* Per-tensor summary produced by a conversion. */
typedef struct {
    char name[256];
    glmq_type type;
    int64_t rows, cols;
    double rms_err;    /* RMS of (dequantized - original) over all elements */
    double max_abs_err;
    double sqnr_db;    /* 10*log10(sum w^2 / sum err^2); +inf when exact */
} glmq_tensor_stats;

typedef struct {
    uint64_t input_bytes;   /* source tensor bytes read */
    uint64_t output_bytes;  /* size of the packed file */
    int64_t n_tensors;
    glmq_tensor_stats *stats; /* n_tensors entries, owned by the report */
    char architecture[32];
    char **warnings;        /* unexpected/skipped tensors and the like, owned by the report */
    int64_t n_warnings;
} glmq_convert_report;

GLMQ_API void glmq_convert_opts_default(glmq_convert_opts *o);

/*
 * Convert the Hugging Face checkpoint directory `src_dir` to the packed file `out_path`.
 * The output is written atomically (temporary file in the same directory, fsync, rename): on
 * any failure no file is left at out_path and an existing out_path is untouched.
 * `report` may be NULL; otherwise it is filled and must be released with
 * glmq_convert_report_free.
 */
GLMQ_API glmq_status glmq_convert(const char *src_dir, const char *out_path,
                                  const glmq_convert_opts *opts, glmq_convert_report *report,
                                  glmq_err *err);
GLMQ_API void glmq_convert_report_free(glmq_convert_report *r);

/* ------------------------------------------------------------------------------------------ */
/* CPU features and kernel selection.                                                          */

/* Kernel levels, each a superset of the one below: AVX512 is F+BW+VL+DQ, AVX512VNNI adds
 * vpdpbusd (the fast int8 kernels). */
typedef enum {
    GLMQ_CPU_REF = 0,
    GLMQ_CPU_AVX2 = 1,
    GLMQ_CPU_AVX512 = 2,
    GLMQ_CPU_AVX512VNNI = 3
} glmq_cpu_level;
#define GLMQ_CPU_MAX GLMQ_CPU_AVX512VNNI

/* The active kernel level: the best the CPU and OS support, lowered by
 * GLMQ_CPU=ref|avx2|avx512|avx512vnni (or scalar) in the environment. */
GLMQ_API glmq_cpu_level glmq_cpu_active(void);
GLMQ_API const char *glmq_cpu_level_name(glmq_cpu_level l);

#ifdef __cplusplus
}
#endif
#endif /* GLMQ_H */
