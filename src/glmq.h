/*
 * glmq.h - public API of libglmq.
 *
 * glmq turns GLM-family checkpoints (ChatGLM-6B, ChatGLM2/3-6B, GLM-4-9B) into one mmap-able,
 * checksummed packed file (".glmq") holding per-row INT8/INT4 (or 16-bit) weights, the model
 * config, the tokenizer and provenance. The file format is specified in formats/SPEC.md. This
 * header is the whole C API: reading a packed file (what another runtime needs), converting a
 * checkpoint, and running and checking a model from a .glmq file or a checkpoint directory
 * alike (open, tokenize, evaluate on a KV cache, sample, perplexity and drift).
 * samples/read_pack.c and samples/generate.c use nothing else.
 *
 * Conventions (all functions):
 *   - Every fallible function returns a glmq_status and takes a `glmq_err *err` last. `err` may
 *     be NULL. On failure err->msg names the file, tensor and byte offset involved.
 *   - The library never prints, exits or aborts on bad input.
 *   - Pointer parameters are borrowed unless the contract says otherwise.
 *   - _open/_close and _create/_free pairs: _close/_free accept NULL. A failed constructor
 *     leaves *out == NULL.
 *   - Objects are not thread-safe to mutate; a glmq_pack or glmq_model (read-only once open)
 *     may be used from any number of threads at once, a glmq_session or glmq_sampler by one
 *     thread at a time.
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
    GLMQ_TYPE_INT4 = 4, /* per-row symmetric, codes in [-7,7] stored as nibble q+8 (SPEC §5) */
    /* Group-wise (pack format 1.1): the INT8 / INT4 row layout with one fp16 scale per group
     * of 32, 64 or 128 columns (SPEC §5); INT8 codes in [-127,127], INT4 codes in [-8,7]. */
    GLMQ_TYPE_INT8_G32 = 5,
    GLMQ_TYPE_INT8_G64 = 6,
    GLMQ_TYPE_INT8_G128 = 7,
    GLMQ_TYPE_INT4_G32 = 8,
    GLMQ_TYPE_INT4_G64 = 9,
    GLMQ_TYPE_INT4_G128 = 10,
    /* GLMQ_TYPE_GGML + t: ggml block type t (GGUF's numbering: 2 = Q4_0, 8 = Q8_0, 12 = Q4_K,
     * ...) of a tensor read from a .gguf file. Never stored in a .glmq file. */
    GLMQ_TYPE_GGML = 256
} glmq_type;

/* "f32", "f16", "bf16", "int8", "int4", "int8g32" ... "int4g128"; NULL for an unknown value. */
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

/* How the INT4/INT8 layer weights are rounded (the stored format is the same for all). */
typedef enum {
    GLMQ_METHOD_RTN = 0,    /* per-row amax scale, round to nearest (GLM-SPEC decision 6) */
    GLMQ_METHOD_SEARCH = 1, /* per-row scale searched against the calibration inputs' E[x^2] */
    GLMQ_METHOD_GPTQ = 2    /* GPTQ against the calibration inputs' H = sum x x^T */
} glmq_quant_method;

typedef struct {
    glmq_type weight_type;   /* GLMQ_TYPE_INT4, GLMQ_TYPE_INT8 or GLMQ_TYPE_F16 */
    int quantize_output;     /* also quantize the output layer (lm_head) */
    int quantize_embedding;  /* also quantize the token embedding */
    int threads;             /* worker threads; <= 0 means online cores */
    /* Optional progress callback: done/total in bytes of source tensor data. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
    /* Calibration (README "Calibrated quantization"): SEARCH and GPTQ need calib_path, a UTF-8
     * text tokenized with the checkpoint's tokenizer and cut into sequences of calib_ctx ids
     * ([gMASK] sop + text), at most calib_tokens ids in all. */
    glmq_quant_method method;
    const char *calib_path;
    int64_t calib_tokens;    /* default 65536 (128 x 512) */
    int64_t calib_ctx;       /* default 512 */
    double damp;             /* GPTQ: lambda = damp * mean(diag H); default 0.01 */
    int act_order;           /* GPTQ: columns by decreasing H_jj */
    /* Optional: a line per calibrated layer (time, errors), e.g. for the CLI's stderr. */
    void (*calib_log)(void *user, const char *line);
    void *calib_log_user;
    /* 1 when weight_type was chosen by the caller (the CLI's --type). A checkpoint THUDM already
     * quantized (config.json quantization_bit 4 or 8) keeps its own codes and scales exactly,
     * as INT4/INT8, unless this is set and weight_type differs from the source's width: then its
     * quantized weights are dequantized and re-rounded to weight_type (or rounded to f16), and
     * the report's warnings and the metadata say so. Ignored for other checkpoints. */
    int weight_type_given;
    /* Scales per group of `group` columns (32, 64 or 128) instead of per row: the layer weights
     * are stored as GLMQ_TYPE_INT4_G<group> / INT8_G<group> (formats/SPEC.md §5, pack format
     * 1.1). 0 (default): per row. RTN rounds each group by ggml's Q4_0 / Q8_0 rule. */
    int group;
    /* Per-tensor types (README "Per-tensor types"): n_tensor_types rules "REGEX=TYPE[:gN]", TYPE
     * int4, int8 or f16; the first rule whose POSIX extended REGEX is found in a 2-D weight's
     * name sets its type over the recipe. A rule that matches nothing is an error. */
    const char *const *tensor_types;
    int n_tensor_types;
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
/* Export to GGUF (llama.cpp's `chatglm` architecture).                                        */

typedef struct {
    /* Optional progress callback: done/total in bytes of GGUF tensor data written. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} glmq_export_opts;

/* One tensor of an export. */
typedef struct {
    char name[64];         /* the GGUF (llama.cpp) name, e.g. "blk.0.attn_qkv.weight" */
    char source[256];      /* the tensor's name in the .glmq */
    glmq_type from;        /* its storage type in the .glmq */
    int ggml_type;         /* the ggml type written (GGUF numbering: 0 f32, 1 f16, 2 q4_0, ...) */
    char ggml_type_name[16]; /* "q4_0", "q8_0", "f16", "bf16", "f32" */
    int64_t rows, cols;
    int exact_copy;        /* 1: bytes copied, or codes and scales re-encoded one for one;
                              0: written as f32 holding glmq's dequantized values (exact too) */
    char note[160];        /* how it was converted, in words */
    uint64_t xxh3;         /* XXH3-64 of the tensor's GGUF data bytes */
} glmq_export_tensor;

typedef struct {
    uint64_t output_bytes;         /* size of the GGUF file */
    int64_t n_tensors;
    glmq_export_tensor *tensors;   /* n_tensors entries in file order, owned by the report */
    uint32_t file_type;            /* general.file_type written (llama.cpp's llama_ftype) */
    char tokenizer_warning[512];   /* why llama.cpp's tokenization may differ from glmq's (or
                                      why the file has no vocabulary); "" when none */
} glmq_export_report;

GLMQ_API void glmq_export_opts_default(glmq_export_opts *o);

/*
 * Export the packed file `pack_path` (a ChatGLM2/3-6B or GLM-4-9B artifact) to a GGUF file that
 * llama.cpp loads as architecture `chatglm`: hyper-parameters, the tokenizer vocabulary, every
 * tensor under llama.cpp's name, and glmq.* keys (config, quantization recipe, provenance, the
 * tokenizer file, config.json, the XXH3-64 of every tensor; formats/SPEC.md "GGUF export").
 * Lossless: INT8 rows become Q8_0 blocks and INT4 rows Q4_0 blocks with the row's scale and
 * glmq's own codes; F16/BF16/F32 matrices are copied; 1-D tensors and quantized matrices whose
 * rows are not whole 32-element blocks are written as F32 holding glmq's values. ggml's
 * dequantization of every tensor equals glmq_tensor_row_f32 bit for bit.
 * ChatGLM-6B (v1) packs are refused (GLMQ_E_UNSUPPORTED): llama.cpp has no architecture for it.
 * Streams one tensor row at a time from the mapping; the output is written atomically (as
 * glmq_convert) and is byte-identical on every machine, thread count and kernel level.
 * `opts` may be NULL (defaults); `report` may be NULL, else release it with
 * glmq_export_report_free.
 */
GLMQ_API glmq_status glmq_export_gguf(const char *pack_path, const char *out_path,
                                      const glmq_export_opts *opts, glmq_export_report *report,
                                      glmq_err *err);
GLMQ_API void glmq_export_report_free(glmq_export_report *r); /* NULL is a no-op */

/*
 * Check a GGUF file written by glmq_export_gguf: validate it, then hash every tensor's data and
 * compare with its glmq.tensor_xxh3 entry. *n_tensors (may be NULL) receives the count checked.
 * @return GLMQ_OK; GLMQ_E_CHECKSUM naming the first bad tensor and its byte offset;
 *         GLMQ_E_UNSUPPORTED "not a glmq export: no checksums" for a GGUF without
 *         glmq.tensor_xxh3 (e.g. one made by llama.cpp); the reader's errors.
 */
GLMQ_API glmq_status glmq_export_verify(const char *path, int64_t *n_tensors, glmq_err *err);

/* ------------------------------------------------------------------------------------------ */
/* CPU features and kernel selection.                                                          */

/* Kernel levels. Two families above the portable REF, ordered by capability (the order in
 * which the best runnable level is chosen and a cap lowers it):
 *   x86-64:  AVX2 (+FMA+F16C) < AVXVNNI (AVX2 plus the 256-bit VEX vpdpbusd of AVX-VNNI:
 *            Alder Lake and later, Zen 5) < AVX512 (F+BW+VL+DQ) < AVX512VNNI (adds the 512-bit
 *            vpdpbusd, the fast int8 kernels);
 *   aarch64: NEON (Advanced SIMD, every ARMv8-A) < DOTPROD (ARMv8.2 SDOT, HWCAP_ASIMDDP).
 * The order is not the numeric order of the values, and a CPU supports a set of levels, not
 * every level below its best: a Skylake-X runs AVX512 but not AVXVNNI, an Alder Lake AVXVNNI
 * but not AVX512. Levels of the other family are never available, and as a cap they lower
 * nothing. Values are frozen (later levels are appended); GLMQ_CPU_MAX is the highest value,
 * not a level of either family. */
typedef enum {
    GLMQ_CPU_REF = 0,
    GLMQ_CPU_AVX2 = 1,
    GLMQ_CPU_AVX512 = 2,
    GLMQ_CPU_AVX512VNNI = 3,
    GLMQ_CPU_NEON = 4,
    GLMQ_CPU_DOTPROD = 5,
    GLMQ_CPU_AVXVNNI = 6
} glmq_cpu_level;
#define GLMQ_CPU_MAX GLMQ_CPU_AVXVNNI

/* The active kernel level: the best level the CPU and OS support, capped by
 * GLMQ_CPU=ref|avx2|avxvnni|avx512|avx512vnni|neon|dotprod (or scalar; avx_vnni = avxvnni) in
 * the environment: the best supported level at or below the named one in the order above (so
 * GLMQ_CPU=avxvnni gives avx2 on a CPU with AVX-512 but without AVX-VNNI); ref (scalar) forces
 * the portable kernels on every machine, a level of the other architecture is ignored. */
GLMQ_API glmq_cpu_level glmq_cpu_active(void);
GLMQ_API const char *glmq_cpu_level_name(glmq_cpu_level l);

/* ------------------------------------------------------------------------------------------ */
/* Running a model.                                                                            */
/*
 * A glmq_model is a .glmq packed file or a Hugging Face checkpoint directory, opened read-only:
 * weights stay in the file mapping (no copy of the model), and the forward pass is the one
 * `glmq ppl` and `glmq verify` measure. A model may be shared by any number of threads and
 * sessions; a session, a sampler and their buffers belong to one thread at a time.
 *
 * Typical use (samples/generate.c):
 *   glmq_model_open -> glmq_tokenize(GLMQ_TOKENIZE_PROMPT) -> glmq_session_create ->
 *   glmq_session_eval(prompt) -> loop { glmq_sampler_sample -> glmq_session_eval(1 id) } ->
 *   glmq_detokenize -> free everything.
 */

typedef struct glmq_model glmq_model;

/*
 * Open a model: a .glmq file (validated as glmq_pack_open does, plus the tensors its config
 * needs) or a checkpoint directory (config.json, tokenizer, safetensors or PyTorch .bin, single
 * or sharded; every tensor checked for presence, dtype and shape before use).
 * @return GLMQ_OK and *out, or an error naming the file, tensor and byte offset, *out == NULL.
 */
GLMQ_API glmq_status glmq_model_open(const char *path, glmq_model **out, glmq_err *err);

/* Flags of glmq_model_open_flags. */
#define GLMQ_OPEN_LOAD 1u /* read a .glmq / GGUF file into anonymous memory, 2 MiB aligned and
                           * advised for transparent huge pages, instead of mapping it (the CLI's
                           * --no-mmap): no page-cache mapping, no later change of the file seen;
                           * costs a copy of the file in RAM. Checkpoint directories are always
                           * mapped. */

/* glmq_model_open with flags (0 = glmq_model_open). Unknown flags: GLMQ_E_INVALID. */
GLMQ_API glmq_status glmq_model_open_flags(const char *path, unsigned flags, glmq_model **out,
                                           glmq_err *err);

/* Release the model. NULL is a no-op. Sessions created on it must be freed first. */
GLMQ_API void glmq_model_close(glmq_model *m);

typedef struct {
    const char *architecture; /* "chatglm" (ChatGLM-6B) or "chatglm2" (ChatGLM2/3-6B, GLM-4) */
    const char *source;       /* "glmq" (packed file) or "checkpoint" (directory) */
    const char *weight_type;  /* layer weights: "int4", "int8", "f16", "bf16", "f32", "mixed" */
    int64_t vocab;            /* logits per position; valid ids are [0, vocab) */
    int64_t ctx;              /* the config's maximum sequence length (positions) */
    int64_t n_layers, hidden, n_heads, n_kv_groups, head_dim, ffn;
    /* special token ids, -1 when the model has none. Generation ends at tok_eos or tok_eop. */
    int32_t tok_gmask, tok_sop, tok_eop, tok_eos;
    uint64_t ident; /* the pack's header checksum, or a hash of the checkpoint's files */
} glmq_model_info;

/* Describe the model. The strings are valid until glmq_model_close.
 * @return GLMQ_OK, or GLMQ_E_INVALID when m or out is NULL. */
GLMQ_API glmq_status glmq_model_get_info(const glmq_model *m, glmq_model_info *out,
                                         glmq_err *err);

/* ---- tokens ---- */

/* glmq_tokenize flags. */
#define GLMQ_TOKENIZE_PROMPT 1u /* add the model's prompt framing: [gMASK] sop before the text
                                   (ChatGLM2/3), [gMASK] <sop> before it (GLM-4) or after it
                                   (ChatGLM-6B); without it no special token is added */
#define GLMQ_TOKENIZE_SPECIAL 2u /* literal special-token text in the input ("[gMASK]", "sop",
                                    "<|user|>", "<sop>", "<|endoftext|>" ... of the model's
                                    family) becomes the special id, as the upstream tokenizers'
                                    special-token mode does; without it such text is ordinary */

/*
 * Token ids of `text` (len bytes of UTF-8; no NUL needed) with the model's own tokenizer (the
 * one embedded in the .glmq, or the checkpoint's tokenizer.model), bit-exact with the
 * sentencepiece / tiktoken libraries. The tokenizer is loaded on first use and kept until
 * glmq_model_close; concurrent calls on one model are safe.
 * *n receives the number of ids. When it is <= cap they are written to ids[0..*n); a call with
 * ids == NULL and cap == 0 only counts (GLMQ_OK). Otherwise nothing is written and the call
 * fails with GLMQ_E_INVALID ("buffer too small"), *n still set: call again with a larger buffer.
 * @return GLMQ_OK; GLMQ_E_INVALID (bad argument, small buffer, model without tokenizer);
 *         GLMQ_E_FORMAT (bad tokenizer file); GLMQ_E_NOMEM.
 */
GLMQ_API glmq_status glmq_tokenize(const glmq_model *m, const char *text, size_t len,
                                   unsigned flags, int32_t *ids, size_t cap, size_t *n,
                                   glmq_err *err);

/*
 * Text of ids[0..n) (special tokens are skipped, as Hugging Face's skip_special_tokens). *len
 * receives the byte length (the text may contain NUL bytes). When *len < cap the text and a
 * terminating NUL are written to text; text == NULL with cap == 0 only measures (GLMQ_OK);
 * otherwise GLMQ_E_INVALID ("buffer too small"), *len still set. An incomplete UTF-8 sequence
 * at the end decodes as U+FFFD (EF BF BD): a streaming caller holds it back until the next id.
 * @return GLMQ_OK; GLMQ_E_VALUE naming the first id outside [0, vocab); as glmq_tokenize.
 */
GLMQ_API glmq_status glmq_detokenize(const glmq_model *m, const int32_t *ids, size_t n,
                                     char *text, size_t cap, size_t *len, glmq_err *err);

/*
 * A tokenizer without a model: what `glmq tokenize` uses. `path` is a .glmq file (its embedded
 * tokenizer), or a directory with config.json (+ tokenizer_config.json) and tokenizer.model or
 * ice_text.model, with or without weights (weights are never read). The flavour (special ids,
 * ChatGLM-6B preprocessing and image-token offset, prompt framing) follows from the config, as
 * for glmq_model_open. Immutable after loading: any number of threads may use it at once.
 * @return GLMQ_OK and *out (free with glmq_tokenizer_close), or an error, *out == NULL.
 */
typedef struct glmq_tokenizer glmq_tokenizer;
GLMQ_API glmq_status glmq_tokenizer_load(const char *path, glmq_tokenizer **out, glmq_err *err);

/* glmq_tokenize and glmq_detokenize on a tokenizer: the same flags, sizing and errors. */
GLMQ_API glmq_status glmq_tokenizer_tokenize(const glmq_tokenizer *t, const char *text,
                                             size_t len, unsigned flags, int32_t *ids,
                                             size_t cap, size_t *n, glmq_err *err);
GLMQ_API glmq_status glmq_tokenizer_detokenize(const glmq_tokenizer *t, const int32_t *ids,
                                               size_t n, char *text, size_t cap, size_t *len,
                                               glmq_err *err);

/* Free a tokenizer from glmq_tokenizer_load. NULL is a no-op. */
GLMQ_API void glmq_tokenizer_close(glmq_tokenizer *t);

/* ---- evaluation on a KV cache ---- */

/* How the linear layers are computed; attention, norms and activations are fp32 in all three. */
typedef enum {
    GLMQ_KERNELS_REFERENCE = 0, /* plain-C fp32 on the exactly widened weights: bit-identical
                                   on every CPU and thread count (the verified reference) */
    GLMQ_KERNELS_EXACT = 1,     /* SIMD kernels in fp32 on the exactly dequantized weights */
    GLMQ_KERNELS_FAST = 2       /* INT4/INT8 weights against activations quantized to int8 per
                                   block of 32 (VNNI where present); 16-bit weights stay exact */
} glmq_kernel_mode;

/* "reference", "exact", "fast"; NULL for an unknown value. */
GLMQ_API const char *glmq_kernel_mode_name(glmq_kernel_mode k);

typedef struct glmq_session glmq_session;

typedef struct {
    glmq_kernel_mode kernels; /* default GLMQ_KERNELS_FAST */
    int threads;              /* worker threads; <= 0: online cores. Results do not depend on it */
    int64_t max_tokens;       /* KV cache capacity in tokens; <= 0: min(info.ctx, 2048). Memory
                                 is allocated up front: about n_layers * max_tokens *
                                 n_kv_groups * head_dim * 8 bytes for the cache, in huge
                                 pages where the kernel gives them (so the resident part
                                 grows in 2 MiB steps, up to that size) */
} glmq_session_opts;

GLMQ_API void glmq_session_opts_default(glmq_session_opts *o);

/*
 * A forward pass over `m` with its own KV cache, worker threads and buffers, all allocated here
 * (nothing is allocated by glmq_session_eval). `m` is borrowed and must outlive the session.
 * `opts` may be NULL (defaults). Checks that the model has every tensor its config needs.
 * @return GLMQ_OK and *out, or GLMQ_E_INVALID / GLMQ_E_SHAPE / GLMQ_E_NOMEM, *out == NULL.
 */
GLMQ_API glmq_status glmq_session_create(const glmq_model *m, const glmq_session_opts *opts,
                                         glmq_session **out, glmq_err *err);

/*
 * Append ids[0..n) to the cached sequence and run them through the model.
 *   logits: NULL, or n * vocab floats: row i = the next-token logits after ids[i].
 * Evaluating a sequence in several calls gives the same logits, bit for bit, as one call
 * (on every kernel mode and thread count). The first call after create/reset must be a framed
 * prompt (glmq_tokenize with GLMQ_TOKENIZE_PROMPT) for a ChatGLM-6B model, whose attention
 * layout is derived from its [gMASK] and <sop>; later calls append generated ids.
 * Everything is validated before the cache changes: an id outside [0, vocab) is GLMQ_E_VALUE,
 * more than max_tokens in total is GLMQ_E_INVALID; on error the cache is as before.
 * n == 0 is a no-op.
 */
GLMQ_API glmq_status glmq_session_eval(glmq_session *s, const int32_t *ids, int64_t n,
                                       float *logits, glmq_err *err);

/* Empty the KV cache (the next eval starts a new sequence). NULL is a no-op. */
GLMQ_API void glmq_session_reset(glmq_session *s);

/* Tokens in the cache, and its capacity (0 for NULL). */
GLMQ_API int64_t glmq_session_n_tokens(const glmq_session *s);
GLMQ_API int64_t glmq_session_max_tokens(const glmq_session *s);

/* Join the workers and free. NULL is a no-op. */
GLMQ_API void glmq_session_free(glmq_session *s);

/* ---- sampling ---- */

typedef struct {
    double temperature; /* 0: greedy (argmax, the lowest id among equal maxima); > 0: sample
                           from softmax(logits / temperature) */
    double top_p;       /* (0, 1]: sample only from the most probable ids whose probabilities
                           first reach top_p (nucleus); 1: all ids */
    uint64_t seed;      /* the same seed gives the same sequence of ids (0 is a fixed seed too) */
} glmq_sampler_params;

/* temperature 0 (greedy), top_p 1, seed 1. */
GLMQ_API void glmq_sampler_params_default(glmq_sampler_params *p);

typedef struct glmq_sampler glmq_sampler;

/*
 * A sampler for logit rows of `vocab` entries: the parameters, the random state (xorshift64*,
 * seeded once here) and a work buffer of vocab entries. Sampling is deterministic: the same
 * seed and logits give the same ids on every machine.
 * @return GLMQ_OK and *out; GLMQ_E_INVALID for a negative or non-finite temperature, top_p
 *         outside (0, 1], vocab outside [1, 2^31); GLMQ_E_NOMEM. *out == NULL on error.
 */
GLMQ_API glmq_status glmq_sampler_create(const glmq_sampler_params *p, int64_t vocab,
                                         glmq_sampler **out, glmq_err *err);

/*
 * Pick the next id from one row of logits (vocab floats, e.g. the last row of
 * glmq_session_eval). Greedy sampling draws no random number. -inf logits are allowed (masked
 * ids); a NaN or +inf logit, or a row that is all -inf, is GLMQ_E_VALUE.
 */
GLMQ_API glmq_status glmq_sampler_sample(glmq_sampler *s, const float *logits, int32_t *id,
                                         glmq_err *err);

GLMQ_API void glmq_sampler_free(glmq_sampler *s); /* NULL is a no-op */

/* ---- quality: perplexity and drift ---- */

/*
 * Evaluation protocol. Default (GLM-SPEC decision 5): the ids (text without special tokens)
 * are cut into consecutive windows of ctx - 2 ids, each fed as [gMASK] sop + window to a fresh
 * forward, every window id scored; NLL from an fp64 log-softmax over the full vocabulary.
 * Strided (the chatglm.cpp / Hugging Face protocol; not for ChatGLM-6B): windows of ctx ids
 * every `stride` ids, no prefix, the ids not scored by the previous window scored.
 */
typedef struct {
    int64_t ctx;        /* tokens per forward incl. the prefix; <= 0: 256 (strided: 2048) */
    int strided;        /* 1: the strided protocol */
    int64_t stride;     /* strided only; <= 0: 512 */
    int64_t max_chunks; /* evaluate only the first max_chunks windows; <= 0: all */
    int threads;        /* <= 0: online cores; results do not depend on it */
    glmq_kernel_mode kernels;     /* the model evaluated (default GLMQ_KERNELS_FAST) */
    glmq_kernel_mode ref_kernels; /* the reference of glmq_eval_drift (default EXACT) */
    /* optional progress: windows done / total and positions scored so far (caller's thread) */
    void (*progress)(void *user, int64_t done, int64_t total, int64_t tokens);
    void *progress_user;
} glmq_eval_params;

GLMQ_API void glmq_eval_params_default(glmq_eval_params *p);

typedef struct {
    double nll_sum;    /* summed negative log-likelihood (nats) of the scored ids */
    int64_t n_scored;  /* scored ids */
    int64_t n_windows; /* forwards run */
    double ppl;        /* exp(nll_sum / n_scored) */
} glmq_ppl_result;

/*
 * Perplexity of `m` on ids[0..n) (text ids without special tokens: glmq_tokenize without
 * GLMQ_TOKENIZE_PROMPT). `p` may be NULL (defaults).
 * @return GLMQ_OK and *res; GLMQ_E_INVALID (n < 1, bad parameters), GLMQ_E_VALUE (an id
 *         outside the vocabulary), GLMQ_E_UNSUPPORTED (strided on ChatGLM-6B), GLMQ_E_NOMEM.
 */
GLMQ_API glmq_status glmq_eval_perplexity(const glmq_model *m, const int32_t *ids, int64_t n,
                                          const glmq_eval_params *p, glmq_ppl_result *res,
                                          glmq_err *err);

/* Drift of a model Q against a reference R on the same windows, per scored position. */
typedef struct {
    glmq_ppl_result ppl_ref, ppl_q;
    double ppl_ratio;              /* ppl(Q) / ppl(R) */
    int64_t n_positions;           /* scored positions */
    double kld_mean, kld_median, kld_p90, kld_p99, kld_max; /* KL(P_R || P_Q), nats, fp64 */
    double top1_agreement;         /* fraction of positions where both argmaxes agree */
    double dp_mean, dp_rms;        /* p_Q(correct id) - p_R(correct id) */
    double dlogit_max, dlogit_rms; /* |logit_Q - logit_R| over every vocabulary entry */
    int64_t n_layers;
    double *layer_rel_err; /* [n_layers]: ||h_Q - h_R|| / ||h_R|| after each block (owned) */
    double *kld;           /* [n_positions] KL per position, ascending (owned) */
} glmq_drift;

/* Free the arrays of a drift result and zero it. NULL is a no-op. */
GLMQ_API void glmq_drift_free(glmq_drift *d);

/*
 * Drift of `quant` (run with p->kernels) against `ref` (run with p->ref_kernels) on ids[0..n):
 * both must be the same architecture (vocabulary, width, depth, special ids). R against itself
 * on the same kernels gives exactly KL 0 and agreement 1. Release *out with glmq_drift_free.
 * @return GLMQ_OK and *out (zeroed on error); errors as glmq_eval_perplexity.
 */
GLMQ_API glmq_status glmq_eval_drift(const glmq_model *quant, const glmq_model *ref,
                                     const int32_t *ids, int64_t n, const glmq_eval_params *p,
                                     glmq_drift *out, glmq_err *err);

/* ---- per-tensor precision under a budget ---- */

/*
 * glmq_convert_budget (README "Budgets"): convert `src_dir` with `o` (the base recipe, e.g.
 * INT4 GPTQ), measure each quantized layer tensor's sensitivity on o->calib_path, and keep the
 * most sensitive ones at `high` until the budget is met, then write `out_path`.
 *   sensitivity of tensor T = KL(base) - KL(base with T at `high`), the mean KL against the
 *   checkpoint on the calibration ids (exact kernels), one evaluation per tensor;
 *   cost of T = the extra stored bits (codes and scales) of T at `high`.
 * Tensors are promoted greedily by sensitivity per extra bit (ties: checkpoint order) while
 * budget_bpw > 0 holds (stored bits per quantized weight <= budget_bpw), or until the predicted
 * KL (KL(base) minus the promoted tensors' sensitivities) is <= budget_kld > 0. The final file
 * is the base recipe plus one --tensor-type rule per promoted tensor (after o's own rules), with
 * the base's calibration reused (a GPTQ or search base is calibrated once): it holds exactly the
 * tensors the sensitivities were measured with, each base tensor as the base conversion made it
 * and each promoted one round-to-nearest at `high` (the layers after a promoted tensor are not
 * recalibrated against it). Its KL is measured on the same ids.
 */
typedef struct {
    double budget_kld;      /* > 0: the largest predicted mean KL */
    double budget_bpw;      /* > 0: the most stored bits per quantized weight */
    glmq_type high;         /* the promoted type: INT8 (default, 0), or a group-wise type */
    int64_t eval_tokens;    /* calibration ids evaluated; <= 0: o->calib_tokens */
} glmq_budget_opts;

typedef struct {
    char name[256];
    glmq_type type;          /* its type in the final file */
    double sensitivity;      /* KL reduction when it alone is at `high` */
    double bits_base, bits_high; /* stored bits at the base type and at `high` */
    int64_t elems;
} glmq_budget_tensor;

typedef struct {
    glmq_budget_tensor *t;   /* every quantized layer tensor, in checkpoint order (owned) */
    int64_t n;
    double kld_base;         /* mean KL of the base file */
    double kld_predicted;    /* kld_base minus the promoted tensors' sensitivities */
    double kld_measured;     /* mean KL of the final file */
    double bpw_base, bpw;    /* stored bits per quantized weight: base, final */
    int64_t n_promoted, eval_positions;
} glmq_budget_report;

GLMQ_API void glmq_budget_report_free(glmq_budget_report *r); /* NULL is a no-op */

/* 1 when one of o's --tensor-type rules matches the 2-D weight `name`, 0 when none does, -1
 * when the rules do not compile (glmq_convert names the bad rule). */
GLMQ_API int glmq_convert_rule_matches(const glmq_convert_opts *o, const char *name);

/* @return GLMQ_OK; GLMQ_E_INVALID (no budget or both, no calibration text, a budget_bpw below
 *         the base's bits, a `high` that is not quantized); errors of glmq_convert and the
 *         evaluation. Temporary files go next to out_path and are removed. */
GLMQ_API glmq_status glmq_convert_budget(const char *src_dir, const char *out_path,
                                         const glmq_convert_opts *o, const glmq_budget_opts *b,
                                         glmq_budget_report *report, glmq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* GLMQ_H */
