/*
 * torchzip.c - reader for PyTorch .bin files written by torch.save >= 1.6 (GLM-SPEC E).
 *
 * A torch.save file is a zip archive whose members share one top-level folder PREFIX/:
 * PREFIX/data.pkl (a pickle describing the state dict), PREFIX/data/<key> (raw storage bytes,
 * one per distinct storage) and a few small records (version, byteorder, ...). This file
 *
 *   1. sniffs the format and refuses the legacy pickle stream, the PYTORCH1 preview archive, the
 *      tar format and TorchScript archives with a message saying what to do instead;
 *   2. reads the zip directory the safe way (E.3): a bounded backwards scan for the end record,
 *      the ZIP64 locator/end record when present, the central directory with ZIP64 extra fields,
 *      and each member's data start from its local header (30 + name + extra bytes, exactly as
 *      torch's getRecordOffset). Sizes come from the central directory only. Encrypted members,
 *      methods other than stored/deflated, '..'/absolute names, duplicate names and members that
 *      do not share the first member's prefix are refused;
 *   3. unpickles data.pkl with the restricted unpickler of pickle.c (nothing is executed);
 *   4. appends one glmq_src_storage per referenced data/<key> member (checking its size equals
 *      NUMEL x element size, E.6 step 1) and one glmq_src_tensor per state-dict entry.
 *
 * Invariant: glmq_torchzip_load either appends the file with all its storages and tensors and
 * returns GLMQ_OK, or leaves the set exactly as it found it. Every message names the file, the
 * member or tensor, and a byte offset.
 */
#include "formats/pickle.h"
#include "formats/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define EOCD_SIZE 22
#define EOCD_SCAN (EOCD_SIZE + 65535)   /* record + longest comment */
#define CDH_SIZE 46                     /* fixed part of a central-directory header */
#define LFH_SIZE 30                     /* fixed part of a local file header */
#define Z64_LOC_SIZE 20
#define Z64_EOCD_SIZE 56
#define MAX_CD_BYTES ((uint64_t)64 << 20)
#define MAX_PKL_BYTES ((uint64_t)256 << 20)
#define MAX_PREFIX 200
#define DEFLATE_MAX_RATIO 1032 /* deflate cannot expand more than ~1032:1 */

/* The legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c as LONG1:
 * 80 02 (PROTO 2) 8A 0A (LONG1, 10 bytes) 6C FC 9C 46 F9 20 6A A8 50 19. */
static const uint8_t legacy_magic[12] = {0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46,
                                         0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19};

/* One central-directory entry. */
typedef struct {
    char *name;       /* full member name, NUL-terminated (owned) */
    const char *rel;  /* name after "PREFIX/" */
    uint16_t flags, method;
    uint32_t crc;
    uint64_t comp, size, lho; /* compressed size, size, local header offset */
    uint64_t cd_pos;          /* file offset of this central-directory header */
} zentry;

typedef struct {
    glmq_src_set *s;
    glmq_err *err;
    const char *path;
    uint32_t file;
    uint64_t fsize;
    uint64_t cd_off, cd_size, n_entries, cd_limit;
    zentry *e; /* sorted by rel after read_cd */
    uint64_t ne;
    char prefix[MAX_PREFIX + 1];
    const char *name_prefix; /* put before every tensor name (glmq_torchzip_load_prefix) */
} zip;

/* ---- helpers ------------------------------------------------------------------------------ */

static glmq_status zread(zip *z, uint64_t off, void *dst, size_t n)
{
    return glmq_src_pread(z->s, z->file, off, dst, n, z->err);
}

/* ---- 1. format sniffing ------------------------------------------------------------------- */

/* The legacy magic within the first bytes of a pickle stream (any protocol: PROTO, FRAME). */
static int has_legacy_magic(const uint8_t *h, size_t n)
{
    for (size_t i = 0; i + sizeof legacy_magic <= n && i < 16; i++)
        if (memcmp(h + i, legacy_magic, sizeof legacy_magic) == 0) return 1;
    return 0;
}

static glmq_status sniff(zip *z)
{
    uint8_t h[512];
    size_t n = z->fsize < sizeof h ? (size_t)z->fsize : sizeof h;
    GLMQ_FAIL_IF(n < 4, z->err, GLMQ_E_FORMAT,
                 "'%s': file too short (%zu bytes) to be a torch.save archive", z->path, n);
    GLMQ_TRY(zread(z, 0, h, n));
    if (memcmp(h, "PK\x03\x04", 4) == 0) return GLMQ_OK;
    if (h[0] == 0x80 && has_legacy_magic(h, n))
        return glmq_fail(z->err, GLMQ_E_UNSUPPORTED,
                         "'%s': legacy torch.save format (pre-1.6, "
                         "_use_new_zipfile_serialization=False) at byte 0; re-save with "
                         "torch >= 1.6 or convert to safetensors",
                         z->path);
    GLMQ_FAIL_IF(h[0] == 0x80, z->err, GLMQ_E_UNSUPPORTED,
                 "'%s': a bare pickle stream (byte 0 is PROTO), not a torch.save zip; re-save "
                 "with torch >= 1.6 or convert to safetensors",
                 z->path);
    GLMQ_FAIL_IF(n >= 8 && memcmp(h, "PYTORCH1", 8) == 0, z->err, GLMQ_E_UNSUPPORTED,
                 "'%s': 'PYTORCH1' preview archive (2018) at byte 0 is not supported; re-save "
                 "with torch >= 1.6 or convert to safetensors",
                 z->path);
    GLMQ_FAIL_IF(n >= 262 && memcmp(h + 257, "ustar", 5) == 0, z->err, GLMQ_E_UNSUPPORTED,
                 "'%s': tar-based torch.save format (ustar at byte 257) is not supported; "
                 "re-save with torch >= 1.6 or convert to safetensors",
                 z->path);
    return glmq_fail(z->err, GLMQ_E_FORMAT,
                     "'%s': not a torch.save zip (bytes 0-3 are %02x %02x %02x %02x, "
                     "expected 50 4b 03 04)",
                     z->path, h[0], h[1], h[2], h[3]);
}

/* ---- 2. zip directory (E.3) ---------------------------------------------------------------- */

/* Find the end-of-central-directory record (and the ZIP64 one when present); fill cd_off,
 * cd_size, n_entries and cd_limit (the first byte the central directory may not reach). */
static glmq_status find_eocd(zip *z)
{
    glmq_status st = GLMQ_OK;
    uint64_t tail = z->fsize < EOCD_SCAN ? z->fsize : EOCD_SCAN;
    uint64_t base = z->fsize - tail;
    uint8_t *b = malloc(tail ? tail : 1);
    GLMQ_FAIL_IF(!b, z->err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(zread(z, base, b, tail));

    /* the last signature whose record (and comment) fits in the file */
    int64_t at = -1;
    for (int64_t i = (int64_t)tail - EOCD_SIZE; i >= 0; i--) {
        if (memcmp(b + i, "PK\x05\x06", 4) != 0) continue;
        if ((uint64_t)i + EOCD_SIZE + glmq_rd_le16(b + i + 20) <= tail) {
            at = i;
            break;
        }
    }
    GLMQ_FAIL_IF_G(at < 0, z->err, GLMQ_E_FORMAT,
                   "'%s': no zip end of central directory record in the last %llu bytes "
                   "(truncated or not a zip file)",
                   z->path, (unsigned long long)tail);
    const uint8_t *e = b + at;
    uint64_t eocd = base + (uint64_t)at;
    uint16_t disk = glmq_rd_le16(e + 4), cd_disk = glmq_rd_le16(e + 6);
    uint64_t n_this = glmq_rd_le16(e + 8);
    z->n_entries = glmq_rd_le16(e + 10);
    z->cd_size = glmq_rd_le32(e + 12);
    z->cd_off = glmq_rd_le32(e + 16);
    z->cd_limit = eocd;

    /* ZIP64 locator immediately before the end record */
    if (eocd >= Z64_LOC_SIZE) {
        uint8_t loc[Z64_LOC_SIZE];
        GLMQ_TRY_G(zread(z, eocd - Z64_LOC_SIZE, loc, sizeof loc));
        if (memcmp(loc, "PK\x06\x07", 4) == 0) {
            uint64_t z64 = glmq_rd_le64(loc + 8);
            uint64_t loc_pos = eocd - Z64_LOC_SIZE;
            GLMQ_FAIL_IF_G(glmq_rd_le32(loc + 16) > 1 || glmq_rd_le32(loc + 4) != 0, z->err,
                           GLMQ_E_UNSUPPORTED, "'%s': multi-disk zip (ZIP64 locator at byte %llu)",
                           z->path, (unsigned long long)loc_pos);
            GLMQ_FAIL_IF_G(z64 > loc_pos || loc_pos - z64 < Z64_EOCD_SIZE, z->err, GLMQ_E_FORMAT,
                           "'%s': ZIP64 locator at byte %llu points to byte %llu, which cannot "
                           "hold a ZIP64 end record before the locator",
                           z->path, (unsigned long long)loc_pos, (unsigned long long)z64);
            uint8_t r[Z64_EOCD_SIZE];
            GLMQ_TRY_G(zread(z, z64, r, sizeof r));
            GLMQ_FAIL_IF_G(memcmp(r, "PK\x06\x06", 4) != 0, z->err, GLMQ_E_FORMAT,
                           "'%s': no ZIP64 end of central directory signature at byte %llu "
                           "(named by the locator at byte %llu)",
                           z->path, (unsigned long long)z64, (unsigned long long)loc_pos);
            disk = glmq_rd_le32(r + 16) ? 1 : 0;
            cd_disk = glmq_rd_le32(r + 20) ? 1 : 0;
            n_this = glmq_rd_le64(r + 24);
            z->n_entries = glmq_rd_le64(r + 32);
            z->cd_size = glmq_rd_le64(r + 40);
            z->cd_off = glmq_rd_le64(r + 48);
            z->cd_limit = z64;
        }
    }
    GLMQ_FAIL_IF_G(disk != 0 || cd_disk != 0 || n_this != z->n_entries, z->err,
                   GLMQ_E_UNSUPPORTED, "'%s': multi-disk zip (end record at byte %llu)", z->path,
                   (unsigned long long)eocd);
    uint64_t cd_end;
    GLMQ_FAIL_IF_G(!glmq_add_u64(z->cd_off, z->cd_size, &cd_end) || cd_end > z->cd_limit,
                   z->err, GLMQ_E_FORMAT,
                   "'%s': central directory at byte %llu (%llu bytes) runs past its end record "
                   "at byte %llu",
                   z->path, (unsigned long long)z->cd_off, (unsigned long long)z->cd_size,
                   (unsigned long long)z->cd_limit);
    GLMQ_FAIL_IF_G(z->n_entries == 0, z->err, GLMQ_E_FORMAT,
                   "'%s': empty zip (end record at byte %llu lists no members)", z->path,
                   (unsigned long long)eocd);
    GLMQ_FAIL_IF_G(z->cd_size > MAX_CD_BYTES, z->err, GLMQ_E_UNSUPPORTED,
                   "'%s': central directory at byte %llu is %llu bytes (limit %llu)", z->path,
                   (unsigned long long)z->cd_off, (unsigned long long)z->cd_size,
                   (unsigned long long)MAX_CD_BYTES);
    GLMQ_FAIL_IF_G(z->n_entries > z->cd_size / CDH_SIZE, z->err, GLMQ_E_FORMAT,
                   "'%s': central directory at byte %llu (%llu bytes) cannot hold %llu entries",
                   z->path, (unsigned long long)z->cd_off, (unsigned long long)z->cd_size,
                   (unsigned long long)z->n_entries);
fail:
    free(b);
    return st;
}

/* Replace 0xFFFFFFFF fields from the ZIP64 extra field (id 0x0001), in the order size,
 * compressed size, local header offset (only the overflowed ones are present). */
static glmq_status zip64_extra(zip *z, zentry *en, const uint8_t *x, size_t xn, int need_size,
                               int need_comp, int need_off)
{
    size_t p = 0;
    while (p + 4 <= xn) {
        uint16_t id = glmq_rd_le16(x + p), len = glmq_rd_le16(x + p + 2);
        GLMQ_FAIL_IF(len > xn - p - 4, z->err, GLMQ_E_FORMAT,
                     "'%s': member '%s': extra field 0x%04x at byte %llu overruns its block",
                     z->path, en->name, id, (unsigned long long)(en->cd_pos + CDH_SIZE));
        if (id == 0x0001) {
            const uint8_t *q = x + p + 4;
            size_t have = len, k = 0;
            uint64_t *dst[3] = {need_size ? &en->size : NULL, need_comp ? &en->comp : NULL,
                                need_off ? &en->lho : NULL};
            for (int i = 0; i < 3; i++) {
                if (!dst[i]) continue;
                GLMQ_FAIL_IF(k + 8 > have, z->err, GLMQ_E_FORMAT,
                             "'%s': member '%s': ZIP64 extra field at byte %llu is too short",
                             z->path, en->name, (unsigned long long)en->cd_pos);
                *dst[i] = glmq_rd_le64(q + k);
                k += 8;
            }
            return GLMQ_OK;
        }
        p += 4 + (size_t)len;
    }
    GLMQ_FAIL_IF(need_size || need_comp || need_off, z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s' (central directory byte %llu) has 32-bit fields set to "
                 "0xffffffff but no ZIP64 extra field",
                 z->path, en->name, (unsigned long long)en->cd_pos);
    return GLMQ_OK;
}

/* Reject names that could escape a directory if extracted, or that cannot be C strings. */
static glmq_status check_name(zip *z, const zentry *en, const uint8_t *nm, size_t n)
{
    GLMQ_FAIL_IF(n == 0 || memchr(nm, 0, n) || memchr(nm, '\\', n), z->err, GLMQ_E_FORMAT,
                 "'%s': member name at central directory byte %llu is empty or contains NUL or "
                 "'\\'",
                 z->path, (unsigned long long)en->cd_pos);
    GLMQ_FAIL_IF(nm[0] == '/' || (n >= 2 && nm[1] == ':'), z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s' (central directory byte %llu) has an absolute path", z->path,
                 en->name, (unsigned long long)en->cd_pos);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && nm[j] != '/') j++;
        GLMQ_FAIL_IF(j - i == 2 && nm[i] == '.' && nm[i + 1] == '.', z->err, GLMQ_E_FORMAT,
                     "'%s': member '%s' (central directory byte %llu) contains '..'", z->path,
                     en->name, (unsigned long long)en->cd_pos);
        i = j + 1;
    }
    return GLMQ_OK;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const zentry *)a)->rel, ((const zentry *)b)->rel);
}

/* Walk the central directory into z->e, then sort by name and reject duplicates. */
static glmq_status read_cd(zip *z)
{
    glmq_status st = GLMQ_OK;
    uint8_t *cd = malloc(z->cd_size ? z->cd_size : 1);
    GLMQ_FAIL_IF(!cd, z->err, GLMQ_E_NOMEM, "out of memory");
    z->e = calloc(z->n_entries, sizeof *z->e);
    GLMQ_FAIL_IF_G(!z->e, z->err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(zread(z, z->cd_off, cd, z->cd_size));

    size_t p = 0, plen = 0;
    for (uint64_t i = 0; i < z->n_entries; i++) {
        zentry *en = &z->e[i];
        en->cd_pos = z->cd_off + p;
        GLMQ_FAIL_IF_G(z->cd_size - p < CDH_SIZE || memcmp(cd + p, "PK\x01\x02", 4) != 0,
                       z->err, GLMQ_E_FORMAT,
                       "'%s': central directory entry %llu at byte %llu is missing or has a bad "
                       "signature",
                       z->path, (unsigned long long)i, (unsigned long long)en->cd_pos);
        const uint8_t *h = cd + p;
        size_t nl = glmq_rd_le16(h + 28), xl = glmq_rd_le16(h + 30), cl = glmq_rd_le16(h + 32);
        GLMQ_FAIL_IF_G(z->cd_size - p - CDH_SIZE < nl + xl + cl, z->err, GLMQ_E_FORMAT,
                       "'%s': central directory entry %llu at byte %llu overruns the directory",
                       z->path, (unsigned long long)i, (unsigned long long)en->cd_pos);
        en->flags = glmq_rd_le16(h + 8);
        en->method = glmq_rd_le16(h + 10);
        en->crc = glmq_rd_le32(h + 16);
        en->comp = glmq_rd_le32(h + 20);
        en->size = glmq_rd_le32(h + 24);
        en->lho = glmq_rd_le32(h + 42);
        en->name = malloc(nl + 1);
        GLMQ_FAIL_IF_G(!en->name, z->err, GLMQ_E_NOMEM, "out of memory");
        memcpy(en->name, h + CDH_SIZE, nl);
        en->name[nl] = 0;
        en->rel = en->name;
        GLMQ_TRY_G(check_name(z, en, h + CDH_SIZE, nl));
        GLMQ_TRY_G(zip64_extra(z, en, h + CDH_SIZE + nl, xl, en->size == 0xFFFFFFFFu,
                               en->comp == 0xFFFFFFFFu, en->lho == 0xFFFFFFFFu));

        /* the prefix is the first entry's text before its first '/' (as torch does) */
        if (i == 0) {
            const char *slash = strchr(en->name, '/');
            GLMQ_FAIL_IF_G(!slash || slash == en->name || (size_t)(slash - en->name) > MAX_PREFIX,
                           z->err, GLMQ_E_FORMAT,
                           "'%s': first member '%s' (byte %llu) is not inside a 'prefix/' folder",
                           z->path, en->name, (unsigned long long)en->cd_pos);
            plen = (size_t)(slash - en->name);
            memcpy(z->prefix, en->name, plen);
            z->prefix[plen] = 0;
        }
        GLMQ_FAIL_IF_G(nl <= plen || memcmp(en->name, z->prefix, plen) != 0 ||
                           en->name[plen] != '/',
                       z->err, GLMQ_E_FORMAT,
                       "'%s': member '%s' (central directory byte %llu) is not under the prefix "
                       "'%s/' of the first member",
                       z->path, en->name, (unsigned long long)en->cd_pos, z->prefix);
        en->rel = en->name + plen + 1;

        GLMQ_FAIL_IF_G(en->flags & 0x41, z->err, GLMQ_E_UNSUPPORTED,
                       "'%s': member '%s' (central directory byte %llu) is encrypted", z->path,
                       en->name, (unsigned long long)en->cd_pos);
        GLMQ_FAIL_IF_G(en->method != 0 && en->method != 8, z->err, GLMQ_E_UNSUPPORTED,
                       "'%s': member '%s' (central directory byte %llu) uses compression method "
                       "%u (only stored and deflated are supported)",
                       z->path, en->name, (unsigned long long)en->cd_pos, en->method);
        GLMQ_FAIL_IF_G(en->method == 0 && en->comp != en->size, z->err, GLMQ_E_FORMAT,
                       "'%s': stored member '%s' (central directory byte %llu) has compressed "
                       "size %llu != size %llu",
                       z->path, en->name, (unsigned long long)en->cd_pos,
                       (unsigned long long)en->comp, (unsigned long long)en->size);
        GLMQ_FAIL_IF_G(en->method == 8 && en->size / DEFLATE_MAX_RATIO > en->comp + 1, z->err,
                       GLMQ_E_FORMAT,
                       "'%s': deflated member '%s' (central directory byte %llu) claims %llu "
                       "bytes from %llu compressed bytes",
                       z->path, en->name, (unsigned long long)en->cd_pos,
                       (unsigned long long)en->size, (unsigned long long)en->comp);
        p += CDH_SIZE + nl + xl + cl;
    }
    z->ne = z->n_entries;
    qsort(z->e, z->ne, sizeof *z->e, cmp_rel);
    for (uint64_t i = 1; i < z->ne; i++)
        GLMQ_FAIL_IF_G(strcmp(z->e[i - 1].rel, z->e[i].rel) == 0, z->err, GLMQ_E_FORMAT,
                       "'%s': duplicate member '%s' (central directory bytes %llu and %llu)",
                       z->path, z->e[i].name, (unsigned long long)z->e[i - 1].cd_pos,
                       (unsigned long long)z->e[i].cd_pos);
fail:
    if (st != GLMQ_OK && z->e && z->ne == 0) z->ne = z->n_entries; /* free what was named */
    free(cd);
    return st;
}

static const zentry *find_member(const zip *z, const char *rel)
{
    zentry key;
    memset(&key, 0, sizeof key);
    key.rel = rel;
    return z->ne ? bsearch(&key, z->e, z->ne, sizeof *z->e, cmp_rel) : NULL;
}

/* Locate a member's data via its local header (E.3 step 4) and describe it as a storage. */
static glmq_status member_storage(zip *z, const zentry *en, glmq_src_storage *out)
{
    uint8_t h[LFH_SIZE];
    uint64_t end;
    GLMQ_FAIL_IF(!glmq_add_u64(en->lho, LFH_SIZE, &end) || end > z->cd_off, z->err,
                 GLMQ_E_FORMAT,
                 "'%s': member '%s': local header offset %llu is not before the central "
                 "directory at byte %llu",
                 z->path, en->name, (unsigned long long)en->lho, (unsigned long long)z->cd_off);
    GLMQ_TRY(zread(z, en->lho, h, sizeof h));
    GLMQ_FAIL_IF(memcmp(h, "PK\x03\x04", 4) != 0, z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s': no local header signature at byte %llu", z->path, en->name,
                 (unsigned long long)en->lho);
    GLMQ_FAIL_IF(glmq_rd_le16(h + 6) & 0x41, z->err, GLMQ_E_UNSUPPORTED,
                 "'%s': member '%s' (local header at byte %llu) is encrypted", z->path, en->name,
                 (unsigned long long)en->lho);
    size_t nl = glmq_rd_le16(h + 26), xl = glmq_rd_le16(h + 28);
    GLMQ_FAIL_IF(nl != strlen(en->name), z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s': local header at byte %llu names a %zu-byte member", z->path,
                 en->name, (unsigned long long)en->lho, nl);
    char *name = malloc(nl + 1);
    GLMQ_FAIL_IF(!name, z->err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = zread(z, en->lho + LFH_SIZE, name, nl);
    int same = st == GLMQ_OK && memcmp(name, en->name, nl) == 0;
    free(name);
    GLMQ_TRY(st);
    GLMQ_FAIL_IF(!same, z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s': local header at byte %llu has a different name", z->path,
                 en->name, (unsigned long long)en->lho);
    uint64_t data = en->lho + LFH_SIZE + nl + xl;
    GLMQ_FAIL_IF(!glmq_add_u64(data, en->comp, &end) || end > z->cd_off, z->err, GLMQ_E_FORMAT,
                 "'%s': member '%s': data at byte %llu (+%llu bytes) runs into the central "
                 "directory at byte %llu",
                 z->path, en->name, (unsigned long long)data, (unsigned long long)en->comp,
                 (unsigned long long)z->cd_off);
    memset(out, 0, sizeof *out);
    out->file = z->file;
    out->offset = data;
    out->size = en->size;
    out->comp_size = en->comp;
    out->deflated = en->method == 8;
    out->has_crc = 1;
    out->crc32 = en->crc;
    out->label = en->name;
    return GLMQ_OK;
}

/* Read a small member whole (CRC-checked, inflated if needed) through a temporary storage. */
static glmq_status slurp_member(zip *z, const zentry *en, uint64_t limit, uint8_t **buf,
                                size_t *n)
{
    GLMQ_FAIL_IF(en->size > limit, z->err, GLMQ_E_UNSUPPORTED,
                 "'%s': member '%s' (central directory byte %llu) is %llu bytes (limit %llu)",
                 z->path, en->name, (unsigned long long)en->cd_pos, (unsigned long long)en->size,
                 (unsigned long long)limit);
    glmq_src_storage sto;
    GLMQ_TRY(member_storage(z, en, &sto));
    uint32_t idx, ns = z->s->nstorages;
    GLMQ_TRY(glmq_src_add_storage(z->s, &sto, &idx, z->err));
    glmq_status st = glmq_src_storage_slurp(z->s, idx, buf, n, z->err);
    glmq_src_set_truncate(z->s, z->s->nfiles, ns, z->s->ntensors);
    return st;
}

/* ---- 3./4. records, pickle, storages, tensors ---------------------------------------------- */

/* Refuse TorchScript archives and big-endian payloads; ignore other records. */
static glmq_status check_records(zip *z)
{
    for (uint64_t i = 0; i < z->ne; i++) {
        const zentry *en = &z->e[i];
        GLMQ_FAIL_IF(strcmp(en->rel, "constants.pkl") == 0 || strncmp(en->rel, "code/", 5) == 0,
                     z->err, GLMQ_E_UNSUPPORTED,
                     "'%s': TorchScript archive (member '%s' at central directory byte %llu); "
                     "load it with torch.jit.load and torch.save its state_dict()",
                     z->path, en->name, (unsigned long long)en->cd_pos);
    }
    const zentry *bo = find_member(z, "byteorder");
    if (bo) {
        uint8_t *b = NULL;
        size_t n = 0;
        GLMQ_TRY(slurp_member(z, bo, 16, &b, &n));
        int little = n == 6 && memcmp(b, "little", 6) == 0;
        int big = n == 3 && memcmp(b, "big", 3) == 0;
        free(b);
        GLMQ_FAIL_IF(big, z->err, GLMQ_E_UNSUPPORTED,
                     "'%s': member '%s' (central directory byte %llu) says the data is "
                     "big-endian; only little-endian checkpoints are supported",
                     z->path, bo->name, (unsigned long long)bo->cd_pos);
        GLMQ_FAIL_IF(!little, z->err, GLMQ_E_FORMAT,
                     "'%s': member '%s' (central directory byte %llu) is neither 'little' nor "
                     "'big'",
                     z->path, bo->name, (unsigned long long)bo->cd_pos);
    }
    return GLMQ_OK;
}

/* One distinct storage key and the set storage registered for it. */
typedef struct {
    const glmq_pkl_tensor *first; /* first tensor that referenced it */
    uint32_t index;
} keyed;

/* Register the storage behind tensor t (once per key) and return its set index. */
static glmq_status storage_for(zip *z, const glmq_pkl_tensor *t, keyed *keys, size_t *nkeys,
                               uint32_t *index)
{
    for (size_t k = 0; k < *nkeys; k++) {
        const glmq_pkl_tensor *f = keys[k].first;
        if (strcmp(f->key, t->key) != 0) continue;
        GLMQ_FAIL_IF(f->storage_dtype != t->storage_dtype || f->storage_numel != t->storage_numel,
                     z->err, GLMQ_E_FORMAT,
                     "'%s': tensor '%s' (data.pkl byte %llu) views storage '%s' as %lld x %s, "
                     "but tensor '%s' views it as %lld x %s",
                     z->path, t->name, (unsigned long long)t->pid_pos, t->key,
                     (long long)t->storage_numel, glmq_dtype_name(t->storage_dtype), f->name,
                     (long long)f->storage_numel, glmq_dtype_name(f->storage_dtype));
        *index = keys[k].index;
        return GLMQ_OK;
    }
    char rel[GLMQ_PKL_KEY_MAX + 8];
    snprintf(rel, sizeof rel, "data/%s", t->key);
    const zentry *en = find_member(z, rel);
    GLMQ_FAIL_IF(!en, z->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s' (data.pkl byte %llu): storage record '%s/%s' is missing",
                 z->path, t->name, (unsigned long long)t->pid_pos, z->prefix, rel);
    uint64_t es = glmq_dtype_size(t->storage_dtype), want;
    GLMQ_FAIL_IF(!glmq_mul_u64((uint64_t)t->storage_numel, es, &want) || want != en->size, z->err,
                 GLMQ_E_FORMAT,
                 "'%s': tensor '%s' (data.pkl byte %llu): storage record '%s' has %llu bytes, "
                 "expected %lld x %s = %llu",
                 z->path, t->name, (unsigned long long)t->pid_pos, en->name,
                 (unsigned long long)en->size, (long long)t->storage_numel,
                 glmq_dtype_name(t->storage_dtype), (unsigned long long)want);
    glmq_src_storage sto;
    GLMQ_TRY(member_storage(z, en, &sto));
    GLMQ_TRY(glmq_src_add_storage(z->s, &sto, index, z->err));
    keys[*nkeys].first = t;
    keys[*nkeys].index = *index;
    (*nkeys)++;
    return GLMQ_OK;
}

static glmq_status add_tensors(zip *z, const glmq_pkl_dict *d)
{
    glmq_status st = GLMQ_OK;
    keyed *keys = d->n ? malloc(d->n * sizeof *keys) : NULL;
    size_t nkeys = 0;
    GLMQ_FAIL_IF(d->n && !keys, z->err, GLMQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < d->n; i++) {
        const glmq_pkl_tensor *p = &d->v[i];
        glmq_src_tensor t;
        memset(&t, 0, sizeof t);
        memcpy(t.name, p->name, sizeof t.name);
        if (z->name_prefix) {
            int w = snprintf(t.name, sizeof t.name, "%s%s", z->name_prefix, p->name);
            GLMQ_FAIL_IF_G(w < 0 || (size_t)w >= sizeof t.name, z->err, GLMQ_E_FORMAT,
                           "'%s': tensor name '%s' is too long with its prefix '%s'", z->path,
                           p->name, z->name_prefix);
        }
        t.dtype = p->dtype;
        t.ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++) {
            t.shape[k] = p->shape[k];
            t.stride[k] = p->stride[k];
        }
        GLMQ_FAIL_IF_G(glmq_src_find(z->s, t.name) >= 0, z->err, GLMQ_E_FORMAT,
                       "'%s': duplicate tensor name '%s' (data.pkl byte %llu)", z->path,
                       p->name, (unsigned long long)p->pos);
        GLMQ_TRY_G(storage_for(z, p, keys, &nkeys, &t.storage));
        GLMQ_FAIL_IF_G(!glmq_mul_u64((uint64_t)p->offset, glmq_dtype_size(p->dtype),
                                     &t.byte_offset),
                       z->err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s' (data.pkl byte %llu): storage offset %lld overflows",
                       z->path, p->name, (unsigned long long)p->pos, (long long)p->offset);
        GLMQ_TRY_G(glmq_src_add_tensor(z->s, &t, z->err));
    }
fail:
    free(keys);
    return st;
}

glmq_status glmq_torchzip_load(glmq_src_set *s, const char *path, glmq_err *err)
{
    return glmq_torchzip_load_prefix(s, path, NULL, err);
}

glmq_status glmq_torchzip_load_prefix(glmq_src_set *s, const char *path, const char *prefix,
                                      glmq_err *err)
{
    GLMQ_FAIL_IF(!s || !path, err, GLMQ_E_INVALID, "glmq_torchzip_load: NULL argument");
    uint32_t nf = s->nfiles, ns = s->nstorages;
    int64_t nt = s->ntensors;
    zip z;
    memset(&z, 0, sizeof z);
    z.s = s;
    z.err = err;
    z.path = path;
    z.name_prefix = prefix;
    glmq_pkl_dict d = {NULL, 0};
    uint8_t *pkl = NULL;
    size_t npkl = 0;

    glmq_status st = glmq_src_add_file(s, path, &z.file, err);
    if (st != GLMQ_OK) return st;
    z.fsize = s->files[z.file].size;

    GLMQ_TRY_G(sniff(&z));
    GLMQ_TRY_G(find_eocd(&z));
    GLMQ_TRY_G(read_cd(&z));
    GLMQ_TRY_G(check_records(&z));

    const zentry *pe = find_member(&z, "data.pkl");
    GLMQ_FAIL_IF_G(!pe, err, GLMQ_E_FORMAT,
                   "'%s': no '%s/data.pkl' record in the central directory at byte %llu (not "
                   "a torch.save archive)",
                   path, z.prefix, (unsigned long long)z.cd_off);
    GLMQ_TRY_G(slurp_member(&z, pe, MAX_PKL_BYTES, &pkl, &npkl));
    char ctx[GLMQ_ERR_SIZE / 2];
    snprintf(ctx, sizeof ctx, "'%s': '%s'", path, pe->name);
    GLMQ_TRY_G(glmq_pickle_state_dict(pkl, npkl, ctx, &d, err));
    GLMQ_TRY_G(add_tensors(&z, &d));

fail:
    if (st != GLMQ_OK) glmq_src_set_truncate(s, nf, ns, nt);
    for (uint64_t i = 0; i < z.ne; i++) free(z.e[i].name);
    free(z.e);
    free(pkl);
    glmq_pkl_dict_free(&d);
    return st;
}
