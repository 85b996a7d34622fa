/*
 * check_cli.c - the glmq command line: exit codes, messages, and every bad-input case of the
 * convert issue, each in its own test. Each bad input must give exit 1, a message naming the
 * problem (and the file), no output file (nor a temporary one), and execute nothing.
 *
 * Bad checkpoints are made by copying a bundled sample and breaking one thing; hostile .bin files
 * come from tests/data/torchzip (made by torch.save / raw pickle bytes, see gen_fixtures.py) and,
 * for pickles that need a zip around them, from the tiny stored-zip writer below.
 */
#include "glmq.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#define MARKER "/tmp/glmq_torchzip_pwned"

static char *tmpdir, *src, *out;

static void setup(void)
{
    tmpdir = tu_mkdtemp();
    src = tu_path(tmpdir, "ckpt");
    out = tu_path(tmpdir, "out.glmq");
    unlink(MARKER);
}
static void teardown(void)
{
    tu_rmtree(tmpdir);
    free(tmpdir);
    free(src);
    free(out);
}

static void copy_sample(const char *model, const char *variant)
{
    char *m = tu_path(tu_samples(), model);
    char *d = tu_path(m, variant);
    ck_assert_int_eq(tu_copy_dir(d, src), 0);
    free(d);
    free(m);
}


/* Run convert on src; expect exit 1, every substring in msgs, no output and no temp file. */
static void expect_convert_fails(const char *const *msgs)
{
    char *text = NULL;
    int rc = tu_run(&text, "'%s' convert '%s' -o '%s' --quiet", tu_bin(), src, out);
    ck_assert_msg(rc == 1, "exit %d, output: %s", rc, text);
    ck_assert_msg(strncmp(text, "glmq: error: ", 13) == 0, "output: %s", text);
    for (int i = 0; msgs[i]; i++)
        ck_assert_msg(strstr(text, msgs[i]) != NULL, "message lacks '%s': %s", msgs[i], text);
    ck_assert(!tu_file_exists(out));
    ck_assert_int_eq(tu_count_entries(tmpdir), 1); /* only ckpt/: no out.glmq.tmp.* either */
    ck_assert_msg(!tu_file_exists(MARKER), "a hostile payload was executed");
    free(text);
}
#define EXPECT_FAIL(...) expect_convert_fails((const char *const[]){__VA_ARGS__, NULL})

/* ---- safetensors edits ---- */

static char *st_file(void) { return tu_path(src, "model.safetensors"); }

/* Rewrite the JSON header of model.safetensors through `edit`, keeping the data section. The new
 * header is padded with spaces to the old length when shorter (so offsets stay valid). */
static void st_edit(void (*edit)(cJSON *))
{
    char *p = st_file();
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    cJSON *h = cJSON_ParseWithLength((char *)b + 8, hl);
    ck_assert_ptr_nonnull(h);
    edit(h);
    char *js = cJSON_PrintUnformatted(h);
    size_t jl = strlen(js);
    uint64_t nl = jl <= hl ? hl : jl;
    uint8_t *o = malloc(8 + nl + (n - 8 - hl));
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(nl >> (8 * i));
    memcpy(o + 8, js, jl);
    memset(o + 8 + jl, ' ', nl - jl);
    memcpy(o + 8 + nl, b + 8 + hl, n - 8 - hl);
    tu_write_file(p, o, 8 + nl + (n - 8 - hl));
    cJSON_free(js);
    cJSON_Delete(h);
    free(o);
    free(b);
    free(p);
}

static cJSON *entry(cJSON *h, const char *name)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(h, name);
    ck_assert_ptr_nonnull(e);
    return e;
}

#define QKV0 "transformer.encoder.layers.0.self_attention.query_key_value.weight"
#define DENSE0 "transformer.encoder.layers.0.self_attention.dense.weight"

START_TEST(st_truncated)
{
    copy_sample("glm2-tiny", "st");
    char *p = st_file();
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    tu_write_file(p, b, n / 2);
    free(b);
    free(p);
    EXPECT_FAIL("model.safetensors");
}
END_TEST

START_TEST(st_header_past_end)
{
    copy_sample("glm2-tiny", "st");
    char *p = st_file();
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    uint64_t big = n + 1000;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(big >> (8 * i));
    tu_write_file(p, b, n);
    free(b);
    free(p);
    EXPECT_FAIL("model.safetensors", "header");
}
END_TEST

START_TEST(st_not_json)
{
    copy_sample("glm2-tiny", "st");
    char *p = st_file();
    size_t n;
    uint8_t *b = tu_read_file(p, &n);
    memcpy(b + 9, "not json!!", 10);
    tu_write_file(p, b, n);
    free(b);
    free(p);
    EXPECT_FAIL("model.safetensors", "json");
}
END_TEST

static void set_offsets(cJSON *e, double a, double b)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(o, 0), a);
    cJSON_SetNumberValue(cJSON_GetArrayItem(o, 1), b);
}
static double off0(cJSON *e)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), 0)->valuedouble;
}
static double off1(cJSON *e)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), 1)->valuedouble;
}

static void edit_overlap(cJSON *h)
{
    cJSON *a = entry(h, DENSE0);
    set_offsets(a, off0(a) - 64, off1(a) - 64);
}
START_TEST(st_overlap)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_overlap);
    EXPECT_FAIL("model.safetensors", "offset");
}
END_TEST

static void edit_out_of_range(cJSON *h)
{
    /* move the last tensor past the end of the data section */
    cJSON *it, *last = NULL;
    double best = -1;
    cJSON_ArrayForEach(it, h) if (strcmp(it->string, "__metadata__") && off1(it) > best)
    {
        best = off1(it);
        last = it;
    }
    set_offsets(last, off0(last), off1(last) + 4096);
}
START_TEST(st_out_of_range)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_out_of_range);
    EXPECT_FAIL("model.safetensors");
}
END_TEST

static void edit_shape_overflow(cJSON *h)
{
    cJSON *e = entry(h, DENSE0);
    cJSON_ReplaceItemInObjectCaseSensitive(e, "shape",
                                           cJSON_CreateIntArray((int[]){1 << 30, 1 << 30}, 2));
    cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "shape");
    cJSON_AddItemToArray(s, cJSON_CreateNumber(1 << 30));
}
START_TEST(st_shape_overflow)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_shape_overflow);
    EXPECT_FAIL("model.safetensors", DENSE0);
}
END_TEST

static void edit_dtype_size(cJSON *h)
{
    cJSON_ReplaceItemInObjectCaseSensitive(entry(h, DENSE0), "dtype", cJSON_CreateString("F32"));
}
START_TEST(st_dtype_size_mismatch)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_dtype_size);
    EXPECT_FAIL("model.safetensors", DENSE0);
}
END_TEST

static void edit_unknown_dtype(cJSON *h)
{
    cJSON_ReplaceItemInObjectCaseSensitive(entry(h, DENSE0), "dtype", cJSON_CreateString("Q9"));
}
START_TEST(st_unknown_dtype)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_unknown_dtype);
    EXPECT_FAIL("model.safetensors", "Q9");
}
END_TEST

static void edit_missing(cJSON *h)
{
    /* rename: the architecture's tensor is now missing (and an unexpected one appears) */
    cJSON *e = cJSON_DetachItemFromObjectCaseSensitive(h, DENSE0);
    cJSON_AddItemToObject(h, "transformer.encoder.layers.0.self_attention.dense.weighX", e);
}
START_TEST(missing_tensor)
{
    copy_sample("glm2-tiny", "st");
    st_edit(edit_missing);
    EXPECT_FAIL(DENSE0, "missing");
}
END_TEST

/* ---- config edits ---- */

static void config_set(const char *key, cJSON *value)
{
    char *p = tu_path(src, "config.json");
    char *txt = (char *)tu_read_file(p, NULL);
    cJSON *c = cJSON_Parse(txt);
    cJSON_ReplaceItemInObjectCaseSensitive(c, key, value);
    char *js = cJSON_Print(c);
    tu_write_file(p, js, strlen(js));
    cJSON_free(js);
    cJSON_Delete(c);
    free(txt);
    free(p);
}

START_TEST(wrong_shape_for_config)
{
    copy_sample("glm2-tiny", "st");
    config_set("ffn_hidden_size", cJSON_CreateNumber(176));
    EXPECT_FAIL("dense_h_to_4h.weight", "config.json implies");
}
END_TEST

START_TEST(config_not_json)
{
    copy_sample("glm2-tiny", "st");
    char *p = tu_path(src, "config.json");
    tu_write_file(p, "{ \"hidden_size\": ", 17);
    free(p);
    EXPECT_FAIL("config.json", "not valid JSON");
}
END_TEST

START_TEST(config_inconsistent)
{
    copy_sample("glm2-tiny", "st");
    config_set("multi_query_group_num", cJSON_CreateNumber(3));
    EXPECT_FAIL("config.json", "does not divide");
}
END_TEST

START_TEST(config_missing)
{
    copy_sample("glm2-tiny", "st");
    char *p = tu_path(src, "config.json");
    unlink(p);
    free(p);
    EXPECT_FAIL("config.json");
}
END_TEST

START_TEST(index_missing_shard)
{
    copy_sample("glm2-tiny", "st-sharded");
    DIR *d = opendir(src);
    struct dirent *e;
    char victim[256] = "";
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, "-00002-of-")) snprintf(victim, sizeof victim, "%s", e->d_name);
    closedir(d);
    ck_assert(victim[0]);
    char *p = tu_path(src, victim);
    unlink(p);
    free(p);
    EXPECT_FAIL(victim, "does not exist");
}
END_TEST

/* ---- PyTorch .bin ---- */

/* Replace the sample's pytorch_model.bin with a fixture file. */
static void use_bin_fixture(const char *fixture)
{
    copy_sample("glm2-tiny", "bin");
    char *dir = tu_path(tu_testdata(), "torchzip");
    char *fp = tu_path(dir, fixture);
    size_t n;
    uint8_t *b = tu_read_file(fp, &n);
    ck_assert_msg(b != NULL, "missing fixture %s", fp);
    char *p = tu_path(src, "pytorch_model.bin");
    tu_write_file(p, b, n);
    free(p);
    free(b);
    free(fp);
    free(dir);
}

/* Wrap raw pickle bytes into a minimal stored zip (archive/data.pkl) as pytorch_model.bin. */
static void put16(FILE *f, unsigned v) { fputc(v & 255, f), fputc((v >> 8) & 255, f); }
static void put32(FILE *f, uint32_t v) { put16(f, v & 0xffff), put16(f, v >> 16); }
static void use_pickle_fixture(const char *fixture)
{
    copy_sample("glm2-tiny", "bin");
    char *dir = tu_path(tu_testdata(), "torchzip");
    char *fp = tu_path(dir, fixture);
    size_t n;
    uint8_t *pk = tu_read_file(fp, &n);
    ck_assert_msg(pk != NULL, "missing fixture %s", fp);
    char *p = tu_path(src, "pytorch_model.bin");
    FILE *f = fopen(p, "wb");
    const char *name = "archive/data.pkl";
    uint16_t nl = (uint16_t)strlen(name);
    uint32_t crc = (uint32_t)crc32(0, pk, (uInt)n);
    put32(f, 0x04034b50), put16(f, 20), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0);
    put32(f, crc), put32(f, (uint32_t)n), put32(f, (uint32_t)n), put16(f, nl), put16(f, 0);
    fwrite(name, 1, nl, f);
    fwrite(pk, 1, n, f);
    long cd = ftell(f);
    put32(f, 0x02014b50), put16(f, 20), put16(f, 20), put16(f, 0), put16(f, 0), put16(f, 0);
    put16(f, 0), put32(f, crc), put32(f, (uint32_t)n), put32(f, (uint32_t)n), put16(f, nl);
    put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0), put32(f, 0), put32(f, 0);
    fwrite(name, 1, nl, f);
    long cd_end = ftell(f);
    put32(f, 0x06054b50), put16(f, 0), put16(f, 0), put16(f, 1), put16(f, 1);
    put32(f, (uint32_t)(cd_end - cd)), put32(f, (uint32_t)cd), put16(f, 0);
    fclose(f);
    free(p);
    free(pk);
    free(fp);
    free(dir);
}

START_TEST(pickle_os_system)
{
    use_bin_fixture("evil_os_system.bin");
    EXPECT_FAIL("pytorch_model.bin", "os.system");
}
END_TEST

START_TEST(pickle_posix_system)
{
    use_bin_fixture("evil_posix_system.bin");
    EXPECT_FAIL("pytorch_model.bin", "system");
}
END_TEST

START_TEST(pickle_eval)
{
    use_pickle_fixture("evil_eval.pkl");
    EXPECT_FAIL("pytorch_model.bin", "eval");
}
END_TEST

START_TEST(pickle_deep_nesting)
{
    use_pickle_fixture("deep_nest.pkl");
    EXPECT_FAIL("pytorch_model.bin");
}
END_TEST

START_TEST(bin_legacy)
{
    use_bin_fixture("legacy.bin");
    EXPECT_FAIL("pytorch_model.bin", "legacy");
}
END_TEST

START_TEST(bin_short_storage)
{
    use_bin_fixture("short_storage.bin");
    EXPECT_FAIL("pytorch_model.bin");
}
END_TEST

START_TEST(bin_corrupt_deflate)
{
    use_bin_fixture("deflated_corrupt.bin");
    EXPECT_FAIL("pytorch_model.bin");
}
END_TEST

START_TEST(bin_truncated)
{
    use_bin_fixture("truncated.bin");
    EXPECT_FAIL("pytorch_model.bin");
}
END_TEST

START_TEST(bin_torchscript)
{
    use_bin_fixture("torchscript.pt");
    EXPECT_FAIL("pytorch_model.bin", "TorchScript");
}
END_TEST

/* ---- commands, exit codes, integrity ---- */

START_TEST(usage_and_help)
{
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s'", tu_bin()), 2);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' frobnicate", tu_bin()), 2);
    ck_assert_ptr_nonnull(strstr(t, "not a glmq command"));
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' --version", tu_bin()), 0);
    ck_assert_ptr_nonnull(strstr(t, "glmq 0."));
    free(t);
    const char *cmds[] = {"convert", "info", "check", "bench"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(tu_run(&t, "'%s' %s --help", tu_bin(), cmds[i]), 0);
        ck_assert_ptr_nonnull(strstr(t, "usage: glmq"));
        free(t);
    }
    ck_assert_int_eq(tu_run(&t, "'%s' convert", tu_bin()), 2);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' convert x -o y --type int3", tu_bin()), 2);
    ck_assert_ptr_nonnull(strstr(t, "int3"));
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' convert x -o y --threads 0", tu_bin()), 2);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' info --bogus", tu_bin()), 2);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' check /nonexistent.glmq", tu_bin()), 1);
    ck_assert_ptr_nonnull(strstr(t, "glmq: error: cannot open '/nonexistent.glmq'"));
    free(t);
}
END_TEST

/* convert, info --json, check; then flip one byte of every tensor in turn: check names it. */
START_TEST(check_detects_flips)
{
    copy_sample("glm2-tiny", "st");
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s' --quiet", tu_bin(), src, out), 0);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' check '%s'", tu_bin(), out), 0);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' info --json '%s' 2>/dev/null", tu_bin(), out), 0);
    cJSON *j = cJSON_Parse(t);
    free(t);
    ck_assert_ptr_nonnull(j);
    cJSON *tensors = cJSON_GetObjectItemCaseSensitive(j, "tensors");
    ck_assert_int_gt(cJSON_GetArraySize(tensors), 10);
    size_t n;
    uint8_t *orig = tu_read_file(out, &n);
    char *bad = tu_path(tmpdir, "bad.glmq");
    /* locate each tensor through the reader, hash its bytes here, flip a byte, run check */
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(out, &p, NULL), GLMQ_OK);
    cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, tensors)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        glmq_tensor_info ti;
        ck_assert_int_eq(glmq_pack_find(p, name, &ti, NULL), GLMQ_OK);
        ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(e, "type"));
        ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(e, "shape"));
        XXH3_state_t *h = XXH3_createState();
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, ti.data, ti.data_size);
        if (ti.scales) XXH3_64bits_update(h, ti.scales, ti.scales_size);
        char hx[17];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)XXH3_64bits_digest(h));
        XXH3_freeState(h);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "checksum")->valuestring, hx);
        size_t foff = (size_t)cJSON_GetObjectItemCaseSensitive(e, "data_offset")->valuedouble;
        ck_assert_uint_eq(foff, ti.data_offset);
        orig[foff + ti.data_size / 2] ^= 0x10;
        tu_write_file(bad, orig, n);
        orig[foff + ti.data_size / 2] ^= 0x10;
        ck_assert_int_eq(tu_run(&t, "'%s' check '%s'", tu_bin(), bad), 1);
        ck_assert_msg(strstr(t, name) && strstr(t, "checksum"), "check output: %s", t);
        free(t);
        i++;
    }
    ck_assert_int_gt(i, 10);
    glmq_pack_close(p);
    cJSON_Delete(j);
    free(orig);
    free(bad);
}
END_TEST

/* Conversion into a "full disk" (RLIMIT_FSIZE) fails cleanly and leaves nothing; an existing
 * output stays untouched. */
START_TEST(full_disk_leaves_nothing)
{
    copy_sample("glm2-tiny", "st");
    char *t = NULL;
    ck_assert_int_eq(
        tu_run(&t, "ulimit -f 64; '%s' convert '%s' -o '%s' --quiet --type f16", tu_bin(), src,
               out),
        1);
    ck_assert_msg(strstr(t, "glmq: error:") != NULL, "%s", t);
    free(t);
    ck_assert(!tu_file_exists(out));
    ck_assert_int_eq(tu_count_entries(tmpdir), 1);
    /* pre-existing output untouched */
    tu_write_file(out, "precious", 8);
    ck_assert_int_eq(
        tu_run(&t, "ulimit -f 64; '%s' convert '%s' -o '%s' --quiet --type f16", tu_bin(), src,
               out),
        1);
    free(t);
    size_t n;
    uint8_t *b = tu_read_file(out, &n);
    ck_assert_uint_eq(n, 8);
    ck_assert_mem_eq(b, "precious", 8);
    free(b);
    ck_assert_int_eq(tu_count_entries(tmpdir), 2);
}
END_TEST

/* IEEE binary16 bits to double (exact). */
static double half_to_double(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m | 1024, e - 25);
    return (h >> 15) ? -v : v;
}

/* The F16 weight `name` of src/model.safetensors as doubles (malloc'd, *n elements). */
static double *st_weight(const char *name, int64_t *n)
{
    char *p = st_file();
    size_t sz;
    uint8_t *b = tu_read_file(p, &sz);
    ck_assert_ptr_nonnull(b);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    cJSON *h = cJSON_ParseWithLength((char *)b + 8, hl);
    cJSON *e = entry(h, name);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F16");
    const size_t o0 = (size_t)off0(e), o1 = (size_t)off1(e);
    *n = (int64_t)(o1 - o0) / 2;
    double *w = malloc((size_t)*n * sizeof *w);
    const uint8_t *d = b + 8 + hl + o0;
    for (int64_t i = 0; i < *n; i++)
        w[i] = half_to_double((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
    cJSON_Delete(h);
    free(b);
    free(p);
    return w;
}

/* The per-tensor summary `glmq convert` printed for `name` matches the error statistics of
 * PyTorch's decision-6 codes and scales (samples/glm2-tiny/golden) against the source weights,
 * to the printed precision (5 significant digits; SQNR to 0.01 dB). */
static void check_summary_line(const char *text, const char *name, const char *type,
                               const char *codes_file, const char *scales_file)
{
    char key[300];
    snprintf(key, sizeof key, "%s ", name);
    const char *line = strstr(text, key);
    ck_assert_msg(line != NULL, "no summary line for %s", name);
    char ty[16];
    double rms, mx, sqnr;
    ck_assert_int_eq(sscanf(line + strlen(key), "%15s %lf %lf %lf", ty, &rms, &mx, &sqnr), 4);
    ck_assert_str_eq(ty, type);
    int64_t n;
    double *w = st_weight(name, &n);
    char dt[8];
    int nd;
    int64_t sh[4];
    size_t nb;
    char *cp = tu_sample_path("glm2-tiny", codes_file);
    char *sp = tu_sample_path("glm2-tiny", scales_file);
    int8_t *q = tu_npy_load(cp, dt, &nd, sh, &nb);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(dt, "|i1");
    ck_assert_int_eq(sh[0] * sh[1], n);
    const int64_t cols = sh[1];
    uint16_t *sc = tu_npy_load(sp, dt, &nd, sh, &nb);
    ck_assert_ptr_nonnull(sc);
    ck_assert_str_eq(dt, "<u2");
    double se = 0, sw = 0, me = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = q[i] * half_to_double(sc[i / cols]) - w[i];
        se += e * e;
        sw += w[i] * w[i];
        if (fabs(e) > me) me = fabs(e);
    }
    const double want_rms = sqrt(se / (double)n), want_sqnr = 10 * log10(sw / se);
    ck_assert_msg(fabs(rms - want_rms) <= 1e-4 * want_rms, "%s rms err %.5g, torch codes %.5g",
                  name, rms, want_rms);
    ck_assert_msg(fabs(mx - me) <= 1e-4 * me, "%s max err %.5g, torch codes %.5g", name, mx, me);
    ck_assert_msg(fabs(sqnr - want_sqnr) <= 0.006, "%s SQNR %.2f, torch codes %.3f", name, sqnr,
                  want_sqnr);
    free(q);
    free(sc);
    free(cp);
    free(sp);
    free(w);
}

static void check_summary(const char *text, const char *type)
{
    char *mp = tu_sample_path("glm2-tiny", "golden/manifest.json");
    char *mt = (char *)tu_read_file(mp, NULL);
    cJSON *m = cJSON_Parse(mt);
    const cJSON *e;
    int checked = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "quantization"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "tensor");
        if (!cJSON_IsString(name)) continue; /* the synthetic edge-case matrix */
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, type);
        char cf[128], sf[128];
        snprintf(cf, sizeof cf, "golden/%s",
                 cJSON_GetObjectItemCaseSensitive(g, "codes")->valuestring);
        snprintf(sf, sizeof sf, "golden/%s",
                 cJSON_GetObjectItemCaseSensitive(g, "scales")->valuestring);
        check_summary_line(text, name->valuestring, type, cf, sf);
        checked++;
    }
    ck_assert_int_eq(checked, 4);
    cJSON_Delete(m);
    free(mt);
    free(mp);
}

START_TEST(summary_and_warnings)
{
    copy_sample("glm2-tiny", "st");
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s'", tu_bin(), src, out), 0);
    ck_assert_ptr_nonnull(strstr(t, "SQNR"));
    ck_assert_ptr_nonnull(strstr(t, "input"));
    ck_assert_ptr_nonnull(strstr(t, QKV0));
    /* not a TTY: no progress bar */
    ck_assert_ptr_null(strstr(t, "\r"));
    check_summary(t, "int4");
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s' --type int8", tu_bin(), src, out), 0);
    check_summary(t, "int8");
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s' --quiet", tu_bin(), src, out), 0);
    ck_assert_str_eq(t, "");
    free(t);
}
END_TEST

/* info: a short summary by default (fits a terminal, no tensor table); --verbose adds the config,
 * the source files and every tensor. Shape values are those of the sample's config.json. */
START_TEST(info_summary_and_verbose)
{
    copy_sample("glm2-tiny", "st");
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s' --quiet --type int4", tu_bin(), src,
                            out),
                     0);
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' info '%s'", tu_bin(), out), 0);
    int lines = 0;
    for (const char *c = t; *c; c++) lines += *c == '\n';
    ck_assert_int_le(lines, 10);
    ck_assert_ptr_nonnull(strstr(t, "chatglm2: 2 layers, hidden 128, 4 heads x 32 (2 KV groups), "
                                    "FFN 172, vocab 1216"));
    ck_assert_ptr_nonnull(strstr(t, "weights:        int4"));
    ck_assert_ptr_nonnull(strstr(t, "tensors:        17, "));
    ck_assert_ptr_nonnull(strstr(t, " 8 int4 ("));
    ck_assert_ptr_nonnull(strstr(t, "source:         safetensors, 4 files"));
    ck_assert_ptr_null(strstr(t, "source files:"));
    ck_assert_ptr_null(strstr(t, QKV0));
    free(t);
    ck_assert_int_eq(tu_run(&t, "'%s' info --verbose '%s'", tu_bin(), out), 0);
    ck_assert_ptr_nonnull(strstr(t, "source files:"));
    ck_assert_ptr_nonnull(strstr(t, "model.safetensors"));
    ck_assert_ptr_nonnull(strstr(t, QKV0));
    ck_assert_ptr_nonnull(strstr(t, "\"rope_ratio\":"));
    free(t);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *bad = tcase_create("bad_input");
    tcase_add_checked_fixture(bad, setup, teardown);
    tcase_set_timeout(bad, 120);
    tcase_add_test(bad, st_truncated);
    tcase_add_test(bad, st_header_past_end);
    tcase_add_test(bad, st_not_json);
    tcase_add_test(bad, st_overlap);
    tcase_add_test(bad, st_out_of_range);
    tcase_add_test(bad, st_shape_overflow);
    tcase_add_test(bad, st_dtype_size_mismatch);
    tcase_add_test(bad, st_unknown_dtype);
    tcase_add_test(bad, missing_tensor);
    tcase_add_test(bad, wrong_shape_for_config);
    tcase_add_test(bad, config_not_json);
    tcase_add_test(bad, config_inconsistent);
    tcase_add_test(bad, config_missing);
    tcase_add_test(bad, index_missing_shard);
    tcase_add_test(bad, pickle_os_system);
    tcase_add_test(bad, pickle_posix_system);
    tcase_add_test(bad, pickle_eval);
    tcase_add_test(bad, pickle_deep_nesting);
    tcase_add_test(bad, bin_legacy);
    tcase_add_test(bad, bin_short_storage);
    tcase_add_test(bad, bin_corrupt_deflate);
    tcase_add_test(bad, bin_truncated);
    tcase_add_test(bad, bin_torchscript);
    suite_add_tcase(s, bad);
    TCase *cmd = tcase_create("commands");
    tcase_add_checked_fixture(cmd, setup, teardown);
    tcase_set_timeout(cmd, 120);
    tcase_add_test(cmd, usage_and_help);
    tcase_add_test(cmd, check_detects_flips);
    tcase_add_test(cmd, full_disk_leaves_nothing);
    tcase_add_test(cmd, summary_and_warnings);
    tcase_add_test(cmd, info_summary_and_verbose);
    suite_add_tcase(s, cmd);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
