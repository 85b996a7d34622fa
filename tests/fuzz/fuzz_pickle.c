/*
 * fuzz_pickle.c - feeds arbitrary bytes to the restricted unpickler as if they were data.pkl.
 *
 * Properties checked: no crash, leak or sanitizer report for any input; on success every entry
 * satisfies the contract of pickle.h (named, 0..GLMQ_MAX_DIMS dims, non-negative shape, stride,
 * offset and NUMEL, a storage key); on failure the result is empty and a message was written.
 */
#include "formats/pickle.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    glmq_pkl_dict d;
    glmq_err err;
    memset(&err, 0, sizeof err);
    glmq_status st = glmq_pickle_state_dict(data, size, "fuzz", &d, &err);
    if (st != GLMQ_OK) {
        if (d.n != 0 || d.v != NULL || err.msg[0] == 0) abort();
        return 0;
    }
    for (size_t i = 0; i < d.n; i++) {
        const glmq_pkl_tensor *t = &d.v[i];
        if (t->name[0] == 0 || t->key[0] == 0) abort();
        if (t->ndim < 0 || t->ndim > GLMQ_MAX_DIMS) abort();
        if (t->offset < 0 || t->storage_numel < 0) abort();
        if ((unsigned)t->dtype >= GLMQ_DT_COUNT || (unsigned)t->storage_dtype >= GLMQ_DT_COUNT)
            abort();
        for (int k = 0; k < t->ndim; k++)
            if (t->shape[k] < 0 || t->stride[k] < 0) abort();
    }
    glmq_pkl_dict_free(&d);
    return 0;
}
