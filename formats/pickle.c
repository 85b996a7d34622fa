/*
 * pickle.c - the restricted unpickler behind glmq_pickle_state_dict (GLM-SPEC E.4, E.5).
 *
 * torch.save writes its object graph as a protocol-2 pickle. Real unpicklers execute whatever
 * callables the stream names (GLOBAL 'os system' + REDUCE runs a shell command), so this file is a
 * small interpreter that only ever builds inert C values:
 *
 *   - values live in one growable array (`vals`) and are referred to by 32-bit index; the value
 *     stack, the memo and container items hold indices. Nothing is freed until the end, so the
 *     memo may share values freely and even cycles (a list appended to itself) are harmless:
 *     no code here ever walks a value graph recursively;
 *   - strings and bytes are views into the input buffer (never copied, never NUL-terminated);
 *   - GLOBAL/STACK_GLOBAL resolve to an entry of a fixed allow-list or fail with "disallowed
 *     global 'module.name'"; REDUCE only "calls" allow-listed callables, by building the C
 *     description of their result (an empty dict, a tensor, or the tensor a Parameter wraps);
 *   - every opcode outside GLM-SPEC E.5 is refused by name with its byte offset.
 *
 * Invariants: 0 <= marks[i] <= marks[i+1] <= sp; a pop never goes below the innermost mark;
 * every index stored anywhere is < nvals; every read checks the remaining input first. All
 * limits are in pickle.h; exceeding one is a clean GLMQ_E_FORMAT.
 */
#include "formats/pickle.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- value model ------------------------------------------------------------------------- */

enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT, V_GLOBAL,
       V_STORAGE, V_TENSOR };

/* with their article, for messages ("entry 'x' is an int, not a tensor") */
static const char *const kind_name[] = {"None",    "a bool",   "an int",   "a float",
                                        "a str",   "bytes",    "a tuple",  "a list",
                                        "a dict",  "a global", "a storage", "a tensor"};

typedef struct {
    uint8_t kind;
    uint8_t depth; /* container nesting depth (scalars 0), capped at GLMQ_PKL_MAX_DEPTH */
    union {
        int64_t i;
        double f;
        struct {
            const uint8_t *p;
            size_t n;
        } s; /* V_STR, V_BYTES: view into the input */
        struct {
            uint32_t *items; /* V_DICT: key, value, key, value, ... */
            uint32_t n, cap;
        } c;
        int g;      /* V_GLOBAL: index into globals[] */
        uint32_t t; /* V_STORAGE, V_TENSOR: index into the side tables */
    } u;
} value;

/* A persistent-id storage reference ('storage', cls, key, location, numel). */
typedef struct {
    int cls; /* index into globals[] (a storage class) */
    const uint8_t *key;
    size_t keylen;
    int64_t numel;
    uint64_t pos;
} storage_ref;

/* A tensor as described by _rebuild_tensor_v2/_v3. */
typedef struct {
    uint32_t storage; /* index into srefs */
    int dtype_g;      /* globals[] index of the dtype (v3) or -1 (v2: from the storage class) */
    int64_t offset;
    int ndim; /* may exceed GLMQ_MAX_DIMS (refused when the tensor gets its name) */
    int64_t shape[GLMQ_MAX_DIMS], stride[GLMQ_MAX_DIMS];
    uint64_t pos;
} tensor_ref;

/* ---- the allow-list ---------------------------------------------------------------------- */

enum { G_ODICT, G_REBUILD_V2, G_REBUILD_V3, G_REBUILD_PARAM, G_REBUILD_PARAM_STATE, G_STORAGE,
       G_DTYPE };

enum { DT_NONE = -1, DT_QUANT = -2, DT_COMPLEX = -3 };

static const struct {
    const char *module, *name;
    int kind; /* G_* */
    int dtype; /* glmq_dtype for G_STORAGE/G_DTYPE, or DT_* */
} globals[] = {
    {"collections", "OrderedDict", G_ODICT, DT_NONE},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, DT_NONE},
    {"torch._utils", "_rebuild_tensor_v3", G_REBUILD_V3, DT_NONE},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, DT_NONE},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE, DT_NONE},
    /* storage classes: NUMEL counts elements of this type */
    {"torch", "DoubleStorage", G_STORAGE, GLMQ_DT_F64},
    {"torch", "FloatStorage", G_STORAGE, GLMQ_DT_F32},
    {"torch", "HalfStorage", G_STORAGE, GLMQ_DT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, GLMQ_DT_BF16},
    {"torch", "LongStorage", G_STORAGE, GLMQ_DT_I64},
    {"torch", "IntStorage", G_STORAGE, GLMQ_DT_I32},
    {"torch", "ShortStorage", G_STORAGE, GLMQ_DT_I16},
    {"torch", "CharStorage", G_STORAGE, GLMQ_DT_I8},
    {"torch", "ByteStorage", G_STORAGE, GLMQ_DT_U8},
    {"torch", "BoolStorage", G_STORAGE, GLMQ_DT_BOOL},
    {"torch", "UntypedStorage", G_STORAGE, GLMQ_DT_U8}, /* NUMEL in bytes */
    {"torch", "ComplexDoubleStorage", G_STORAGE, DT_COMPLEX},
    {"torch", "ComplexFloatStorage", G_STORAGE, DT_COMPLEX},
    {"torch", "QInt8Storage", G_STORAGE, DT_QUANT},
    {"torch", "QInt32Storage", G_STORAGE, DT_QUANT},
    {"torch", "QUInt8Storage", G_STORAGE, DT_QUANT},
    {"torch", "QUInt4x2Storage", G_STORAGE, DT_QUANT},
    {"torch", "QUInt2x4Storage", G_STORAGE, DT_QUANT},
    /* dtype objects (argument 7 of _rebuild_tensor_v3) */
    {"torch", "float32", G_DTYPE, GLMQ_DT_F32},
    {"torch", "float", G_DTYPE, GLMQ_DT_F32},
    {"torch", "float16", G_DTYPE, GLMQ_DT_F16},
    {"torch", "half", G_DTYPE, GLMQ_DT_F16},
    {"torch", "bfloat16", G_DTYPE, GLMQ_DT_BF16},
    {"torch", "float64", G_DTYPE, GLMQ_DT_F64},
    {"torch", "double", G_DTYPE, GLMQ_DT_F64},
    {"torch", "int64", G_DTYPE, GLMQ_DT_I64},
    {"torch", "long", G_DTYPE, GLMQ_DT_I64},
    {"torch", "int32", G_DTYPE, GLMQ_DT_I32},
    {"torch", "int", G_DTYPE, GLMQ_DT_I32},
    {"torch", "int16", G_DTYPE, GLMQ_DT_I16},
    {"torch", "short", G_DTYPE, GLMQ_DT_I16},
    {"torch", "int8", G_DTYPE, GLMQ_DT_I8},
    {"torch", "uint8", G_DTYPE, GLMQ_DT_U8},
    {"torch", "bool", G_DTYPE, GLMQ_DT_BOOL},
};
#define NGLOBALS ((int)(sizeof globals / sizeof globals[0]))

/* ---- opcode names (for messages) --------------------------------------------------------- */

static const char *op_name(uint8_t op)
{
    switch (op) {
    case 0x80: return "PROTO";
    case 0x95: return "FRAME";
    case '.': return "STOP";
    case '(': return "MARK";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case ')': return "EMPTY_TUPLE";
    case 't': return "TUPLE";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case ']': return "EMPTY_LIST";
    case 'a': return "APPEND";
    case 'e': return "APPENDS";
    case 'l': return "LIST";
    case '}': return "EMPTY_DICT";
    case 's': return "SETITEM";
    case 'u': return "SETITEMS";
    case 'd': return "DICT";
    case 'N': return "NONE";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 'K': return "BININT1";
    case 'M': return "BININT2";
    case 'J': return "BININT";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'G': return "BINFLOAT";
    case 'X': return "BINUNICODE";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 'C': return "SHORT_BINBYTES";
    case 'B': return "BINBYTES";
    case 0x8e: return "BINBYTES8";
    case 0x96: return "BYTEARRAY8";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 0x94: return "MEMOIZE";
    case 'h': return "BINGET";
    case 'j': return "LONG_BINGET";
    case 'c': return "GLOBAL";
    case 0x93: return "STACK_GLOBAL";
    case 'R': return "REDUCE";
    case 'b': return "BUILD";
    case 'Q': return "BINPERSID";
    case 'P': return "PERSID";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'g': return "GET";
    case 'p': return "PUT";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    }
    return NULL;
}

/* ---- machine state ----------------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t n, pos;
    uint64_t op_pos; /* offset of the opcode being executed */
    uint8_t op;
    const char *ctx;
    glmq_err *err;

    value *vals;
    uint32_t nvals, cap_vals;
    uint32_t *stack;
    uint32_t sp, cap_stack;
    uint32_t marks[GLMQ_PKL_MAX_MARKS];
    int nmarks;
    uint32_t *memo; /* value index + 1; 0 = empty slot */
    uint32_t cap_memo, memo_count;
    storage_ref *srefs;
    uint32_t nsrefs, cap_srefs;
    tensor_ref *trefs;
    uint32_t ntrefs, cap_trefs;
} machine;

/* Fail at byte `pos` of data.pkl with a formatted reason. */
static glmq_status GLMQ_PRINTF(4, 5)
    fail_at(machine *m, uint64_t pos, glmq_status code, const char *fmt, ...)
{
    char why[GLMQ_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return glmq_fail(m->err, code, "%s at byte %llu: %s", m->ctx, (unsigned long long)pos, why);
}

#define FAIL(code, ...) return fail_at(m, m->op_pos, (code), __VA_ARGS__)
#define FAIL_IF(cond, code, ...)                                                                \
    do {                                                                                        \
        if (GLMQ_UNLIKELY(cond)) FAIL((code), __VA_ARGS__);                                     \
    } while (0)

/* Grow *arr (element size `elem`) so that index `need` is valid; cap bounds the element count. */
static int grow_to(void **arr, uint32_t *cap, uint64_t need, size_t elem, uint64_t limit)
{
    if (need < *cap) return 0;
    if (need >= limit) return -1;
    uint64_t nc = *cap ? *cap : 16;
    while (nc <= need) nc *= 2;
    if (nc > limit) nc = limit;
    void *p = realloc(*arr, nc * elem);
    if (!p) return -2;
    *arr = p;
    *cap = (uint32_t)nc;
    return 0;
}

static glmq_status new_value(machine *m, int kind, uint32_t *out)
{
    int r = grow_to((void **)&m->vals, &m->cap_vals, m->nvals, sizeof *m->vals,
                    GLMQ_PKL_MAX_OBJECTS);
    FAIL_IF(r == -1, GLMQ_E_FORMAT, "more than %d objects", GLMQ_PKL_MAX_OBJECTS);
    FAIL_IF(r == -2, GLMQ_E_NOMEM, "out of memory");
    value *v = &m->vals[m->nvals];
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    *out = m->nvals++;
    return GLMQ_OK;
}

static glmq_status push(machine *m, uint32_t idx)
{
    int r = grow_to((void **)&m->stack, &m->cap_stack, m->sp, sizeof *m->stack,
                    GLMQ_PKL_MAX_STACK);
    FAIL_IF(r == -1, GLMQ_E_FORMAT, "value stack deeper than %d", GLMQ_PKL_MAX_STACK);
    FAIL_IF(r == -2, GLMQ_E_NOMEM, "out of memory");
    m->stack[m->sp++] = idx;
    return GLMQ_OK;
}

/* Create a scalar/leaf value and push it. */
static glmq_status push_new(machine *m, int kind, uint32_t *out)
{
    uint32_t idx = 0;
    GLMQ_TRY(new_value(m, kind, &idx));
    if (out) *out = idx;
    return push(m, idx);
}

static uint32_t floor_sp(const machine *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static glmq_status pop(machine *m, uint32_t *out)
{
    FAIL_IF(m->sp <= floor_sp(m), GLMQ_E_FORMAT, "%s on an empty stack", op_name(m->op));
    *out = m->stack[--m->sp];
    return GLMQ_OK;
}

static glmq_status top(machine *m, uint32_t *out)
{
    FAIL_IF(m->sp <= floor_sp(m), GLMQ_E_FORMAT, "%s on an empty stack", op_name(m->op));
    *out = m->stack[m->sp - 1];
    return GLMQ_OK;
}

/* Pop the innermost mark; the items pushed since are stack[*start .. sp). */
static glmq_status pop_mark(machine *m, uint32_t *start)
{
    FAIL_IF(m->nmarks == 0, GLMQ_E_FORMAT, "%s without a MARK", op_name(m->op));
    *start = m->marks[--m->nmarks];
    return GLMQ_OK;
}

static glmq_status need(machine *m, size_t k)
{
    FAIL_IF(m->n - m->pos < k, GLMQ_E_FORMAT, "truncated %s argument (%zu bytes, %zu left)",
            op_name(m->op), k, m->n - m->pos);
    return GLMQ_OK;
}

/* Append item `it` to container `c`, updating its nesting depth. */
static glmq_status add_item(machine *m, uint32_t c, uint32_t it)
{
    value *cv = &m->vals[c];
    int r = grow_to((void **)&cv->u.c.items, &cv->u.c.cap, cv->u.c.n, sizeof(uint32_t),
                    UINT32_MAX);
    FAIL_IF(r != 0, GLMQ_E_NOMEM, "out of memory");
    cv->u.c.items[cv->u.c.n++] = it;
    int d = m->vals[it].depth + 1;
    if (d > cv->depth) cv->depth = (uint8_t)(d > 255 ? 255 : d);
    FAIL_IF(cv->depth > GLMQ_PKL_MAX_DEPTH, GLMQ_E_FORMAT, "containers nested deeper than %d",
            GLMQ_PKL_MAX_DEPTH);
    return GLMQ_OK;
}

/* Build a new container of `kind` from stack[start..sp), pop those, push the container. */
static glmq_status collect(machine *m, int kind, uint32_t start)
{
    uint32_t c = 0;
    GLMQ_TRY(new_value(m, kind, &c));
    if (kind == V_DICT)
        FAIL_IF((m->sp - start) % 2 != 0, GLMQ_E_FORMAT, "DICT with an odd number of items");
    for (uint32_t i = start; i < m->sp; i++) GLMQ_TRY(add_item(m, c, m->stack[i]));
    m->sp = start;
    return push(m, c);
}

static int is_str(const machine *m, uint32_t v, const char *lit)
{
    const value *x = &m->vals[v];
    size_t k = strlen(lit);
    return x->kind == V_STR && x->u.s.n == k && memcmp(x->u.s.p, lit, k) == 0;
}

/* Integer argument `v` as int64 >= 0, or a message naming `what`. */
static glmq_status get_nonneg(machine *m, uint32_t v, const char *what, int64_t *out)
{
    const value *x = &m->vals[v];
    FAIL_IF(x->kind != V_INT, GLMQ_E_FORMAT, "%s is %s, not an int", what, kind_name[x->kind]);
    FAIL_IF(x->u.i < 0, GLMQ_E_FORMAT, "%s is negative (%lld)", what, (long long)x->u.i);
    *out = x->u.i;
    return GLMQ_OK;
}

/* ---- opcodes ----------------------------------------------------------------------------- */

static int find_global(const char *mod, size_t ml, const char *name, size_t nl)
{
    for (int i = 0; i < NGLOBALS; i++)
        if (strlen(globals[i].module) == ml && memcmp(globals[i].module, mod, ml) == 0 &&
            strlen(globals[i].name) == nl && memcmp(globals[i].name, name, nl) == 0)
            return i;
    return -1;
}

/* Copy up to `cap` printable bytes of s into dst for a message, '?' for the others. */
static void printable(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++) dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    dst[k] = 0;
}

static glmq_status push_global(machine *m, const uint8_t *mod, size_t ml, const uint8_t *name,
                               size_t nl)
{
    int g = find_global((const char *)mod, ml, (const char *)name, nl);
    if (g < 0) {
        char a[128], b[128];
        printable(a, sizeof a, mod, ml);
        printable(b, sizeof b, name, nl);
        FAIL(GLMQ_E_UNSUPPORTED, "disallowed global '%s.%s'", a, b);
    }
    uint32_t v;
    GLMQ_TRY(push_new(m, V_GLOBAL, &v));
    m->vals[v].u.g = g;
    return GLMQ_OK;
}

/* GLOBAL: "module\nname\n", each line printable ASCII of bounded length. */
static glmq_status op_global(machine *m)
{
    const uint8_t *line[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        const uint8_t *p = m->buf + m->pos;
        size_t left = m->n - m->pos, max = left < 256 ? left : 256;
        const uint8_t *nl = memchr(p, '\n', max);
        FAIL_IF(!nl, GLMQ_E_FORMAT, "GLOBAL argument is not two short newline-ended lines");
        len[k] = (size_t)(nl - p);
        line[k] = p;
        for (size_t i = 0; i < len[k]; i++)
            FAIL_IF(p[i] < 0x20 || p[i] >= 0x7f, GLMQ_E_FORMAT, "GLOBAL name is not ASCII");
        m->pos += len[k] + 1;
    }
    return push_global(m, line[0], len[0], line[1], len[1]);
}

static glmq_status op_stack_global(machine *m)
{
    uint32_t name = 0, mod = 0;
    GLMQ_TRY(pop(m, &name));
    GLMQ_TRY(pop(m, &mod));
    const value *a = &m->vals[mod], *b = &m->vals[name];
    FAIL_IF(a->kind != V_STR || b->kind != V_STR, GLMQ_E_FORMAT,
            "STACK_GLOBAL needs two strings, got %s and %s", kind_name[a->kind],
            kind_name[b->kind]);
    return push_global(m, a->u.s.p, a->u.s.n, b->u.s.p, b->u.s.n);
}

/* BINPERSID: ('storage', <storage class>, key, location, numel) -> storage reference. */
static glmq_status op_binpersid(machine *m)
{
    uint32_t pid = 0;
    GLMQ_TRY(pop(m, &pid));
    const value *t = &m->vals[pid];
    FAIL_IF(t->kind != V_TUPLE || t->u.c.n != 5, GLMQ_E_FORMAT,
            "persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    const uint32_t *it = t->u.c.items;
    FAIL_IF(!is_str(m, it[0], "storage"), GLMQ_E_UNSUPPORTED,
            "persistent id of a kind other than 'storage'");
    const value *cls = &m->vals[it[1]];
    FAIL_IF(cls->kind != V_GLOBAL || globals[cls->u.g].kind != G_STORAGE, GLMQ_E_FORMAT,
            "persistent id type is not a torch storage class");
    const value *key = &m->vals[it[2]];
    FAIL_IF(key->kind != V_STR, GLMQ_E_FORMAT, "storage key is %s, not a str",
            kind_name[key->kind]);
    FAIL_IF(key->u.s.n == 0 || key->u.s.n >= GLMQ_PKL_KEY_MAX, GLMQ_E_FORMAT,
            "storage key is empty or longer than %d bytes", GLMQ_PKL_KEY_MAX - 1);
    for (size_t i = 0; i < key->u.s.n; i++) {
        uint8_t ch = key->u.s.p[i];
        int ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                 (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-' || ch == '.';
        FAIL_IF(!ok, GLMQ_E_FORMAT, "storage key contains byte 0x%02x", ch);
    }
    FAIL_IF(key->u.s.n <= 2 && memcmp(key->u.s.p, "..", key->u.s.n) == 0, GLMQ_E_FORMAT,
            "storage key '.' or '..'");
    FAIL_IF(m->vals[it[3]].kind != V_STR, GLMQ_E_FORMAT, "storage location is not a str");
    int64_t numel = 0;
    GLMQ_TRY(get_nonneg(m, it[4], "storage numel", &numel));

    int r = grow_to((void **)&m->srefs, &m->cap_srefs, m->nsrefs, sizeof *m->srefs,
                    GLMQ_PKL_MAX_OBJECTS);
    FAIL_IF(r != 0, GLMQ_E_NOMEM, "out of memory");
    storage_ref *s = &m->srefs[m->nsrefs];
    s->cls = cls->u.g;
    s->key = key->u.s.p;
    s->keylen = key->u.s.n;
    s->numel = numel;
    s->pos = m->op_pos;
    uint32_t v;
    GLMQ_TRY(push_new(m, V_STORAGE, &v));
    m->vals[v].u.t = m->nsrefs++;
    return GLMQ_OK;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) and
 * _rebuild_tensor_v3(..., hooks, dtype[, metadata]) -> tensor value. */
static glmq_status rebuild_tensor(machine *m, const value *args, int v3)
{
    uint32_t na = args->u.c.n;
    const uint32_t *a = args->u.c.items;
    const char *fn = v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2";
    uint32_t base = v3 ? 7 : 6;
    FAIL_IF(na != base && na != base + 1, GLMQ_E_FORMAT, "%s with %u arguments", fn, na);
    FAIL_IF(m->vals[a[0]].kind != V_STORAGE, GLMQ_E_FORMAT, "%s argument 1 is %s, not a storage",
            fn, kind_name[m->vals[a[0]].kind]);
    tensor_ref t;
    memset(&t, 0, sizeof t);
    t.storage = m->vals[a[0]].u.t;
    t.pos = m->op_pos;
    GLMQ_TRY(get_nonneg(m, a[1], "storage_offset", &t.offset));
    const value *size = &m->vals[a[2]], *stride = &m->vals[a[3]];
    FAIL_IF(size->kind != V_TUPLE || stride->kind != V_TUPLE, GLMQ_E_FORMAT,
            "%s size/stride are not tuples", fn);
    FAIL_IF(size->u.c.n != stride->u.c.n, GLMQ_E_FORMAT, "size has %u dims but stride has %u",
            size->u.c.n, stride->u.c.n);
    t.ndim = (int)size->u.c.n;
    for (int d = 0; d < t.ndim; d++) {
        int64_t s = 0, st = 0;
        GLMQ_TRY(get_nonneg(m, size->u.c.items[d], "size", &s));
        GLMQ_TRY(get_nonneg(m, stride->u.c.items[d], "stride", &st));
        if (d < GLMQ_MAX_DIMS) {
            t.shape[d] = s;
            t.stride[d] = st;
        }
    }
    int rg = m->vals[a[4]].kind;
    FAIL_IF(rg != V_BOOL && rg != V_INT, GLMQ_E_FORMAT, "requires_grad is %s", kind_name[rg]);
    t.dtype_g = -1;
    if (v3) {
        const value *dt = &m->vals[a[6]];
        FAIL_IF(dt->kind != V_GLOBAL || globals[dt->u.g].kind != G_DTYPE, GLMQ_E_FORMAT,
                "_rebuild_tensor_v3 dtype argument is not a torch dtype");
        t.dtype_g = dt->u.g;
    }
    if (na == base + 1) {
        const value *md = &m->vals[a[base]];
        FAIL_IF(md->kind != V_DICT && md->kind != V_NONE, GLMQ_E_FORMAT,
                "tensor metadata is %s, not a dict", kind_name[md->kind]);
        FAIL_IF(md->kind == V_DICT && md->u.c.n != 0, GLMQ_E_UNSUPPORTED,
                "tensor carries non-empty metadata");
    }
    int r = grow_to((void **)&m->trefs, &m->cap_trefs, m->ntrefs, sizeof *m->trefs,
                    GLMQ_PKL_MAX_OBJECTS);
    FAIL_IF(r != 0, GLMQ_E_NOMEM, "out of memory");
    m->trefs[m->ntrefs] = t;
    uint32_t v;
    GLMQ_TRY(push_new(m, V_TENSOR, &v));
    m->vals[v].u.t = m->ntrefs++;
    return GLMQ_OK;
}

static glmq_status op_reduce(machine *m)
{
    uint32_t ai = 0, fi = 0;
    GLMQ_TRY(pop(m, &ai));
    GLMQ_TRY(pop(m, &fi));
    const value *f = &m->vals[fi], *args = &m->vals[ai];
    FAIL_IF(f->kind != V_GLOBAL, GLMQ_E_UNSUPPORTED, "REDUCE on %s, not an allowed callable",
            kind_name[f->kind]);
    FAIL_IF(args->kind != V_TUPLE, GLMQ_E_FORMAT, "REDUCE arguments are %s, not a tuple",
            kind_name[args->kind]);
    int g = f->u.g;
    switch (globals[g].kind) {
    case G_ODICT:
        FAIL_IF(args->u.c.n != 0, GLMQ_E_UNSUPPORTED, "OrderedDict called with arguments");
        return push_new(m, V_DICT, NULL);
    case G_REBUILD_V2: return rebuild_tensor(m, args, 0);
    case G_REBUILD_V3: return rebuild_tensor(m, args, 1);
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE: {
        uint32_t want = globals[g].kind == G_REBUILD_PARAM ? 3 : 4;
        FAIL_IF(args->u.c.n != want, GLMQ_E_FORMAT, "%s with %u arguments", globals[g].name,
                args->u.c.n);
        uint32_t inner = args->u.c.items[0];
        FAIL_IF(m->vals[inner].kind != V_TENSOR, GLMQ_E_FORMAT, "%s of %s, not a tensor",
                globals[g].name, kind_name[m->vals[inner].kind]);
        return push(m, inner); /* a Parameter is its tensor */
    }
    default:
        FAIL(GLMQ_E_UNSUPPORTED, "REDUCE on '%s.%s' is not allowed", globals[g].module,
             globals[g].name);
    }
}

/* Read an n-byte little-endian two's complement integer (n <= 8). */
static int64_t read_long(const uint8_t *p, size_t n)
{
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) u |= (uint64_t)p[i] << (8 * i);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static glmq_status push_string(machine *m, int kind, size_t lenbytes)
{
    GLMQ_TRY(need(m, lenbytes));
    uint64_t len = lenbytes == 1 ? m->buf[m->pos]
                   : lenbytes == 4 ? glmq_rd_le32(m->buf + m->pos)
                                   : glmq_rd_le64(m->buf + m->pos);
    m->pos += lenbytes;
    FAIL_IF(len > m->n - m->pos, GLMQ_E_FORMAT, "%s length %llu exceeds the %zu bytes left",
            op_name(m->op), (unsigned long long)len, m->n - m->pos);
    uint32_t v;
    GLMQ_TRY(push_new(m, kind, &v));
    m->vals[v].u.s.p = m->buf + m->pos;
    m->vals[v].u.s.n = (size_t)len;
    m->pos += (size_t)len;
    return GLMQ_OK;
}

static glmq_status memo_put(machine *m, uint64_t idx)
{
    FAIL_IF(idx >= GLMQ_PKL_MAX_MEMO, GLMQ_E_FORMAT, "memo index %llu over the limit %d",
            (unsigned long long)idx, GLMQ_PKL_MAX_MEMO);
    uint32_t v = 0;
    GLMQ_TRY(top(m, &v));
    uint32_t old = m->cap_memo;
    int r = grow_to((void **)&m->memo, &m->cap_memo, idx, sizeof *m->memo, GLMQ_PKL_MAX_MEMO);
    FAIL_IF(r != 0, GLMQ_E_NOMEM, "out of memory");
    if (m->cap_memo > old) memset(m->memo + old, 0, (m->cap_memo - old) * sizeof *m->memo);
    if (m->memo[idx] == 0) m->memo_count++;
    m->memo[idx] = v + 1;
    return GLMQ_OK;
}

static glmq_status memo_get(machine *m, uint64_t idx)
{
    FAIL_IF(idx >= m->cap_memo || m->memo[idx] == 0, GLMQ_E_FORMAT, "memo slot %llu is empty",
            (unsigned long long)idx);
    return push(m, m->memo[idx] - 1);
}

/* Execute one opcode at m->pos. *stop is set by STOP. */
static glmq_status step(machine *m, int *stop)
{
    m->op_pos = m->pos;
    m->op = m->buf[m->pos++];
    uint32_t a = 0, b = 0, c = 0, start = 0;
    switch (m->op) {
    case 0x80: /* PROTO */
        GLMQ_TRY(need(m, 1));
        a = m->buf[m->pos++];
        FAIL_IF(a < 2 || a > 5, GLMQ_E_UNSUPPORTED, "pickle protocol %u (2 to 5 supported)", a);
        return GLMQ_OK;
    case 0x95: { /* FRAME */
        GLMQ_TRY(need(m, 8));
        uint64_t len = glmq_rd_le64(m->buf + m->pos);
        m->pos += 8;
        FAIL_IF(len > m->n - m->pos, GLMQ_E_FORMAT, "FRAME length %llu exceeds the input",
                (unsigned long long)len);
        return GLMQ_OK;
    }
    case '.': /* STOP */
        FAIL_IF(m->pos != m->n, GLMQ_E_FORMAT, "STOP followed by %zu more bytes", m->n - m->pos);
        FAIL_IF(m->nmarks != 0, GLMQ_E_FORMAT, "STOP with %d unclosed MARKs", m->nmarks);
        FAIL_IF(m->sp != 1, GLMQ_E_FORMAT, "STOP with %u values on the stack (want 1)", m->sp);
        *stop = 1;
        return GLMQ_OK;
    case '(': /* MARK */
        FAIL_IF(m->nmarks >= GLMQ_PKL_MAX_MARKS, GLMQ_E_FORMAT, "MARKs nested deeper than %d",
                GLMQ_PKL_MAX_MARKS);
        m->marks[m->nmarks++] = m->sp;
        return GLMQ_OK;
    case '0': /* POP: an item, or the innermost mark when none was pushed since */
        if (m->sp > floor_sp(m)) {
            m->sp--;
            return GLMQ_OK;
        }
        FAIL_IF(m->nmarks == 0, GLMQ_E_FORMAT, "POP on an empty stack");
        m->nmarks--;
        return GLMQ_OK;
    case '1': /* POP_MARK */
        GLMQ_TRY(pop_mark(m, &start));
        m->sp = start;
        return GLMQ_OK;
    case ')': return push_new(m, V_TUPLE, NULL);
    case ']': return push_new(m, V_LIST, NULL);
    case '}': return push_new(m, V_DICT, NULL);
    case 't':
        GLMQ_TRY(pop_mark(m, &start));
        return collect(m, V_TUPLE, start);
    case 'l':
        GLMQ_TRY(pop_mark(m, &start));
        return collect(m, V_LIST, start);
    case 'd':
        GLMQ_TRY(pop_mark(m, &start));
        return collect(m, V_DICT, start);
    case 0x85:
    case 0x86:
    case 0x87: {
        uint32_t k = (uint32_t)(m->op - 0x84);
        FAIL_IF(m->sp - floor_sp(m) < k, GLMQ_E_FORMAT, "%s needs %u items on the stack",
                op_name(m->op), k);
        return collect(m, V_TUPLE, m->sp - k);
    }
    case 'a': /* APPEND */
        GLMQ_TRY(pop(m, &b));
        GLMQ_TRY(top(m, &a));
        FAIL_IF(m->vals[a].kind != V_LIST, GLMQ_E_FORMAT, "APPEND to %s",
                kind_name[m->vals[a].kind]);
        return add_item(m, a, b);
    case 's': /* SETITEM */
        GLMQ_TRY(pop(m, &c));
        GLMQ_TRY(pop(m, &b));
        GLMQ_TRY(top(m, &a));
        FAIL_IF(m->vals[a].kind != V_DICT, GLMQ_E_FORMAT, "SETITEM on %s",
                kind_name[m->vals[a].kind]);
        GLMQ_TRY(add_item(m, a, b));
        return add_item(m, a, c);
    case 'e': /* APPENDS */
    case 'u': /* SETITEMS */ {
        int want = m->op == 'e' ? V_LIST : V_DICT;
        GLMQ_TRY(pop_mark(m, &start));
        FAIL_IF(start <= floor_sp(m), GLMQ_E_FORMAT, "%s without a target below its MARK",
                op_name(m->op));
        a = m->stack[start - 1];
        FAIL_IF(m->vals[a].kind != want, GLMQ_E_FORMAT, "%s on %s", op_name(m->op),
                kind_name[m->vals[a].kind]);
        FAIL_IF(want == V_DICT && (m->sp - start) % 2 != 0, GLMQ_E_FORMAT,
                "SETITEMS with an odd number of items");
        for (uint32_t i = start; i < m->sp; i++) GLMQ_TRY(add_item(m, a, m->stack[i]));
        m->sp = start;
        return GLMQ_OK;
    }
    case 'N': return push_new(m, V_NONE, NULL);
    case 0x88:
    case 0x89:
        GLMQ_TRY(push_new(m, V_BOOL, &a));
        m->vals[a].u.i = m->op == 0x88;
        return GLMQ_OK;
    case 'K':
    case 'M':
    case 'J': {
        size_t k = m->op == 'K' ? 1 : m->op == 'M' ? 2 : 4;
        GLMQ_TRY(need(m, k));
        const uint8_t *p = m->buf + m->pos;
        int64_t v = k == 1 ? p[0] : k == 2 ? glmq_rd_le16(p) : (int32_t)glmq_rd_le32(p);
        m->pos += k;
        GLMQ_TRY(push_new(m, V_INT, &a));
        m->vals[a].u.i = v;
        return GLMQ_OK;
    }
    case 0x8a: { /* LONG1 */
        GLMQ_TRY(need(m, 1));
        size_t k = m->buf[m->pos++];
        FAIL_IF(k > 8, GLMQ_E_FORMAT, "LONG1 of %zu bytes (at most 8 supported)", k);
        GLMQ_TRY(need(m, k));
        int64_t v = read_long(m->buf + m->pos, k);
        m->pos += k;
        GLMQ_TRY(push_new(m, V_INT, &a));
        m->vals[a].u.i = v;
        return GLMQ_OK;
    }
    case 'G': { /* BINFLOAT: big-endian double */
        GLMQ_TRY(need(m, 8));
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | m->buf[m->pos + i];
        m->pos += 8;
        GLMQ_TRY(push_new(m, V_FLOAT, &a));
        memcpy(&m->vals[a].u.f, &u, sizeof u);
        return GLMQ_OK;
    }
    case 'X': return push_string(m, V_STR, 4);
    case 0x8c: return push_string(m, V_STR, 1);
    case 0x8d: return push_string(m, V_STR, 8);
    case 'C': return push_string(m, V_BYTES, 1);
    case 'B': return push_string(m, V_BYTES, 4);
    case 0x8e: return push_string(m, V_BYTES, 8);
    case 'q':
        GLMQ_TRY(need(m, 1));
        return memo_put(m, m->buf[m->pos++]);
    case 'r':
        GLMQ_TRY(need(m, 4));
        m->pos += 4;
        return memo_put(m, glmq_rd_le32(m->buf + m->pos - 4));
    case 0x94: return memo_put(m, m->memo_count);
    case 'h':
        GLMQ_TRY(need(m, 1));
        return memo_get(m, m->buf[m->pos++]);
    case 'j':
        GLMQ_TRY(need(m, 4));
        m->pos += 4;
        return memo_get(m, glmq_rd_le32(m->buf + m->pos - 4));
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m);
    case 'Q': return op_binpersid(m);
    case 'b': /* BUILD: only on dicts (state_dict _metadata), state ignored */
        GLMQ_TRY(pop(m, &b));
        GLMQ_TRY(top(m, &a));
        FAIL_IF(m->vals[a].kind != V_DICT, GLMQ_E_UNSUPPORTED, "BUILD on %s (only dicts)",
                kind_name[m->vals[a].kind]);
        return GLMQ_OK;
    default: {
        const char *nm = op_name(m->op);
        if (nm)
            FAIL(GLMQ_E_UNSUPPORTED, "opcode %s (0x%02x) is not allowed", nm, m->op);
        FAIL(GLMQ_E_FORMAT, "unknown opcode 0x%02x", m->op);
    }
    }
}

/* ---- result extraction ------------------------------------------------------------------- */

/* SAT / DeepSpeed checkpoints (mp_rank_NN_model_states.pt, formats/GLM130B.md) pickle
 * {'module': state dict, ...}: the state dict is the dict under the str key 'module'. The other
 * entries (iteration, version strings, rng states) were built inertly like everything here and
 * are not weights, so they are skipped; one that needs executing (an argparse.Namespace, numpy's
 * rng state) has already been refused by the name of its global. */
static const value *sat_module(const machine *m, const value *d)
{
    if (d->kind != V_DICT) return d;
    for (uint32_t i = 0; i + 1 < d->u.c.n; i += 2)
        if (is_str(m, d->u.c.items[i], "module") &&
            m->vals[d->u.c.items[i + 1]].kind == V_DICT)
            return &m->vals[d->u.c.items[i + 1]];
    return d;
}

static glmq_status extract(machine *m, uint32_t root, glmq_pkl_dict *out)
{
    const value *d = sat_module(m, &m->vals[root]);
    m->op_pos = m->n ? m->n - 1 : 0;
    FAIL_IF(d->kind != V_DICT, GLMQ_E_UNSUPPORTED,
            "the pickled object is %s, not a state dict", kind_name[d->kind]);
    size_t np = d->u.c.n / 2;
    out->v = np ? calloc(np, sizeof *out->v) : NULL;
    FAIL_IF(np && !out->v, GLMQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < np; i++) {
        const value *k = &m->vals[d->u.c.items[2 * i]];
        const value *v = &m->vals[d->u.c.items[2 * i + 1]];
        glmq_pkl_tensor *o = &out->v[i];
        FAIL_IF(k->kind != V_STR, GLMQ_E_FORMAT, "state dict key %zu is %s, not a str", i,
                kind_name[k->kind]);
        char nm[GLMQ_SRC_NAME_MAX];
        printable(nm, 80, k->u.s.p, k->u.s.n);
        FAIL_IF(k->u.s.n == 0 || k->u.s.n >= GLMQ_SRC_NAME_MAX ||
                    memchr(k->u.s.p, 0, k->u.s.n) != NULL,
                GLMQ_E_FORMAT, "state dict key '%s' is empty, contains NUL or is longer than %d",
                nm, GLMQ_SRC_NAME_MAX - 1);
        memcpy(o->name, k->u.s.p, k->u.s.n);
        o->name[k->u.s.n] = 0;
        FAIL_IF(v->kind != V_TENSOR, GLMQ_E_UNSUPPORTED, "entry '%s' is %s, not a tensor",
                o->name, kind_name[v->kind]);
        const tensor_ref *t = &m->trefs[v->u.t];
        const storage_ref *s = &m->srefs[t->storage];
        int sdt = globals[s->cls].dtype;
        FAIL_IF(sdt == DT_QUANT, GLMQ_E_UNSUPPORTED,
                "tensor '%s': quantized storage 'torch.%s' (byte %llu) is not supported", o->name,
                globals[s->cls].name, (unsigned long long)s->pos);
        FAIL_IF(sdt < 0, GLMQ_E_UNSUPPORTED,
                "tensor '%s': storage type 'torch.%s' (byte %llu) is not supported", o->name,
                globals[s->cls].name, (unsigned long long)s->pos);
        FAIL_IF(t->dtype_g < 0 && globals[s->cls].kind == G_STORAGE &&
                    strcmp(globals[s->cls].name, "UntypedStorage") == 0,
                GLMQ_E_FORMAT, "tensor '%s': _rebuild_tensor_v2 on an UntypedStorage", o->name);
        FAIL_IF(t->ndim > GLMQ_MAX_DIMS, GLMQ_E_UNSUPPORTED,
                "tensor '%s' (byte %llu) has %d dimensions (at most %d supported)", o->name,
                (unsigned long long)t->pos, t->ndim, GLMQ_MAX_DIMS);
        memcpy(o->key, s->key, s->keylen);
        o->key[s->keylen] = 0;
        o->storage_dtype = (glmq_dtype)sdt;
        o->dtype = t->dtype_g >= 0 ? (glmq_dtype)globals[t->dtype_g].dtype : (glmq_dtype)sdt;
        o->storage_numel = s->numel;
        o->offset = t->offset;
        o->ndim = t->ndim;
        for (int j = 0; j < t->ndim; j++) {
            o->shape[j] = t->shape[j];
            o->stride[j] = t->stride[j];
        }
        o->pos = t->pos;
        o->pid_pos = s->pos;
        out->n = i + 1;
    }
    return GLMQ_OK;
}

glmq_status glmq_pickle_state_dict(const uint8_t *data, size_t n, const char *ctx,
                                   glmq_pkl_dict *out, glmq_err *err)
{
    machine mm;
    machine *m = &mm;
    memset(m, 0, sizeof *m);
    m->buf = data;
    m->n = n;
    m->ctx = ctx ? ctx : "data.pkl";
    m->err = err;
    out->v = NULL;
    out->n = 0;

    glmq_status st = GLMQ_OK;
    int stop = 0;
    while (!stop && m->pos < m->n) {
        st = step(m, &stop);
        if (st != GLMQ_OK) goto done;
    }
    if (!stop) {
        st = fail_at(m, m->n, GLMQ_E_FORMAT, "no STOP opcode (truncated pickle)");
        goto done;
    }
    st = extract(m, m->stack[0], out);

done:
    if (st != GLMQ_OK) glmq_pkl_dict_free(out);
    for (uint32_t i = 0; i < m->nvals; i++) {
        int k = m->vals[i].kind;
        if (k == V_TUPLE || k == V_LIST || k == V_DICT) free(m->vals[i].u.c.items);
    }
    free(m->vals);
    free(m->stack);
    free(m->memo);
    free(m->srefs);
    free(m->trefs);
    return st;
}

void glmq_pkl_dict_free(glmq_pkl_dict *d)
{
    if (!d) return;
    free(d->v);
    d->v = NULL;
    d->n = 0;
}
