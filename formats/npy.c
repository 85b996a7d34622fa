/*
 * npy.c - .npy (format 1.0) writer: the header of npy.h, then the payload converted to
 * little-endian float32 in blocks, all through the atomic writer so a failure or a kill never
 * leaves a partial file. The header depends only on the shape, so the same array always gives the
 * same bytes.
 */
#include "formats/npy.h"

#include "core/atomic.h"

#include <stdio.h>

glmq_status glmq_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols,
                               glmq_err *err)
{
    GLMQ_FAIL_IF(rows < 0 || cols < 0, err, GLMQ_E_INVALID,
                 "'%s': bad .npy shape (%lld, %lld)", path, (long long)rows, (long long)cols);
    uint64_t count, nbytes;
    GLMQ_FAIL_IF(!glmq_mul_u64((uint64_t)rows, (uint64_t)cols, &count) ||
                     !glmq_mul_u64(count, 4, &nbytes) || nbytes > (uint64_t)INT64_MAX,
                 err, GLMQ_E_INVALID, "'%s': .npy shape (%lld, %lld) is too large", path,
                 (long long)rows, (long long)cols);

    /* magic, version, HEADER_LEN, dict, spaces, '\n': a multiple of 64 bytes in all */
    uint8_t hdr[192];
    int len = snprintf((char *)hdr + 10, sizeof hdr - 10,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)rows, (long long)cols);
    GLMQ_FAIL_IF(len < 0 || (size_t)len + 11 > sizeof hdr, err, GLMQ_E_INTERNAL,
                 "'%s': .npy header too long", path);
    size_t total = glmq_align_up(10 + (size_t)len + 1, 64);
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    glmq_wr_le16(hdr + 8, (uint16_t)(total - 10));
    memset(hdr + 10 + len, ' ', total - 10 - (size_t)len - 1);
    hdr[total - 1] = '\n';

    glmq_atomic_file *af = NULL;
    GLMQ_TRY(glmq_atomic_open(path, &af, err));
    glmq_status st = glmq_atomic_write(af, hdr, total, err);
    uint8_t buf[16384];
    for (uint64_t i = 0; st == GLMQ_OK && i < count;) {
        size_t k = 0;
        for (; k + 4 <= sizeof buf && i < count; k += 4, i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            glmq_wr_le32(buf + k, u);
        }
        st = glmq_atomic_write(af, buf, k, err);
    }
    if (st != GLMQ_OK) {
        glmq_atomic_discard(af);
        return st;
    }
    return glmq_atomic_commit(af, err);
}
