/*
 * pack_read.c - map and validate a packed file (formats/SPEC.md §8); the public glmq_pack_* API.
 *
 * Nothing in the file is trusted: every offset, size, type and name is checked (with overflow
 * checks) before a pointer into the mapping is handed out, regions may not overlap each other or
 * the tables, and the header checksum authenticates the directories. Tensor bytes are hashed
 * only on request (glmq_pack_verify), because that reads the whole file.
 *
 * The mapping is advised MADV_HUGEPAGE: where the kernel supports large page-cache folios
 * (e.g. ext4, tmpfs with huge=) weights are then read ahead and mapped in 2 MiB pages. A
 * decode step streams gigabytes of weights; on the development VM (ext4, Linux 6.18) a
 * one-thread INT4 decode ran 2-4x faster from 2 MiB than from 4 KiB page-cache pages
 * (README, Kernels).
 */
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE */
#include "formats/pack.h"
#include "formats/layout.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/file.h"
#include "core/hash.h"

typedef struct {
    const char *name;
    const uint8_t *data;
    uint64_t size, checksum, off;
} rblob;

struct glmq_pack {
    char *path;
    uint8_t *map;
    uint64_t size;
    uint32_t version;
    char *meta; /* NUL-terminated copy */
    glmq_tensor_info *t;
    int64_t nt;
    rblob *b;
    int64_t nb;
};

typedef struct {
    uint64_t off, end;
    const char *what;
    const char *name;
} region;

static int cmp_region(const void *a, const void *b)
{
    const region *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* name at [off, off+len) followed by NUL, inside the string table */
static glmq_status check_name(const glmq_pack *p, uint64_t st_off, uint64_t st_size, uint64_t off,
                              uint32_t len, const char *what, int64_t idx, const char **out,
                              glmq_err *err)
{
    uint64_t end;
    GLMQ_FAIL_IF(off < st_off || !glmq_add_u64(off, (uint64_t)len + 1, &end) ||
                     end > st_off + st_size || len == 0,
                 err, GLMQ_E_FORMAT,
                 "'%s': %s entry %lld: name at byte %llu (length %u) is outside the string table",
                 p->path, what, (long long)idx, (unsigned long long)off, len);
    GLMQ_FAIL_IF(p->map[off + len] != 0 || memchr(p->map + off, 0, len) != NULL, err,
                 GLMQ_E_FORMAT, "'%s': %s entry %lld: name at byte %llu is not NUL-terminated",
                 p->path, what, (long long)idx, (unsigned long long)off);
    *out = (const char *)p->map + off;
    return GLMQ_OK;
}

static glmq_status validate(glmq_pack *p, glmq_err *err)
{
    const uint8_t *h = p->map;
    GLMQ_FAIL_IF(p->size < GLMQ_PACK_HEADER_SIZE, err, GLMQ_E_FORMAT,
                 "'%s': %llu bytes is too small for a glmq file (header is 128 bytes)", p->path,
                 (unsigned long long)p->size);
    GLMQ_FAIL_IF(memcmp(h, GLMQ_PACK_MAGIC, 8) != 0, err, GLMQ_E_FORMAT,
                 "'%s': not a glmq file (bad magic at byte 0)", p->path);
    uint16_t maj = glmq_rd_le16(h + 8), min = glmq_rd_le16(h + 10);
    GLMQ_FAIL_IF(maj != GLMQ_PACK_VERSION_MAJOR, err, GLMQ_E_UNSUPPORTED,
                 "'%s': format version %u.%u; this glmq reads %u.x", p->path, maj, min,
                 GLMQ_PACK_VERSION_MAJOR);
    p->version = ((uint32_t)maj << 16) | min;
    GLMQ_FAIL_IF(glmq_rd_le32(h + 12) != GLMQ_PACK_HEADER_SIZE, err, GLMQ_E_FORMAT,
                 "'%s': header size %u at byte 12, expected 128", p->path, glmq_rd_le32(h + 12));
    uint64_t fsz = glmq_rd_le64(h + 16);
    GLMQ_FAIL_IF(fsz != p->size, err, GLMQ_E_FORMAT,
                 "'%s': header says %llu bytes (byte 16) but the file has %llu: truncated or "
                 "extended",
                 p->path, (unsigned long long)fsz, (unsigned long long)p->size);
    uint64_t st_off = glmq_rd_le64(h + 24), st_size = glmq_rd_le64(h + 32);
    uint64_t td_off = glmq_rd_le64(h + 40), nt = glmq_rd_le64(h + 48);
    uint64_t bd_off = glmq_rd_le64(h + 56), nb = glmq_rd_le64(h + 64);
    uint64_t m_off = glmq_rd_le64(h + 72), m_size = glmq_rd_le64(h + 80);
    GLMQ_FAIL_IF(nt > (1u << 24) || nb > (1u << 16), err, GLMQ_E_FORMAT,
                 "'%s': absurd tensor count %llu or blob count %llu", p->path,
                 (unsigned long long)nt, (unsigned long long)nb);
    struct {
        uint64_t off, size;
        const char *what;
    } tabs[4] = {{st_off, st_size, "string table"},
                 {td_off, nt * GLMQ_PACK_TENSOR_ENTRY, "tensor directory"},
                 {bd_off, nb * GLMQ_PACK_BLOB_ENTRY, "blob directory"},
                 {m_off, m_size, "metadata"}};
    for (int i = 0; i < 4; i++) {
        uint64_t end;
        GLMQ_FAIL_IF(tabs[i].off < GLMQ_PACK_HEADER_SIZE ||
                         !glmq_add_u64(tabs[i].off, tabs[i].size, &end) || end > p->size,
                     err, GLMQ_E_FORMAT,
                     "'%s': %s at byte %llu (+%llu bytes) lies outside the file (%llu bytes)",
                     p->path, tabs[i].what, (unsigned long long)tabs[i].off,
                     (unsigned long long)tabs[i].size, (unsigned long long)p->size);
    }
    /* header checksum over header[0,120) + tables + metadata */
    XXH3_state_t *hs = XXH3_createState();
    GLMQ_FAIL_IF(!hs, err, GLMQ_E_NOMEM, "out of memory");
    XXH3_64bits_reset(hs);
    XXH3_64bits_update(hs, h, 120);
    for (int i = 0; i < 4; i++) XXH3_64bits_update(hs, p->map + tabs[i].off, tabs[i].size);
    uint64_t hc = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    GLMQ_FAIL_IF(hc != glmq_rd_le64(h + 120), err, GLMQ_E_CHECKSUM,
                 "'%s': header checksum mismatch (stored %016llx at byte 120, computed %016llx): "
                 "the header, directories or metadata are corrupt",
                 p->path, (unsigned long long)glmq_rd_le64(h + 120), (unsigned long long)hc);

    const char **names = NULL;
    /* the header, up to 4 tables, data + scales per tensor, one per blob */
    size_t nreg = 5 + 2 * nt + nb;
    region *reg = calloc(nreg, sizeof *reg);
    p->t = calloc(nt + 1, sizeof *p->t);
    p->b = calloc(nb + 1, sizeof *p->b);
    p->meta = malloc(m_size + 1);
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF_G(!reg || !p->t || !p->b || !p->meta, err, GLMQ_E_NOMEM, "out of memory");
    size_t k = 0;
    reg[k++] = (region){0, GLMQ_PACK_HEADER_SIZE, "header", ""};
    for (int i = 0; i < 4; i++)
        if (tabs[i].size) reg[k++] = (region){tabs[i].off, tabs[i].off + tabs[i].size, tabs[i].what, ""};

    for (uint64_t i = 0; i < nt; i++) {
        const uint8_t *e = p->map + td_off + i * GLMQ_PACK_TENSOR_ENTRY;
        glmq_tensor_info *t = &p->t[i];
        GLMQ_TRY_G(check_name(p, st_off, st_size, glmq_rd_le64(e), glmq_rd_le32(e + 8), "tensor",
                              (int64_t)i, &t->name, err));
        uint32_t type = glmq_rd_le32(e + 12), ndim = glmq_rd_le32(e + 16);
        GLMQ_FAIL_IF_G(type > GLMQ_TYPE_INT4_G128, err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': unknown storage type %u (directory byte %llu)",
                       p->path, t->name, type, (unsigned long long)(td_off + i * 128 + 12));
        GLMQ_FAIL_IF_G(ndim < 1 || ndim > GLMQ_MAX_DIMS, err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': %u dimensions (1 to 4 allowed)", p->path, t->name, ndim);
        t->type = (glmq_type)type;
        t->ndim = (int)ndim;
        uint64_t rows = 1, d;
        for (uint32_t j = 0; j < ndim; j++) {
            d = glmq_rd_le64(e + 24 + 8 * j);
            GLMQ_FAIL_IF_G(d < 1 || d > (UINT64_C(1) << 40), err, GLMQ_E_FORMAT,
                           "'%s': tensor '%s': dimension %u is %llu", p->path, t->name, j,
                           (unsigned long long)d);
            t->shape[j] = (int64_t)d;
            if (j + 1 < ndim)
                GLMQ_FAIL_IF_G(!glmq_mul_u64(rows, d, &rows) || rows > (UINT64_C(1) << 40), err,
                               GLMQ_E_FORMAT, "'%s': tensor '%s': shape overflows", p->path,
                               t->name);
        }
        t->rows = (int64_t)rows;
        t->cols = t->shape[ndim - 1];
        int64_t rb = glmq_row_bytes(t->type, t->cols);
        uint64_t stride = glmq_rd_le64(e + 56), doff = glmq_rd_le64(e + 64),
                 dsz = glmq_rd_le64(e + 72), soff = glmq_rd_le64(e + 80),
                 ssz = glmq_rd_le64(e + 88), want;
        GLMQ_FAIL_IF_G(stride != (uint64_t)rb || !glmq_mul_u64(rows, stride, &want) || dsz != want,
                       err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': row stride %llu / data size %llu do not match %s "
                       "[%lld rows x %lld cols]",
                       p->path, t->name, (unsigned long long)stride, (unsigned long long)dsz,
                       glmq_type_name(t->type), (long long)t->rows, (long long)t->cols);
        int quant = glmq_type_scaled(t->type);
        uint64_t swant = 0;
        GLMQ_FAIL_IF_G(quant && (!glmq_mul_u64(rows, (uint64_t)glmq_scales_per_row(t->type, t->cols),
                                               &swant) ||
                                 !glmq_mul_u64(swant, 2, &swant)),
                       err, GLMQ_E_FORMAT, "'%s': tensor '%s': scale table size overflows",
                       p->path, t->name);
        GLMQ_FAIL_IF_G(quant ? ssz != swant : (ssz != 0 || soff != 0), err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': scale table size %llu, expected %llu", p->path, t->name,
                       (unsigned long long)ssz, (unsigned long long)swant);
        uint64_t dend, send = 0;
        GLMQ_FAIL_IF_G(doff % GLMQ_PACK_ALIGN || !glmq_add_u64(doff, dsz, &dend) || dend > p->size,
                       err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': data at byte %llu (+%llu) is misaligned or outside "
                       "the file",
                       p->path, t->name, (unsigned long long)doff, (unsigned long long)dsz);
        if (quant)
            GLMQ_FAIL_IF_G(soff % GLMQ_PACK_ALIGN || !glmq_add_u64(soff, ssz, &send) ||
                               send > p->size,
                           err, GLMQ_E_FORMAT,
                           "'%s': tensor '%s': scales at byte %llu are misaligned or outside the "
                           "file",
                           p->path, t->name, (unsigned long long)soff);
        t->row_stride = (int64_t)stride;
        t->data = p->map + doff;
        t->data_size = dsz;
        t->scales = quant ? (const uint16_t *)(const void *)(p->map + soff) : NULL;
        t->scales_size = ssz;
        t->checksum = glmq_rd_le64(e + 96);
        t->data_offset = doff;
        t->scales_offset = quant ? soff : 0;
        reg[k++] = (region){doff, dend, "tensor data", t->name};
        if (quant) reg[k++] = (region){soff, send, "scale table", t->name};
        p->nt++;
    }
    for (uint64_t i = 0; i < nb; i++) {
        const uint8_t *e = p->map + bd_off + i * GLMQ_PACK_BLOB_ENTRY;
        rblob *b = &p->b[i];
        GLMQ_TRY_G(check_name(p, st_off, st_size, glmq_rd_le64(e), glmq_rd_le32(e + 8), "blob",
                              (int64_t)i, &b->name, err));
        uint64_t off = glmq_rd_le64(e + 16), sz = glmq_rd_le64(e + 24), end;
        GLMQ_FAIL_IF_G(off % GLMQ_PACK_ALIGN || !glmq_add_u64(off, sz, &end) || end > p->size,
                       err, GLMQ_E_FORMAT,
                       "'%s': blob '%s' at byte %llu (+%llu) is misaligned or outside the file",
                       p->path, b->name, (unsigned long long)off, (unsigned long long)sz);
        b->data = p->map + off;
        b->off = off;
        b->size = sz;
        b->checksum = glmq_rd_le64(e + 32);
        if (sz) reg[k++] = (region){off, end, "blob", b->name};
        p->nb++;
    }
    /* no two regions overlap */
    qsort(reg, k, sizeof *reg, cmp_region);
    for (size_t i = 1; i < k; i++)
        GLMQ_FAIL_IF_G(reg[i].off < reg[i - 1].end, err, GLMQ_E_FORMAT,
                       "'%s': %s '%s' at byte %llu overlaps %s '%s' (ends at byte %llu)", p->path,
                       reg[i].what, reg[i].name, (unsigned long long)reg[i].off, reg[i - 1].what,
                       reg[i - 1].name, (unsigned long long)reg[i - 1].end);
    /* unique names: sort a copy of the name pointers and compare neighbours */
    names = malloc((size_t)(p->nt + 1) * sizeof *names);
    GLMQ_FAIL_IF_G(!names, err, GLMQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < p->nt; i++) names[i] = p->t[i].name;
    qsort(names, (size_t)p->nt, sizeof *names, cmp_name);
    for (int64_t i = 1; i < p->nt; i++)
        GLMQ_FAIL_IF_G(strcmp(names[i - 1], names[i]) == 0, err, GLMQ_E_FORMAT,
                       "'%s': duplicate tensor name '%s'", p->path, names[i]);
    memcpy(p->meta, p->map + m_off, m_size);
    p->meta[m_size] = 0;
    cJSON *mj = cJSON_ParseWithLength(p->meta, m_size);
    int ok = mj && cJSON_IsObject(mj);
    cJSON_Delete(mj);
    GLMQ_FAIL_IF_G(!ok, err, GLMQ_E_FORMAT, "'%s': metadata at byte %llu is not a JSON object",
                   p->path, (unsigned long long)m_off);
fail:
    free(names);
    free(reg);
    return st;
}

glmq_status glmq_pack_open(const char *path, glmq_pack **out, glmq_err *err)
{
    return glmq_pack_open_load(path, 0, out, err);
}

glmq_status glmq_pack_open_load(const char *path, int load, glmq_pack **out, glmq_err *err)
{
    *out = NULL;
    glmq_status st = GLMQ_OK;
    glmq_pack *p = calloc(1, sizeof *p);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    p->path = glmq_strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    GLMQ_FAIL_IF_G(!p->path, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_FAIL_IF_G(fd < 0, err, GLMQ_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    GLMQ_FAIL_IF_G(fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode), err, GLMQ_E_IO,
                   "'%s' is not a regular file", path);
    p->size = (uint64_t)sb.st_size;
    GLMQ_FAIL_IF_G(p->size < GLMQ_PACK_HEADER_SIZE, err, GLMQ_E_FORMAT,
                   "'%s': %llu bytes is too small for a glmq file (header is 128 bytes)", path,
                   (unsigned long long)p->size);
    void *m = NULL;
    GLMQ_TRY_G(glmq_file_view(fd, path, p->size, load, &m, err));
    p->map = m;
#if defined(MADV_HUGEPAGE)
    if (!load) (void)madvise(m, p->size, MADV_HUGEPAGE); /* advisory (see the top of this file) */
#endif
    GLMQ_TRY_G(validate(p, err));
    close(fd);
    *out = p;
    return GLMQ_OK;
fail:
    if (fd >= 0) close(fd);
    glmq_pack_close(p);
    return st;
}

void glmq_pack_close(glmq_pack *p)
{
    if (!p) return;
    if (p->map) munmap(p->map, p->size);
    free(p->t);
    free(p->b);
    free(p->meta);
    free(p->path);
    free(p);
}

uint32_t glmq_pack_version(const glmq_pack *p) { return p->version; }
uint64_t glmq_pack_header_checksum(const glmq_pack *p) { return glmq_rd_le64(p->map + 120); }
const char *glmq_pack_metadata(const glmq_pack *p) { return p->meta; }
int64_t glmq_pack_tensor_count(const glmq_pack *p) { return p->nt; }

glmq_status glmq_pack_tensor(const glmq_pack *p, int64_t i, glmq_tensor_info *out, glmq_err *err)
{
    GLMQ_FAIL_IF(i < 0 || i >= p->nt, err, GLMQ_E_INVALID, "tensor index %lld out of range [0, %lld)",
                 (long long)i, (long long)p->nt);
    *out = p->t[i];
    return GLMQ_OK;
}

glmq_status glmq_pack_find(const glmq_pack *p, const char *name, glmq_tensor_info *out,
                           glmq_err *err)
{
    for (int64_t i = 0; i < p->nt; i++)
        if (!strcmp(p->t[i].name, name)) {
            *out = p->t[i];
            return GLMQ_OK;
        }
    return glmq_fail(err, GLMQ_E_INVALID, "'%s': no tensor named '%s'", p->path, name);
}

glmq_status glmq_pack_blob(const glmq_pack *p, const char *name, const void **data, size_t *size,
                           glmq_err *err)
{
    for (int64_t i = 0; i < p->nb; i++)
        if (!strcmp(p->b[i].name, name)) {
            *data = p->b[i].data;
            *size = p->b[i].size;
            return GLMQ_OK;
        }
    return glmq_fail(err, GLMQ_E_INVALID, "'%s': no blob named '%s'", p->path, name);
}

glmq_status glmq_pack_verify(const glmq_pack *p, glmq_err *err)
{
    for (int64_t i = 0; i < p->nb; i++) {
        uint64_t c = XXH3_64bits(p->b[i].data, p->b[i].size);
        GLMQ_FAIL_IF(c != p->b[i].checksum, err, GLMQ_E_CHECKSUM,
                     "'%s': blob '%s' at byte %llu: checksum %016llx, expected %016llx", p->path,
                     p->b[i].name, (unsigned long long)p->b[i].off, (unsigned long long)c,
                     (unsigned long long)p->b[i].checksum);
    }
    XXH3_state_t *hs = XXH3_createState();
    GLMQ_FAIL_IF(!hs, err, GLMQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < p->nt; i++) {
        const glmq_tensor_info *t = &p->t[i];
        XXH3_64bits_reset(hs);
        XXH3_64bits_update(hs, t->data, t->data_size);
        if (t->scales) XXH3_64bits_update(hs, t->scales, t->scales_size);
        uint64_t c = XXH3_64bits_digest(hs);
        if (c != t->checksum) {
            XXH3_freeState(hs);
            return glmq_fail(err, GLMQ_E_CHECKSUM,
                             "'%s': tensor '%s' (data at byte %llu): checksum %016llx, expected "
                             "%016llx",
                             p->path, t->name,
                             (unsigned long long)((const uint8_t *)t->data - p->map),
                             (unsigned long long)c, (unsigned long long)t->checksum);
        }
    }
    XXH3_freeState(hs);
    return GLMQ_OK;
}
