/*
 * pickle.h - a restricted, non-executing unpickler for the data.pkl record of torch.save files
 * (GLM-SPEC E.4, E.5). Internal to libglmq.
 *
 * The unpickler is a bounded stack machine over a byte buffer. It understands exactly the opcodes
 * of GLM-SPEC E.5 and resolves GLOBAL/STACK_GLOBAL against a fixed allow-list:
 *
 *   collections.OrderedDict                      called with () -> empty ordered dict
 *   torch._utils._rebuild_tensor_v2 / _v3        -> tensor description
 *   torch._utils._rebuild_parameter(_with_state) -> the wrapped tensor
 *   torch.<X>Storage, torch.UntypedStorage       storage classes (persistent ids only)
 *   torch.<dtype> (float16, bfloat16, ...)       dtype objects (argument of _rebuild_tensor_v3)
 *
 * Nothing is ever imported, called or executed: REDUCE on an allowed callable builds a plain C
 * description of the result. Everything else is refused with a message naming the opcode or the
 * global ('module.name') and its byte offset in data.pkl.
 *
 * Hard limits (exceeding one is GLMQ_E_FORMAT, never a crash): value stack GLMQ_PKL_MAX_STACK,
 * open MARKs (nesting) GLMQ_PKL_MAX_MARKS, container nesting depth GLMQ_PKL_MAX_DEPTH, memo index
 * < GLMQ_PKL_MAX_MEMO, objects created GLMQ_PKL_MAX_OBJECTS, string/bytes lengths <= remaining
 * input, LONG1/LONG4 <= 8 bytes, exactly one STOP and it must be the last byte.
 *
 * Status codes: GLMQ_E_UNSUPPORTED for well-formed pickles using something outside the subset
 * (disallowed global or opcode, quantized storage, too many dims); GLMQ_E_FORMAT for malformed
 * or over-limit input; GLMQ_E_NOMEM on allocation failure.
 */
#ifndef GLMQ_FORMATS_PICKLE_H
#define GLMQ_FORMATS_PICKLE_H

#include "formats/source.h"

#define GLMQ_PKL_MAX_STACK (1 << 16)
#define GLMQ_PKL_MAX_MARKS 64
#define GLMQ_PKL_MAX_DEPTH 64
#define GLMQ_PKL_MAX_MEMO (1 << 22)
#define GLMQ_PKL_MAX_OBJECTS (1 << 24)
#define GLMQ_PKL_KEY_MAX 64 /* storage keys are short decimal strings in practice */

/* One tensor entry of the top-level state dict, as described by the pickle. No size/bounds
 * validation against the zip has happened yet (that is torchzip.c's job). */
typedef struct {
    char name[GLMQ_SRC_NAME_MAX];  /* dict key, NUL-terminated, no embedded NUL */
    char key[GLMQ_PKL_KEY_MAX];    /* storage key: the record is PREFIX/data/<key> */
    glmq_dtype dtype;              /* element type of the tensor */
    glmq_dtype storage_dtype;      /* unit NUMEL counts in (U8 for UntypedStorage) */
    int64_t storage_numel;         /* NUMEL from the persistent id, >= 0 */
    int64_t offset;                /* storage_offset, in tensor elements, >= 0 */
    int ndim;                      /* 0..GLMQ_MAX_DIMS */
    int64_t shape[GLMQ_MAX_DIMS];  /* each >= 0 */
    int64_t stride[GLMQ_MAX_DIMS]; /* in elements, each >= 0 */
    uint64_t pos;                  /* byte offset in data.pkl of the REDUCE that built it */
    uint64_t pid_pos;              /* byte offset of its BINPERSID */
} glmq_pkl_tensor;

/* The state dict, in dict order. Owned by the caller; release with glmq_pkl_dict_free. */
typedef struct {
    glmq_pkl_tensor *v;
    size_t n;
} glmq_pkl_dict;

/*
 * Unpickle `data` (n bytes, the whole data.pkl) and describe its top-level state dict.
 *
 * The result must be a dict or OrderedDict whose keys are strings and whose values are tensors
 * (possibly wrapped in a Parameter); the same tensor may appear under several names. A dict with
 * a str key 'module' whose value is a dict (SAT / DeepSpeed rank files, formats/GLM130B.md) is
 * described by that inner dict; its other entries are skipped. `ctx`
 * prefixes every message (e.g. "'model.bin': member 'model/data.pkl'"); may be NULL.
 *
 * @return GLMQ_OK and *out filled, or an error with *out empty. Pure function of its input;
 *         thread-safe; allocates only on the heap, bounded by the limits above.
 */
glmq_status glmq_pickle_state_dict(const uint8_t *data, size_t n, const char *ctx,
                                   glmq_pkl_dict *out, glmq_err *err);

/* Free the entries of d and reset it to empty. NULL-safe. */
void glmq_pkl_dict_free(glmq_pkl_dict *d);

#endif /* GLMQ_FORMATS_PICKLE_H */
