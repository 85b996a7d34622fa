/*
 * fuzz_pack_open.c - feed arbitrary bytes to glmq_pack_open as a file and call every accessor
 * of the public pack API (src/glmq.h) on what it accepts.
 *
 * The input is written to a temp file (the reader maps a path). One convenience for the fuzzer:
 * when the input is at least a header long and its header checksum field (bytes 120..127) is
 * all zero, the target first signs it, i.e. writes the XXH3-64 of SPEC §3 there (when the four
 * table ranges lie inside the input). Without this nearly every mutation would stop at the
 * header checksum; with it the engine reaches the directory checks. Inputs with any other
 * value there are opened as they are, so a wrong checksum is exercised too. The corpus
 * (corpus/pack_open/, made by gen_pack_corpus.c) holds both kinds.
 *
 * Beyond "no crash, no leak, no UB", the target checks the reader's contract and traps on a
 * breach:
 *   - failure: *out == NULL, err.code == the status, a non-empty NUL-terminated message that
 *     names the file for format, checksum and version errors;
 *   - success: the version, header checksum, counts and metadata are the input's; every tensor
 *     (by index and by name) has a known type, 1..4 dims, rows/cols from its shape, the SPEC §5
 *     row stride, data and scales inside the file that are byte for byte the input's at the
 *     stated offsets, and its stored checksum; rows 0, rows/2 and rows-1 widen to the values an
 *     independent decode of the input gives (first and last column); out-of-range indices and
 *     rows are GLMQ_E_INVALID; every blob named in the directory is found with the input's
 *     bytes; glmq_pack_verify is GLMQ_OK exactly when XXH3-64 of every blob and tensor (data,
 *     then scales) matches its directory entry, else GLMQ_E_CHECKSUM.
 */
#include "formats/pack.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

#define MAX_WIDEN_COLS (1 << 20) /* widen rows only up to this many columns (memory) */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* XXH3-64 of header[0,120) + string table + tensor dir + blob dir + metadata, if every range
 * lies inside buf; returns 0 when it cannot be computed. */
static int sign(uint8_t *buf, size_t size)
{
    const uint64_t rng[4][2] = {
        {glmq_rd_le64(buf + 24), glmq_rd_le64(buf + 32)},
        {glmq_rd_le64(buf + 40), glmq_rd_le64(buf + 48)},
        {glmq_rd_le64(buf + 56), glmq_rd_le64(buf + 64)},
        {glmq_rd_le64(buf + 72), glmq_rd_le64(buf + 80)},
    };
    const uint64_t unit[4] = {1, GLMQ_PACK_TENSOR_ENTRY, GLMQ_PACK_BLOB_ENTRY, 1};
    uint64_t len[4];
    for (int i = 0; i < 4; i++) {
        uint64_t end;
        if (!glmq_mul_u64(rng[i][1], unit[i], &len[i]) || !glmq_add_u64(rng[i][0], len[i], &end) ||
            end > size)
            return 0;
    }
    XXH3_state_t *h = XXH3_createState();
    if (!h) return 0;
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, buf, 120);
    for (int i = 0; i < 4; i++) XXH3_64bits_update(h, buf + rng[i][0], (size_t)len[i]);
    glmq_wr_le64(buf + 120, XXH3_64bits_digest(h));
    XXH3_freeState(h);
    return 1;
}

/* SPEC §5 row stride, computed here independently of formats/layout.h. */
static uint64_t spec_stride(glmq_type t, uint64_t cols)
{
    switch (t) {
    case GLMQ_TYPE_F32: return cols * 4;
    case GLMQ_TYPE_F16:
    case GLMQ_TYPE_BF16: return cols * 2;
    case GLMQ_TYPE_INT8: return (cols + 63) / 64 * 64;
    case GLMQ_TYPE_INT4: return (cols + 127) / 128 * 64;
    }
    return 0;
}

/* IEEE binary16 bits to float (exact), written out here rather than taken from core/fp16. */
static float half_to_float(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

/* Element c of row r of tensor t, decoded from the input bytes. */
static float decode(const uint8_t *in, const glmq_tensor_info *t, int64_t r, int64_t c)
{
    const uint8_t *row = in + t->data_offset + (uint64_t)r * (uint64_t)t->row_stride;
    float f;
    uint32_t u;
    switch (t->type) {
    case GLMQ_TYPE_F32:
        u = glmq_rd_le32(row + 4 * c);
        memcpy(&f, &u, 4);
        return f;
    case GLMQ_TYPE_F16: return half_to_float(glmq_rd_le16(row + 2 * c));
    case GLMQ_TYPE_BF16:
        u = (uint32_t)glmq_rd_le16(row + 2 * c) << 16;
        memcpy(&f, &u, 4);
        return f;
    case GLMQ_TYPE_INT8: {
        const float s = half_to_float(glmq_rd_le16(in + t->scales_offset + 2 * (uint64_t)r));
        return (float)(int8_t)row[c] * s;
    }
    case GLMQ_TYPE_INT4: {
        const float s = half_to_float(glmq_rd_le16(in + t->scales_offset + 2 * (uint64_t)r));
        const uint8_t byte = row[(c / 128) * 64 + (c % 128) % 64];
        const int nib = (c % 128) < 64 ? (byte & 15) : (byte >> 4);
        return (float)(nib - 8) * s;
    }
    }
    return NAN;
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static void check_tensor(const glmq_pack *p, const uint8_t *in, size_t size, uint64_t td_off,
                         int64_t i, float *row)
{
    glmq_err err = {0};
    glmq_tensor_info t, u;
    CHECK(glmq_pack_tensor(p, i, &t, &err) == GLMQ_OK);
    const uint8_t *e = in + td_off + (uint64_t)i * GLMQ_PACK_TENSOR_ENTRY;
    CHECK(t.name != NULL && t.name[0] != 0);
    CHECK(strlen(t.name) == glmq_rd_le32(e + 8));
    CHECK(memcmp(t.name, in + glmq_rd_le64(e), strlen(t.name)) == 0);
    CHECK(glmq_type_name(t.type) != NULL && (uint32_t)t.type == glmq_rd_le32(e + 12));
    CHECK(t.ndim >= 1 && t.ndim <= GLMQ_MAX_DIMS && (uint32_t)t.ndim == glmq_rd_le32(e + 16));
    int64_t rows = 1;
    for (int j = 0; j < t.ndim; j++) {
        CHECK(t.shape[j] >= 1 && (uint64_t)t.shape[j] == glmq_rd_le64(e + 24 + 8 * j));
        if (j + 1 < t.ndim) CHECK(!__builtin_mul_overflow(rows, t.shape[j], &rows));
    }
    CHECK(t.rows == rows && t.cols == t.shape[t.ndim - 1]);
    const uint64_t stride = spec_stride(t.type, (uint64_t)t.cols);
    CHECK((uint64_t)t.row_stride == stride && t.data_size == (uint64_t)rows * stride);
    CHECK(t.data_offset % GLMQ_PACK_ALIGN == 0 && t.data_offset == glmq_rd_le64(e + 64));
    CHECK(t.data_offset <= size && t.data_size <= size - t.data_offset);
    CHECK(t.checksum == glmq_rd_le64(e + 96));
    /* the view is the input's bytes: compare the first and last 64 */
    const size_t k = t.data_size < 64 ? t.data_size : 64;
    const uint8_t *d = (const uint8_t *)t.data;
    CHECK(memcmp(d, in + t.data_offset, k) == 0);
    CHECK(memcmp(d + t.data_size - k, in + t.data_offset + t.data_size - k, k) == 0);
    const int quant = t.type == GLMQ_TYPE_INT8 || t.type == GLMQ_TYPE_INT4;
    if (quant) {
        CHECK(t.scales != NULL && t.scales_size == (uint64_t)rows * 2);
        CHECK(t.scales_offset % GLMQ_PACK_ALIGN == 0 && t.scales_offset <= size &&
              t.scales_size <= size - t.scales_offset);
        CHECK(memcmp(t.scales, in + t.scales_offset, t.scales_size) == 0);
    } else {
        CHECK(t.scales == NULL && t.scales_size == 0 && t.scales_offset == 0);
    }
    /* lookup by name gives the same entry (names are unique) */
    CHECK(glmq_pack_find(p, t.name, &u, &err) == GLMQ_OK);
    CHECK(u.data == t.data && u.scales == t.scales && u.rows == t.rows && u.type == t.type &&
          u.checksum == t.checksum);
    /* widen three rows and compare the first and last column with the decode above */
    if (row && t.cols <= MAX_WIDEN_COLS) {
        const int64_t pick[3] = {0, rows / 2, rows - 1};
        for (int r = 0; r < 3; r++) {
            CHECK(glmq_tensor_row_f32(&t, pick[r], row, &err) == GLMQ_OK);
            CHECK(same_float(row[0], decode(in, &t, pick[r], 0)));
            CHECK(same_float(row[t.cols - 1], decode(in, &t, pick[r], t.cols - 1)));
        }
        memset(&err, 0, sizeof err);
        CHECK(glmq_tensor_row_f32(&t, -1, row, &err) == GLMQ_E_INVALID && err.msg[0]);
        CHECK(glmq_tensor_row_f32(&t, rows, row, &err) == GLMQ_E_INVALID);
    }
}

/* Every accessor on an opened pack; `in` is the file's content. */
static void check_pack(const glmq_pack *p, const uint8_t *in, size_t size)
{
    glmq_err err = {0};
    CHECK(glmq_pack_version(p) >> 16 == GLMQ_PACK_VERSION_MAJOR);
    CHECK((glmq_pack_version(p) & 0xffff) == glmq_rd_le16(in + 10));
    CHECK(glmq_pack_header_checksum(p) == glmq_rd_le64(in + 120));

    const uint64_t td_off = glmq_rd_le64(in + 40), nt = glmq_rd_le64(in + 48);
    const uint64_t bd_off = glmq_rd_le64(in + 56), nb = glmq_rd_le64(in + 64);
    const uint64_t m_off = glmq_rd_le64(in + 72), m_size = glmq_rd_le64(in + 80);

    const char *meta = glmq_pack_metadata(p);
    CHECK(meta != NULL);
    const size_t ml = strlen(meta);
    CHECK(ml <= m_size && memcmp(meta, in + m_off, ml) == 0);
    cJSON *j = cJSON_Parse(meta);
    CHECK(j == NULL || cJSON_IsObject(j) || ml < m_size); /* an embedded NUL may cut it short */
    cJSON_Delete(j);

    CHECK(glmq_pack_tensor_count(p) >= 0 && (uint64_t)glmq_pack_tensor_count(p) == nt);
    int64_t max_cols = 1;
    for (int64_t i = 0; i < (int64_t)nt; i++) {
        glmq_tensor_info t;
        CHECK(glmq_pack_tensor(p, i, &t, &err) == GLMQ_OK);
        if (t.cols > max_cols && t.cols <= MAX_WIDEN_COLS) max_cols = t.cols;
    }
    float *row = malloc((size_t)max_cols * sizeof *row);
    for (int64_t i = 0; i < (int64_t)nt; i++) check_tensor(p, in, size, td_off, i, row);
    free(row);
    glmq_tensor_info t;
    memset(&err, 0, sizeof err);
    CHECK(glmq_pack_tensor(p, -1, &t, &err) == GLMQ_E_INVALID && err.msg[0]);
    CHECK(glmq_pack_tensor(p, (int64_t)nt, &t, &err) == GLMQ_E_INVALID);
    CHECK(glmq_pack_find(p, "", &t, &err) == GLMQ_E_INVALID);
    CHECK(glmq_pack_find(p, "no such tensor \x01", &t, &err) == GLMQ_E_INVALID);

    /* blobs: the API looks them up by name; take the names from the directory */
    int sums_ok = 1;
    for (uint64_t i = 0; i < nb; i++) {
        const uint8_t *e = in + bd_off + i * GLMQ_PACK_BLOB_ENTRY;
        const char *name = (const char *)in + glmq_rd_le64(e);
        uint64_t first = i; /* the lookup returns the first blob of that name */
        for (uint64_t k = 0; k < i; k++)
            if (!strcmp((const char *)in + glmq_rd_le64(in + bd_off + k * 64), name)) {
                first = k;
                break;
            }
        const uint8_t *f = in + bd_off + first * GLMQ_PACK_BLOB_ENTRY;
        const void *bd = NULL;
        size_t bs = 0;
        CHECK(glmq_pack_blob(p, name, &bd, &bs, &err) == GLMQ_OK);
        CHECK(bs == glmq_rd_le64(f + 24));
        CHECK(bs == 0 || memcmp(bd, in + glmq_rd_le64(f + 16), bs) == 0);
        if (XXH3_64bits(in + glmq_rd_le64(e + 16), glmq_rd_le64(e + 24)) != glmq_rd_le64(e + 32))
            sums_ok = 0;
    }
    const void *bd;
    size_t bs;
    CHECK(glmq_pack_blob(p, "no such blob \x01", &bd, &bs, &err) == GLMQ_E_INVALID);

    /* checksums, computed here, decide what verify must say */
    for (int64_t i = 0; i < (int64_t)nt; i++) {
        CHECK(glmq_pack_tensor(p, i, &t, &err) == GLMQ_OK);
        XXH3_state_t *h = XXH3_createState();
        CHECK(h != NULL);
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, in + t.data_offset, t.data_size);
        if (t.scales) XXH3_64bits_update(h, in + t.scales_offset, t.scales_size);
        if (XXH3_64bits_digest(h) != t.checksum) sums_ok = 0;
        XXH3_freeState(h);
    }
    memset(&err, 0, sizeof err);
    const glmq_status vs = glmq_pack_verify(p, &err);
    CHECK(vs == (sums_ok ? GLMQ_OK : GLMQ_E_CHECKSUM));
    CHECK(vs == GLMQ_OK || err.msg[0] != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    if (size >= GLMQ_PACK_HEADER_SIZE && glmq_rd_le64(in + 120) == 0) sign(in, size);

    const char *dir = getenv("GLMQ_TMP");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz_pack.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { /* GLMQ_TMP may not exist yet */
        snprintf(path, sizeof path, "/tmp/fuzz_pack.XXXXXX");
        fd = mkstemp(path);
    }
    if (fd < 0) {
        free(in);
        return 0;
    }
    const int ok = write_all(fd, in, size) == 0;
    close(fd);
    if (ok) {
        glmq_pack *p = (glmq_pack *)(uintptr_t)1; /* must be reset to NULL on failure */
        glmq_err err = {0};
        const glmq_status st = glmq_pack_open(path, &p, &err);
        if (st != GLMQ_OK) {
            CHECK(p == NULL);
            CHECK(err.code == st && err.msg[0] != 0 && memchr(err.msg, 0, sizeof err.msg));
            if (st == GLMQ_E_FORMAT || st == GLMQ_E_CHECKSUM || st == GLMQ_E_UNSUPPORTED)
                CHECK(strstr(err.msg, path) != NULL);
        } else {
            CHECK(p != NULL && size >= GLMQ_PACK_HEADER_SIZE);
            check_pack(p, in, size);
            glmq_pack_close(p);
        }
    }
    unlink(path);
    free(in);
    return 0;
}
