/*
 * source.c - the checkpoint tensor table and bounded reads of tensor bytes.
 *
 * Readers describe tensors; this file owns the files, validates that every storage lies in its
 * file and every tensor in its storage, and reads bytes with pread (never mmap: conversion must
 * keep peak RSS near one tensor chunk, and page-cache pages mapped into the process would count).
 * Deflated zip members are inflated whole, once, into a single-entry cache and CRC-checked.
 */
#include "formats/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[GLMQ_DT_COUNT] = {
    [GLMQ_DT_F32] = {"F32", 4}, [GLMQ_DT_F16] = {"F16", 2}, [GLMQ_DT_BF16] = {"BF16", 2},
    [GLMQ_DT_F64] = {"F64", 8}, [GLMQ_DT_I64] = {"I64", 8}, [GLMQ_DT_I32] = {"I32", 4},
    [GLMQ_DT_I16] = {"I16", 2}, [GLMQ_DT_I8] = {"I8", 1},   [GLMQ_DT_U8] = {"U8", 1},
    [GLMQ_DT_BOOL] = {"BOOL", 1},
};

size_t glmq_dtype_size(glmq_dtype t)
{
    return (unsigned)t < GLMQ_DT_COUNT ? dtype_info[t].size : 0;
}

const char *glmq_dtype_name(glmq_dtype t)
{
    return (unsigned)t < GLMQ_DT_COUNT ? dtype_info[t].name : "?";
}

void glmq_src_set_init(glmq_src_set *s)
{
    memset(s, 0, sizeof *s);
    s->cache_storage = UINT32_MAX;
}

void glmq_src_set_free(glmq_src_set *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->nfiles; i++) {
        if (s->files[i].fd >= 0) close(s->files[i].fd);
        free(s->files[i].path);
    }
    for (uint32_t i = 0; i < s->nstorages; i++) free(s->storages[i].label);
    free(s->files);
    free(s->storages);
    free(s->tensors);
    free(s->pieces);
    free(s->cache);
    free(s->index);
    glmq_src_set_init(s);
}

/* Grow a dynamic array to hold one more element. */
static int grow(void **arr, uint64_t *cap, uint64_t n, size_t elem)
{
    if (n < *cap) return 0;
    uint64_t nc = *cap ? *cap * 2 : 16;
    if (nc > SIZE_MAX / elem) return -1;
    void *p = realloc(*arr, nc * elem);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

glmq_status glmq_src_add_file(glmq_src_set *s, const char *path, uint32_t *index, glmq_err *err)
{
    uint64_t cap = s->cap_files;
    GLMQ_FAIL_IF(grow((void **)&s->files, &cap, s->nfiles, sizeof *s->files), err, GLMQ_E_NOMEM,
                 "out of memory");
    s->cap_files = (uint32_t)cap;
    /* O_NONBLOCK so that a FIFO or device path cannot hang the open; regular files ignore it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    GLMQ_FAIL_IF(fd < 0, err, GLMQ_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return glmq_fail(err, GLMQ_E_IO, "'%s' is not a regular file", path);
    }
    char *dup = glmq_strdup(path);
    if (!dup) {
        close(fd);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    glmq_src_file *f = &s->files[s->nfiles];
    f->path = dup;
    const char *slash = strrchr(dup, '/');
    f->base = slash ? slash + 1 : dup;
    f->fd = fd;
    f->size = (uint64_t)sb.st_size;
    if (index) *index = s->nfiles;
    s->nfiles++;
    return GLMQ_OK;
}

glmq_status glmq_src_add_storage(glmq_src_set *s, const glmq_src_storage *st, uint32_t *index,
                                 glmq_err *err)
{
    GLMQ_FAIL_IF(st->file >= s->nfiles, err, GLMQ_E_INTERNAL, "storage names file %u of %u",
                 st->file, s->nfiles);
    const glmq_src_file *f = &s->files[st->file];
    uint64_t end;
    GLMQ_FAIL_IF(!glmq_add_u64(st->offset, st->comp_size, &end) || end > f->size, err,
                 GLMQ_E_FORMAT,
                 "'%s': storage '%s' at byte %llu (+%llu bytes) runs past the end of the file "
                 "(%llu bytes)",
                 f->path, st->label ? st->label : "?", (unsigned long long)st->offset,
                 (unsigned long long)st->comp_size, (unsigned long long)f->size);
    /* deflate cannot expand more than ~1032:1; a larger claim is a decompression bomb */
    GLMQ_FAIL_IF(st->deflated && st->size / 1032 > st->comp_size + 1, err, GLMQ_E_FORMAT,
                 "'%s': deflated member '%s' claims %llu bytes from %llu compressed bytes, more "
                 "than deflate can expand",
                 f->path, st->label ? st->label : "?", (unsigned long long)st->size,
                 (unsigned long long)st->comp_size);
    GLMQ_FAIL_IF(!st->deflated && st->comp_size != st->size, err, GLMQ_E_FORMAT,
                 "'%s': stored member '%s' has compressed size %llu != size %llu", f->path,
                 st->label ? st->label : "?", (unsigned long long)st->comp_size,
                 (unsigned long long)st->size);
    uint64_t cap = s->cap_storages;
    GLMQ_FAIL_IF(grow((void **)&s->storages, &cap, s->nstorages, sizeof *s->storages), err,
                 GLMQ_E_NOMEM, "out of memory");
    s->cap_storages = (uint32_t)cap;
    glmq_src_storage *d = &s->storages[s->nstorages];
    *d = *st;
    d->label = NULL;
    if (st->label) {
        d->label = glmq_strdup(st->label);
        GLMQ_FAIL_IF(!d->label, err, GLMQ_E_NOMEM, "out of memory");
    }
    if (index) *index = s->nstorages;
    s->nstorages++;
    return GLMQ_OK;
}

/* Open-addressing hash index over tensor names (FNV-1a), rebuilt when half full. */
static uint64_t name_hash(const char *n)
{
    uint64_t h = 1469598103934665603ull;
    for (; *n; n++) h = (h ^ (uint8_t)*n) * 1099511628211ull;
    return h;
}

static void index_put(int64_t *slots, uint64_t cap, const glmq_src_tensor *tensors, int64_t i)
{
    uint64_t k = name_hash(tensors[i].name) & (cap - 1);
    while (slots[k] >= 0) k = (k + 1) & (cap - 1);
    slots[k] = i;
}

/* Stale slots (tensors removed by a reader's rollback) never match, because lookups compare the
 * name; counting every insertion in index_used keeps them from filling the table. */
static void index_insert(glmq_src_set *s, int64_t i)
{
    if ((s->index_used + 1) * 2 > s->index_cap) {
        uint64_t cap = 64;
        while (cap < (uint64_t)s->ntensors * 4) cap *= 2;
        int64_t *slots = malloc(cap * sizeof *slots);
        free(s->index);
        s->index = slots;
        s->index_cap = slots ? cap : 0;
        if (!slots) return; /* glmq_src_find falls back to a scan */
        for (uint64_t k = 0; k < cap; k++) slots[k] = -1;
        for (int64_t j = 0; j < s->ntensors; j++) index_put(slots, cap, s->tensors, j);
        s->index_used = (uint64_t)s->ntensors;
        return;
    }
    index_put(s->index, s->index_cap, s->tensors, i);
    s->index_used++;
}

static void reindex(glmq_src_set *s)
{
    free(s->index);
    s->index = NULL;
    s->index_cap = s->index_used = 0;
    if (s->ntensors > 0) index_insert(s, s->ntensors - 1);
}

void glmq_src_set_truncate(glmq_src_set *s, uint32_t nf, uint32_t ns, int64_t nt)
{
    if (s->cache_storage != UINT32_MAX && s->cache_storage >= ns) {
        free(s->cache);
        s->cache = NULL;
        s->cache_storage = UINT32_MAX;
    }
    while (s->nstorages > ns) free(s->storages[--s->nstorages].label);
    while (s->nfiles > nf) {
        glmq_src_file *f = &s->files[--s->nfiles];
        if (f->fd >= 0) close(f->fd);
        free(f->path);
    }
    if (s->ntensors > nt) {
        s->ntensors = nt;
        int64_t np = 0;
        for (int64_t i = 0; i < nt; i++) {
            glmq_src_tensor *t = &s->tensors[i];
            t->used_as_piece = 0;
            if (t->n_pieces && t->piece0 + t->n_pieces > np) np = t->piece0 + t->n_pieces;
        }
        s->npieces = np;
        for (int64_t p = 0; p < np; p++) s->tensors[s->pieces[p].tensor].used_as_piece = 1;
        for (int64_t i = 0; i < nt; i++)
            if (s->tensors[i].alias_of) s->tensors[s->tensors[i].alias_of - 1].used_as_piece = 1;
        reindex(s);
    }
}

int64_t glmq_src_find(const glmq_src_set *s, const char *name)
{
    if (!s->index) {
        for (int64_t i = 0; i < s->ntensors; i++)
            if (strcmp(s->tensors[i].name, name) == 0) return i;
        return -1;
    }
    uint64_t k = name_hash(name) & (s->index_cap - 1);
    for (; s->index[k] >= 0; k = (k + 1) & (s->index_cap - 1))
        if (s->index[k] < s->ntensors && strcmp(s->tensors[s->index[k]].name, name) == 0)
            return s->index[k];
    return -1;
}

glmq_status glmq_src_add_tensor(glmq_src_set *s, const glmq_src_tensor *t, glmq_err *err)
{
    GLMQ_FAIL_IF(t->storage >= s->nstorages, err, GLMQ_E_INTERNAL, "tensor: bad storage index");
    const glmq_src_storage *st = &s->storages[t->storage];
    const char *fpath = s->files[st->file].path;
    size_t nlen = strnlen(t->name, GLMQ_SRC_NAME_MAX);
    GLMQ_FAIL_IF(nlen == 0 || nlen >= GLMQ_SRC_NAME_MAX, err, GLMQ_E_FORMAT,
                 "'%s': tensor name is empty or longer than %d bytes", fpath,
                 GLMQ_SRC_NAME_MAX - 1);
    GLMQ_FAIL_IF(glmq_src_find(s, t->name) >= 0, err, GLMQ_E_FORMAT,
                 "'%s': duplicate tensor name '%s'", fpath, t->name);
    GLMQ_FAIL_IF(t->ndim < 0 || t->ndim > GLMQ_MAX_DIMS, err, GLMQ_E_UNSUPPORTED,
                 "'%s': tensor '%s' has %d dimensions (at most %d supported)", fpath, t->name,
                 t->ndim, GLMQ_MAX_DIMS);
    size_t es = glmq_dtype_size(t->dtype);
    GLMQ_FAIL_IF(es == 0, err, GLMQ_E_INTERNAL, "'%s': tensor '%s': bad dtype", fpath, t->name);

    /* nelem and the byte span covered by the strides, all overflow-checked */
    uint64_t nelem = 1, last = 0; /* last = element index of the final element */
    for (int i = 0; i < t->ndim; i++) {
        GLMQ_FAIL_IF(t->shape[i] < 0 || t->stride[i] < 0, err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' has a negative dimension or stride", fpath, t->name);
        GLMQ_FAIL_IF(!glmq_mul_u64(nelem, (uint64_t)t->shape[i], &nelem) || nelem > INT64_MAX / 8,
                     err, GLMQ_E_FORMAT, "'%s': tensor '%s': shape overflows", fpath, t->name);
    }
    if (nelem > 0) {
        for (int i = 0; i < t->ndim; i++) {
            uint64_t span;
            GLMQ_FAIL_IF(!glmq_mul_u64((uint64_t)(t->shape[i] - 1), (uint64_t)t->stride[i], &span) ||
                             !glmq_add_u64(last, span, &last),
                         err, GLMQ_E_FORMAT, "'%s': tensor '%s': strides overflow", fpath,
                         t->name);
        }
        uint64_t bytes, end;
        GLMQ_FAIL_IF(!glmq_add_u64(last, 1, &bytes) || !glmq_mul_u64(bytes, es, &bytes) ||
                         !glmq_add_u64(t->byte_offset, bytes, &end) || end > st->size,
                     err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' (%llu bytes from byte %llu) does not fit in its storage "
                     "'%s' of %llu bytes",
                     fpath, t->name, (unsigned long long)(nelem * es),
                     (unsigned long long)t->byte_offset, st->label ? st->label : "?",
                     (unsigned long long)st->size);
    }

    uint64_t cap = (uint64_t)s->cap_tensors;
    GLMQ_FAIL_IF(grow((void **)&s->tensors, &cap, (uint64_t)s->ntensors, sizeof *s->tensors), err,
                 GLMQ_E_NOMEM, "out of memory");
    s->cap_tensors = (int64_t)cap;
    glmq_src_tensor *d = &s->tensors[s->ntensors++];
    *d = *t;
    d->name[nlen] = 0;
    d->nelem = (int64_t)nelem;
    /* row-major check, ignoring dims of size 1 (an empty tensor is trivially contiguous; for
     * a non-empty one the running product is bounded by nelem, so it cannot overflow) */
    int contig = 1;
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0 && nelem > 0; i--) {
        if (t->shape[i] == 1) continue;
        if (t->stride[i] != expect) contig = 0;
        expect *= t->shape[i];
    }
    d->contiguous = contig;
    index_insert(s, s->ntensors - 1);
    return GLMQ_OK;
}

/* Length of piece tensor t along a composite's axis and across it. A 1-D tensor is one row. */
static void piece_dims(const glmq_src_tensor *t, int axis, int64_t *along, int64_t *across)
{
    if (t->ndim == 1) {
        *along = t->shape[0];
        *across = 1;
    } else {
        *along = t->shape[axis];
        *across = t->shape[1 - axis];
    }
}

glmq_status glmq_src_add_composite(glmq_src_set *s, const char *name, int axis,
                                   const glmq_src_piece *pieces, int n, glmq_err *err)
{
    size_t nlen = strnlen(name, GLMQ_SRC_NAME_MAX);
    GLMQ_FAIL_IF(n < 1 || (axis != 0 && axis != 1) || nlen == 0 || nlen >= GLMQ_SRC_NAME_MAX,
                 err, GLMQ_E_INTERNAL, "composite tensor '%.64s': bad arguments", name);
    GLMQ_FAIL_IF(glmq_src_find(s, name) >= 0, err, GLMQ_E_FORMAT,
                 "duplicate tensor name '%s' (a composite of %d pieces)", name, n);
    int64_t total = 0, across = -1;
    for (int i = 0; i < n; i++) {
        const glmq_src_piece *p = &pieces[i];
        GLMQ_FAIL_IF(p->tensor < 0 || p->tensor >= s->ntensors, err, GLMQ_E_INTERNAL,
                     "composite '%s': piece %d names no tensor", name, i);
        const glmq_src_tensor *t = &s->tensors[p->tensor], *t0 = &s->tensors[pieces[0].tensor];
        const char *fpath = s->files[s->storages[t->storage].file].path;
        GLMQ_FAIL_IF(t->n_pieces != 0, err, GLMQ_E_INTERNAL,
                     "composite '%s': piece '%s' is itself a composite", name, t->name);
        GLMQ_FAIL_IF(t->ndim < 1 || t->ndim > 2 || (axis == 1 && t->ndim != 2) ||
                         t->ndim != t0->ndim || t->dtype != t0->dtype,
                     err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' (%s, %d-D) cannot be joined with '%s' (%s, %d-D) into "
                     "'%s'",
                     fpath, t->name, glmq_dtype_name(t->dtype), t->ndim, t0->name,
                     glmq_dtype_name(t0->dtype), t0->ndim, name);
        int64_t along, acr;
        piece_dims(t, axis, &along, &acr);
        GLMQ_FAIL_IF(p->first < 0 || p->count < 0 || p->first > along ||
                         p->count > along - p->first,
                     err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' has %lld slices along dimension %d; slices [%lld, %lld) "
                     "for '%s' are outside it",
                     fpath, t->name, (long long)along, t->ndim == 1 ? 0 : axis,
                     (long long)p->first, (long long)(p->first + p->count), name);
        GLMQ_FAIL_IF(across >= 0 && acr != across, err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' is %lld wide across the join of '%s', the pieces before "
                     "it %lld",
                     fpath, t->name, (long long)acr, name, (long long)across);
        across = acr;
        total += p->count; /* each count is bounded by a validated shape: no overflow */
    }
    uint64_t nelem;
    GLMQ_FAIL_IF(!glmq_mul_u64((uint64_t)total, (uint64_t)across, &nelem) || nelem > INT64_MAX / 8,
                 err, GLMQ_E_FORMAT, "composite '%s': shape overflows", name);
    uint64_t cap = (uint64_t)s->cap_pieces;
    for (int i = 0; i < n; i++) {
        GLMQ_FAIL_IF(grow((void **)&s->pieces, &cap, (uint64_t)s->npieces + (uint64_t)i,
                          sizeof *s->pieces),
                     err, GLMQ_E_NOMEM, "out of memory");
        s->cap_pieces = (int64_t)cap;
    }
    cap = (uint64_t)s->cap_tensors;
    GLMQ_FAIL_IF(grow((void **)&s->tensors, &cap, (uint64_t)s->ntensors, sizeof *s->tensors), err,
                 GLMQ_E_NOMEM, "out of memory");
    s->cap_tensors = (int64_t)cap;
    const glmq_src_tensor *t0 = &s->tensors[pieces[0].tensor];
    glmq_src_tensor *d = &s->tensors[s->ntensors];
    memset(d, 0, sizeof *d);
    memcpy(d->name, name, nlen);
    d->dtype = t0->dtype;
    d->ndim = t0->ndim;
    if (d->ndim == 1) {
        d->shape[0] = total;
    } else {
        d->shape[axis] = total;
        d->shape[1 - axis] = across;
    }
    d->stride[d->ndim - 1] = 1;
    if (d->ndim == 2) d->stride[0] = d->shape[1];
    d->nelem = (int64_t)nelem;
    d->storage = t0->storage;
    d->byte_offset = t0->byte_offset;
    d->contiguous = 0;
    d->n_pieces = n;
    d->axis = axis;
    d->piece0 = s->npieces;
    for (int i = 0; i < n; i++) {
        s->pieces[s->npieces++] = pieces[i];
        s->tensors[pieces[i].tensor].used_as_piece = 1;
    }
    s->ntensors++;
    index_insert(s, s->ntensors - 1);
    return GLMQ_OK;
}

glmq_status glmq_src_add_alias(glmq_src_set *s, int64_t index, const char *name, glmq_err *err)
{
    size_t nlen = strnlen(name, GLMQ_SRC_NAME_MAX);
    GLMQ_FAIL_IF(index < 0 || index >= s->ntensors || nlen == 0 || nlen >= GLMQ_SRC_NAME_MAX, err,
                 GLMQ_E_INTERNAL, "alias '%.64s': bad arguments", name);
    GLMQ_FAIL_IF(glmq_src_find(s, name) >= 0, err, GLMQ_E_FORMAT,
                 "duplicate tensor name '%s' (a second name of '%s')", name,
                 s->tensors[index].name);
    uint64_t cap = (uint64_t)s->cap_tensors;
    GLMQ_FAIL_IF(grow((void **)&s->tensors, &cap, (uint64_t)s->ntensors, sizeof *s->tensors), err,
                 GLMQ_E_NOMEM, "out of memory");
    s->cap_tensors = (int64_t)cap;
    glmq_src_tensor *d = &s->tensors[s->ntensors];
    *d = s->tensors[index];
    memset(d->name, 0, sizeof d->name);
    memcpy(d->name, name, nlen);
    d->used_as_piece = 0;
    d->alias_of = index + 1;
    s->tensors[index].used_as_piece = 1;
    s->ntensors++;
    index_insert(s, s->ntensors - 1);
    return GLMQ_OK;
}

/* Rows [row0, row0+nrows) of a composite. Stacked rows are read straight into dst; pieces
 * joined along the columns (and 1-D pieces) are read whole-row into a scratch buffer and their
 * column range copied out. */
static glmq_status read_composite(glmq_src_set *s, const glmq_src_tensor *t, int64_t row0,
                                  int64_t nrows, uint8_t *dst, glmq_err *err)
{
    size_t es = glmq_dtype_size(t->dtype);
    int64_t cols = glmq_src_cols(t);
    const glmq_src_piece *pc = &s->pieces[t->piece0];
    if (t->ndim == 2 && t->axis == 0) {
        int64_t off = 0;
        for (int32_t i = 0; i < t->n_pieces; off += pc[i].count, i++) {
            int64_t lo = row0 > off ? row0 : off;
            int64_t hi = row0 + nrows < off + pc[i].count ? row0 + nrows : off + pc[i].count;
            if (lo >= hi) continue;
            GLMQ_TRY(glmq_src_read_rows_raw(s, &s->tensors[pc[i].tensor], pc[i].first + lo - off,
                                            hi - lo, dst + (size_t)(lo - row0) * (size_t)cols * es,
                                            err));
        }
        return GLMQ_OK;
    }
    int64_t col = 0;
    for (int32_t i = 0; i < t->n_pieces; col += pc[i].count, i++) {
        const glmq_src_tensor *p = &s->tensors[pc[i].tensor];
        int64_t pcols = glmq_src_cols(p);
        uint8_t *tmp = malloc((size_t)nrows * (size_t)pcols * es + 1);
        GLMQ_FAIL_IF(!tmp, err, GLMQ_E_NOMEM, "out of memory reading '%s'", t->name);
        glmq_status st = glmq_src_read_rows_raw(s, p, t->ndim == 1 ? 0 : row0, nrows, tmp, err);
        for (int64_t r = 0; st == GLMQ_OK && r < nrows; r++)
            memcpy(dst + ((size_t)r * (size_t)cols + (size_t)col) * es,
                   tmp + ((size_t)r * (size_t)pcols + (size_t)pc[i].first) * es,
                   (size_t)pc[i].count * es);
        free(tmp);
        GLMQ_TRY(st);
    }
    return GLMQ_OK;
}

glmq_status glmq_src_pread(const glmq_src_set *s, uint32_t file, uint64_t offset, void *dst,
                           size_t n, glmq_err *err)
{
    GLMQ_FAIL_IF(file >= s->nfiles, err, GLMQ_E_INTERNAL, "bad file index %u", file);
    const glmq_src_file *f = &s->files[file];
    uint8_t *p = dst;
    uint64_t end;
    GLMQ_FAIL_IF(!glmq_add_u64(offset, n, &end) || end > f->size, err, GLMQ_E_FORMAT,
                 "'%s': read of %zu bytes at byte %llu runs past the end of the file (%llu bytes)",
                 f->path, n, (unsigned long long)offset, (unsigned long long)f->size);
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(f->fd, p, chunk, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        GLMQ_FAIL_IF(r < 0, err, GLMQ_E_IO, "'%s': read at byte %llu failed: %s", f->path,
                     (unsigned long long)offset, strerror(errno));
        GLMQ_FAIL_IF(r == 0, err, GLMQ_E_FORMAT, "'%s': file truncated at byte %llu", f->path,
                     (unsigned long long)offset);
        p += r;
        n -= (size_t)r;
        offset += (uint64_t)r;
    }
    return GLMQ_OK;
}

/* Inflate storage `idx` whole into the set's cache, verifying size and CRC. */
static glmq_status inflate_storage(glmq_src_set *s, uint32_t idx, glmq_err *err)
{
    if (s->cache_storage == idx) return GLMQ_OK;
    const glmq_src_storage *st = &s->storages[idx];
    const char *fpath = s->files[st->file].path;
    const char *lab = st->label ? st->label : "?";
    free(s->cache);
    s->cache = NULL;
    s->cache_storage = UINT32_MAX;
    GLMQ_FAIL_IF(st->size > SIZE_MAX / 2 || st->comp_size > SIZE_MAX / 2, err, GLMQ_E_FORMAT,
                 "'%s': member '%s' too large", fpath, lab);
    uint8_t *out = malloc(st->size ? st->size : 1);
    uint8_t *in = malloc(st->comp_size ? st->comp_size : 1);
    glmq_status rc = GLMQ_OK;
    z_stream z;
    memset(&z, 0, sizeof z);
    int zinit = 0;
    if (!out || !in) {
        rc = glmq_fail(err, GLMQ_E_NOMEM, "out of memory inflating '%s'", lab);
        goto done;
    }
    rc = glmq_src_pread(s, st->file, st->offset, in, st->comp_size, err);
    if (rc != GLMQ_OK) goto done;
    if (inflateInit2(&z, -15) != Z_OK) {
        rc = glmq_fail(err, GLMQ_E_NOMEM, "zlib init failed");
        goto done;
    }
    zinit = 1;
    /* zlib counts in uInt: feed in pieces */
    uint64_t in_left = st->comp_size, out_left = st->size;
    uint8_t *ip = in, *op = out;
    int zr = Z_OK;
    while (zr == Z_OK) {
        uInt ci = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
        uInt co = out_left > 0x40000000u ? 0x40000000u : (uInt)out_left;
        z.next_in = ip;
        z.avail_in = ci;
        z.next_out = op;
        z.avail_out = co;
        zr = inflate(&z, Z_NO_FLUSH);
        ip += ci - z.avail_in;
        in_left -= ci - z.avail_in;
        op += co - z.avail_out;
        out_left -= co - z.avail_out;
        if (zr == Z_BUF_ERROR && (out_left == 0 || in_left == 0)) break;
    }
    if (zr != Z_STREAM_END || out_left != 0) {
        rc = glmq_fail(err, GLMQ_E_FORMAT,
                       "'%s': deflated member '%s' at byte %llu is corrupt (%s)", fpath, lab,
                       (unsigned long long)st->offset,
                       zr == Z_STREAM_END ? "shorter than its declared size"
                                          : (z.msg ? z.msg : "inflate failed"));
        goto done;
    }
    if (st->has_crc) {
        uLong c = crc32(0L, Z_NULL, 0);
        uint64_t left = st->size;
        const uint8_t *cp = out;
        while (left) {
            uInt k = left > 0x40000000u ? 0x40000000u : (uInt)left;
            c = crc32(c, cp, k);
            cp += k;
            left -= k;
        }
        if ((uint32_t)c != st->crc32) {
            rc = glmq_fail(err, GLMQ_E_CHECKSUM,
                           "'%s': member '%s' at byte %llu: CRC-32 %08x, expected %08x", fpath,
                           lab, (unsigned long long)st->offset, (unsigned)c,
                           (unsigned)st->crc32);
            goto done;
        }
    }
    s->cache = out;
    out = NULL;
    s->cache_storage = idx;
done:
    if (zinit) inflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

glmq_status glmq_src_storage_verify(glmq_src_set *s, uint32_t idx, glmq_err *err)
{
    GLMQ_FAIL_IF(idx >= s->nstorages, err, GLMQ_E_INTERNAL, "bad storage index %u", idx);
    const glmq_src_storage *st = &s->storages[idx];
    if (!st->deflated) return GLMQ_OK;
    const char *fpath = s->files[st->file].path;
    const char *lab = st->label ? st->label : "?";
    enum { CHUNK = 1 << 20 };
    uint8_t *in = malloc(CHUNK), *out = malloc(CHUNK);
    z_stream z;
    memset(&z, 0, sizeof z);
    glmq_status rc = GLMQ_OK;
    if (!in || !out || inflateInit2(&z, -15) != Z_OK) {
        free(in);
        free(out);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory checking '%s'", lab);
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t in_off = 0, produced = 0;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (z.avail_in == 0 && in_off < st->comp_size) {
            size_t n = st->comp_size - in_off > CHUNK ? CHUNK : (size_t)(st->comp_size - in_off);
            rc = glmq_src_pread(s, st->file, st->offset + in_off, in, n, err);
            if (rc != GLMQ_OK) break;
            in_off += n;
            z.next_in = in;
            z.avail_in = (uInt)n;
        }
        z.next_out = out;
        z.avail_out = CHUNK;
        zr = inflate(&z, Z_NO_FLUSH);
        size_t got = CHUNK - z.avail_out;
        crc = crc32(crc, out, (uInt)got);
        produced += got;
        if (zr != Z_OK && zr != Z_STREAM_END) break;
        if (zr == Z_OK && got == 0 && z.avail_in == 0 && in_off >= st->comp_size) {
            zr = Z_DATA_ERROR; /* input ended before the stream did */
            break;
        }
        if (produced > st->size) break;
    }
    if (rc == GLMQ_OK && (zr != Z_STREAM_END || produced != st->size))
        rc = glmq_fail(err, GLMQ_E_FORMAT,
                       "'%s': deflated member '%s' at byte %llu is corrupt (%s)", fpath, lab,
                       (unsigned long long)st->offset,
                       zr == Z_STREAM_END || produced > st->size
                           ? "inflated size differs from the central directory"
                           : (z.msg ? z.msg : "truncated deflate stream"));
    if (rc == GLMQ_OK && st->has_crc && (uint32_t)crc != st->crc32)
        rc = glmq_fail(err, GLMQ_E_CHECKSUM,
                       "'%s': member '%s' at byte %llu: CRC-32 %08x, expected %08x", fpath, lab,
                       (unsigned long long)st->offset, (unsigned)crc, (unsigned)st->crc32);
    inflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

glmq_status glmq_src_storage_read(glmq_src_set *s, uint32_t idx, uint64_t off, void *dst,
                                  size_t n, glmq_err *err)
{
    GLMQ_FAIL_IF(idx >= s->nstorages, err, GLMQ_E_INTERNAL, "bad storage index %u", idx);
    const glmq_src_storage *st = &s->storages[idx];
    uint64_t end;
    GLMQ_FAIL_IF(!glmq_add_u64(off, n, &end) || end > st->size, err, GLMQ_E_FORMAT,
                 "'%s': read of %zu bytes at %llu past the end of '%s'",
                 s->files[st->file].path, n, (unsigned long long)off,
                 st->label ? st->label : "?");
    if (!st->deflated) return glmq_src_pread(s, st->file, st->offset + off, dst, n, err);
    GLMQ_TRY(inflate_storage(s, idx, err));
    memcpy(dst, s->cache + off, n);
    return GLMQ_OK;
}

glmq_status glmq_src_storage_slurp(glmq_src_set *s, uint32_t idx, uint8_t **out, size_t *n,
                                   glmq_err *err)
{
    *out = NULL;
    *n = 0;
    GLMQ_FAIL_IF(idx >= s->nstorages, err, GLMQ_E_INTERNAL, "bad storage index %u", idx);
    const glmq_src_storage *st = &s->storages[idx];
    GLMQ_FAIL_IF(st->size >= ((uint64_t)1 << 32), err, GLMQ_E_FORMAT,
                 "'%s': member '%s' is too large (%llu bytes) to load whole",
                 s->files[st->file].path, st->label ? st->label : "?",
                 (unsigned long long)st->size);
    uint8_t *buf = malloc(st->size + 1);
    GLMQ_FAIL_IF(!buf, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status rc = glmq_src_storage_read(s, idx, 0, buf, st->size, err);
    if (rc == GLMQ_OK && !st->deflated && st->has_crc) {
        uLong c = crc32(0L, Z_NULL, 0);
        c = crc32(c, buf, (uInt)st->size);
        if ((uint32_t)c != st->crc32)
            rc = glmq_fail(err, GLMQ_E_CHECKSUM,
                           "'%s': member '%s' at byte %llu: CRC-32 %08x, expected %08x",
                           s->files[st->file].path, st->label ? st->label : "?",
                           (unsigned long long)st->offset, (unsigned)c, (unsigned)st->crc32);
    }
    if (rc != GLMQ_OK) {
        free(buf);
        return rc;
    }
    buf[st->size] = 0;
    *out = buf;
    *n = st->size;
    return GLMQ_OK;
}

glmq_status glmq_src_read_rows_raw(glmq_src_set *s, const glmq_src_tensor *t, int64_t row0,
                                   int64_t nrows, void *dst, glmq_err *err)
{
    int64_t rows = glmq_src_rows(t), cols = glmq_src_cols(t);
    GLMQ_FAIL_IF(row0 < 0 || nrows < 0 || row0 > rows || nrows > rows - row0, err, GLMQ_E_INTERNAL,
                 "tensor '%s': rows [%lld, %lld) out of range", t->name, (long long)row0,
                 (long long)(row0 + nrows));
    size_t es = glmq_dtype_size(t->dtype);
    if (nrows == 0 || cols == 0) return GLMQ_OK;
    if (t->n_pieces) return read_composite(s, t, row0, nrows, dst, err);
    if (t->contiguous) {
        uint64_t off = t->byte_offset + (uint64_t)row0 * (uint64_t)cols * es;
        return glmq_src_storage_read(s, t->storage, off, dst, (size_t)(nrows * cols) * es, err);
    }
    /* Strided (a view saved as such; HF state dicts are contiguous): read the byte span the rows
     * cover once, then gather element by element from memory. Rows are indexed over the leading
     * dims in row-major order. Spans over 256 MiB fall back to one read per element. */
    /* the whole tensor's span was bounded (and overflow-checked) by glmq_src_add_tensor */
    uint64_t span = 0;
    for (int d = 0; d < t->ndim; d++) span += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
    uint64_t hi = (span + 1) * es;
    uint8_t *cover = hi <= ((uint64_t)256 << 20) ? malloc(hi) : NULL;
    if (cover) {
        glmq_status rc = glmq_src_storage_read(s, t->storage, t->byte_offset, cover, hi, err);
        if (rc != GLMQ_OK) {
            free(cover);
            return rc;
        }
    }
    uint8_t *out = dst;
    for (int64_t r = row0; r < row0 + nrows; r++) {
        int64_t rem = r;
        uint64_t base = 0;
        for (int d = t->ndim - 2; d >= 0; d--) {
            base += (uint64_t)(rem % t->shape[d]) * (uint64_t)t->stride[d];
            rem /= t->shape[d];
        }
        int64_t cs = t->ndim ? t->stride[t->ndim - 1] : 1;
        for (int64_t c = 0; c < cols; c++) {
            uint64_t e = base + (uint64_t)c * (uint64_t)cs;
            if (cover) {
                memcpy(out, cover + e * es, es);
            } else {
                glmq_status rc = glmq_src_storage_read(s, t->storage, t->byte_offset + e * es, out,
                                                       es, err);
                if (rc != GLMQ_OK) return rc;
            }
            out += es;
        }
    }
    free(cover);
    return GLMQ_OK;
}
