/*
 * fuzz_safetensors.c - feed arbitrary bytes to glmq_safetensors_load as a file.
 *
 * The input is written to a temp file (the reader works on file descriptors) and loaded into a
 * set that already holds one valid shard, so rollback after a failure is exercised too. Beyond
 * "no crash, no leak, no UB", the target checks the reader's contract and traps on a breach:
 *   - failure: a non-empty message and the set exactly as before the call;
 *   - success: every tensor lies inside its storage, the tensors tile the data section exactly,
 *     and the bytes of every tensor can be read back (small tensors only, to stay fast).
 */
#include "formats/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A valid one-tensor shard, loaded first. */
static int write_seed(const char *path)
{
    static const char hdr[] = "{\"seed\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    uint8_t b[8 + sizeof hdr - 1 + 2];
    glmq_wr_le64(b, sizeof hdr - 1);
    memcpy(b + 8, hdr, sizeof hdr - 1);
    b[sizeof b - 2] = 1;
    b[sizeof b - 1] = 2;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b, 1, sizeof b, f);
    return fclose(f) == 0 && w == sizeof b ? 0 : -1;
}

static int write_input(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w <= 0) return -1;
        data += w;
        size -= (size_t)w;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = getenv("GLMQ_TMP");
    char in_path[4096], seed_path[4096];
    snprintf(in_path, sizeof in_path, "%s/fuzz_st.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(in_path);
    if (fd < 0) {
        /* GLMQ_TMP may not exist yet: fall back to /tmp */
        snprintf(in_path, sizeof in_path, "/tmp/fuzz_st.XXXXXX");
        fd = mkstemp(in_path);
        if (fd < 0) return 0;
    }
    int ok = write_input(fd, data, size) == 0;
    close(fd);
    snprintf(seed_path, sizeof seed_path, "%s.seed", in_path);
    ok = ok && write_seed(seed_path) == 0;
    if (!ok) {
        unlink(in_path);
        unlink(seed_path);
        return 0;
    }

    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    memset(&err, 0, sizeof err);
    if (glmq_safetensors_load(&s, seed_path, &err) != GLMQ_OK) __builtin_trap();

    glmq_status st = glmq_safetensors_load(&s, in_path, &err);
    if (st != GLMQ_OK) {
        if (err.code != st || err.msg[0] == 0 || memchr(err.msg, 0, sizeof err.msg) == NULL)
            __builtin_trap();
        if (s.nfiles != 1 || s.nstorages != 1 || s.ntensors != 1) __builtin_trap();
    } else {
        if (s.nfiles != 2 || s.nstorages != 2) __builtin_trap();
        const glmq_src_storage *sto = &s.storages[1];
        if (sto->offset > size || sto->size != size - sto->offset) __builtin_trap();
        uint64_t expect = 0;
        for (int64_t i = 1; i < s.ntensors; i++) {
            const glmq_src_tensor *t = &s.tensors[i];
            uint64_t bytes = (uint64_t)t->nelem * glmq_dtype_size(t->dtype);
            /* appended in data order, exactly tiling the storage */
            if (t->storage != 1 || t->byte_offset != expect || !t->contiguous) __builtin_trap();
            expect += bytes;
            if (expect > sto->size) __builtin_trap();
            if (bytes <= 4096) {
                uint8_t buf[4096];
                if (glmq_src_read_rows_raw(&s, t, 0, glmq_src_rows(t), buf, &err) != GLMQ_OK)
                    __builtin_trap();
                if (bytes && memcmp(buf, data + (sto->offset + t->byte_offset), bytes) != 0)
                    __builtin_trap();
            }
        }
        if (expect != sto->size) __builtin_trap();
    }
    glmq_src_set_free(&s);
    unlink(in_path);
    unlink(seed_path);
    return 0;
}
