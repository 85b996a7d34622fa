/*
 * pack_write.c - atomic, streaming writer of the packed file (formats/SPEC.md).
 *
 * Invariants:
 *   - the layout (every offset) is fixed at create time from the declarations, so concurrent or
 *     out-of-order producers could pwrite anywhere; rows of one tensor arrive in order because
 *     its checksum is streamed over them;
 *   - nothing is ever written at the output path itself: the file is written through the
 *     atomic writer (core/atomic.h: a nameless O_TMPFILE inode in the output's directory, or a
 *     named temporary a later writer can clean up), which fsyncs it, renames it over the output
 *     and fsyncs the directory only in finish;
 *   - the first error is sticky and every later call returns it; finish/abort remove the
 *     temporary file on failure.
 */
#include "formats/pack.h"
#include "formats/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/atomic.h"
#include "core/hash.h"

typedef struct {
    glmq_pack_tensor_decl d;
    char *name;
    int64_t rows, cols, row_bytes;
    uint64_t name_off, data_off, data_size, scale_off, scale_size;
    int64_t rows_written;
    int scales_written;
    XXH3_state_t *hash;
    uint64_t checksum;
} wtensor;

typedef struct {
    char *name;
    uint64_t size, off, name_off, checksum;
    int written;
} wblob;

struct glmq_pack_writer {
    char *out_path;
    glmq_atomic_file *af;
    int fd; /* glmq_atomic_fd(af), or -1 */
    glmq_sticky sk; /* the first error, returned by every later call */
    wtensor *t;
    int64_t nt;
    wblob *b;
    int64_t nb;
    uint64_t strtab_off, strtab_size, tdir_off, bdir_off, data_end;
};

/* pwrite without touching the sticky state (safe from worker threads): 0 or an errno. */
static int pwrite_raw(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pwrite(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static glmq_status pwrite_all(glmq_pack_writer *w, const void *data, size_t n, uint64_t off,
                              glmq_err *err)
{
    int en = pwrite_raw(w->fd, data, n, off);
    return en ? glmq_pack_fail_io(w, en, off, n, err) : GLMQ_OK;
}

static void free_writer(glmq_pack_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->nt; i++) {
        free(w->t[i].name);
        if (w->t[i].hash) XXH3_freeState(w->t[i].hash);
    }
    for (int64_t i = 0; i < w->nb; i++) free(w->b[i].name);
    free(w->t);
    free(w->b);
    free(w->out_path);
    free(w);
}

void glmq_pack_writer_abort(glmq_pack_writer *w)
{
    if (!w) return;
    glmq_atomic_discard(w->af);
    free_writer(w);
}

uint64_t glmq_pack_writer_size(const glmq_pack_writer *w) { return w->data_end; }

glmq_status glmq_pack_writer_create(const char *out_path, const glmq_pack_tensor_decl *tensors,
                                    int64_t n_tensors, const glmq_pack_blob_decl *blobs,
                                    int64_t n_blobs, glmq_pack_writer **out, glmq_err *err)
{
    *out = NULL;
    glmq_status st = GLMQ_OK;
    glmq_pack_writer *w = calloc(1, sizeof *w);
    GLMQ_FAIL_IF(!w, err, GLMQ_E_NOMEM, "out of memory");
    w->fd = -1;
    w->out_path = glmq_strdup(out_path);
    w->t = calloc((size_t)n_tensors + 1, sizeof *w->t);
    w->b = calloc((size_t)n_blobs + 1, sizeof *w->b);
    GLMQ_FAIL_IF_G(!w->out_path || !w->t || !w->b, err, GLMQ_E_NOMEM, "out of memory");

    /* string table: all names NUL-terminated, right after the header */
    uint64_t off = GLMQ_PACK_HEADER_SIZE;
    w->strtab_off = off;
    for (int64_t i = 0; i < n_tensors; i++) {
        wtensor *t = &w->t[i];
        t->d = tensors[i];
        t->name = glmq_strdup(tensors[i].name);
        GLMQ_FAIL_IF_G(!t->name, err, GLMQ_E_NOMEM, "out of memory");
        t->d.name = t->name;
        w->nt++;
        GLMQ_FAIL_IF_G(t->d.ndim < 1 || t->d.ndim > GLMQ_MAX_DIMS, err, GLMQ_E_INVALID,
                       "tensor '%s': %d dimensions", t->name, t->d.ndim);
        t->rows = 1;
        for (int d = 0; d < t->d.ndim - 1; d++) t->rows *= t->d.shape[d];
        t->cols = t->d.shape[t->d.ndim - 1];
        GLMQ_FAIL_IF_G(t->rows < 1 || t->cols < 1, err, GLMQ_E_INVALID, "tensor '%s' is empty",
                       t->name);
        t->row_bytes = glmq_row_bytes(t->d.type, t->cols);
        GLMQ_FAIL_IF_G(t->row_bytes <= 0, err, GLMQ_E_INVALID, "tensor '%s': bad type",
                       t->name);
        t->name_off = off;
        off += strlen(t->name) + 1;
        t->hash = XXH3_createState();
        GLMQ_FAIL_IF_G(!t->hash, err, GLMQ_E_NOMEM, "out of memory");
        XXH3_64bits_reset(t->hash);
    }
    for (int64_t i = 0; i < n_blobs; i++) {
        wblob *b = &w->b[i];
        b->name = glmq_strdup(blobs[i].name);
        GLMQ_FAIL_IF_G(!b->name, err, GLMQ_E_NOMEM, "out of memory");
        w->nb++;
        b->size = blobs[i].size;
        b->name_off = off;
        off += strlen(b->name) + 1;
    }
    w->strtab_size = off - w->strtab_off;
    off = glmq_align_up(off, 8);
    w->tdir_off = off;
    off += (uint64_t)n_tensors * GLMQ_PACK_TENSOR_ENTRY;
    w->bdir_off = off;
    off += (uint64_t)n_blobs * GLMQ_PACK_BLOB_ENTRY;
    for (int64_t i = 0; i < n_blobs; i++) {
        off = glmq_align_up(off, GLMQ_PACK_ALIGN);
        w->b[i].off = off;
        off += w->b[i].size;
    }
    for (int64_t i = 0; i < n_tensors; i++) {
        wtensor *t = &w->t[i];
        off = glmq_align_up(off, GLMQ_PACK_ALIGN);
        t->data_off = off;
        t->data_size = (uint64_t)t->rows * (uint64_t)t->row_bytes;
        off += t->data_size;
        if (glmq_type_scaled(t->d.type)) {
            off = glmq_align_up(off, GLMQ_PACK_ALIGN);
            t->scale_off = off;
            t->scale_size =
                (uint64_t)t->rows * (uint64_t)glmq_scales_per_row(t->d.type, t->cols) * 2;
            off += t->scale_size;
        }
    }
    w->data_end = off;

    /* the file, unnamed until finish, in the output's directory; fail early when it cannot
     * fit (a later failure, e.g. a race with another writer, is still caught by the writes) */
    GLMQ_TRY_G(glmq_atomic_open(out_path, &w->af, err));
    w->fd = glmq_atomic_fd(w->af);
    GLMQ_TRY_G(glmq_atomic_check_space(w->af, w->data_end, err));
    *out = w;
    return GLMQ_OK;
fail:
    glmq_pack_writer_abort(w);
    return st;
}

glmq_status glmq_pack_write_blob(glmq_pack_writer *w, int64_t i, const void *data, glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    if (i < 0 || i >= w->nb) return glmq_sticky_set(&w->sk, err, GLMQ_E_INTERNAL, "bad blob index");
    wblob *b = &w->b[i];
    b->checksum = XXH3_64bits(data, b->size);
    b->written = 1;
    return pwrite_all(w, data, b->size, b->off, err);
}

glmq_status glmq_pack_write_rows(glmq_pack_writer *w, int64_t i, int64_t row0, int64_t nrows,
                                 const void *data, glmq_err *err)
{
    GLMQ_TRY(glmq_pack_hash_rows(w, i, row0, nrows, data, err));
    const wtensor *t = &w->t[i];
    return pwrite_all(w, data, (size_t)(nrows * t->row_bytes),
                      t->data_off + (uint64_t)row0 * (uint64_t)t->row_bytes, err);
}

glmq_status glmq_pack_row_offset(const glmq_pack_writer *w, int64_t i, int64_t row0,
                                 uint64_t *off, int64_t *row_bytes, glmq_err *err)
{
    GLMQ_FAIL_IF(i < 0 || i >= w->nt || row0 < 0 || row0 > w->t[i].rows, err, GLMQ_E_INTERNAL,
                 "bad tensor or row index");
    *off = w->t[i].data_off + (uint64_t)row0 * (uint64_t)w->t[i].row_bytes;
    *row_bytes = w->t[i].row_bytes;
    return GLMQ_OK;
}

glmq_status glmq_pack_hash_rows(glmq_pack_writer *w, int64_t i, int64_t row0, int64_t nrows,
                                const void *data, glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    if (i < 0 || i >= w->nt)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INTERNAL, "bad tensor index");
    wtensor *t = &w->t[i];
    if (row0 != t->rows_written || nrows < 0 || nrows > t->rows - row0)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INTERNAL,
                               "tensor '%s': rows hashed out of order", t->name);
    XXH3_64bits_update(t->hash, data, (size_t)(nrows * t->row_bytes));
    t->rows_written += nrows;
    return GLMQ_OK;
}

int glmq_pack_pwrite_at(glmq_pack_writer *w, uint64_t off, const void *data, size_t n)
{
    return pwrite_raw(w->fd, data, n, off);
}

glmq_status glmq_pack_fail_io(glmq_pack_writer *w, int errnum, uint64_t off, size_t n,
                              glmq_err *err)
{
    return glmq_sticky_set(&w->sk, err, GLMQ_E_IO,
                           "'%s': write of %zu bytes at byte %llu failed: %s", w->out_path, n,
                           (unsigned long long)off, strerror(errnum));
}

glmq_status glmq_pack_write_scales(glmq_pack_writer *w, int64_t i, const uint16_t *scales,
                                   glmq_err *err)
{
    GLMQ_TRY(glmq_sticky_get(&w->sk, err));
    if (i < 0 || i >= w->nt)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INTERNAL, "bad tensor index");
    wtensor *t = &w->t[i];
    if (!t->scale_size || t->rows_written != t->rows || t->scales_written)
        return glmq_sticky_set(&w->sk, err, GLMQ_E_INTERNAL,
                               "tensor '%s': scales written out of order", t->name);
    uint8_t *buf = malloc(t->scale_size);
    if (!buf) return glmq_sticky_set(&w->sk, err, GLMQ_E_NOMEM, "out of memory");
    for (uint64_t r = 0; r < t->scale_size / 2; r++) glmq_wr_le16(buf + 2 * r, scales[r]);
    XXH3_64bits_update(t->hash, buf, t->scale_size);
    t->scales_written = 1;
    glmq_status st = pwrite_all(w, buf, t->scale_size, t->scale_off, err);
    free(buf);
    return st;
}

glmq_status glmq_pack_writer_finish(glmq_pack_writer *w, const char *meta, glmq_err *err)
{
    glmq_status st = glmq_sticky_get(&w->sk, err);
    uint8_t *tables = NULL;
    XXH3_state_t *hs = NULL;
    if (st != GLMQ_OK) goto fail;
    for (int64_t i = 0; i < w->nt; i++) {
        wtensor *t = &w->t[i];
        GLMQ_FAIL_IF_G(t->rows_written != t->rows || (t->scale_size && !t->scales_written), err,
                       GLMQ_E_INTERNAL, "tensor '%s' was not completely written", t->name);
        t->checksum = XXH3_64bits_digest(t->hash);
    }
    for (int64_t i = 0; i < w->nb; i++)
        GLMQ_FAIL_IF_G(!w->b[i].written, err, GLMQ_E_INTERNAL, "blob '%s' was not written",
                       w->b[i].name);

    /* header + string table + directories, built in one buffer */
    uint64_t tables_end = w->bdir_off + (uint64_t)w->nb * GLMQ_PACK_BLOB_ENTRY;
    tables = calloc(1, tables_end);
    GLMQ_FAIL_IF_G(!tables, err, GLMQ_E_NOMEM, "out of memory");
    size_t meta_size = strlen(meta);
    uint64_t meta_off = w->data_end;
    uint64_t file_size = meta_off + meta_size;
    for (int64_t i = 0; i < w->nt; i++) {
        wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        memcpy(tables + t->name_off, t->name, nl + 1);
        uint8_t *e = tables + w->tdir_off + (uint64_t)i * GLMQ_PACK_TENSOR_ENTRY;
        glmq_wr_le64(e + 0, t->name_off);
        glmq_wr_le32(e + 8, (uint32_t)nl);
        glmq_wr_le32(e + 12, (uint32_t)t->d.type);
        glmq_wr_le32(e + 16, (uint32_t)t->d.ndim);
        for (int d = 0; d < t->d.ndim; d++) glmq_wr_le64(e + 24 + 8 * d, (uint64_t)t->d.shape[d]);
        glmq_wr_le64(e + 56, (uint64_t)t->row_bytes);
        glmq_wr_le64(e + 64, t->data_off);
        glmq_wr_le64(e + 72, t->data_size);
        glmq_wr_le64(e + 80, t->scale_off);
        glmq_wr_le64(e + 88, t->scale_size);
        glmq_wr_le64(e + 96, t->checksum);
    }
    for (int64_t i = 0; i < w->nb; i++) {
        wblob *b = &w->b[i];
        size_t nl = strlen(b->name);
        memcpy(tables + b->name_off, b->name, nl + 1);
        uint8_t *e = tables + w->bdir_off + (uint64_t)i * GLMQ_PACK_BLOB_ENTRY;
        glmq_wr_le64(e + 0, b->name_off);
        glmq_wr_le32(e + 8, (uint32_t)nl);
        glmq_wr_le64(e + 16, b->off);
        glmq_wr_le64(e + 24, b->size);
        glmq_wr_le64(e + 32, b->checksum);
    }
    uint8_t *h = tables;
    memcpy(h, GLMQ_PACK_MAGIC, 8);
    glmq_wr_le16(h + 8, GLMQ_PACK_VERSION_MAJOR);
    uint16_t minor = GLMQ_PACK_VERSION_MINOR;
    for (int64_t i = 0; i < w->nt; i++)
        if (glmq_type_group(w->t[i].d.type)) minor = GLMQ_PACK_VERSION_MINOR_GROUPS;
    glmq_wr_le16(h + 10, minor);
    glmq_wr_le32(h + 12, GLMQ_PACK_HEADER_SIZE);
    glmq_wr_le64(h + 16, file_size);
    glmq_wr_le64(h + 24, w->strtab_off);
    glmq_wr_le64(h + 32, w->strtab_size);
    glmq_wr_le64(h + 40, w->tdir_off);
    glmq_wr_le64(h + 48, (uint64_t)w->nt);
    glmq_wr_le64(h + 56, w->bdir_off);
    glmq_wr_le64(h + 64, (uint64_t)w->nb);
    glmq_wr_le64(h + 72, meta_off);
    glmq_wr_le64(h + 80, meta_size);
    hs = XXH3_createState();
    GLMQ_FAIL_IF_G(!hs, err, GLMQ_E_NOMEM, "out of memory");
    XXH3_64bits_reset(hs);
    XXH3_64bits_update(hs, h, 120);
    XXH3_64bits_update(hs, tables + w->strtab_off, w->strtab_size);
    XXH3_64bits_update(hs, tables + w->tdir_off, (size_t)w->nt * GLMQ_PACK_TENSOR_ENTRY);
    XXH3_64bits_update(hs, tables + w->bdir_off, (size_t)w->nb * GLMQ_PACK_BLOB_ENTRY);
    XXH3_64bits_update(hs, meta, meta_size);
    glmq_wr_le64(h + 120, XXH3_64bits_digest(hs));

    GLMQ_TRY_G(pwrite_all(w, meta, meta_size, meta_off, err));
    GLMQ_TRY_G(pwrite_all(w, tables, tables_end, 0, err));
    GLMQ_FAIL_IF_G(ftruncate(w->fd, (off_t)file_size) != 0, err, GLMQ_E_IO,
                   "'%s': cannot set size to %llu bytes: %s", w->out_path,
                   (unsigned long long)file_size, strerror(errno));
    glmq_atomic_file *af = w->af;
    w->af = NULL; /* commit consumes it, also on failure */
    w->fd = -1;
    GLMQ_TRY_G(glmq_atomic_commit(af, err));
    XXH3_freeState(hs);
    free(tables);
    free_writer(w);
    return GLMQ_OK;
fail:
    if (hs) XXH3_freeState(hs);
    free(tables);
    glmq_pack_writer_abort(w);
    return st;
}
