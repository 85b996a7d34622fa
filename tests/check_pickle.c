/*
 * check_pickle.c - the restricted unpickler (formats/pickle.c) on its own.
 *
 * Three kinds of input: the data.pkl records torch 1.13 wrote for the fixtures in
 * tests/data/torchzip (checked against expected.json, which torch itself wrote); hostile pickles
 * from the fixtures (os.system / posix.system / builtins.eval payloads, deep nesting); and small
 * pickles assembled here opcode by opcode to reach every supported opcode, every refused opcode
 * and every limit. The hostile payloads would `touch` a marker file if anything executed them;
 * the tests assert it never appears.
 */
#include "formats/pickle.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARKER "/tmp/glmq_torchzip_pwned"

/* ---- a tiny pickle assembler ------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pb;

static void pb_raw(pb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_op(pb *b, uint8_t op) { pb_raw(b, &op, 1); }
static void pb_u32(pb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pb_raw(b, x, 4);
}
static void pb_str(pb *b, const char *s)
{
    pb_op(b, 'X');
    pb_u32(b, (uint32_t)strlen(s));
    pb_raw(b, s, strlen(s));
}
static void pb_global(pb *b, const char *mod, const char *name)
{
    pb_op(b, 'c');
    pb_raw(b, mod, strlen(mod));
    pb_op(b, '\n');
    pb_raw(b, name, strlen(name));
    pb_op(b, '\n');
}
static void pb_int(pb *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        pb_op(b, 'K');
        pb_op(b, (uint8_t)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        pb_op(b, 'J');
        pb_u32(b, (uint32_t)(int32_t)v);
    } else {
        pb_op(b, 0x8a);
        pb_op(b, 8);
        for (int i = 0; i < 8; i++) pb_op(b, (uint8_t)((uint64_t)v >> (8 * i)));
    }
}
static void pb_tuple_ints(pb *b, const int64_t *v, int n)
{
    pb_op(b, '(');
    for (int i = 0; i < n; i++) pb_int(b, v[i]);
    pb_op(b, 't');
}
/* ('storage', torch.<cls>, key, 'cpu', numel) BINPERSID */
static void pb_storage(pb *b, const char *cls, const char *key, int64_t numel)
{
    pb_op(b, '(');
    pb_str(b, "storage");
    pb_global(b, "torch", cls);
    pb_str(b, key);
    pb_str(b, "cpu");
    pb_int(b, numel);
    pb_op(b, 't');
    pb_op(b, 'Q');
}
/* value: _rebuild_tensor_v2(storage, off, size, stride, False, OrderedDict()) */
static void pb_tensor(pb *b, const char *cls, const char *key, int64_t numel, int64_t off,
                      const int64_t *shape, const int64_t *stride, int nd)
{
    pb_global(b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(b, '(');
    pb_storage(b, cls, key, numel);
    pb_int(b, off);
    pb_tuple_ints(b, shape, nd);
    pb_tuple_ints(b, stride, nd);
    pb_op(b, 0x89);
    pb_global(b, "collections", "OrderedDict");
    pb_op(b, ')');
    pb_op(b, 'R');
    pb_op(b, 't');
    pb_op(b, 'R');
}
static void pb_begin_dict(pb *b)
{
    pb_op(b, 0x80);
    pb_op(b, 2);
    pb_op(b, '}');
}
static glmq_status run(const pb *b, glmq_pkl_dict *d, glmq_err *err)
{
    memset(err, 0, sizeof *err);
    return glmq_pickle_state_dict(b->p, b->n, "'t.bin': 'archive/data.pkl'", d, err);
}

/* Expect status `want` and every non-NULL substring in the message. */
static void expect_fail(const pb *b, glmq_status want, const char *s1, const char *s2)
{
    glmq_pkl_dict d;
    glmq_err err;
    glmq_status st = run(b, &d, &err);
    ck_assert_msg(st == want, "status %d (want %d): %s", st, want, err.msg);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_null(d.v);
    if (s1) ck_assert_msg(strstr(err.msg, s1), "'%s' not in: %s", s1, err.msg);
    if (s2) ck_assert_msg(strstr(err.msg, s2), "'%s' not in: %s", s2, err.msg);
    ck_assert_msg(strstr(err.msg, "data.pkl") && strstr(err.msg, "byte"),
                  "message lacks member/offset: %s", err.msg);
}

static uint8_t *load_fixture(const char *name, size_t *n)
{
    char *dir = tu_path(tu_testdata(), "torchzip");
    char *p = tu_path(dir, name);
    uint8_t *d = tu_read_file(p, n);
    ck_assert_msg(d != NULL, "cannot read %s", p);
    free(p);
    free(dir);
    return d;
}

/* ---- torch-written pickles against torch's expectations ----------------------------------- */

static const char *const torch_pickles[] = {"basic", "module", "shared", "param"};

START_TEST(test_torch_pickles)
{
    const char *name = torch_pickles[_i];
    char fn[64];
    size_t n, jn;
    snprintf(fn, sizeof fn, "%s.data.pkl", name);
    uint8_t *data = load_fixture(fn, &n);
    char *js = (char *)load_fixture("expected.json", &jn);
    cJSON *root = cJSON_Parse(js);
    ck_assert_ptr_nonnull(root);
    snprintf(fn, sizeof fn, "%s.bin", name);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(root, fn);
    ck_assert_ptr_nonnull(list);

    glmq_pkl_dict d;
    glmq_err err;
    ck_assert_int_eq(glmq_pickle_state_dict(data, n, NULL, &d, &err), GLMQ_OK);
    ck_assert_int_eq((int)d.n, cJSON_GetArraySize(list));
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const glmq_pkl_tensor *t = &d.v[i++];
        ck_assert_str_eq(t->name, cJSON_GetObjectItem(e, "name")->valuestring);
        ck_assert_str_eq(glmq_dtype_name(t->dtype), cJSON_GetObjectItem(e, "dtype")->valuestring);
        ck_assert_int_eq(t->dtype, t->storage_dtype);
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        const cJSON *stride = cJSON_GetObjectItem(e, "stride");
        ck_assert_int_eq(t->ndim, cJSON_GetArraySize(shape));
        for (int k = 0; k < t->ndim; k++) {
            ck_assert_int_eq(t->shape[k], (int64_t)cJSON_GetArrayItem(shape, k)->valuedouble);
            ck_assert_int_eq(t->stride[k], (int64_t)cJSON_GetArrayItem(stride, k)->valuedouble);
        }
        ck_assert_int_eq(t->offset,
                         (int64_t)cJSON_GetObjectItem(e, "offset")->valuedouble);
        ck_assert(t->key[0] >= '0' && t->key[0] <= '9');
        ck_assert(t->storage_numel >= 0);
    }
    glmq_pkl_dict_free(&d);
    glmq_pkl_dict_free(&d); /* idempotent */
    cJSON_Delete(root);
    free(js);
    free(data);
}
END_TEST

START_TEST(test_shared_and_tied)
{
    size_t n;
    uint8_t *data = load_fixture("shared.data.pkl", &n);
    glmq_pkl_dict d;
    glmq_err err;
    ck_assert_int_eq(glmq_pickle_state_dict(data, n, NULL, &d, &err), GLMQ_OK);
    const glmq_pkl_tensor *a = NULL, *b = NULL, *e = NULL, *l = NULL;
    for (size_t i = 0; i < d.n; i++) {
        if (!strcmp(d.v[i].name, "a")) a = &d.v[i];
        if (!strcmp(d.v[i].name, "b")) b = &d.v[i];
        if (!strcmp(d.v[i].name, "embed.weight")) e = &d.v[i];
        if (!strcmp(d.v[i].name, "lm_head.weight")) l = &d.v[i];
    }
    ck_assert(a && b && e && l);
    ck_assert_str_eq(a->key, b->key); /* views of one storage */
    ck_assert_int_eq(a->offset, 2);
    ck_assert_int_eq(b->offset, 10);
    ck_assert_int_eq(a->storage_numel, 24);
    ck_assert_str_eq(e->key, l->key); /* the same memoized tensor under two names */
    ck_assert_int_eq(e->pos, l->pos);
    glmq_pkl_dict_free(&d);
    free(data);
}
END_TEST

/* ---- hostile fixtures --------------------------------------------------------------------- */

static const struct {
    const char *file;
    glmq_status st;
    const char *s1, *s2;
} hostile[] = {
    {"evil_os_system.pkl", GLMQ_E_UNSUPPORTED, "disallowed global 'os.system'", "at byte 2"},
    {"evil_posix_system.pkl", GLMQ_E_UNSUPPORTED, "disallowed global 'posix.system'", NULL},
    {"evil_eval.pkl", GLMQ_E_UNSUPPORTED, "disallowed global 'builtins.eval'", "at byte 2"},
    {"deep_nest.pkl", GLMQ_E_FORMAT, "nested deeper than 64", NULL},
};

START_TEST(test_hostile_fixtures)
{
    unlink(MARKER);
    size_t n;
    pb b = {0};
    b.p = load_fixture(hostile[_i].file, &n);
    b.n = n;
    expect_fail(&b, hostile[_i].st, hostile[_i].s1, hostile[_i].s2);
    ck_assert_msg(!tu_file_exists(MARKER), "payload executed: %s exists", MARKER);
    free(b.p);
}
END_TEST

/* ---- limits --------------------------------------------------------------------------------- */

START_TEST(test_deep_marks)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    for (int i = 0; i < 100000; i++) {
        pb_op(&b, '(');
        pb_op(&b, ']');
    }
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "MARKs nested deeper than 64", "byte 130");
    free(b.p);
}
END_TEST

START_TEST(test_deep_stack)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    for (int i = 0; i < 100000; i++) pb_op(&b, ']');
    for (int i = 0; i < 99999; i++) pb_op(&b, 'a');
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "value stack deeper than", NULL);
    free(b.p);
}
END_TEST

/* list = [list] repeated through the memo: deep nesting with a constant stack */
START_TEST(test_deep_memo_chain)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_op(&b, ']');
    pb_op(&b, 'q');
    pb_op(&b, 0);
    for (int i = 0; i < 100000; i++) {
        pb_op(&b, '0');      /* POP the previous list */
        pb_op(&b, ']');      /* new list */
        pb_op(&b, 'h');      /* previous */
        pb_op(&b, 0);
        pb_op(&b, 'a');      /* new.append(previous) */
        pb_op(&b, 'q');      /* memo[0] = new */
        pb_op(&b, 0);
    }
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "containers nested deeper than 64", NULL);
    free(b.p);
}
END_TEST

/* A list appended to itself: a cycle must not hang or recurse. */
START_TEST(test_cycle)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_op(&b, ']');
    pb_op(&b, 'q');
    pb_op(&b, 0);
    pb_op(&b, 'h');
    pb_op(&b, 0);
    pb_op(&b, 'a');
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "the pickled object is a list", NULL);
    free(b.p);
}
END_TEST

START_TEST(test_memo_limits)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_op(&b, 'N');
    pb_op(&b, 'r');
    pb_u32(&b, 0xFFFFFFF0u);
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "memo index 4294967280", NULL);
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_op(&b, 'j');
    pb_u32(&b, 7);
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "memo slot 7 is empty", "byte 2");
    free(b.p);
}
END_TEST

START_TEST(test_string_past_end)
{
    static const uint8_t cases[][12] = {
        {0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f, 'a', '.'},
        {0x80, 2, 0x8c, 200, 'a', '.'},
        {0x80, 2, 0x8d, 1, 0, 0, 0, 0, 0, 0, 0x80},
        {0x80, 2, 'B', 9, 0, 0, 0, 'x', '.'},
        {0x80, 2, 'C', 5, '.'},
        {0x80, 2, 0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    };
    static const size_t lens[] = {9, 6, 11, 9, 5, 11};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        pb b = {(uint8_t *)cases[i], lens[i], 0};
        glmq_pkl_dict d;
        glmq_err err;
        ck_assert_int_eq(run(&b, &d, &err), GLMQ_E_FORMAT);
        ck_assert_msg(strstr(err.msg, "exceeds") || strstr(err.msg, "truncated"), "%s",
                      err.msg);
    }
}
END_TEST

/* ---- opcodes --------------------------------------------------------------------------------- */

static const struct {
    uint8_t op;
    const char *name;
} refused_ops[] = {
    {'i', "INST"},      {'o', "OBJ"},          {0x81, "NEWOBJ"},      {0x92, "NEWOBJ_EX"},
    {0x82, "EXT1"},     {0x83, "EXT2"},        {0x84, "EXT4"},        {'P', "PERSID"},
    {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}, {'I', "INT"}, {'L', "LONG"},
    {'F', "FLOAT"},     {'S', "STRING"},       {'V', "UNICODE"},      {'g', "GET"},
    {'p', "PUT"},       {'T', "BINSTRING"},    {'U', "SHORT_BINSTRING"}, {'2', "DUP"},
    {0x8b, "LONG4"},    {0x8f, "EMPTY_SET"},   {0x90, "ADDITEMS"},    {0x91, "FROZENSET"},
    {0x96, "BYTEARRAY8"},
};

START_TEST(test_refused_opcodes)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_op(&b, 'N');
    pb_op(&b, refused_ops[_i].op);
    pb_raw(&b, "os\nsystem\n", 10);
    pb_op(&b, '.');
    char want[64];
    snprintf(want, sizeof want, "opcode %s (0x%02x) is not allowed", refused_ops[_i].name,
             refused_ops[_i].op);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, want, "at byte 3");
    free(b.p);
}
END_TEST

START_TEST(test_unknown_opcode)
{
    uint8_t p[] = {0x80, 2, 'N', 0xff, '.'};
    pb b = {p, sizeof p, 0};
    expect_fail(&b, GLMQ_E_FORMAT, "unknown opcode 0xff", "at byte 3");
}
END_TEST

START_TEST(test_protocol)
{
    uint8_t p1[] = {0x80, 1, '}', '.'};
    pb b = {p1, sizeof p1, 0};
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "pickle protocol 1", NULL);
    uint8_t p6[] = {0x80, 6, '}', '.'};
    pb c = {p6, sizeof p6, 0};
    expect_fail(&c, GLMQ_E_UNSUPPORTED, "pickle protocol 6", NULL);
    uint8_t ok[] = {0x80, 5, '}', '.'};
    pb e = {ok, sizeof ok, 0};
    glmq_pkl_dict d;
    glmq_err err;
    ck_assert_int_eq(run(&e, &d, &err), GLMQ_OK);
    ck_assert_uint_eq(d.n, 0); /* an empty state dict is fine */
}
END_TEST

START_TEST(test_stop_rules)
{
    uint8_t trailing[] = {0x80, 2, '}', '.', 'N'};
    pb b = {trailing, sizeof trailing, 0};
    expect_fail(&b, GLMQ_E_FORMAT, "STOP followed by 1 more bytes", "at byte 3");
    uint8_t two[] = {0x80, 2, '}', '.', '.'};
    pb c = {two, sizeof two, 0};
    expect_fail(&c, GLMQ_E_FORMAT, "STOP followed", NULL);
    uint8_t none[] = {0x80, 2, '}'};
    pb e = {none, sizeof none, 0};
    expect_fail(&e, GLMQ_E_FORMAT, "no STOP opcode", NULL);
    uint8_t extra[] = {0x80, 2, '}', '}', '.'};
    pb f = {extra, sizeof extra, 0};
    expect_fail(&f, GLMQ_E_FORMAT, "2 values on the stack", NULL);
    uint8_t mark[] = {0x80, 2, '}', '(', '.'};
    pb g = {mark, sizeof mark, 0};
    expect_fail(&g, GLMQ_E_FORMAT, "unclosed MARK", NULL);
    uint8_t empty[] = {0};
    pb h = {empty, 0, 0};
    expect_fail(&h, GLMQ_E_FORMAT, "no STOP opcode", NULL);
    uint8_t bare[] = {'.'};
    pb k = {bare, 1, 0};
    expect_fail(&k, GLMQ_E_FORMAT, "0 values on the stack", NULL);
}
END_TEST

START_TEST(test_stack_underflow)
{
    static const char *const progs[] = {"\x80\x02R.", "\x80\x02(0t.", "\x80\x02}(s.", "\x80\x02u.",
                                        "\x80\x02\x87.", "\x80\x02N(a.", "\x80\x02(e.",
                                        "\x80\x02Q.", "\x80\x02" "b.", "\x80\x02q\x01.",
                                        "\x80\x02\x93.", "\x80\x02\x31."};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        pb b = {(uint8_t *)progs[i], strlen(progs[i]), 0};
        glmq_pkl_dict d;
        glmq_err err;
        glmq_status st = run(&b, &d, &err);
        ck_assert_msg(st == GLMQ_E_FORMAT, "prog %zu: %d %s", i, st, err.msg);
        ck_assert_msg(strstr(err.msg, "empty stack") || strstr(err.msg, "without") ||
                          strstr(err.msg, "needs"),
                      "prog %zu: %s", i, err.msg);
    }
}
END_TEST

/* Every supported opcode in one valid pickle: protocol 4 with FRAME/MEMOIZE/STACK_GLOBAL,
 * LONG1 numel >= 2^31, BININT2, TUPLE1/3, LIST/APPENDS/DICT/POP/POP_MARK, floats and bytes,
 * a Parameter (with and without state), BUILD of _metadata, and a v3 tensor. */
START_TEST(test_all_opcodes)
{
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 4);
    pb_op(&b, 0x95);
    for (int i = 0; i < 8; i++) pb_op(&b, 0); /* FRAME 0: a no-op */
    pb_global(&b, "collections", "OrderedDict");
    pb_op(&b, 0x94); /* MEMOIZE -> memo[0] */
    pb_op(&b, ')');
    pb_op(&b, 'R');
    /* junk that must be accepted and discarded */
    pb_op(&b, '(');
    pb_op(&b, 'G');
    pb_raw(&b, "\x3f\xf0\0\0\0\0\0\0", 8); /* 1.0 */
    pb_op(&b, 'C');
    pb_op(&b, 2);
    pb_raw(&b, "hi", 2);
    pb_op(&b, 'B');
    pb_u32(&b, 1);
    pb_op(&b, 'x');
    pb_op(&b, 0x8e);
    pb_raw(&b, "\1\0\0\0\0\0\0\0y", 9);
    pb_op(&b, 'l');
    pb_op(&b, '(');
    pb_op(&b, 'N');
    pb_op(&b, 0x88);
    pb_op(&b, 'e'); /* APPENDS into the list */
    pb_op(&b, '(');
    pb_op(&b, 0x8c);
    pb_op(&b, 1);
    pb_op(&b, 'k');
    pb_op(&b, 'M');
    pb_raw(&b, "\x34\x12", 2);
    pb_op(&b, 'd');
    pb_op(&b, ']');
    pb_op(&b, 'N');
    pb_op(&b, 'a');
    pb_op(&b, 0x87); /* (list, dict, [None]) */
    pb_op(&b, '0'); /* POP the tuple */
    pb_op(&b, '(');
    pb_op(&b, 'N');
    pb_op(&b, 'N');
    pb_op(&b, '1'); /* POP_MARK */
    pb_op(&b, '(');
    pb_op(&b, '0'); /* POP with nothing since the mark pops the mark */
    pb_op(&b, '(');
    /* "big": F16 via STACK_GLOBAL, numel via LONG1 >= 2^31, shape via BININT2 */
    pb_op(&b, 0x8d);
    pb_raw(&b, "\3\0\0\0\0\0\0\0big", 11);
    pb_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&b, '(');
    pb_op(&b, '(');
    pb_str(&b, "storage");
    pb_op(&b, 0x8c);
    pb_op(&b, 5);
    pb_raw(&b, "torch", 5);
    pb_op(&b, 0x8c);
    pb_op(&b, 11);
    pb_raw(&b, "HalfStorage", 11);
    pb_op(&b, 0x93);
    pb_str(&b, "7");
    pb_str(&b, "cuda:0");
    pb_int(&b, ((int64_t)1 << 31) + 5);
    pb_op(&b, 't');
    pb_op(&b, 'Q');
    pb_op(&b, 'K');
    pb_op(&b, 5);
    pb_op(&b, 'M');
    pb_raw(&b, "\x00\x01", 2); /* 256 */
    pb_op(&b, 0x85);
    pb_op(&b, 'K');
    pb_op(&b, 1);
    pb_op(&b, 0x85);
    pb_op(&b, 0x88);
    pb_op(&b, 'h');
    pb_op(&b, 0);
    pb_op(&b, ')');
    pb_op(&b, 'R');
    pb_op(&b, 'N'); /* 7th argument: metadata None */
    pb_op(&b, 't');
    pb_op(&b, 'R');
    /* "param": Parameter(tensor) */
    pb_str(&b, "param");
    pb_global(&b, "torch._utils", "_rebuild_parameter");
    pb_op(&b, '(');
    {
        static const int64_t sh[1] = {3}, sd[1] = {1};
        pb_tensor(&b, "BFloat16Storage", "8", 3, 0, sh, sd, 1);
    }
    pb_op(&b, 0x88);
    pb_op(&b, 'h');
    pb_op(&b, 0);
    pb_op(&b, ')');
    pb_op(&b, 'R');
    pb_op(&b, 't');
    pb_op(&b, 'R');
    /* "pstate": Parameter with state */
    pb_str(&b, "pstate");
    pb_global(&b, "torch._utils", "_rebuild_parameter_with_state");
    pb_op(&b, '(');
    {
        static const int64_t sh[1] = {2}, sd[1] = {1};
        pb_tensor(&b, "BFloat16Storage", "8", 3, 1, sh, sd, 1);
    }
    pb_op(&b, 0x89);
    pb_op(&b, '}');
    pb_op(&b, '}');
    pb_op(&b, 't');
    pb_op(&b, 'R');
    /* "v3": _rebuild_tensor_v3 on an UntypedStorage with dtype bfloat16 */
    pb_str(&b, "v3");
    pb_global(&b, "torch._utils", "_rebuild_tensor_v3");
    pb_op(&b, '(');
    pb_storage(&b, "UntypedStorage", "9", 12);
    pb_int(&b, 1);
    {
        static const int64_t sh[2] = {2, 2}, sd[2] = {1, 2};
        pb_tuple_ints(&b, sh, 2);
        pb_tuple_ints(&b, sd, 2);
    }
    pb_op(&b, 0x89);
    pb_op(&b, '}');
    pb_global(&b, "torch", "bfloat16");
    pb_op(&b, '}'); /* empty metadata */
    pb_op(&b, 't');
    pb_op(&b, 'R');
    pb_op(&b, 'u'); /* SETITEMS */
    /* state_dict._metadata via BUILD */
    pb_op(&b, '}');
    pb_str(&b, "_metadata");
    pb_op(&b, '}');
    pb_op(&b, 's');
    pb_op(&b, 'b');
    pb_op(&b, '.');

    glmq_pkl_dict d;
    glmq_err err;
    ck_assert_msg(run(&b, &d, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_uint_eq(d.n, 4);
    ck_assert_str_eq(d.v[0].name, "big");
    ck_assert_int_eq(d.v[0].dtype, GLMQ_DT_F16);
    ck_assert_int_eq(d.v[0].storage_numel, ((int64_t)1 << 31) + 5);
    ck_assert_int_eq(d.v[0].offset, 5);
    ck_assert_int_eq(d.v[0].ndim, 1);
    ck_assert_int_eq(d.v[0].shape[0], 256);
    ck_assert_str_eq(d.v[0].key, "7");
    ck_assert_str_eq(d.v[1].name, "param");
    ck_assert_int_eq(d.v[1].dtype, GLMQ_DT_BF16);
    ck_assert_str_eq(d.v[2].name, "pstate");
    ck_assert_int_eq(d.v[2].offset, 1);
    ck_assert_str_eq(d.v[3].name, "v3");
    ck_assert_int_eq(d.v[3].dtype, GLMQ_DT_BF16);
    ck_assert_int_eq(d.v[3].storage_dtype, GLMQ_DT_U8);
    ck_assert_int_eq(d.v[3].storage_numel, 12);
    ck_assert_int_eq(d.v[3].stride[1], 2);
    glmq_pkl_dict_free(&d);
    free(b.p);
}
END_TEST

START_TEST(test_long1)
{
    /* LONG1 sign extension and the 8-byte limit, as storage offsets */
    pb b = {0};
    pb_begin_dict(&b);
    pb_str(&b, "w");
    pb_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&b, '(');
    pb_storage(&b, "FloatStorage", "0", 4);
    pb_op(&b, 0x8a);
    pb_op(&b, 2);
    pb_op(&b, 0xff);
    pb_op(&b, 0xff); /* -1 */
    pb_raw(&b, "()t()t\x89}tRs.", 13);
    expect_fail(&b, GLMQ_E_FORMAT, "storage_offset is negative (-1)", NULL);
    free(b.p);

    uint8_t big[] = {0x80, 2, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, '.'};
    pb c = {big, sizeof big, 0};
    expect_fail(&c, GLMQ_E_FORMAT, "LONG1 of 9 bytes", "at byte 2");
}
END_TEST

/* ---- allow-list and REDUCE ------------------------------------------------------------------ */

START_TEST(test_disallowed_globals)
{
    static const char *const g[][2] = {
        {"os", "system"}, {"posix", "system"}, {"builtins", "eval"}, {"builtins", "exec"},
        {"subprocess", "Popen"}, {"torch", "load"}, {"torch._utils", "_rebuild_qtensor"},
        {"torch._tensor", "_rebuild_from_type_v2"}, {"_codecs", "encode"},
        {"collections", "OrderedDictX"}, {"torch", "Tensor"},
        {"numpy.core.multiarray", "_reconstruct"},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        pb b = {0};
        pb_op(&b, 0x80);
        pb_op(&b, 2);
        pb_global(&b, g[i][0], g[i][1]);
        pb_op(&b, ')');
        pb_op(&b, 'R');
        pb_op(&b, '.');
        char want[128];
        snprintf(want, sizeof want, "disallowed global '%s.%s'", g[i][0], g[i][1]);
        expect_fail(&b, GLMQ_E_UNSUPPORTED, want, "at byte 2");
        free(b.p);
    }
    /* the same through STACK_GLOBAL (protocol 4) */
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 4);
    pb_str(&b, "os");
    pb_str(&b, "system");
    pb_op(&b, 0x93);
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "disallowed global 'os.system'", "at byte 20");
    free(b.p);
    /* a GLOBAL line with a control byte is malformed, not looked up */
    uint8_t bad[] = {0x80, 2, 'c', 'o', 0x01, 's', '\n', 'x', '\n', '.'};
    pb c = {bad, sizeof bad, 0};
    expect_fail(&c, GLMQ_E_FORMAT, "GLOBAL name is not ASCII", NULL);
    uint8_t nonl[] = {0x80, 2, 'c', 'o', 's', '.'};
    pb e = {nonl, sizeof nonl, 0};
    expect_fail(&e, GLMQ_E_FORMAT, "GLOBAL argument", NULL);
}
END_TEST

START_TEST(test_reduce_rules)
{
    /* REDUCE on an allowed but non-callable global */
    pb b = {0};
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_global(&b, "torch", "FloatStorage");
    pb_op(&b, ')');
    pb_op(&b, 'R');
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "REDUCE on 'torch.FloatStorage' is not allowed",
                "at byte 23");
    free(b.p);
    /* REDUCE on a non-global */
    uint8_t p2[] = {0x80, 2, ']', ')', 'R', '.'};
    pb c = {p2, sizeof p2, 0};
    expect_fail(&c, GLMQ_E_UNSUPPORTED, "REDUCE on a list", "at byte 4");
    /* OrderedDict with arguments */
    memset(&b, 0, sizeof b);
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_global(&b, "collections", "OrderedDict");
    pb_op(&b, ']');
    pb_op(&b, 0x85);
    pb_op(&b, 'R');
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "OrderedDict called with arguments", NULL);
    free(b.p);
    /* non-tuple arguments */
    memset(&b, 0, sizeof b);
    pb_op(&b, 0x80);
    pb_op(&b, 2);
    pb_global(&b, "collections", "OrderedDict");
    pb_op(&b, ']');
    pb_op(&b, 'R');
    pb_op(&b, '.');
    expect_fail(&b, GLMQ_E_FORMAT, "REDUCE arguments are a list", NULL);
    free(b.p);
    /* BUILD on something that is not a dict */
    uint8_t p3[] = {0x80, 2, ']', '}', 'b', '.'};
    pb e = {p3, sizeof p3, 0};
    expect_fail(&e, GLMQ_E_UNSUPPORTED, "BUILD on a list", "at byte 4");
}
END_TEST

/* Malformed tensors and persistent ids. */
START_TEST(test_bad_tensors)
{
    static const int64_t sh2[2] = {2, 3}, sd2[2] = {3, 1};
    static const int64_t sh5[5] = {1, 1, 1, 2, 3}, sd5[5] = {6, 6, 6, 3, 1};
    pb b = {0};

    pb_begin_dict(&b);
    pb_str(&b, "q.weight");
    pb_tensor(&b, "QInt8Storage", "0", 6, 0, sh2, sd2, 2);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "tensor 'q.weight': quantized storage 'torch.QInt8Storage'",
                NULL);
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "c");
    pb_tensor(&b, "ComplexFloatStorage", "0", 6, 0, sh2, sd2, 2);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "storage type 'torch.ComplexFloatStorage'", NULL);
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "five");
    pb_tensor(&b, "FloatStorage", "0", 6, 0, sh5, sd5, 5);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "tensor 'five'", "5 dimensions");
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "neg");
    {
        static const int64_t sh[2] = {2, -3};
        pb_tensor(&b, "FloatStorage", "0", 6, 0, sh, sd2, 2);
    }
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_FORMAT, "size is negative (-3)", NULL);
    free(b.p);

    /* size and stride of different lengths */
    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "x");
    pb_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&b, '(');
    pb_storage(&b, "FloatStorage", "0", 6);
    pb_int(&b, 0);
    pb_tuple_ints(&b, sh2, 2);
    pb_tuple_ints(&b, sd2, 1);
    pb_raw(&b, "\x89}tRs.", 6);
    expect_fail(&b, GLMQ_E_FORMAT, "size has 2 dims but stride has 1", NULL);
    free(b.p);

    /* wrong arity */
    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "x");
    pb_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&b, '(');
    pb_storage(&b, "FloatStorage", "0", 6);
    pb_raw(&b, "tRs.", 4);
    expect_fail(&b, GLMQ_E_FORMAT, "_rebuild_tensor_v2 with 1 arguments", NULL);
    free(b.p);

    /* non-empty metadata */
    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "x");
    pb_global(&b, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&b, '(');
    pb_storage(&b, "FloatStorage", "0", 6);
    pb_int(&b, 0);
    pb_tuple_ints(&b, sh2, 2);
    pb_tuple_ints(&b, sd2, 2);
    pb_raw(&b, "\x89}(NNdtRs.", 10);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "non-empty metadata", NULL);
    free(b.p);

    /* persistent ids */
    static const char *const pids[][2] = {
        {"\x80\x02(X\x07\x00\x00\x00storageNNNNtQ.", "not a torch storage class"},
        {"\x80\x02(X\x03\x00\x00\x00" "fooNNNNtQ.", "other than 'storage'"},
        {"\x80\x02(NNtQ.", "not a 5-tuple"},
        {"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x03\x00\x00\x00" "a/bNK\x01tQ.",
         "storage key contains byte 0x2f"},
        {"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x02\x00\x00\x00..NK\x01tQ.",
         "storage key '.' or '..'"},
        {"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nK\x01NK\x01tQ.",
         "storage key is an int"},
        {"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
         "0X\x00\x00\x00\x00J\xff\xff\xff\xfftQ.",
         "storage numel is negative"},
    };
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        /* the programs contain NUL bytes: their length runs up to the final "Q." */
        const char *s = pids[i][0];
        size_t len = 0;
        while (!(s[len] == 'Q' && s[len + 1] == '.' && s[len + 2] == 0)) len++;
        len += 2;
        pb c = {(uint8_t *)s, len, 0};
        glmq_pkl_dict d;
        glmq_err err;
        glmq_status st = run(&c, &d, &err);
        ck_assert_msg(st != GLMQ_OK && strstr(err.msg, pids[i][1]), "pid %zu: %d %s", i, st,
                      err.msg);
    }
}
END_TEST

START_TEST(test_bad_roots)
{
    static const int64_t sh[1] = {2}, sd[1] = {1};
    uint8_t lst[] = {0x80, 2, ']', '.'};
    pb a = {lst, sizeof lst, 0};
    expect_fail(&a, GLMQ_E_UNSUPPORTED, "the pickled object is a list, not a state dict", NULL);

    pb b = {0};
    pb_begin_dict(&b);
    pb_int(&b, 5);
    pb_tensor(&b, "FloatStorage", "0", 2, 0, sh, sd, 1);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_FORMAT, "state dict key 0 is an int", NULL);
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_str(&b, "step");
    pb_int(&b, 5);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_UNSUPPORTED, "entry 'step' is an int, not a tensor", NULL);
    free(b.p);

    memset(&b, 0, sizeof b);
    pb_begin_dict(&b);
    pb_op(&b, 'X');
    pb_u32(&b, 3);
    pb_raw(&b, "a\0b", 3);
    pb_tensor(&b, "FloatStorage", "0", 2, 0, sh, sd, 1);
    pb_raw(&b, "s.", 2);
    expect_fail(&b, GLMQ_E_FORMAT, "contains NUL", NULL);
    free(b.p);

    /* SETITEMS with an odd count, DICT with an odd count */
    uint8_t odd[] = {0x80, 2, '}', '(', 'N', 'u', '.'};
    pb c = {odd, sizeof odd, 0};
    expect_fail(&c, GLMQ_E_FORMAT, "odd number", "at byte 5");
    uint8_t oddd[] = {0x80, 2, '(', 'N', 'd', '.'};
    pb e = {oddd, sizeof oddd, 0};
    expect_fail(&e, GLMQ_E_FORMAT, "odd number", NULL);
    uint8_t app[] = {0x80, 2, '}', 'N', 'a', '.'};
    pb f = {app, sizeof app, 0};
    expect_fail(&f, GLMQ_E_FORMAT, "APPEND to a dict", NULL);
    uint8_t set[] = {0x80, 2, ']', 'N', 'N', 's', '.'};
    pb g = {set, sizeof set, 0};
    expect_fail(&g, GLMQ_E_FORMAT, "SETITEM on a list", NULL);
}
END_TEST

/* Every prefix of a real pickle fails cleanly; every single-byte corruption either fails
 * cleanly or yields entries that satisfy the documented invariants. */
START_TEST(test_truncations_and_flips)
{
    size_t n;
    uint8_t *data = load_fixture("shared.data.pkl", &n);
    uint8_t *copy = malloc(n);
    for (size_t k = 0; k < n; k++) {
        glmq_pkl_dict d;
        glmq_err err;
        memcpy(copy, data, k);
        ck_assert_int_ne(glmq_pickle_state_dict(copy, k, NULL, &d, &err), GLMQ_OK);
        ck_assert_uint_eq(d.n, 0);
    }
    for (size_t k = 0; k < n; k++) {
        static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x10};
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(copy, data, n);
            copy[k] ^= flips[f];
            glmq_pkl_dict d;
            glmq_err err;
            glmq_status st = glmq_pickle_state_dict(copy, n, NULL, &d, &err);
            if (st != GLMQ_OK) {
                ck_assert_uint_eq(d.n, 0);
                ck_assert(err.msg[0] != 0);
                continue;
            }
            for (size_t i = 0; i < d.n; i++) {
                ck_assert(d.v[i].ndim >= 0 && d.v[i].ndim <= GLMQ_MAX_DIMS);
                ck_assert(d.v[i].offset >= 0 && d.v[i].storage_numel >= 0);
                ck_assert(strlen(d.v[i].name) > 0);
            }
            glmq_pkl_dict_free(&d);
        }
    }
    ck_assert(!tu_file_exists(MARKER));
    free(copy);
    free(data);
}
END_TEST

Suite *pickle_suite(void)
{
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_torch_pickles, 0,
                        (int)(sizeof torch_pickles / sizeof torch_pickles[0]));
    tcase_add_test(tc, test_shared_and_tied);
    tcase_add_test(tc, test_all_opcodes);
    tcase_add_test(tc, test_long1);
    tcase_add_test(tc, test_protocol);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_hostile_fixtures, 0, (int)(sizeof hostile / sizeof hostile[0]));
    tcase_add_test(tc, test_deep_marks);
    tcase_add_test(tc, test_deep_stack);
    tcase_add_test(tc, test_deep_memo_chain);
    tcase_add_test(tc, test_cycle);
    tcase_add_test(tc, test_memo_limits);
    tcase_add_test(tc, test_string_past_end);
    tcase_add_loop_test(tc, test_refused_opcodes, 0,
                        (int)(sizeof refused_ops / sizeof refused_ops[0]));
    tcase_add_test(tc, test_unknown_opcode);
    tcase_add_test(tc, test_stop_rules);
    tcase_add_test(tc, test_stack_underflow);
    tcase_add_test(tc, test_disallowed_globals);
    tcase_add_test(tc, test_reduce_rules);
    tcase_add_test(tc, test_bad_tensors);
    tcase_add_test(tc, test_bad_roots);
    tcase_add_test(tc, test_truncations_and_flips);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pickle_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
