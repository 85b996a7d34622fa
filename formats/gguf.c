/*
 * gguf.c - GGUF value types (the reader follows; layout at the top of formats/gguf.h).
 */
#include "formats/gguf.h"

static const struct {
    const char *name;
    size_t size;
} vtypes[GLMQ_GGUF_VTYPE_COUNT] = {
    [GLMQ_GGUF_U8] = {"uint8", 1},     [GLMQ_GGUF_I8] = {"int8", 1},
    [GLMQ_GGUF_U16] = {"uint16", 2},   [GLMQ_GGUF_I16] = {"int16", 2},
    [GLMQ_GGUF_U32] = {"uint32", 4},   [GLMQ_GGUF_I32] = {"int32", 4},
    [GLMQ_GGUF_F32] = {"float32", 4},  [GLMQ_GGUF_BOOL] = {"bool", 1},
    [GLMQ_GGUF_STRING] = {"string", 0}, [GLMQ_GGUF_ARRAY] = {"array", 0},
    [GLMQ_GGUF_U64] = {"uint64", 8},   [GLMQ_GGUF_I64] = {"int64", 8},
    [GLMQ_GGUF_F64] = {"float64", 8},
};

const char *glmq_gguf_vtype_name(uint32_t t) { return t < GLMQ_GGUF_VTYPE_COUNT ? vtypes[t].name : NULL; }

size_t glmq_gguf_vtype_size(uint32_t t) { return t < GLMQ_GGUF_VTYPE_COUNT ? vtypes[t].size : 0; }
