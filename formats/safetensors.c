/*
 * safetensors.c - reader for Hugging Face safetensors files (GLM-SPEC D).
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping
 * tensor names to {dtype, shape, data_offsets}, then the raw tensor bytes back to back. This
 * reader parses and validates the header only; it never touches the data section. It appends
 * one file, one storage covering the whole data section ([8+N, file size)) and one row-major
 * tensor per header entry to a glmq_src_set, so convert/ can later read tensor bytes through
 * glmq_src_read_rows_raw in bounded chunks.
 *
 * Why so strict: checkpoints are untrusted input, and the reference reader (safetensors'
 * read_metadata + Metadata::validate) defines what a valid file is. Every rule of GLM-SPEC D.3 is
 * enforced in its order: header too small, header too large (N > 100,000,000), header past the
 * end of the file, UTF-8, JSON starting with '{' followed by spaces only, value types, dtypes,
 * then the tensors sorted by data_offsets must tile the data section exactly from 0 (no gap, no
 * overlap), each one's byte length equal to shape x dtype size (overflow-checked), and the last
 * one must end exactly at the end of the file. On top of the reference we reject what cJSON
 * would silently accept or alter: duplicate keys at any level, raw control characters and \u0000
 * inside strings (a C string would truncate the name), and number literals that are not plain
 * unsigned integers ("1.0", "1e3", "-0", "01") where shapes and offsets are expected. Integers
 * are capped at 2^48-1 as in the safetensors JSON schema. glmq limits: rank <= GLMQ_MAX_DIMS,
 * names shorter than GLMQ_SRC_NAME_MAX, at most ST_MAX_TENSORS tensors and ST_MAX_VALUES JSON
 * values per header (cJSON spends ~80 bytes per value: a 100 MB header of "0," would otherwise
 * become a multi-GB tree, and the set's name lookup is linear).
 *
 * Number literals: cJSON keeps only a double per number, so "1.0" and "1" look the same. A small
 * lexer runs over the header text and records the ordinal (document-order index) of every number
 * literal that is not a plain unsigned integer. The validation pass then walks the cJSON tree in
 * document order, counting numbers, so the k-th cJSON number is the k-th literal of the text.
 *
 * Invariants on GLMQ_OK: the appended tensors satisfy every source.h invariant, are appended in
 * data-offset order (sequential reads), and their byte ranges tile the storage exactly. On
 * failure the set is left exactly as it was (the file, storage and tensors are rolled back) and
 * err->msg names the file, the tensor when there is one, and a byte offset.
 */
#include "formats/source.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ull           /* MAX_HEADER_SIZE of the reference reader */
#define ST_MAX_INT ((UINT64_C(1) << 48) - 1) /* schema cap on every integer */
#define ST_MAX_TENSORS 16384                 /* glmq limit: GLM shards hold < 1000 */
#define ST_MAX_VALUES (1u << 20)             /* JSON values: bounds cJSON's tree (~80 MB) */

/* dtype strings of GLM-SPEC D.2: the ones glmq reads, then the ones it knowingly refuses. */
static const struct {
    const char *name;
    glmq_dtype dt;
} st_dtypes[] = {
    {"F16", GLMQ_DT_F16}, {"BF16", GLMQ_DT_BF16}, {"F32", GLMQ_DT_F32}, {"F64", GLMQ_DT_F64},
    {"I64", GLMQ_DT_I64}, {"I32", GLMQ_DT_I32},   {"I16", GLMQ_DT_I16}, {"I8", GLMQ_DT_I8},
    {"U8", GLMQ_DT_U8},   {"BOOL", GLMQ_DT_BOOL},
};
static const char *const st_refused[] = {
    "F4",  "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
    "U16", "U32",     "U64",     "C64",
};

/* One header entry after type validation (name points into the cJSON tree). */
typedef struct {
    const char *name;
    glmq_dtype dtype;
    int ndim;
    uint64_t shape[GLMQ_MAX_DIMS];
    uint64_t begin, end; /* data_offsets, relative to the data section */
    size_t index;        /* document order, the sort tie-break (deterministic errors) */
} st_entry;

/* A number literal that is not a plain unsigned integer: its document-order ordinal and its
 * offset in the header text. */
typedef struct {
    uint32_t ordinal;
    uint32_t pos;
} st_odd;

typedef struct {
    const char *path;
    const char *hdr;       /* header text (N bytes, NUL-terminated copy) */
    uint64_t data_start;   /* 8 + N: file offset of the data section, "header ends at byte" */
    st_odd *odd;           /* sorted by ordinal (the lexer emits them in order) */
    size_t nodd, cap_odd;
    size_t iodd;           /* cursor into odd while validating */
    uint32_t nnum;         /* numbers seen so far while validating */
    uint64_t nvalues;      /* upper bound on JSON values: 1 + '{', '[' and ',' outside strings */
    glmq_err *err;
} st_ctx;

/* ---- lexical checks ------------------------------------------------------------------------ */

/* Offset of the first byte that breaks strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF),
 * or n when all n bytes are valid. */
static size_t utf8_invalid_at(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
        } else {
            return i;
        }
        if (n - i < len) return i;
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

static int is_num_char(uint8_t c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/*
 * Scan the header text before cJSON sees it: reject raw control characters and \u0000 escapes
 * inside strings, bound the number of JSON values, and record every number literal that is not a
 * plain unsigned integer ([1-9][0-9]* or 0). The records are used only once cJSON has accepted
 * the text: then every number token here is one cJSON number item, in document order, and the
 * greedy token is exactly what cJSON consumed.
 */
static glmq_status lex_header(st_ctx *c, size_t len)
{
    const uint8_t *p = (const uint8_t *)c->hdr;
    uint32_t ordinal = 0;
    size_t i = 0;
    c->nvalues = 1;
    while (i < len) {
        uint8_t ch = p[i];
        if (ch == '"') {
            for (i++; i < len && p[i] != '"'; i++) {
                GLMQ_FAIL_IF(p[i] < 0x20, c->err, GLMQ_E_FORMAT,
                             "'%s': header has a raw control character 0x%02x inside a string at "
                             "byte %llu",
                             c->path, p[i], (unsigned long long)(8 + i));
                if (p[i] != '\\') continue;
                GLMQ_FAIL_IF(len - i >= 6 && memcmp(p + i + 1, "u0000", 5) == 0, c->err,
                             GLMQ_E_FORMAT,
                             "'%s': header has a \\u0000 escape inside a string at byte %llu",
                             c->path, (unsigned long long)(8 + i));
                i++; /* skip the escaped character (a quote or backslash among them) */
            }
            i++; /* closing quote */
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            size_t start = i;
            int plain = ch != '-';
            while (i < len && is_num_char(p[i])) {
                if (p[i] < '0' || p[i] > '9') plain = 0;
                i++;
            }
            if (ch == '0' && i - start > 1) plain = 0; /* leading zero */
            if (!plain) {
                if (c->nodd == c->cap_odd) {
                    size_t nc = c->cap_odd ? c->cap_odd * 2 : 16;
                    st_odd *o = realloc(c->odd, nc * sizeof *o);
                    GLMQ_FAIL_IF(!o, c->err, GLMQ_E_NOMEM, "'%s': out of memory", c->path);
                    c->odd = o;
                    c->cap_odd = nc;
                }
                /* the header is <= 100,000,000 bytes, so both fit in 32 bits */
                c->odd[c->nodd].ordinal = ordinal;
                c->odd[c->nodd].pos = (uint32_t)start;
                c->nodd++;
            }
            ordinal++;
        } else {
            if (ch == '{' || ch == '[' || ch == ',') c->nvalues++;
            i++;
        }
    }
    return GLMQ_OK;
}

/* ---- structural checks --------------------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reject duplicate keys in one object (cJSON keeps them as separate items). O(n log n).
 * `tensor` is the entry owning obj, "__metadata__", or NULL for the top level. */
static glmq_status check_dups(st_ctx *c, const cJSON *obj, const char *tensor)
{
    size_t n = 0;
    for (const cJSON *it = obj->child; it; it = it->next) n++;
    if (n < 2) return GLMQ_OK;
    const char **keys = malloc(n * sizeof *keys);
    GLMQ_FAIL_IF(!keys, c->err, GLMQ_E_NOMEM, "'%s': out of memory", c->path);
    n = 0;
    for (const cJSON *it = obj->child; it; it = it->next) keys[n++] = it->string ? it->string : "";
    qsort(keys, n, sizeof *keys, cmp_key);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    glmq_status st = GLMQ_OK;
    if (dup && tensor && strcmp(tensor, "__metadata__") == 0)
        st = glmq_fail(c->err, GLMQ_E_FORMAT,
                       "'%s': __metadata__: duplicate key '%s' (header ends at byte %llu)",
                       c->path, dup, (unsigned long long)c->data_start);
    else if (dup && tensor)
        st = glmq_fail(c->err, GLMQ_E_FORMAT,
                       "'%s': tensor '%s': duplicate key '%s' (header ends at byte %llu)",
                       c->path, tensor, dup, (unsigned long long)c->data_start);
    else if (dup)
        st = glmq_fail(c->err, GLMQ_E_FORMAT,
                       "'%s': duplicate key '%s' in the header (header ends at byte %llu)",
                       c->path, dup, (unsigned long long)c->data_start);
    free(keys);
    return st;
}

/* Walk a value glmq ignores (an unknown field of a tensor entry): count its numbers so the
 * ordinals stay in step with the lexer, and reject duplicate keys inside it. Recursion depth is
 * bounded by cJSON's nesting limit (1000). */
static glmq_status skip_value(st_ctx *c, const cJSON *v, const char *tensor)
{
    if (cJSON_IsNumber(v)) {
        c->nnum++;
        return GLMQ_OK;
    }
    if (cJSON_IsObject(v)) GLMQ_TRY(check_dups(c, v, tensor));
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        for (const cJSON *it = v->child; it; it = it->next) GLMQ_TRY(skip_value(c, it, tensor));
    return GLMQ_OK;
}

/* Read one element of "shape" or "data_offsets": a plain unsigned integer <= 2^48-1. */
static glmq_status read_uint(st_ctx *c, const cJSON *v, const char *tensor, const char *field,
                             int idx, uint64_t *out)
{
    GLMQ_FAIL_IF(!cJSON_IsNumber(v), c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': %s[%d] is not a number (header ends at byte %llu)", c->path,
                 tensor, field, idx, (unsigned long long)c->data_start);
    uint32_t ordinal = c->nnum++;
    while (c->iodd < c->nodd && c->odd[c->iodd].ordinal < ordinal) c->iodd++;
    if (c->iodd < c->nodd && c->odd[c->iodd].ordinal == ordinal) {
        const char *lit = c->hdr + c->odd[c->iodd].pos;
        int n = 0;
        while (n < 24 && is_num_char((uint8_t)lit[n])) n++;
        return glmq_fail(c->err, GLMQ_E_FORMAT,
                         "'%s': tensor '%s': %s[%d] is '%.*s' at byte %llu, not a non-negative "
                         "integer",
                         c->path, tensor, field, idx, n, lit,
                         (unsigned long long)(8 + c->odd[c->iodd].pos));
    }
    /* a plain literal is a non-negative integer; <= 2^48-1 it is exact in a double */
    GLMQ_FAIL_IF(!(v->valuedouble <= (double)ST_MAX_INT), c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': %s[%d] = %.0f exceeds 2^48-1 (header ends at byte %llu)",
                 c->path, tensor, field, idx, v->valuedouble, (unsigned long long)c->data_start);
    *out = (uint64_t)v->valuedouble;
    return GLMQ_OK;
}

static glmq_status parse_dtype(st_ctx *c, const char *s, const char *tensor, glmq_dtype *out)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = st_dtypes[i].dt;
            return GLMQ_OK;
        }
    }
    for (size_t i = 0; i < sizeof st_refused / sizeof st_refused[0]; i++)
        GLMQ_FAIL_IF(strcmp(s, st_refused[i]) == 0, c->err, GLMQ_E_UNSUPPORTED,
                     "'%s': tensor '%s': dtype '%s' is not supported (glmq reads F16, BF16, F32, "
                     "F64, I64, I32, I16, I8, U8, BOOL; header ends at byte %llu)",
                     c->path, tensor, s, (unsigned long long)c->data_start);
    return glmq_fail(c->err, GLMQ_E_UNSUPPORTED,
                     "'%s': tensor '%s': unknown dtype '%.40s' (header ends at byte %llu)",
                     c->path, tensor, s, (unsigned long long)c->data_start);
}

/* Validate the types of one tensor entry {"dtype", "shape", "data_offsets", ...} (rule 4),
 * visiting its members in document order to keep the number ordinals in step. */
static glmq_status parse_entry(st_ctx *c, const cJSON *item, size_t index, st_entry *e)
{
    const char *name = item->string ? item->string : "";
    size_t nlen = strlen(name);
    GLMQ_FAIL_IF(nlen == 0, c->err, GLMQ_E_FORMAT,
                 "'%s': empty tensor name in the header (header ends at byte %llu)", c->path,
                 (unsigned long long)c->data_start);
    GLMQ_FAIL_IF(nlen >= GLMQ_SRC_NAME_MAX, c->err, GLMQ_E_UNSUPPORTED,
                 "'%s': tensor '%.60s...': name of %zu bytes is longer than %d (header ends at "
                 "byte %llu)",
                 c->path, name, nlen, GLMQ_SRC_NAME_MAX - 1, (unsigned long long)c->data_start);
    GLMQ_FAIL_IF(!cJSON_IsObject(item), c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': entry is not a json object (header ends at byte %llu)",
                 c->path, name, (unsigned long long)c->data_start);
    GLMQ_TRY(check_dups(c, item, name));

    memset(e, 0, sizeof *e);
    e->name = name;
    e->index = index;
    const char *dtype = NULL;
    int have_shape = 0, have_offsets = 0;
    for (const cJSON *f = item->child; f; f = f->next) {
        const char *key = f->string ? f->string : "";
        if (strcmp(key, "dtype") == 0) {
            GLMQ_FAIL_IF(!cJSON_IsString(f) || !f->valuestring, c->err, GLMQ_E_FORMAT,
                         "'%s': tensor '%s': dtype is not a string (header ends at byte %llu)",
                         c->path, name, (unsigned long long)c->data_start);
            dtype = f->valuestring;
        } else if (strcmp(key, "shape") == 0) {
            GLMQ_FAIL_IF(!cJSON_IsArray(f), c->err, GLMQ_E_FORMAT,
                         "'%s': tensor '%s': shape is not an array (header ends at byte %llu)",
                         c->path, name, (unsigned long long)c->data_start);
            int rank = 0;
            for (const cJSON *d = f->child; d; d = d->next, rank++) {
                uint64_t v;
                GLMQ_TRY(read_uint(c, d, name, "shape", rank, &v));
                GLMQ_FAIL_IF(rank >= GLMQ_MAX_DIMS, c->err, GLMQ_E_UNSUPPORTED,
                             "'%s': tensor '%s': shape has more than %d dimensions (header ends "
                             "at byte %llu)",
                             c->path, name, GLMQ_MAX_DIMS, (unsigned long long)c->data_start);
                e->shape[rank] = v;
            }
            e->ndim = rank;
            have_shape = 1;
        } else if (strcmp(key, "data_offsets") == 0) {
            int n = cJSON_IsArray(f) ? cJSON_GetArraySize(f) : -1;
            GLMQ_FAIL_IF(n != 2, c->err, GLMQ_E_FORMAT,
                         "'%s': tensor '%s': data_offsets is not an array of 2 integers (header "
                         "ends at byte %llu)",
                         c->path, name, (unsigned long long)c->data_start);
            GLMQ_TRY(read_uint(c, f->child, name, "data_offsets", 0, &e->begin));
            GLMQ_TRY(read_uint(c, f->child->next, name, "data_offsets", 1, &e->end));
            have_offsets = 1;
        } else {
            GLMQ_TRY(skip_value(c, f, name)); /* unknown fields are ignored (GLM-SPEC D.1) */
        }
    }
    GLMQ_FAIL_IF(!dtype || !have_shape || !have_offsets, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': missing '%s' (header ends at byte %llu)", c->path, name,
                 !dtype ? "dtype" : !have_shape ? "shape" : "data_offsets",
                 (unsigned long long)c->data_start);
    return parse_dtype(c, dtype, name, &e->dtype);
}

/* "__metadata__" must be a flat object of string -> string. */
static glmq_status check_metadata(st_ctx *c, const cJSON *m)
{
    GLMQ_FAIL_IF(!cJSON_IsObject(m), c->err, GLMQ_E_FORMAT,
                 "'%s': __metadata__ is not a json object (header ends at byte %llu)", c->path,
                 (unsigned long long)c->data_start);
    GLMQ_TRY(check_dups(c, m, "__metadata__"));
    for (const cJSON *it = m->child; it; it = it->next)
        GLMQ_FAIL_IF(!cJSON_IsString(it), c->err, GLMQ_E_FORMAT,
                     "'%s': __metadata__ value of '%s' is not a string (header ends at byte "
                     "%llu)",
                     c->path, it->string ? it->string : "", (unsigned long long)c->data_start);
    return GLMQ_OK;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* "[3, 2]" (or "[]" for a scalar) into buf. */
static const char *fmt_shape(char *buf, size_t n, const st_entry *e)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < e->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)e->shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

/*
 * Rules 5 and 6 for one entry in data-offset order: it must start where the previous one ended
 * (*expect), and its byte length must be shape x dtype size. Also computes its row-major strides,
 * which must be representable in int64 even for an empty tensor (source.c multiplies them out).
 */
static glmq_status check_layout(st_ctx *c, const st_entry *e, const st_entry *prev,
                                uint64_t *expect, int64_t stride[GLMQ_MAX_DIMS])
{
    const unsigned long long ds = c->data_start, b = e->begin, x = e->end;
    char sh[128];
    GLMQ_FAIL_IF(e->end < e->begin, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': invalid offset: data_offsets [%llu, %llu) end before they "
                 "begin (file byte %llu)",
                 c->path, e->name, b, x, ds + b);
    GLMQ_FAIL_IF(e->begin > *expect, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': invalid offset: data_offsets [%llu, %llu) leave a gap, data "
                 "bytes [%llu, %llu) (file byte %llu) belong to no tensor",
                 c->path, e->name, b, x, (unsigned long long)*expect, b,
                 ds + (unsigned long long)*expect);
    GLMQ_FAIL_IF(e->begin < *expect, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': invalid offset: data_offsets [%llu, %llu) overlap tensor "
                 "'%s' at [%llu, %llu) (file byte %llu)",
                 c->path, e->name, b, x, prev ? prev->name : "?",
                 prev ? (unsigned long long)prev->begin : 0ull,
                 prev ? (unsigned long long)prev->end : 0ull, ds + b);
    *expect = e->end;

    const char *dt = glmq_dtype_name(e->dtype);
    uint64_t nelem = 1, nbits;
    int ok = 1;
    for (int d = 0; d < e->ndim; d++) ok = ok && glmq_mul_u64(nelem, e->shape[d], &nelem);
    ok = ok && glmq_mul_u64(nelem, 8 * (uint64_t)glmq_dtype_size(e->dtype), &nbits);
    GLMQ_FAIL_IF(!ok, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': shape %s x %s overflows 64 bits (header ends at byte %llu)",
                 c->path, e->name, fmt_shape(sh, sizeof sh, e), dt, ds);
    GLMQ_FAIL_IF(e->end - e->begin != nbits / 8, c->err, GLMQ_E_FORMAT,
                 "'%s': tensor '%s': data_offsets [%llu, %llu) do not match shape %s x %s = "
                 "%llu bytes (header ends at byte %llu)",
                 c->path, e->name, b, x, fmt_shape(sh, sizeof sh, e), dt,
                 (unsigned long long)(nbits / 8), ds);

    /* row-major strides; the full suffix products are what source.c's contiguity check forms */
    int64_t acc = 1;
    for (int d = e->ndim - 1; d >= 0; d--) {
        stride[d] = acc;
        GLMQ_FAIL_IF(__builtin_mul_overflow(acc, (int64_t)e->shape[d], &acc), c->err,
                     GLMQ_E_FORMAT,
                     "'%s': tensor '%s': shape %s has no row-major strides in 64 bits (header "
                     "ends at byte %llu)",
                     c->path, e->name, fmt_shape(sh, sizeof sh, e), ds);
    }
    return GLMQ_OK;
}


/* Validate the header (rules 4-7) and append storage and tensors; `file` is already added. */
static glmq_status load_header(glmq_src_set *s, st_ctx *c, uint32_t file, uint64_t n,
                               glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    const uint64_t fsize = s->files[file].size, ds = c->data_start;
    char *hdr = NULL;
    cJSON *root = NULL;
    st_entry *ents = NULL;
    int64_t (*strides)[GLMQ_MAX_DIMS] = NULL; /* row-major strides of ents[i] */

    hdr = malloc((size_t)n + 1);
    GLMQ_FAIL_IF_G(!hdr, err, GLMQ_E_NOMEM, "'%s': out of memory for a %llu-byte header",
                   c->path, (unsigned long long)n);
    GLMQ_TRY_G(glmq_src_pread(s, file, 8, hdr, (size_t)n, err));
    hdr[n] = 0;
    c->hdr = hdr;

    /* rule 4: UTF-8, then JSON that starts with '{' and is followed by spaces only */
    size_t bad = utf8_invalid_at((const uint8_t *)hdr, (size_t)n);
    GLMQ_FAIL_IF_G(bad < n, err, GLMQ_E_FORMAT,
                   "'%s': header is not valid utf-8 at byte %llu (byte 0x%02x)", c->path,
                   (unsigned long long)(8 + bad), (unsigned)(uint8_t)hdr[bad]);
    GLMQ_FAIL_IF_G(n == 0 || hdr[0] != '{', err, GLMQ_E_FORMAT,
                   "'%s': header does not start with '{' at byte 8", c->path);
    GLMQ_TRY_G(lex_header(c, (size_t)n));
    GLMQ_FAIL_IF_G(c->nvalues > ST_MAX_VALUES, err, GLMQ_E_UNSUPPORTED,
                   "'%s': header holds up to %llu json values, more than glmq's limit of %u "
                   "(header ends at byte %llu)",
                   c->path, (unsigned long long)c->nvalues, ST_MAX_VALUES,
                   (unsigned long long)ds);
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &end, 0);
    size_t epos = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
    GLMQ_FAIL_IF_G(!root || !cJSON_IsObject(root), err, GLMQ_E_FORMAT,
                   "'%s': header is not valid json: syntax error near byte %llu", c->path,
                   (unsigned long long)(8 + epos));
    for (size_t i = epos; i < n; i++)
        GLMQ_FAIL_IF_G(hdr[i] != ' ', err, GLMQ_E_FORMAT,
                       "'%s': header has trailing bytes after the json object at byte %llu (only "
                       "spaces may follow)",
                       c->path, (unsigned long long)(8 + i));
    GLMQ_TRY_G(check_dups(c, root, NULL));

    /* rule 4: value types, entry by entry in document order */
    size_t nents = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (!it->string || strcmp(it->string, "__metadata__") != 0) nents++;
    GLMQ_FAIL_IF_G(nents > ST_MAX_TENSORS, err, GLMQ_E_UNSUPPORTED,
                   "'%s': header lists %zu tensors, more than glmq's limit of %d (header ends at "
                   "byte %llu)",
                   c->path, nents, ST_MAX_TENSORS, (unsigned long long)ds);
    ents = malloc((nents ? nents : 1) * sizeof *ents);
    GLMQ_FAIL_IF_G(!ents, err, GLMQ_E_NOMEM, "'%s': out of memory", c->path);
    size_t k = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (it->string && strcmp(it->string, "__metadata__") == 0) {
            GLMQ_TRY_G(check_metadata(c, it));
        } else {
            GLMQ_TRY_G(parse_entry(c, it, k, &ents[k]));
            k++;
        }
    }

    /* rules 5 and 6: sorted by data_offsets, the tensors tile the data section from 0 */
    qsort(ents, nents, sizeof *ents, cmp_entry);
    strides = malloc((nents ? nents : 1) * sizeof *strides);
    GLMQ_FAIL_IF_G(!strides, err, GLMQ_E_NOMEM, "'%s': out of memory", c->path);
    uint64_t expect = 0;
    for (size_t i = 0; i < nents && st == GLMQ_OK; i++)
        st = check_layout(c, &ents[i], i ? &ents[i - 1] : NULL, &expect, strides[i]);

    /* rule 7: the last tensor ends exactly at the end of the file */
    const uint64_t data_len = fsize - ds;
    if (st == GLMQ_OK && expect > data_len)
        st = glmq_fail(err, GLMQ_E_FORMAT,
                       "'%s': data section is truncated: tensors end at byte %llu but the file "
                       "has %llu bytes",
                       c->path, (unsigned long long)(ds + expect), (unsigned long long)fsize);
    if (st == GLMQ_OK && expect < data_len)
        st = glmq_fail(err, GLMQ_E_FORMAT,
                       "'%s': %llu trailing bytes after the last tensor at byte %llu (file not "
                       "fully covered, %llu bytes)",
                       c->path, (unsigned long long)(data_len - expect),
                       (unsigned long long)(ds + expect), (unsigned long long)fsize);

    /* append: one storage for the data section, then the tensors in data order */
    uint32_t sidx = 0;
    if (st == GLMQ_OK) {
        glmq_src_storage sto = {.file = file, .offset = ds, .size = data_len,
                                .comp_size = data_len, .label = (char *)s->files[file].base};
        st = glmq_src_add_storage(s, &sto, &sidx, err);
    }
    for (size_t i = 0; i < nents && st == GLMQ_OK; i++) {
        const st_entry *e = &ents[i];
        glmq_src_tensor t;
        memset(&t, 0, sizeof t);
        memcpy(t.name, e->name, strlen(e->name) + 1); /* < GLMQ_SRC_NAME_MAX, checked */
        t.dtype = e->dtype;
        t.ndim = e->ndim;
        for (int d = 0; d < e->ndim; d++) {
            t.shape[d] = (int64_t)e->shape[d];
            t.stride[d] = strides[i][d];
        }
        t.storage = sidx;
        t.byte_offset = e->begin;
        st = glmq_src_add_tensor(s, &t, err);
    }

fail:
    free(strides);
    free(ents);
    cJSON_Delete(root);
    free(hdr);
    c->hdr = NULL;
    return st;
}

glmq_status glmq_safetensors_load(glmq_src_set *s, const char *path, glmq_err *err)
{
    const uint32_t nf = s->nfiles, ns = s->nstorages;
    const int64_t nt = s->ntensors;
    uint32_t file;
    GLMQ_TRY(glmq_src_add_file(s, path, &file, err));

    glmq_status st = GLMQ_OK;
    st_ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    const uint64_t fsize = s->files[file].size;
    uint8_t lenbuf[8];

    /* rules 1-3: the 8-byte header length */
    GLMQ_FAIL_IF_G(fsize < 8, err, GLMQ_E_FORMAT,
                   "'%s': header too small: the file has %llu bytes, a safetensors file needs at "
                   "least 8",
                   path, (unsigned long long)fsize);
    GLMQ_TRY_G(glmq_src_pread(s, file, 0, lenbuf, 8, err));
    const uint64_t n = glmq_rd_le64(lenbuf);
    GLMQ_FAIL_IF_G(n > ST_MAX_HEADER || n > SIZE_MAX - 1, err, GLMQ_E_FORMAT,
                   "'%s': header too large: length %llu at byte 0 exceeds %llu bytes", path,
                   (unsigned long long)n, ST_MAX_HEADER);
    GLMQ_FAIL_IF_G(8 + n > fsize, err, GLMQ_E_FORMAT,
                   "'%s': invalid header length: 8 + %llu bytes runs past the end of the file "
                   "(%llu bytes)",
                   path, (unsigned long long)n, (unsigned long long)fsize);
    c.data_start = 8 + n;
    st = load_header(s, &c, file, n, err);

fail:
    free(c.odd);
    if (st != GLMQ_OK) glmq_src_set_truncate(s, nf, ns, nt);
    return st;
}
