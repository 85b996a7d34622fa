/*
 * fuzz_torchzip.c - loads arbitrary bytes as a torch.save .bin file.
 *
 * The input is written to one temporary file (created once per process under GLMQ_TMP or /tmp,
 * rewritten in place each run) and passed to glmq_torchzip_load. When it loads, every storage is
 * verified (glmq_src_storage_verify) and every tensor of bounded size is read back through
 * glmq_src_read_rows_raw, which exercises the storage bounds, strided gathers and the
 * inflate/CRC paths. Properties: no crash or sanitizer report; a failed
 * load leaves the set empty and writes a message.
 */
#include "formats/source.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char tmp_path[4096];
static int tmp_fd = -1;

static void cleanup(void)
{
    if (tmp_fd >= 0) close(tmp_fd);
    if (tmp_path[0]) unlink(tmp_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tmp_fd < 0) {
        const char *dir = getenv("GLMQ_TMP");
        if (!dir || !*dir) dir = "/tmp";
        snprintf(tmp_path, sizeof tmp_path, "%s/fuzz_torchzip.XXXXXX", dir);
        tmp_fd = mkstemp(tmp_path);
        if (tmp_fd < 0) {
            snprintf(tmp_path, sizeof tmp_path, "/tmp/fuzz_torchzip.XXXXXX");
            tmp_fd = mkstemp(tmp_path);
        }
        if (tmp_fd < 0) abort();
        atexit(cleanup);
    }
    if (ftruncate(tmp_fd, (off_t)size) != 0) abort();
    if (size && pwrite(tmp_fd, data, size, 0) != (ssize_t)size) abort();

    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    memset(&err, 0, sizeof err);
    glmq_status st = glmq_torchzip_load(&s, tmp_path, &err);
    if (st != GLMQ_OK) {
        if (s.nfiles != 0 || s.nstorages != 0 || s.ntensors != 0 || err.msg[0] == 0) abort();
    } else {
        for (uint32_t i = 0; i < s.nstorages; i++) (void)glmq_src_storage_verify(&s, i, &err);
        for (int64_t i = 0; i < s.ntensors; i++) {
            const glmq_src_tensor *t = &s.tensors[i];
            size_t es = glmq_dtype_size(t->dtype);
            if ((uint64_t)t->nelem > ((uint64_t)1 << 20) / es) continue;
            if (s.storages[t->storage].size > ((uint64_t)1 << 26)) continue;
            uint8_t *buf = malloc((size_t)t->nelem * es + 1);
            if (!buf) abort();
            (void)glmq_src_read_rows_raw(&s, t, 0, glmq_src_rows(t), buf, &err);
            free(buf);
        }
    }
    glmq_src_set_free(&s);
    return 0;
}
