/*
 * check_torchzip.c - the torch.save zip reader (formats/torchzip.c) end to end.
 *
 * Fixtures written by torch 1.13 (tests/data/torchzip, see gen_fixtures.py) must load, and every
 * element read through glmq_src_read_rows_raw must equal the value torch itself wrote into
 * expected.json: all dtypes, a module state dict with _metadata, a plain dict, Parameters,
 * storages shared at offsets, transposed/permuted/sliced views, a tied tensor and a copy with
 * deflated members. Refused inputs (legacy format, TorchScript, quantized, truncated, short
 * storage, corrupt deflate, os.system payloads) must fail with the right status and a message
 * naming the file, member or tensor, and byte offset, and must leave the set untouched.
 *
 * Zip-level corner cases are easier to make here than in Python: a small builder writes
 * torch-shaped archives (FB padding to 64, data descriptors, ZIP64 end records) from a pickle
 * assembled opcode by opcode, and each case breaks one thing.
 */
#include "formats/source.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define MARKER "/tmp/glmq_torchzip_pwned"

static char *tmpdir;

static void setup(void)
{
    tmpdir = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmpdir);
}
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}

static char *fixture(const char *name)
{
    char *dir = tu_path(tu_testdata(), "torchzip");
    char *p = tu_path(dir, name);
    free(dir);
    return p;
}

/* ---- byte buffers, a pickle assembler and a zip builder ---------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_raw(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u8(buf *b, uint8_t v) { b_raw(b, &v, 1); }
static void b_u16(buf *b, uint16_t v)
{
    b_u8(b, (uint8_t)v);
    b_u8(b, (uint8_t)(v >> 8));
}
static void b_u32(buf *b, uint32_t v)
{
    b_u16(b, (uint16_t)v);
    b_u16(b, (uint16_t)(v >> 16));
}
static void b_u64(buf *b, uint64_t v)
{
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void p_str(buf *b, const char *s)
{
    b_u8(b, 'X');
    b_u32(b, (uint32_t)strlen(s));
    b_raw(b, s, strlen(s));
}
static void p_global(buf *b, const char *mod, const char *name)
{
    b_u8(b, 'c');
    b_raw(b, mod, strlen(mod));
    b_u8(b, '\n');
    b_raw(b, name, strlen(name));
    b_u8(b, '\n');
}
static void p_int(buf *b, int64_t v)
{
    b_u8(b, 0x8a);
    b_u8(b, 8);
    b_u64(b, (uint64_t)v);
}
static void p_ints(buf *b, const int64_t *v, int n)
{
    b_u8(b, '(');
    for (int i = 0; i < n; i++) p_int(b, v[i]);
    b_u8(b, 't');
}

/* One state-dict entry for the assembled pickle. */
typedef struct {
    const char *name, *cls, *key;
    int64_t numel, offset;
    int nd;
    int64_t shape[4], stride[4];
    const char *v3_dtype; /* non-NULL: _rebuild_tensor_v3 with this torch dtype */
} pent;

static void p_state_dict(buf *b, const pent *e, int n)
{
    b_raw(b, "\x80\x02", 2);
    p_global(b, "collections", "OrderedDict");
    b_raw(b, ")R(", 3);
    for (int i = 0; i < n; i++) {
        p_str(b, e[i].name);
        p_global(b, "torch._utils", e[i].v3_dtype ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
        b_raw(b, "((", 2);
        p_str(b, "storage");
        p_global(b, "torch", e[i].cls);
        p_str(b, e[i].key);
        p_str(b, "cpu");
        p_int(b, e[i].numel);
        b_raw(b, "tQ", 2);
        p_int(b, e[i].offset);
        p_ints(b, e[i].shape, e[i].nd);
        p_ints(b, e[i].stride, e[i].nd);
        b_u8(b, 0x89);
        p_global(b, "collections", "OrderedDict");
        b_raw(b, ")R", 2);
        if (e[i].v3_dtype) p_global(b, "torch", e[i].v3_dtype);
        b_raw(b, "tR", 2);
    }
    b_raw(b, "u.", 2);
}

/* A zip member for the builder. */
typedef struct {
    const char *name;
    const void *data;
    size_t n;
    uint16_t method;     /* 0 stored, 8 deflated by the builder, else stored but labelled */
    uint16_t flags;      /* extra general-purpose flag bits */
    int zip64_extra;     /* central directory: 32-bit fields 0xffffffff + ZIP64 extra */
    const char *lname;   /* local header name, if different */
} zmem;

/* Where things landed, for patching. */
typedef struct {
    size_t lho[16], cd[16], cd_off, cd_size, z64, loc, eocd;
} zlayout;

static void build_zip(buf *z, zlayout *L, const zmem *m, int nm, int zip64_records)
{
    memset(L, 0, sizeof *L);
    uint32_t crc[16];
    size_t comp[16];
    uint8_t *cdata[16];
    for (int i = 0; i < nm; i++) {
        crc[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].n);
        if (m[i].method == 8) {
            uLong bound = compressBound((uLong)m[i].n) + 64;
            cdata[i] = malloc(bound);
            z_stream s;
            memset(&s, 0, sizeof s);
            ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
            s.next_in = (Bytef *)m[i].data;
            s.avail_in = (uInt)m[i].n;
            s.next_out = cdata[i];
            s.avail_out = (uInt)bound;
            ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
            comp[i] = s.total_out;
            deflateEnd(&s);
        } else {
            cdata[i] = NULL;
            comp[i] = m[i].n;
        }
    }
    /* local headers the way torch writes them: flags 0x0808, zero crc/sizes, FB padding, data
     * descriptor after the data */
    for (int i = 0; i < nm; i++) {
        const char *ln = m[i].lname ? m[i].lname : m[i].name;
        L->lho[i] = z->n;
        b_u32(z, 0x04034b50);
        b_u16(z, 0);
        b_u16(z, (uint16_t)(0x0808 | m[i].flags));
        b_u16(z, m[i].method);
        b_u16(z, 0);
        b_u16(z, 0x21);
        b_u32(z, 0);
        b_u32(z, 0);
        b_u32(z, 0);
        b_u16(z, (uint16_t)strlen(ln));
        size_t start = z->n + 2 + strlen(ln) + 4;
        size_t pad = (64 - start % 64) % 64;
        b_u16(z, (uint16_t)(4 + pad));
        b_raw(z, ln, strlen(ln));
        b_raw(z, "FB", 2);
        b_u16(z, (uint16_t)pad);
        for (size_t k = 0; k < pad; k++) b_u8(z, 'Z');
        b_raw(z, cdata[i] ? cdata[i] : m[i].data, comp[i]);
        b_u32(z, 0x08074b50);
        b_u32(z, crc[i]);
        b_u32(z, (uint32_t)comp[i]);
        b_u32(z, (uint32_t)m[i].n);
    }
    L->cd_off = z->n;
    for (int i = 0; i < nm; i++) {
        L->cd[i] = z->n;
        int x = m[i].zip64_extra;
        b_u32(z, 0x02014b50);
        b_u16(z, 0x031e);
        b_u16(z, 0);
        b_u16(z, (uint16_t)(0x0808 | m[i].flags));
        b_u16(z, m[i].method);
        b_u16(z, 0);
        b_u16(z, 0x21);
        b_u32(z, crc[i]);
        b_u32(z, x ? 0xFFFFFFFFu : (uint32_t)comp[i]);
        b_u32(z, x ? 0xFFFFFFFFu : (uint32_t)m[i].n);
        b_u16(z, (uint16_t)strlen(m[i].name));
        b_u16(z, x ? 28 : 0);
        b_u16(z, 0);
        b_u16(z, 0);
        b_u16(z, 0);
        b_u32(z, 0);
        b_u32(z, x ? 0xFFFFFFFFu : (uint32_t)L->lho[i]);
        b_raw(z, m[i].name, strlen(m[i].name));
        if (x) {
            b_u16(z, 0x0001);
            b_u16(z, 24);
            b_u64(z, m[i].n);
            b_u64(z, comp[i]);
            b_u64(z, L->lho[i]);
        }
        free(cdata[i]);
    }
    L->cd_size = z->n - L->cd_off;
    if (zip64_records) {
        L->z64 = z->n;
        b_u32(z, 0x06064b50);
        b_u64(z, 44);
        b_u16(z, 0x031e);
        b_u16(z, 45);
        b_u32(z, 0);
        b_u32(z, 0);
        b_u64(z, (uint64_t)nm);
        b_u64(z, (uint64_t)nm);
        b_u64(z, L->cd_size);
        b_u64(z, L->cd_off);
        L->loc = z->n;
        b_u32(z, 0x07064b50);
        b_u32(z, 0);
        b_u64(z, L->z64);
        b_u32(z, 1);
    }
    L->eocd = z->n;
    b_u32(z, 0x06054b50);
    b_u16(z, 0);
    b_u16(z, 0);
    b_u16(z, (uint16_t)nm);
    b_u16(z, (uint16_t)nm);
    b_u32(z, (uint32_t)L->cd_size);
    b_u32(z, (uint32_t)L->cd_off);
    b_u16(z, 0);
}

/* ---- loading helpers ------------------------------------------------------------------------ */

/* Write n bytes to tmpdir/t.bin and load it. The file is rewritten in place (pwrite +
 * ftruncate), not re-created: truncate-to-zero-and-rewrite makes ext4 flush on close, which
 * turns the sweeps below from seconds into minutes. */
static glmq_status load_bytes(const void *p, size_t n, glmq_src_set *s, glmq_err *err)
{
    char *path = tu_path(tmpdir, "t.bin");
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)n), 0);
    ck_assert_int_eq(pwrite(fd, p, n, 0), (ssize_t)n);
    close(fd);
    memset(err, 0, sizeof *err);
    glmq_status st = glmq_torchzip_load(s, path, err);
    free(path);
    return st;
}

static double elem(glmq_dtype dt, const uint8_t *p)
{
    switch (dt) {
    case GLMQ_DT_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case GLMQ_DT_F16: return glmq_f16_to_f32(glmq_rd_le16(p));
    case GLMQ_DT_BF16: return glmq_bf16_to_f32(glmq_rd_le16(p));
    case GLMQ_DT_F64: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    case GLMQ_DT_I64: return (double)(int64_t)glmq_rd_le64(p);
    case GLMQ_DT_I32: return (int32_t)glmq_rd_le32(p);
    case GLMQ_DT_I16: return (int16_t)glmq_rd_le16(p);
    case GLMQ_DT_I8: return (int8_t)p[0];
    case GLMQ_DT_U8:
    case GLMQ_DT_BOOL: return p[0];
    default: ck_abort_msg("bad dtype %d", dt);
    }
    return 0;
}

/* Read a whole tensor (all rows) into a malloc'd buffer. */
static glmq_status read_all(glmq_src_set *s, const glmq_src_tensor *t, uint8_t **out,
                            glmq_err *err)
{
    size_t es = glmq_dtype_size(t->dtype);
    *out = malloc((size_t)t->nelem * es + 1);
    ck_assert_ptr_nonnull(*out);
    return glmq_src_read_rows_raw(s, t, 0, glmq_src_rows(t), *out, err);
}

/* ---- torch fixtures against expected.json --------------------------------------------------- */

static const char *const good[] = {"basic.bin",  "module.bin", "plain_dict.bin",
                                   "param.bin",  "shared.bin", "deflated.bin"};

START_TEST(test_fixture_values)
{
    const char *name = good[_i];
    size_t jn;
    char *jp = fixture("expected.json");
    char *js = (char *)tu_read_file(jp, &jn);
    ck_assert_ptr_nonnull(js);
    cJSON *root = cJSON_Parse(js);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, name);
    ck_assert_ptr_nonnull(list);

    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    char *path = fixture(name);
    ck_assert_msg(glmq_torchzip_load(&s, path, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.nfiles, 1);
    ck_assert_int_eq(s.ntensors, cJSON_GetArraySize(list));

    /* storages: one per referenced data/KEY member, labelled PREFIX/data/KEY */
    const char *prefix = !strcmp(name, "plain_dict.bin") ? "archive/data/"
                         : !strcmp(name, "deflated.bin") ? "basic/data/"
                                                         : NULL;
    char pfx[64];
    if (!prefix) {
        snprintf(pfx, sizeof pfx, "%.*s/data/", (int)(strchr(name, '.') - name), name);
        prefix = pfx;
    }
    for (uint32_t i = 0; i < s.nstorages; i++) {
        const glmq_src_storage *st = &s.storages[i];
        ck_assert_msg(!strncmp(st->label, prefix, strlen(prefix)), "%s", st->label);
        ck_assert_int_eq(st->has_crc, 1);
        ck_assert_int_eq(st->deflated, !strcmp(name, "deflated.bin"));
        if (!st->deflated) ck_assert_uint_eq(st->offset % 64, 0); /* torch's FB padding */
        for (uint32_t j = 0; j < i; j++) ck_assert_str_ne(st->label, s.storages[j].label);
    }

    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const char *tn = cJSON_GetObjectItem(e, "name")->valuestring;
        int64_t ti = glmq_src_find(&s, tn);
        ck_assert_msg(ti >= 0, "tensor '%s' missing", tn);
        const glmq_src_tensor *t = &s.tensors[ti];
        ck_assert_str_eq(glmq_dtype_name(t->dtype), cJSON_GetObjectItem(e, "dtype")->valuestring);
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        const cJSON *stride = cJSON_GetObjectItem(e, "stride");
        ck_assert_int_eq(t->ndim, cJSON_GetArraySize(shape));
        for (int k = 0; k < t->ndim; k++) {
            ck_assert_int_eq(t->shape[k], (int64_t)cJSON_GetArrayItem(shape, k)->valuedouble);
            ck_assert_int_eq(t->stride[k], (int64_t)cJSON_GetArrayItem(stride, k)->valuedouble);
        }
        int64_t off = (int64_t)cJSON_GetObjectItem(e, "offset")->valuedouble;
        ck_assert_uint_eq(t->byte_offset, (uint64_t)off * glmq_dtype_size(t->dtype));
        ck_assert_int_eq(t->contiguous, cJSON_IsTrue(cJSON_GetObjectItem(e, "contiguous")));

        const cJSON *vals = cJSON_GetObjectItem(e, "values");
        ck_assert_int_eq(t->nelem, cJSON_GetArraySize(vals));
        uint8_t *data;
        ck_assert_msg(read_all(&s, t, &data, &err) == GLMQ_OK, "%s", err.msg);
        size_t es = glmq_dtype_size(t->dtype);
        for (int64_t k = 0; k < t->nelem; k++) {
            double want = cJSON_GetArrayItem(vals, (int)k)->valuedouble;
            double got = elem(t->dtype, data + (size_t)k * es);
            ck_assert_msg(got == want && signbit(got) == signbit(want),
                          "%s '%s'[%lld]: got %.17g want %.17g", name, tn, (long long)k, got,
                          want);
        }
        free(data);
    }
    glmq_src_set_free(&s);
    free(path);
    cJSON_Delete(root);
    free(js);
    free(jp);
}
END_TEST

START_TEST(test_shared_storage)
{
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    char *path = fixture("shared.bin");
    ck_assert_int_eq(glmq_torchzip_load(&s, path, &err), GLMQ_OK);
    const glmq_src_tensor *a = &s.tensors[glmq_src_find(&s, "a")];
    const glmq_src_tensor *b = &s.tensors[glmq_src_find(&s, "b")];
    const glmq_src_tensor *ev = &s.tensors[glmq_src_find(&s, "every3")];
    const glmq_src_tensor *col = &s.tensors[glmq_src_find(&s, "col")];
    const glmq_src_tensor *t = &s.tensors[glmq_src_find(&s, "t")];
    const glmq_src_tensor *m = &s.tensors[glmq_src_find(&s, "m")];
    const glmq_src_tensor *e = &s.tensors[glmq_src_find(&s, "embed.weight")];
    const glmq_src_tensor *l = &s.tensors[glmq_src_find(&s, "lm_head.weight")];
    ck_assert_uint_eq(a->storage, b->storage);
    ck_assert_uint_eq(a->storage, ev->storage);
    ck_assert_uint_eq(a->storage, col->storage);
    ck_assert_uint_eq(a->byte_offset, 8);
    ck_assert_uint_eq(b->byte_offset, 40);
    ck_assert_uint_eq(s.storages[a->storage].size, 24 * 4);
    ck_assert_uint_eq(t->storage, m->storage);
    ck_assert_int_eq(t->contiguous, 0);
    ck_assert_int_eq(m->contiguous, 1);
    ck_assert_int_eq(ev->contiguous, 0);
    ck_assert_uint_eq(e->storage, l->storage);
    ck_assert_uint_eq(e->byte_offset, l->byte_offset);
    /* base, m, cube, w: four storages for nine tensors */
    ck_assert_int_eq(s.nstorages, 4);
    ck_assert_int_eq(s.ntensors, 9);
    /* rows of a non-contiguous tensor, read from the middle */
    uint8_t row[4];
    ck_assert_int_eq(glmq_src_read_rows_raw(&s, t, 1, 1, row, &err), GLMQ_OK); /* m.t()[1] */
    ck_assert(glmq_f16_to_f32(glmq_rd_le16(row)) == 1.0f);
    ck_assert(glmq_f16_to_f32(glmq_rd_le16(row + 2)) == 4.0f);
    glmq_src_set_free(&s);
    free(path);
}
END_TEST

START_TEST(test_deflated_corrupt)
{
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    char *path = fixture("deflated_corrupt.bin");
    ck_assert_msg(glmq_torchzip_load(&s, path, &err) == GLMQ_OK, "%s", err.msg);
    uint8_t *data;
    const glmq_src_tensor *t = &s.tensors[glmq_src_find(&s, "f32")];
    memset(&err, 0, sizeof err);
    glmq_status st = read_all(&s, t, &data, &err);
    free(data);
    ck_assert_msg(st == GLMQ_E_CHECKSUM || st == GLMQ_E_FORMAT, "%d %s", st, err.msg);
    ck_assert_msg(strstr(err.msg, "basic/data/2") && strstr(err.msg, "deflated_corrupt.bin"),
                  "%s", err.msg);
    /* the eager check convert/ runs before writing anything catches it too */
    memset(&err, 0, sizeof err);
    st = glmq_src_storage_verify(&s, t->storage, &err);
    ck_assert_msg(st == GLMQ_E_CHECKSUM || st == GLMQ_E_FORMAT, "%d %s", st, err.msg);
    ck_assert_msg(strstr(err.msg, "basic/data/2"), "%s", err.msg);
    for (uint32_t i = 0; i < s.nstorages; i++)
        if (i != t->storage) ck_assert_int_eq(glmq_src_storage_verify(&s, i, &err), GLMQ_OK);
    /* the other members are intact */
    for (int64_t i = 0; i < s.ntensors; i++) {
        if (!strcmp(s.tensors[i].name, "f32")) continue;
        ck_assert_msg(read_all(&s, &s.tensors[i], &data, &err) == GLMQ_OK, "%s", err.msg);
        free(data);
    }
    glmq_src_set_free(&s);
    free(path);
}
END_TEST

static const struct {
    const char *file;
    glmq_status st;
    const char *s1, *s2;
} refused[] = {
    {"legacy.bin", GLMQ_E_UNSUPPORTED, "legacy torch.save format (pre-1.6",
     "re-save with torch >= 1.6 or convert to safetensors"},
    {"torchscript.pt", GLMQ_E_UNSUPPORTED, "TorchScript archive", "torchscript/code/"},
    {"quantized.bin", GLMQ_E_UNSUPPORTED,
     "'quantized/data.pkl' at byte 13: disallowed global 'torch._utils._rebuild_qtensor'", NULL},
    {"truncated.bin", GLMQ_E_FORMAT, "no zip end of central directory record", NULL},
    {"short_storage.bin", GLMQ_E_FORMAT, "tensor 'f32' (data.pkl byte",
     "storage record 'basic/data/2' has 22 bytes, expected 6 x F32 = 24"},
    {"evil_os_system.bin", GLMQ_E_UNSUPPORTED,
     "'archive/data.pkl' at byte 2: disallowed global 'os.system'", NULL},
    {"evil_posix_system.bin", GLMQ_E_UNSUPPORTED, "disallowed global 'posix.system'", NULL},
};

START_TEST(test_refused_fixtures)
{
    unlink(MARKER);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    memset(&err, 0, sizeof err);
    char *path = fixture(refused[_i].file);
    glmq_status st = glmq_torchzip_load(&s, path, &err);
    ck_assert_msg(st == refused[_i].st, "%s: status %d: %s", refused[_i].file, st, err.msg);
    ck_assert_msg(strstr(err.msg, refused[_i].file), "file not named: %s", err.msg);
    ck_assert_msg(strstr(err.msg, refused[_i].s1), "'%s' not in: %s", refused[_i].s1, err.msg);
    if (refused[_i].s2)
        ck_assert_msg(strstr(err.msg, refused[_i].s2), "'%s' not in: %s", refused[_i].s2,
                      err.msg);
    ck_assert(strstr(err.msg, "byte") != NULL);
    ck_assert_int_eq(s.nfiles, 0);
    ck_assert_int_eq(s.nstorages, 0);
    ck_assert_int_eq(s.ntensors, 0);
    ck_assert_msg(!tu_file_exists(MARKER), "payload executed");
    glmq_src_set_free(&s);
    free(path);
}
END_TEST

/* A failed load leaves an existing set exactly as it was. */
START_TEST(test_rollback)
{
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    char *basic = fixture("basic.bin"), *plain = fixture("plain_dict.bin");
    char *bad[] = {fixture("legacy.bin"), fixture("short_storage.bin"), fixture("basic.bin"),
                   fixture("deflated.bin")};
    ck_assert_int_eq(glmq_torchzip_load(&s, basic, &err), GLMQ_OK);
    uint32_t nf = s.nfiles, ns = s.nstorages;
    int64_t nt = s.ntensors;
    /* deflated.bin and basic.bin again fail on duplicate names after storages were added */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_ne(glmq_torchzip_load(&s, bad[i], &err), GLMQ_OK);
        ck_assert_int_eq(s.nfiles, nf);
        ck_assert_int_eq(s.nstorages, ns);
        ck_assert_int_eq(s.ntensors, nt);
        free(bad[i]);
    }
    ck_assert_msg(strstr(err.msg, "duplicate tensor name 'f16'"), "%s", err.msg);
    ck_assert_int_eq(glmq_torchzip_load(&s, plain, &err), GLMQ_OK);
    ck_assert_int_eq(s.nfiles, 2);
    for (int64_t i = 0; i < s.ntensors; i++) {
        uint8_t *d;
        ck_assert_msg(read_all(&s, &s.tensors[i], &d, &err) == GLMQ_OK, "%s", err.msg);
        free(d);
    }
    glmq_src_set_free(&s);
    glmq_src_set_free(&s);
    glmq_src_set_free(NULL);
    free(basic);
    free(plain);
}
END_TEST

/* ---- format sniffing ------------------------------------------------------------------------ */

START_TEST(test_sniff)
{
    static const struct {
        const char *bytes;
        size_t n;
        glmq_status st;
        const char *msg;
    } c[] = {
        {"PYTORCH1\0\0\0\0\0\0\0\0", 16, GLMQ_E_UNSUPPORTED, "'PYTORCH1' preview archive"},
        {"\x80\x04\x95\x20\0\0\0\0\0\0\0\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 24,
         GLMQ_E_UNSUPPORTED, "legacy torch.save format"},
        {"\x80\x02}q\0.", 6, GLMQ_E_UNSUPPORTED, "bare pickle stream"},
        {"hello world, not a zip", 22, GLMQ_E_FORMAT, "not a torch.save zip (bytes 0-3 are 68"},
        {"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, GLMQ_E_FORMAT,
         "not a torch.save zip"},
        {"PK", 2, GLMQ_E_FORMAT, "file too short (2 bytes)"},
        {"", 0, GLMQ_E_FORMAT, "file too short (0 bytes)"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        glmq_src_set s;
        glmq_src_set_init(&s);
        glmq_err err;
        glmq_status st = load_bytes(c[i].bytes, c[i].n, &s, &err);
        ck_assert_msg(st == c[i].st && strstr(err.msg, c[i].msg), "case %zu: %d %s", i, st,
                      err.msg);
        ck_assert_int_eq(s.nfiles, 0);
        glmq_src_set_free(&s);
    }
    /* a tar archive: "ustar" at byte 257 */
    uint8_t tar[1024];
    memset(tar, 0, sizeof tar);
    memcpy(tar, "storages", 8);
    memcpy(tar + 257, "ustar\0" "00", 8);
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    ck_assert_int_eq(load_bytes(tar, sizeof tar, &s, &err), GLMQ_E_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "tar-based torch.save format"), "%s", err.msg);
    /* a directory and a missing file */
    ck_assert_int_eq(glmq_torchzip_load(&s, tmpdir, &err), GLMQ_E_IO);
    ck_assert_int_eq(glmq_torchzip_load(&s, "/nonexistent/x.bin", &err), GLMQ_E_IO);
    ck_assert_int_eq(s.nfiles, 0);
    glmq_src_set_free(&s);
}
END_TEST

/* ---- built archives: one broken thing per case ---------------------------------------------- */

enum {
    C_OK_TORCHLIKE, C_OK_CLASSIC, C_OK_ZIP64_EXTRA, C_OK_DEFLATED, C_OK_BYTEORDER,
    C_OK_EXTRA_RECORDS, C_OK_V3, C_NO_EOCD, C_CD_PAST_EOF, C_Z64_BOGUS, C_Z64_BAD_SIG,
    C_Z64_CD_BOGUS, C_DOTDOT,
    C_ABSOLUTE, C_PREFIX, C_NO_FOLDER, C_ENCRYPTED, C_METHOD, C_COMP_NE_SIZE, C_DUPLICATE,
    C_NO_PKL, C_NO_STORAGE, C_TORCHSCRIPT, C_BIG_ENDIAN, C_BAD_BYTEORDER, C_LHO_INTO_CD,
    C_LOCAL_NAME, C_LHO_NO_SIG, C_STORAGE_SIZE, C_PKL_CRC, C_SPAN, C_KEY_CONFLICT, C_MULTIDISK,
    C_TOO_MANY_ENTRIES, C_DATA_INTO_CD, C_NO_Z64_EXTRA, C_RATIO, C_NUMEL_OVERFLOW, C_DUP_NAME,
    C_PKL_DEFLATE_CORRUPT, C_ENCRYPTED_LOCAL, C_NCASES
};

static const struct {
    glmq_status st;
    const char *s1, *s2;
} cases[C_NCASES] = {
    [C_OK_TORCHLIKE] = {GLMQ_OK, NULL, NULL},
    [C_OK_CLASSIC] = {GLMQ_OK, NULL, NULL},
    [C_OK_ZIP64_EXTRA] = {GLMQ_OK, NULL, NULL},
    [C_OK_DEFLATED] = {GLMQ_OK, NULL, NULL},
    [C_OK_BYTEORDER] = {GLMQ_OK, NULL, NULL},
    [C_OK_EXTRA_RECORDS] = {GLMQ_OK, NULL, NULL},
    [C_OK_V3] = {GLMQ_OK, NULL, NULL},
    [C_NO_EOCD] = {GLMQ_E_FORMAT, "no zip end of central directory record", NULL},
    [C_CD_PAST_EOF] = {GLMQ_E_FORMAT, "central directory at byte 2147483647",
                       "runs past its end record"},
    [C_Z64_BOGUS] = {GLMQ_E_FORMAT, "ZIP64 locator at byte", "points to byte 281474976710655"},
    [C_Z64_BAD_SIG] = {GLMQ_E_FORMAT, "no ZIP64 end of central directory signature at byte 0",
                       NULL},
    [C_Z64_CD_BOGUS] = {GLMQ_E_FORMAT, "central directory at byte 1099511627776", NULL},
    [C_DOTDOT] = {GLMQ_E_FORMAT, "member 'archive/../etc/passwd'", "contains '..'"},
    [C_ABSOLUTE] = {GLMQ_E_FORMAT, "member '/archive/version'", "absolute path"},
    [C_PREFIX] = {GLMQ_E_FORMAT, "member 'other/data/0'", "not under the prefix 'archive/'"},
    [C_NO_FOLDER] = {GLMQ_E_FORMAT, "first member 'data.pkl'", "prefix/"},
    [C_ENCRYPTED] = {GLMQ_E_UNSUPPORTED, "member 'archive/data/0'", "is encrypted"},
    [C_METHOD] = {GLMQ_E_UNSUPPORTED, "member 'archive/data/1'", "compression method 12"},
    [C_COMP_NE_SIZE] = {GLMQ_E_FORMAT, "stored member 'archive/data/0'", "compressed size 25"},
    [C_DUPLICATE] = {GLMQ_E_FORMAT, "duplicate member 'archive/data/0'", NULL},
    [C_NO_PKL] = {GLMQ_E_FORMAT, "no 'archive/data.pkl' record", NULL},
    [C_NO_STORAGE] = {GLMQ_E_FORMAT, "tensor 'h' (data.pkl byte",
                      "storage record 'archive/data/1' is missing"},
    [C_TORCHSCRIPT] = {GLMQ_E_UNSUPPORTED, "TorchScript archive", "archive/constants.pkl"},
    [C_BIG_ENDIAN] = {GLMQ_E_UNSUPPORTED, "member 'archive/byteorder'", "big-endian"},
    [C_BAD_BYTEORDER] = {GLMQ_E_FORMAT, "member 'archive/byteorder'", "neither"},
    [C_LHO_INTO_CD] = {GLMQ_E_FORMAT, "member 'archive/data/0': local header offset",
                       "not before the central directory"},
    [C_LOCAL_NAME] = {GLMQ_E_FORMAT, "member 'archive/data/0': local header at byte",
                      "different name"},
    [C_LHO_NO_SIG] = {GLMQ_E_FORMAT, "member 'archive/data/0': no local header signature", NULL},
    [C_STORAGE_SIZE] = {GLMQ_E_FORMAT, "tensor 'w'",
                        "storage record 'archive/data/0' has 20 bytes, expected 6 x F32 = 24"},
    [C_PKL_CRC] = {GLMQ_E_CHECKSUM, "member 'archive/data.pkl'", "CRC-32"},
    [C_SPAN] = {GLMQ_E_FORMAT, "tensor 'w'", "does not fit in its storage 'archive/data/0'"},
    [C_KEY_CONFLICT] = {GLMQ_E_FORMAT, "tensor 'h2'", "views storage '1' as 8 x F16"},
    [C_MULTIDISK] = {GLMQ_E_UNSUPPORTED, "multi-disk zip", NULL},
    [C_TOO_MANY_ENTRIES] = {GLMQ_E_FORMAT, "cannot hold 4000 entries", NULL},
    [C_DATA_INTO_CD] = {GLMQ_E_FORMAT, "member 'archive/data.pkl': data at byte",
                        "runs into the central directory"},
    [C_NO_Z64_EXTRA] = {GLMQ_E_FORMAT, "member 'archive/data/0'", "no ZIP64 extra field"},
    [C_RATIO] = {GLMQ_E_FORMAT, "deflated member 'archive/data/0'", "claims 4000000000 bytes"},
    [C_NUMEL_OVERFLOW] = {GLMQ_E_FORMAT, "tensor 'w'", "expected 4611686018427387904 x F32"},
    [C_DUP_NAME] = {GLMQ_E_FORMAT, "duplicate tensor name 'w'", NULL},
    [C_PKL_DEFLATE_CORRUPT] = {GLMQ_E_FORMAT, "archive/data.pkl", NULL},
    [C_ENCRYPTED_LOCAL] = {GLMQ_E_UNSUPPORTED, "member 'archive/data.pkl' (local header",
                           "encrypted"},
};

static const float w_vals[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.125f, 100.0f};
static const uint16_t h_vals[4] = {0x3c00, 0xc000, 0x3800, 0x0000}; /* 1, -2, 0.5, 0 */

/* Build case `c` into z. Entries: w = F32 (2,3) key 0, h = F16 (4,) key 1. */
static void build_case(int c, buf *z, zlayout *L)
{
    pent e[3] = {
        {"w", "FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}, NULL},
        {"h", "HalfStorage", "1", 4, 0, 1, {4}, {1}, NULL},
        {"h2", "HalfStorage", "1", 8, 0, 1, {2}, {1}, NULL},
    };
    int ne = 2;
    if (c == C_SPAN) e[0].offset = 1;
    if (c == C_KEY_CONFLICT) ne = 3;
    if (c == C_NUMEL_OVERFLOW) e[0].numel = (int64_t)1 << 62;
    if (c == C_DUP_NAME) e[1].name = "w";
    if (c == C_OK_V3) {
        e[1].cls = "UntypedStorage";
        e[1].numel = 8;
        e[1].v3_dtype = "float16";
    }
    buf pk = {0};
    p_state_dict(&pk, e, ne);

    uint8_t w_bytes[24], h_bytes[8];
    memcpy(w_bytes, w_vals, 24);
    for (int i = 0; i < 4; i++) {
        h_bytes[2 * i] = (uint8_t)h_vals[i];
        h_bytes[2 * i + 1] = (uint8_t)(h_vals[i] >> 8);
    }
    zmem m[8] = {
        {"archive/data.pkl", pk.p, pk.n, 0, 0, 0, NULL},
        {"archive/data/0", w_bytes, 24, 0, 0, 0, NULL},
        {"archive/data/1", h_bytes, 8, 0, 0, 0, NULL},
        {"archive/version", "3\n", 2, 0, 0, 0, NULL},
    };
    int nm = 4, z64 = 1;
    switch (c) {
    case C_OK_CLASSIC:
    case C_CD_PAST_EOF:
    case C_MULTIDISK:
    case C_TOO_MANY_ENTRIES: z64 = 0; break;
    case C_OK_ZIP64_EXTRA:
        for (int i = 0; i < nm; i++) m[i].zip64_extra = 1;
        break;
    case C_OK_DEFLATED:
        for (int i = 0; i < nm; i++) m[i].method = 8;
        break;
    case C_OK_BYTEORDER: m[nm++] = (zmem){"archive/byteorder", "little", 6, 0, 0, 0, NULL}; break;
    case C_BIG_ENDIAN: m[nm++] = (zmem){"archive/byteorder", "big", 3, 0, 0, 0, NULL}; break;
    case C_BAD_BYTEORDER: m[nm++] = (zmem){"archive/byteorder", "middle", 6, 0, 0, 0, NULL}; break;
    case C_OK_EXTRA_RECORDS:
        m[nm++] = (zmem){"archive/.format_version", "1", 1, 0, 0, 0, NULL};
        m[nm++] = (zmem){"archive/.data/serialization_id", "0123", 4, 0, 0, 0, NULL};
        m[nm++] = (zmem){"archive/data/99", "xyz", 3, 0, 0, 0, NULL};
        break;
    case C_DOTDOT: m[3].name = "archive/../etc/passwd"; break;
    case C_ABSOLUTE: m[3].name = "/archive/version"; break;
    case C_PREFIX: m[1].name = "other/data/0"; break;
    case C_NO_FOLDER: m[0].name = "data.pkl"; break;
    case C_ENCRYPTED: m[1].flags = 1; break;
    case C_METHOD: m[2].method = 12; break;
    case C_DUPLICATE: m[3] = m[1]; break;
    case C_NO_PKL: m[0].name = "archive/data.pk"; break;
    case C_NO_STORAGE: m[2].name = "archive/data/2"; break;
    case C_TORCHSCRIPT:
        m[nm++] = (zmem){"archive/constants.pkl", "\x80\x02).", 4, 0, 0, 0, NULL};
        break;
    case C_LOCAL_NAME: m[1].lname = "archive/data/X"; break;
    case C_STORAGE_SIZE: m[1].n = 20; break;
    case C_KEY_CONFLICT: break;
    case C_PKL_DEFLATE_CORRUPT: m[0].method = 8; break;
    case C_RATIO: m[1].method = 8; break;
    default: break;
    }
    build_zip(z, L, m, nm, z64);
    free(pk.p);

    /* post-build patches */
    switch (c) {
    case C_NO_EOCD: z->n -= 22; break;
    case C_CD_PAST_EOF: put32(z->p + L->eocd + 16, 0x7FFFFFFF); break;
    case C_Z64_BOGUS: put64(z->p + L->loc + 8, 0xFFFFFFFFFFFFull); break;
    case C_Z64_BAD_SIG: put64(z->p + L->loc + 8, 0); break;
    case C_Z64_CD_BOGUS: put64(z->p + L->z64 + 48, (uint64_t)1 << 40); break;
    case C_COMP_NE_SIZE: put32(z->p + L->cd[1] + 20, 25); break;
    case C_LHO_INTO_CD: put32(z->p + L->cd[1] + 42, (uint32_t)L->cd_off); break;
    case C_LHO_NO_SIG: put32(z->p + L->cd[1] + 42, (uint32_t)L->lho[1] + 1); break;
    case C_PKL_CRC: z->p[L->cd[0] + 16] ^= 1; break;
    case C_MULTIDISK: z->p[L->eocd + 4] = 1; break;
    case C_TOO_MANY_ENTRIES:
        z->p[L->eocd + 8] = 0xa0;
        z->p[L->eocd + 9] = 0x0f;
        z->p[L->eocd + 10] = 0xa0;
        z->p[L->eocd + 11] = 0x0f;
        break;
    case C_DATA_INTO_CD:
        put32(z->p + L->cd[0] + 20, 4000);
        put32(z->p + L->cd[0] + 24, 4000);
        break;
    case C_NO_Z64_EXTRA: put32(z->p + L->cd[1] + 24, 0xFFFFFFFFu); break;
    case C_RATIO: put32(z->p + L->cd[1] + 24, 4000000000u); break;
    case C_PKL_DEFLATE_CORRUPT: {
        /* data starts at the 64-byte boundary after the local header */
        size_t d = (L->lho[0] + 30 + 16 + 4 + 63) / 64 * 64;
        for (int k = 0; k < 6; k++) z->p[d + 4 + k] ^= 0xA5;
        break;
    }
    case C_ENCRYPTED_LOCAL: z->p[L->lho[0] + 6] |= 1; break;
    default: break;
    }
}

START_TEST(test_built_cases)
{
    buf z = {0};
    zlayout L;
    build_case(_i, &z, &L);
    /* GLMQ_DUMP_CORPUS=dir saves every case, to seed tests/fuzz/corpus/torchzip */
    const char *dump = getenv("GLMQ_DUMP_CORPUS");
    if (dump && *dump) {
        char name[64];
        snprintf(name, sizeof name, "built_case_%02d.bin", _i);
        char *p = tu_path(dump, name);
        tu_write_file(p, z.p, z.n);
        free(p);
    }
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    memset(&err, 0, sizeof err);
    glmq_status st = load_bytes(z.p, z.n, &s, &err);
    if (_i == C_PKL_DEFLATE_CORRUPT && st == GLMQ_E_CHECKSUM) st = GLMQ_E_FORMAT;
    ck_assert_msg(st == cases[_i].st, "case %d: status %d (want %d): %s", _i, st, cases[_i].st,
                  err.msg);
    if (st != GLMQ_OK) {
        ck_assert_msg(strstr(err.msg, "t.bin'"), "case %d: file not named: %s", _i, err.msg);
        ck_assert_msg(strstr(err.msg, "byte"), "case %d: no offset: %s", _i, err.msg);
        if (cases[_i].s1)
            ck_assert_msg(strstr(err.msg, cases[_i].s1), "case %d: '%s' not in: %s", _i,
                          cases[_i].s1, err.msg);
        if (cases[_i].s2)
            ck_assert_msg(strstr(err.msg, cases[_i].s2), "case %d: '%s' not in: %s", _i,
                          cases[_i].s2, err.msg);
        ck_assert_int_eq(s.nfiles, 0);
        ck_assert_int_eq(s.nstorages, 0);
        ck_assert_int_eq(s.ntensors, 0);
    } else {
        ck_assert_int_eq(s.ntensors, 2);
        ck_assert_int_eq(s.nstorages, 2); /* unreferenced data/99 is not registered */
        const glmq_src_tensor *w = &s.tensors[glmq_src_find(&s, "w")];
        const glmq_src_tensor *h = &s.tensors[glmq_src_find(&s, "h")];
        ck_assert_int_eq(w->dtype, GLMQ_DT_F32);
        ck_assert_int_eq(h->dtype, GLMQ_DT_F16);
        ck_assert_str_eq(s.storages[w->storage].label, "archive/data/0");
        float wv[6];
        uint16_t hv[4];
        ck_assert_msg(glmq_src_read_rows_raw(&s, w, 0, 2, wv, &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_msg(glmq_src_read_rows_raw(&s, h, 0, 1, hv, &err) == GLMQ_OK, "%s", err.msg);
        ck_assert_mem_eq(wv, w_vals, sizeof wv);
        ck_assert_mem_eq(hv, h_vals, sizeof hv);
        ck_assert_int_eq(s.storages[w->storage].deflated, _i == C_OK_DEFLATED);
    }
    glmq_src_set_free(&s);
    free(z.p);
}
END_TEST

/* A load that fails after some of its tensors were appended takes them all back out, including
 * from the name index, and a later load may reuse those names. */
START_TEST(test_rollback_partial)
{
    glmq_src_set s;
    glmq_src_set_init(&s);
    glmq_err err;
    char *basic = fixture("basic.bin");
    ck_assert_int_eq(glmq_torchzip_load(&s, basic, &err), GLMQ_OK);
    int64_t nt = s.ntensors;
    buf z = {0};
    zlayout L;
    build_case(C_NO_STORAGE, &z, &L); /* 'w' is appended, then 'h' fails */
    ck_assert_int_eq(load_bytes(z.p, z.n, &s, &err), GLMQ_E_FORMAT);
    ck_assert_int_eq(s.ntensors, nt);
    ck_assert_int_eq(glmq_src_find(&s, "w"), -1);
    ck_assert_int_eq(glmq_src_find(&s, "f32"), 2);
    free(z.p);
    memset(&z, 0, sizeof z);
    build_case(C_OK_TORCHLIKE, &z, &L);
    ck_assert_msg(load_bytes(z.p, z.n, &s, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(s.ntensors, nt + 2);
    ck_assert_int_eq(glmq_src_find(&s, "w"), nt);
    ck_assert_int_eq(glmq_src_find(&s, "h"), nt + 1);
    float wv[6];
    ck_assert_int_eq(glmq_src_read_rows_raw(&s, &s.tensors[nt], 0, 2, wv, &err), GLMQ_OK);
    ck_assert_mem_eq(wv, w_vals, sizeof wv);
    free(z.p);
    glmq_src_set_free(&s);
    free(basic);
}
END_TEST

/* ---- sweeps: truncation and corruption never crash, never half-load ------------------------- */

static void sweep(const char *name, int flips)
{
    char *path = fixture(name);
    size_t n;
    uint8_t *orig = tu_read_file(path, &n);
    ck_assert_ptr_nonnull(orig);
    uint8_t *copy = malloc(n);
    glmq_err err;
    if (!flips) {
        for (size_t k = 0; k < n; k++) {
            glmq_src_set s;
            glmq_src_set_init(&s);
            ck_assert_int_ne(load_bytes(orig, k, &s, &err), GLMQ_OK);
            ck_assert_int_eq(s.nfiles, 0);
            ck_assert(err.msg[0] != 0);
            glmq_src_set_free(&s);
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            memcpy(copy, orig, n);
            copy[k] ^= (uint8_t)(k & 1 ? 0xff : 0x01);
            glmq_src_set s;
            glmq_src_set_init(&s);
            glmq_status st = load_bytes(copy, n, &s, &err);
            if (st == GLMQ_OK) {
                for (int64_t i = 0; i < s.ntensors; i++) {
                    uint8_t *d;
                    glmq_status rs = read_all(&s, &s.tensors[i], &d, &err);
                    ck_assert(rs == GLMQ_OK || err.msg[0] != 0);
                    free(d);
                }
            } else {
                ck_assert_int_eq(s.nfiles, 0);
                ck_assert(err.msg[0] != 0);
            }
            glmq_src_set_free(&s);
        }
    }
    ck_assert(!tu_file_exists(MARKER));
    free(copy);
    free(orig);
    free(path);
}

START_TEST(test_truncations) { sweep("basic.bin", 0); }
END_TEST
START_TEST(test_flips_stored) { sweep("shared.bin", 1); }
END_TEST
START_TEST(test_flips_deflated) { sweep("deflated.bin", 1); }
END_TEST

Suite *torchzip_suite(void)
{
    Suite *s = suite_create("torchzip");
    TCase *tc = tcase_create("fixtures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_fixture_values, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_test(tc, test_shared_storage);
    tcase_add_test(tc, test_deflated_corrupt);
    tcase_add_loop_test(tc, test_refused_fixtures, 0, (int)(sizeof refused / sizeof refused[0]));
    tcase_add_test(tc, test_rollback);
    suite_add_tcase(s, tc);

    tc = tcase_create("zip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sniff);
    tcase_add_loop_test(tc, test_built_cases, 0, C_NCASES);
    tcase_add_test(tc, test_rollback_partial);
    suite_add_tcase(s, tc);

    tc = tcase_create("sweeps");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_flips_stored);
    tcase_add_test(tc, test_flips_deflated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(torchzip_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
