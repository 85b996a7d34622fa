/*
 * tokenizer.h - the tokenizers of the GLM family, text -> int32 token ids -> text.
 *
 *   ChatGLM-6B (v1)   ice_text.model, a SentencePiece ModelProto          (GLM-SPEC A.8, F)
 *   ChatGLM2/3-6B     tokenizer.model, a SentencePiece ModelProto (BPE)   (GLM-SPEC B.7, F)
 *   GLM-4-9B          tokenizer.model, a tiktoken rank file               (GLM-SPEC C.3)
 *
 * Two layers:
 *   1. The file's own tokenizer, bit-exact with the reference libraries: SentencePiece 0.1.97
 *      (normalizer incl. precompiled charsmap, BPE, optimized UNIGRAM Viterbi, user-defined
 *      pieces, byte fallback, unknown merging, decoding incl. denormalizer) and tiktoken's
 *      encode_ordinary with GLM-4's cl100k-style pre-tokenizer.
 *   2. A "GLM flavour" chosen by the caller through glmq_tok_glm (no dependency on the config
 *      parser): ChatGLM-6B text preprocessing (newline/tab/space runs -> <n>, <|tab|>,
 *      <|blank_k|>) and its image-token id offset; the special-token ids of each family; and
 *      the ids a prompt starts or ends with ([gMASK] sop prefix for v2/v3, [gMASK] <sop> prefix
 *      for GLM-4, [gMASK] <sop> suffix for v1).
 *
 * Conventions (house style, see glmq.h): every fallible function returns glmq_status and takes
 * `glmq_err *err` (may be NULL) last; a failed constructor leaves *out == NULL; pointer
 * arguments are borrowed. Text is UTF-8 given as pointer + length (no NUL needed; embedded NULs
 * and invalid UTF-8 are accepted and handled as the reference libraries do, see
 * glmq_tokenizer_encode). Hostile model files give GLMQ_E_FORMAT (or GLMQ_E_UNSUPPORTED for a
 * well-formed WORD/CHAR SentencePiece model), never a crash.
 *
 * Thread-safety: a glmq_tokenizer is immutable after loading; any number of threads may encode
 * and decode with the same object concurrently (each call allocates its own scratch).
 */
#ifndef GLMQ_TOKENIZER_H
#define GLMQ_TOKENIZER_H

#include "glmq.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct glmq_tokenizer glmq_tokenizer;

/* ---- GLM flavour ------------------------------------------------------------------------ */

typedef enum {
    GLMQ_TOK_PLAIN = 0,    /* the file's ids only: no preprocessing, no specials, no prefix */
    GLMQ_TOK_CHATGLM1 = 1, /* SentencePiece; A.8 preprocessing; ids + image_tokens;
                              specials are pieces of the file; suffix [gMASK] <sop> */
    GLMQ_TOK_CHATGLM2 = 2, /* SentencePiece; specials [MASK] [gMASK] [sMASK] sop eop numbered
                              after the pieces; prefix [gMASK] sop */
    GLMQ_TOK_CHATGLM3 = 3, /* as CHATGLM2 plus <|system|> <|user|> <|assistant|>
                              <|observation|> */
    GLMQ_TOK_GLM4 = 4      /* tiktoken; 14 specials after the ranks; prefix [gMASK] <sop> */
} glmq_tok_family;

/*
 * What the caller knows about the model (from config.json / tokenizer_config.json). Fill it with
 * glmq_tok_glm_init() and override fields. Only CHATGLM1 reads the id fields: they are the
 * config's final ids (the image offset already added, e.g. gmask_token_id 130001); -1 means
 * "the id of the piece '[MASK]' / '[gMASK]' / '<sop>' / '<eop>' in the file, plus
 * image_tokens". The other families number their specials after the file's vocabulary.
 */
typedef struct {
    glmq_tok_family family;
    int32_t image_tokens; /* v1 num_image_tokens: 0 (final revision) or 20000 (March 2023) */
    int32_t mask_id;      /* v1 [MASK]   (config mask_token_id)  */
    int32_t gmask_id;     /* v1 [gMASK]  (config gmask_token_id) */
    int32_t bos_id;       /* v1 <sop>    (config bos_token_id)   */
    int32_t eos_id;       /* v1 <eop>    (config eos_token_id)   */
} glmq_tok_glm;

/* Defaults for a family: image_tokens 0, every id -1. */
void glmq_tok_glm_init(glmq_tok_glm *cfg, glmq_tok_family family);

/* ---- loading ---------------------------------------------------------------------------- */

/*
 * Parse a SentencePiece ModelProto (protobuf wire format, GLM-SPEC F.1-F.3) and validate it as
 * SentencePiece does on load: non-empty unique pieces, exactly one UNKNOWN piece, byte pieces
 * <0x00>..<0xFF> iff trainer_spec.byte_fallback, a well-formed precompiled charsmap, every
 * length inside its message. `data` is copied; the caller may free it on return. `cfg` may be
 * NULL (GLMQ_TOK_PLAIN); its family must be PLAIN, CHATGLM1, CHATGLM2 or CHATGLM3.
 * @return GLMQ_OK and *out; GLMQ_E_FORMAT (message names the byte offset / piece),
 *         GLMQ_E_UNSUPPORTED (WORD/CHAR model), GLMQ_E_INVALID (bad cfg), GLMQ_E_NOMEM.
 */
glmq_status glmq_tokenizer_load_sp(const void *data, size_t size, const glmq_tok_glm *cfg,
                                   glmq_tokenizer **out, glmq_err *err);

/*
 * Parse a tiktoken rank file: lines "<base64 token bytes> <decimal rank>", blank lines ignored
 * (GLM-SPEC C.3). Ranks must be exactly 0..n-1 (token id = rank), tokens unique and non-empty,
 * and all 256 single bytes present. `cfg` may be NULL (PLAIN) or family GLM4.
 */
glmq_status glmq_tokenizer_load_tiktoken(const void *data, size_t size, const glmq_tok_glm *cfg,
                                         glmq_tokenizer **out, glmq_err *err);

/* Read a file and load it with one of the two loaders: a first byte that is the key of a
 * length-delimited field 1..5 (0x0A, 0x12, ..., 0x2A; none is a base64 character) means a
 * SentencePiece ModelProto (with a tiktoken retry if that fails, for a rank file starting with
 * a blank line), anything else a tiktoken rank file. */
glmq_status glmq_tokenizer_open(const char *path, const glmq_tok_glm *cfg, glmq_tokenizer **out,
                                glmq_err *err);

/* Free. NULL is a no-op. */
void glmq_tokenizer_free(glmq_tokenizer *t);

typedef enum {
    GLMQ_TOK_SP_UNIGRAM = 1, /* values = TrainerSpec.ModelType */
    GLMQ_TOK_SP_BPE = 2,
    GLMQ_TOK_TIKTOKEN = 16
} glmq_tok_model;

typedef struct {
    glmq_tok_model model;
    glmq_tok_family family;
    int32_t n_base;    /* pieces (SentencePiece) or ranks (tiktoken) in the file */
    int32_t n_special; /* family specials numbered after the file's ids (0 for PLAIN, v1) */
    int32_t n_vocab;   /* ids encode/decode can produce or accept: offset + n_base + n_special */
    int32_t id_offset; /* v1 image_tokens, else 0 */
    /* SentencePiece only (-1 / 0 for tiktoken); ids without the v1 offset */
    int32_t unk_id; /* the UNKNOWN piece */
    /* CONTROL pieces named by trainer_spec (<s> </s> <pad>), or -1 */
    int32_t bos_id, eos_id, pad_id;
    int byte_fallback, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    int treat_whitespace_as_suffix;
    int n_user_defined;          /* USER_DEFINED pieces */
    size_t charsmap_size;        /* bytes of normalizer_spec.precompiled_charsmap (0 = none) */
    size_t denorm_charsmap_size; /* same for denormalizer_spec */
    char normalizer_name[32];    /* normalizer_spec.name, truncated */
} glmq_tok_info;

void glmq_tokenizer_info(const glmq_tokenizer *t, glmq_tok_info *info);

/* ---- id vectors ------------------------------------------------------------------------- */

/* A growable id array. Zero-initialise it ({0}); the encode functions append to it; reuse it
 * across calls (set n = 0) and release it with glmq_ids_free. */
typedef struct {
    int32_t *ids;
    size_t n;
    size_t cap;
} glmq_ids;

void glmq_ids_free(glmq_ids *v); /* frees ids and zeroes the struct; NULL-safe */

/* Append one id (e.g. a special token while building a chat prompt); grows geometrically. */
glmq_status glmq_ids_push(glmq_ids *v, int32_t id, glmq_err *err);

/* ---- encoding --------------------------------------------------------------------------- */

/*
 * Append the ids of `text` (len bytes) to `out`, without special tokens: the flavour's text
 * preprocessing (v1) and id offset (v1) are applied, nothing is added before or after.
 * SentencePiece: exactly SentencePieceProcessor::EncodeAsIds (invalid UTF-8 bytes become
 * U+FFFD, one per byte, as its normalizer does). tiktoken: encode_ordinary; text that looks
 * like a special token is ordinary text; each invalid UTF-8 byte (which Python/Rust strings
 * cannot hold) is treated as a one-byte character of class "other" (neither letter, number nor
 * space) and encoded through the single-byte tokens. Empty text appends nothing.
 * At most 2^28 bytes (256 MiB) per call (GLMQ_E_INVALID beyond: split the text).
 * On error `out` keeps its previous contents.
 */
glmq_status glmq_tokenizer_encode(const glmq_tokenizer *t, const char *text, size_t len,
                                  glmq_ids *out, glmq_err *err);

/* Like glmq_tokenizer_encode but adds the flavour's prompt ids: prefix + ids + suffix (what the
 * HF tokenizer's encode(text) returns with special tokens). */
glmq_status glmq_tokenizer_encode_prompt(const glmq_tokenizer *t, const char *text, size_t len,
                                         glmq_ids *out, glmq_err *err);

/*
 * glmq_tokenizer_encode with the flags of glmq_tokenize (src/glmq.h): GLMQ_TOKENIZE_PROMPT adds
 * the prompt prefix/suffix; GLMQ_TOKENIZE_SPECIAL maps literal special-token text in `text` to
 * the special ids as the upstream tokenizers do in their special-token mode: ChatGLM2/3 and
 * GLM-4 split the text at each family special (leftmost, longest; whitespace around it kept)
 * and encode the parts separately; ChatGLM-6B encodes in one SentencePiece pass in which its 8
 * specials are USER_DEFINED pieces. PLAIN has no specials. On error `out` is unchanged.
 */
glmq_status glmq_tokenizer_encode_ex(const glmq_tokenizer *t, const char *text, size_t len,
                                     unsigned flags, glmq_ids *out, glmq_err *err);

/* The flavour's prompt prefix / suffix ids (borrowed, valid until free; *n may be 0). */
const int32_t *glmq_tokenizer_prefix(const glmq_tokenizer *t, size_t *n);
const int32_t *glmq_tokenizer_suffix(const glmq_tokenizer *t, size_t *n);

/*
 * The id of a special token of the flavour by its text: "[MASK]", "[gMASK]", "[sMASK]", "sop",
 * "eop" (v2/v3), "<sop>", "<eop>" (v1, GLM-4), "<|user|>" ... (v3, GLM-4), "<|endoftext|>" ...
 * (GLM-4). @return GLMQ_OK, or GLMQ_E_INVALID when the flavour has no such token.
 */
glmq_status glmq_tokenizer_special(const glmq_tokenizer *t, const char *name, int32_t *id,
                                   glmq_err *err);

/*
 * SentencePiece only: the score and type of piece `id` of the file (no v1 id offset), the type
 * as the ModelProto numbers it (1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED,
 * 6 BYTE). @return 1, or 0 (outputs untouched) for a tiktoken model or id outside [0, n_base).
 */
int glmq_tokenizer_sp_meta(const glmq_tokenizer *t, int32_t id, float *score, int *type);

/* ---- decoding --------------------------------------------------------------------------- */

/*
 * The raw bytes of one id (SentencePiece piece text with its U+2581, tiktoken token bytes, or
 * the special token's text); NULL when id is not in [0, n_vocab) or is a v1 image token.
 * Borrowed, not NUL-terminated.
 */
const char *glmq_tokenizer_piece(const glmq_tokenizer *t, int32_t id, size_t *len);

/*
 * Decode ids to text (GLM-SPEC F.7 / C.3): SentencePiece as SentencePieceProcessor::DecodeIds
 * (byte pieces regrouped into UTF-8 with U+FFFD for invalid bytes, U+2581 -> space, the dummy
 * prefix space removed, CONTROL pieces invisible, the unknown piece as unk_surface " \u2047 ",
 * then the denormalizer if the file has one); tiktoken by concatenating token bytes. Family
 * specials are skipped (HF skip_special_tokens); v1 drops image-token ids below the offset and
 * reverses the preprocessing (<n> -> "\n", <|tab|> -> "\t", <|blank_k|> -> k spaces).
 * *text receives a malloc'd NUL-terminated buffer (free() it) of *len bytes (excluding the NUL;
 * may contain NULs). @return GLMQ_E_VALUE naming the first id outside [0, n_vocab).
 */
glmq_status glmq_tokenizer_decode(const glmq_tokenizer *t, const int32_t *ids, size_t n,
                                  char **text, size_t *len, glmq_err *err);

#ifdef __cplusplus
}
#endif

#endif /* GLMQ_TOKENIZER_H */
