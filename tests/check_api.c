/*
 * check_api.c - the public API of src/glmq.h for running and checking a model.
 *
 * Goldens are independent of glmq: PyTorch's logits and perplexities and the sentencepiece
 * library's token ids, all under samples/<model>/golden (manifest.json); probabilities of the
 * sampler are computed here in double from the logits the test chose. Where the API wraps an
 * internal path (perplexity, drift), its results must equal that path's to the bit; where it
 * promises an invariant (incremental evaluation, determinism of a seed), the invariant is
 * checked bit for bit. Bad arguments must give an error with a message, never a crash.
 * The last test runs samples/generate.c (built against the public library only).
 */
#include "glmq.h"
#include "testutil.h"
#include "verify/metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* check_forward.c's tolerance against torch: max|diff| <= REL_TOL * max|golden logit|, and the
 * strict gate its reference forward meets. */
#define REL_TOL 1e-4
#define STRICT_TOL 1e-5

static const char *models[] = {"glm2-tiny", "glm1-tiny"};
static const char *policies[] = {"f16", "int8", "int4"};

static char *tmpdir;
static char *packs[2][3]; /* [model][-, int8, int4]: converted through the public API */

static void make_packs(void)
{
    tmpdir = tu_mkdtemp();
    ck_assert_ptr_nonnull(tmpdir);
    for (int m = 0; m < 2; m++)
        for (int t = 1; t < 3; t++) {
            glmq_err err = {0};
            packs[m][t] = tu_convert_sample(tmpdir, models[m],
                                            t == 1 ? GLMQ_TYPE_INT8 : GLMQ_TYPE_INT4, &err);
            ck_assert_msg(packs[m][t] != NULL, "%s", err.msg);
        }
}

static void remove_packs(void)
{
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            free(packs[m][t]);
            packs[m][t] = NULL;
        }
    tu_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}

// --- helpers -------------------------------------------------------------------------------

static cJSON *manifest(const char *model)
{
    cJSON *j = tu_manifest(model);
    ck_assert_msg(j != NULL, "cannot read or parse samples/%s/golden/manifest.json", model);
    return j;
}

static int64_t jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "manifest: no number '%s'", key);
    return (int64_t)v->valuedouble;
}

/* A golden .npy of the model: malloc'd data, shape in sh. */
static void *golden_npy(const char *model, const char *file, const char *dtype, int64_t sh[4],
                        int *nd)
{
    char name[160];
    snprintf(name, sizeof name, "golden/%s", file);
    char *p = tu_sample_path(model, name);
    char dt[8];
    size_t nb;
    void *x = tu_npy_load(p, dt, nd, sh, &nb);
    ck_assert_msg(x != NULL, "cannot load %s", p);
    ck_assert_str_eq(dt, dtype);
    free(p);
    return x;
}

static glmq_model *open_model(const char *path)
{
    glmq_model *m = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_open(path, &m, &err) == GLMQ_OK, "open %s: %s", path, err.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

static glmq_model_info info_of(const glmq_model *m)
{
    glmq_model_info info;
    glmq_err err = {0};
    ck_assert_msg(glmq_model_get_info(m, &info, &err) == GLMQ_OK, "%s", err.msg);
    return info;
}

/* Ids of `text` through glmq_tokenize (count, then fill): malloc'd, *n ids. */
static int32_t *tokenize(const glmq_model *m, const char *text, size_t len, unsigned flags,
                         size_t *n)
{
    glmq_err err = {0};
    ck_assert_msg(glmq_tokenize(m, text, len, flags, NULL, 0, n, &err) == GLMQ_OK, "%s",
                  err.msg);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t n2 = 0;
    ck_assert_msg(glmq_tokenize(m, text, len, flags, ids, *n, &n2, &err) == GLMQ_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(n2, *n);
    return ids;
}

/* The whole text of samples/text/<name>.txt (malloc'd, *len bytes). */
static char *sample_text(const char *name, size_t *len)
{
    char rel[64];
    snprintf(rel, sizeof rel, "text/%s.txt", name);
    char *p = tu_path(tu_samples(), rel);
    char *t = (char *)tu_read_file(p, len);
    ck_assert_msg(t != NULL, "cannot read %s", p);
    free(p);
    return t;
}

/* max|a - g| and max|g| over count floats (all of a finite). */
static void max_diff(const float *a, const float *g, int64_t count, double *e, double *mg)
{
    *e = 0;
    *mg = 0;
    for (int64_t i = 0; i < count; i++) {
        ck_assert_msg(isfinite(a[i]), "non-finite logit at %lld", (long long)i);
        double d = fabs((double)a[i] - (double)g[i]);
        if (d > *e) *e = d;
        if (fabs(g[i]) > *mg) *mg = fabs(g[i]);
    }
}

/* The manifest's logit sequences: ids (malloc'd) and the golden file of a policy. */
typedef struct {
    char name[32];
    int32_t *ids;
    int64_t n;
    char logits[3][64];
} gseq;

static gseq *sequences(const cJSON *man, int *count)
{
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(man, "sequences"), *s;
    int n = cJSON_GetArraySize(seqs), k = 0;
    ck_assert_int_gt(n, 0);
    gseq *out = calloc((size_t)n, sizeof *out);
    cJSON_ArrayForEach(s, seqs)
    {
        gseq *g = &out[k++];
        snprintf(g->name, sizeof g->name, "%s",
                 cJSON_GetObjectItemCaseSensitive(s, "name")->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(s, "ids"), *e;
        g->ids = malloc((size_t)cJSON_GetArraySize(ids) * sizeof *g->ids);
        cJSON_ArrayForEach(e, ids) g->ids[g->n++] = (int32_t)e->valuedouble;
        const cJSON *lg = cJSON_GetObjectItemCaseSensitive(s, "logits");
        for (int t = 0; t < 3; t++)
            snprintf(g->logits[t], sizeof g->logits[t], "%s",
                     cJSON_GetObjectItemCaseSensitive(lg, policies[t])->valuestring);
    }
    *count = n;
    return out;
}

static void free_sequences(gseq *s, int n)
{
    for (int i = 0; i < n; i++) free(s[i].ids);
    free(s);
}

static glmq_session *new_session(const glmq_model *m, glmq_kernel_mode k, int64_t max_tokens,
                                 int threads)
{
    glmq_session_opts o;
    glmq_session_opts_default(&o);
    o.kernels = k;
    o.max_tokens = max_tokens;
    o.threads = threads;
    glmq_session *s = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_session_create(m, &o, &s, &err) == GLMQ_OK, "%s", err.msg);
    ck_assert_int_eq(glmq_session_max_tokens(s), max_tokens);
    ck_assert_int_eq(glmq_session_n_tokens(s), 0);
    return s;
}

// --- model ---------------------------------------------------------------------------------

/* info agrees with the manifest (special ids from the tokenizer PyTorch used) and the golden
 * logits' width; the pack reports its own identity and weight type. */
START_TEST(model_info)
{
    const char *model = models[_i];
    cJSON *man = manifest(model);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(man, "special_ids");
    char *dir = tu_sample_path(model, "st");
    glmq_model *m = open_model(dir), *q = open_model(packs[_i][2]);
    glmq_model_info a = info_of(m), b = info_of(q);
    ck_assert_str_eq(a.architecture, _i == 0 ? "chatglm2" : "chatglm");
    ck_assert_str_eq(a.source, "checkpoint");
    ck_assert_str_eq(a.weight_type, "f16");
    ck_assert_str_eq(b.source, "glmq");
    ck_assert_str_eq(b.weight_type, "int4");
    ck_assert_int_eq(a.tok_gmask, jint(sp, "gmask"));
    ck_assert_int_eq(a.tok_sop, jint(sp, "sop"));
    ck_assert_int_eq(a.tok_eop, jint(sp, "eop"));
    int ns;
    gseq *seqs = sequences(man, &ns);
    int64_t sh[4];
    int nd;
    float *g = golden_npy(model, seqs[0].logits[0], "<f4", sh, &nd);
    ck_assert_int_eq(a.vocab, sh[1]);
    ck_assert_int_eq(b.vocab, sh[1]);
    ck_assert_int_gt(a.ctx, 0);
    ck_assert_int_eq(a.n_layers, b.n_layers);
    ck_assert_int_eq(a.hidden, b.hidden);
    ck_assert(a.ident != b.ident);
    glmq_model *m2 = open_model(dir);
    ck_assert(info_of(m2).ident == a.ident);
    free(g);
    free_sequences(seqs, ns);
    glmq_model_close(m2);
    glmq_model_close(q);
    glmq_model_close(m);
    free(dir);
    cJSON_Delete(man);
}
END_TEST

// --- tokens --------------------------------------------------------------------------------

/* glmq_tokenize gives the sentencepiece library's ids for every case of the manifest, from the
 * checkpoint and from a pack (its embedded tokenizer); GLMQ_TOKENIZE_PROMPT adds the framing. */
START_TEST(tokenize_goldens)
{
    const char *model = models[_i];
    cJSON *man = manifest(model);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(man, "special_ids");
    const int32_t gmask = (int32_t)jint(sp, "gmask"), sop = (int32_t)jint(sp, "sop");
    char *dir = tu_sample_path(model, "st");
    glmq_model *ms[2] = {open_model(dir), open_model(packs[_i][1])};
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(man, "tokenizer"), "cases");
    const cJSON *c;
    int checked = 0;
    cJSON_ArrayForEach(c, cases)
    {
        size_t len;
        char *text;
        const cJSON *tf = cJSON_GetObjectItemCaseSensitive(c, "text_file");
        if (cJSON_IsString(tf)) {
            char *p = tu_path(tu_samples(), tf->valuestring + strlen("samples/"));
            text = (char *)tu_read_file(p, &len);
            ck_assert_ptr_nonnull(text);
            free(p);
        } else {
            text = strdup(cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring);
            len = strlen(text);
        }
        int64_t want_n = jint(c, "n_ids"), sh[4] = {0};
        int nd;
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "file")->valuestring;
        int32_t *want = want_n ? golden_npy(model, file, "<i4", sh, &nd) : NULL;
        ck_assert_int_eq(sh[0], want_n);
        for (int k = 0; k < 2; k++) {
            size_t n;
            int32_t *ids = tokenize(ms[k], text, len, 0, &n);
            ck_assert_int_eq((int64_t)n, want_n);
            if (n) ck_assert_mem_eq(ids, want, n * sizeof *ids);
            free(ids);
            /* framing: ChatGLM2/3 [gMASK] sop before the text, ChatGLM-6B after it */
            size_t np;
            int32_t *pids = tokenize(ms[k], text, len, GLMQ_TOKENIZE_PROMPT, &np);
            ck_assert_uint_eq(np, n + 2);
            size_t at = _i == 0 ? 0 : n, text_at = _i == 0 ? 2 : 0;
            ck_assert_int_eq(pids[at], gmask);
            ck_assert_int_eq(pids[at + 1], sop);
            if (n) ck_assert_mem_eq(pids + text_at, want, n * sizeof *pids);
            free(pids);
        }
        free(want);
        free(text);
        checked++;
    }
    ck_assert_int_ge(checked, 20);
    glmq_model_close(ms[0]);
    glmq_model_close(ms[1]);
    free(dir);
    cJSON_Delete(man);
}
END_TEST

/* Buffers: a size query, a buffer one short (error, count still reported, buffer untouched),
 * an exact fit; detokenize gives the text back (the sample texts round-trip on glm2-tiny's
 * byte-fallback tokenizer) and measures the same way. */
START_TEST(token_buffers)
{
    char *dir = tu_sample_path("glm2-tiny", "st");
    glmq_model *m = open_model(dir);
    const char *names[] = {"eval_en", "eval_zh"};
    for (int t = 0; t < 2; t++) {
        size_t len;
        char *text = sample_text(names[t], &len);
        size_t n;
        int32_t *ids = tokenize(m, text, len, 0, &n);
        ck_assert_uint_gt(n, 100);
        glmq_err err = {0};
        int32_t *small = malloc(n * sizeof *small);
        for (size_t i = 0; i < n; i++) small[i] = -7;
        size_t got = 0;
        ck_assert_int_eq(glmq_tokenize(m, text, len, 0, small, n - 1, &got, &err),
                         GLMQ_E_INVALID);
        ck_assert_uint_eq(got, n);
        ck_assert_ptr_nonnull(strstr(err.msg, "buffer too small"));
        for (size_t i = 0; i < n; i++) ck_assert_int_eq(small[i], -7);
        free(small);

        size_t tl = 0;
        ck_assert_int_eq(glmq_detokenize(m, ids, n, NULL, 0, &tl, &err), GLMQ_OK);
        ck_assert_uint_eq(tl, len);
        char *back = malloc(tl + 1);
        memset(back, 'x', tl + 1);
        ck_assert_int_eq(glmq_detokenize(m, ids, n, back, tl, &tl, &err), GLMQ_E_INVALID);
        ck_assert_int_eq(back[0], 'x');
        ck_assert_int_eq(glmq_detokenize(m, ids, n, back, tl + 1, &tl, &err), GLMQ_OK);
        ck_assert_mem_eq(back, text, len);
        ck_assert_int_eq(back[tl], 0);
        free(back);
        free(ids);
        free(text);
    }
    glmq_model_close(m);
    free(dir);
}
END_TEST

// --- sessions ------------------------------------------------------------------------------

/* Session logits equal PyTorch's (check_forward.c's tolerance) for every manifest sequence:
 * _i = model * 3 + policy (f16: the checkpoint directory; int8/int4: the converted packs
 * against the golden of the same policy), on the reference kernels (also under the strict
 * gate) and the exact ones. */
START_TEST(session_matches_torch)
{
    const int mi = _i / 3, pol = _i % 3;
    const char *model = models[mi];
    char *dir = tu_sample_path(model, "st");
    glmq_model *m = open_model(pol == 0 ? dir : packs[mi][pol]);
    const int64_t V = info_of(m).vocab;
    cJSON *man = manifest(model);
    int ns;
    gseq *seqs = sequences(man, &ns);
    const glmq_kernel_mode modes[2] = {GLMQ_KERNELS_REFERENCE, GLMQ_KERNELS_EXACT};
    for (int s = 0; s < ns; s++) {
        int64_t sh[4];
        int nd;
        float *g = golden_npy(model, seqs[s].logits[pol], "<f4", sh, &nd);
        ck_assert_int_eq(sh[0], seqs[s].n);
        ck_assert_int_eq(sh[1], V);
        float *lg = malloc((size_t)(seqs[s].n * V) * sizeof *lg);
        for (int k = 0; k < 2; k++) {
            glmq_session *ss = new_session(m, modes[k], seqs[s].n, 2);
            glmq_err err = {0};
            ck_assert_msg(glmq_session_eval(ss, seqs[s].ids, seqs[s].n, lg, &err) == GLMQ_OK,
                          "%s", err.msg);
            ck_assert_int_eq(glmq_session_n_tokens(ss), seqs[s].n);
            double e, mg;
            max_diff(lg, g, seqs[s].n * V, &e, &mg);
            printf("# %s %s %s %s kernels: max|diff| %.3g, rel %.3g\n", model, policies[pol],
                   seqs[s].name, glmq_kernel_mode_name(modes[k]), e, e / mg);
            ck_assert_msg(e <= REL_TOL * mg, "%s %s %s: %g > %g * %g", model, policies[pol],
                          seqs[s].name, e, REL_TOL, mg);
            if (modes[k] == GLMQ_KERNELS_REFERENCE)
                ck_assert_msg(e <= STRICT_TOL * mg, "%s %s %s: %g > %g * %g (strict)", model,
                              policies[pol], seqs[s].name, e, STRICT_TOL, mg);
            glmq_session_free(ss);
        }
        free(lg);
        free(g);
    }
    free_sequences(seqs, ns);
    cJSON_Delete(man);
    glmq_model_close(m);
    free(dir);
}
END_TEST

/* Incremental evaluation over the KV cache equals one call, bit for bit: the prompt, then one
 * id per call, then chunks of 3; and again after a reset. _i = model * 3 + kernel mode, on the
 * INT4 pack (the fast kernels' own case). */
START_TEST(incremental_equals_oneshot)
{
    const int mi = _i / 3;
    const glmq_kernel_mode mode = (glmq_kernel_mode)(_i % 3);
    const char *model = models[mi];
    glmq_model *m = open_model(packs[mi][2]);
    const glmq_model_info info = info_of(m);
    const int64_t V = info.vocab;
    cJSON *man = manifest(model);
    int ns;
    gseq *seqs = sequences(man, &ns);
    glmq_err err = {0};
    for (int s = 0; s < ns; s++) {
        const int64_t n = seqs[s].n;
        const int32_t *ids = seqs[s].ids;
        /* ChatGLM-6B: the first call holds the bidirectional context up to <sop> */
        int64_t prompt = 3;
        if (mi == 1) {
            prompt = 0;
            while (prompt < n && ids[prompt] != info.tok_sop) prompt++;
            ck_assert_int_lt(prompt, n);
            prompt++;
        }
        glmq_session *ss = new_session(m, mode, n + 4, 2);
        float *full = malloc((size_t)(n * V) * sizeof *full);
        float *inc = malloc((size_t)(n * V) * sizeof *inc);
        ck_assert_msg(glmq_session_eval(ss, ids, n, full, &err) == GLMQ_OK, "%s", err.msg);
        for (int split = 0; split < 3; split++) {
            glmq_session_reset(ss);
            ck_assert_int_eq(glmq_session_n_tokens(ss), 0);
            memset(inc, 0, (size_t)(n * V) * sizeof *inc);
            for (int64_t i = 0; i < n;) {
                int64_t k = i == 0 ? prompt : split == 0 ? 1 : split == 1 ? 3 : n - i;
                if (i + k > n) k = n - i;
                ck_assert_msg(glmq_session_eval(ss, ids + i, k, inc + i * V, &err) == GLMQ_OK,
                              "%s", err.msg);
                i += k;
                ck_assert_int_eq(glmq_session_n_tokens(ss), i);
            }
            ck_assert_msg(!memcmp(inc, full, (size_t)(n * V) * sizeof *inc),
                          "%s %s %s split %d differs", model, seqs[s].name,
                          glmq_kernel_mode_name(mode), split);
        }
        /* NULL logits: the cache still advances and the next logits are the same */
        glmq_session_reset(ss);
        ck_assert_int_eq(glmq_session_eval(ss, ids, n - 1, NULL, &err), GLMQ_OK);
        ck_assert_int_eq(glmq_session_eval(ss, ids + n - 1, 1, inc, &err), GLMQ_OK);
        ck_assert_mem_eq(inc, full + (n - 1) * V, (size_t)V * sizeof *inc);
        free(full);
        free(inc);
        glmq_session_free(ss);
    }
    free_sequences(seqs, ns);
    cJSON_Delete(man);
    glmq_model_close(m);
}
END_TEST

/* Threads 1 and 3 give the same logits as 2 (the fast kernels on the INT4 pack). */
START_TEST(threads_identical)
{
    glmq_model *m = open_model(packs[0][2]);
    const int64_t V = info_of(m).vocab;
    cJSON *man = manifest("glm2-tiny");
    int ns;
    gseq *seqs = sequences(man, &ns);
    const int64_t n = seqs[0].n;
    float *ref = NULL;
    for (int th = 1; th <= 3; th++) {
        glmq_session *ss = new_session(m, GLMQ_KERNELS_FAST, n, th);
        float *lg = malloc((size_t)(n * V) * sizeof *lg);
        glmq_err err = {0};
        ck_assert_int_eq(glmq_session_eval(ss, seqs[0].ids, n, lg, &err), GLMQ_OK);
        if (!ref) {
            ref = lg;
        } else {
            ck_assert_mem_eq(lg, ref, (size_t)(n * V) * sizeof *lg);
            free(lg);
        }
        glmq_session_free(ss);
    }
    free(ref);
    free_sequences(seqs, ns);
    cJSON_Delete(man);
    glmq_model_close(m);
}
END_TEST

/* GLMQ_OPEN_LOAD (--no-mmap): the pack and its GGUF export read into memory give the mapped
 * model's logits bit for bit (and so torch's, within session_matches_torch's tolerance), and
 * the file is not used after the open: truncating it to 0 bytes (a mapped model would fault on
 * its next page) changes nothing. Unknown flags are refused. _i = 0: .glmq, 1: GGUF. */
START_TEST(open_load)
{
    char *path = tu_path(tmpdir, _i ? "load.gguf" : "load.glmq");
    glmq_err err = {0};
    if (_i)
        ck_assert_msg(glmq_export_gguf(packs[0][2], path, NULL, NULL, &err) == GLMQ_OK, "%s",
                      err.msg);
    else
        ck_assert_int_eq(tu_run(NULL, "cp '%s' '%s'", packs[0][2], path), 0);
    cJSON *man = manifest("glm2-tiny");
    int ns;
    gseq *seqs = sequences(man, &ns);
    const int64_t n = seqs[0].n;
    float *lg[2] = {NULL, NULL};
    for (int load = 0; load < 2; load++) {
        glmq_model *m = NULL;
        ck_assert_msg(glmq_model_open_flags(path, load ? GLMQ_OPEN_LOAD : 0, &m, &err) == GLMQ_OK,
                      "%s", err.msg);
        if (load) ck_assert_int_eq(truncate(path, 0), 0);
        const int64_t V = info_of(m).vocab;
        lg[load] = malloc((size_t)(n * V) * sizeof(float));
        glmq_session *ss = new_session(m, GLMQ_KERNELS_FAST, n, 2);
        ck_assert_msg(glmq_session_eval(ss, seqs[0].ids, n, lg[load], &err) == GLMQ_OK, "%s",
                      err.msg);
        if (load) ck_assert_mem_eq(lg[0], lg[1], (size_t)(n * V) * sizeof(float));
        glmq_session_free(ss);
        glmq_model_close(m);
    }
    glmq_model *m = NULL;
    ck_assert_int_eq(glmq_model_open_flags(packs[0][2], 2u, &m, &err), GLMQ_E_INVALID);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown flags"));
    free(lg[0]);
    free(lg[1]);
    free_sequences(seqs, ns);
    cJSON_Delete(man);
    free(path);
}
END_TEST

// --- sampling ------------------------------------------------------------------------------

static glmq_sampler *new_sampler(double temp, double top_p, uint64_t seed, int64_t vocab)
{
    glmq_sampler_params p;
    glmq_sampler_params_default(&p);
    p.temperature = temp;
    p.top_p = top_p;
    p.seed = seed;
    glmq_sampler *s = NULL;
    glmq_err err = {0};
    ck_assert_msg(glmq_sampler_create(&p, vocab, &s, &err) == GLMQ_OK, "%s", err.msg);
    return s;
}

static int32_t draw(glmq_sampler *s, const float *logits)
{
    int32_t id = -1;
    glmq_err err = {0};
    ck_assert_msg(glmq_sampler_sample(s, logits, &id, &err) == GLMQ_OK, "%s", err.msg);
    return id;
}

/* Greedy is the argmax (lowest id on ties) of every golden logit row; a seed repeats its
 * sequence exactly, another seed does not. */
START_TEST(sampler_greedy_and_seeded)
{
    cJSON *man = manifest("glm2-tiny");
    int ns;
    gseq *seqs = sequences(man, &ns);
    int64_t sh[4];
    int nd;
    float *g = golden_npy("glm2-tiny", seqs[0].logits[0], "<f4", sh, &nd);
    const int64_t V = sh[1];
    glmq_sampler *gr = new_sampler(0, 1, 1, V);
    for (int64_t r = 0; r < sh[0]; r++) {
        const float *row = g + r * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        ck_assert_int_eq(draw(gr, row), best);
    }
    glmq_sampler_free(gr);
    gr = new_sampler(0, 1, 1, 5);
    const float tie[5] = {1, 3, 2, 3, -INFINITY};
    ck_assert_int_eq(draw(gr, tie), 1); /* the lowest id among equal maxima */
    glmq_sampler_free(gr);

    /* the logits of the first row scaled up so that sampling has a real choice */
    const double temps[2] = {0.8, 1.5}, tops[2] = {1.0, 0.9};
    for (int c = 0; c < 2; c++) {
        glmq_sampler *a = new_sampler(temps[c], tops[c], 42, V);
        glmq_sampler *b = new_sampler(temps[c], tops[c], 42, V);
        glmq_sampler *o = new_sampler(temps[c], tops[c], 43, V);
        int differ = 0;
        for (int k = 0; k < 200; k++) {
            const float *row = g + (k % sh[0]) * V;
            int32_t x = draw(a, row), y = draw(b, row), z = draw(o, row);
            ck_assert_int_eq(x, y);
            ck_assert(x >= 0 && x < V);
            differ += x != z;
        }
        printf("# T %.1f top-p %.1f: seeds 42 and 43 differ in %d of 200 draws\n", temps[c],
               tops[c], differ);
        ck_assert_int_gt(differ, 10);
        glmq_sampler_free(a);
        glmq_sampler_free(b);
        glmq_sampler_free(o);
    }
    free(g);
    free_sequences(seqs, ns);
    cJSON_Delete(man);
}
END_TEST

/* Frequencies follow softmax(logits / T) computed here in double, restricted by top-p to the
 * most probable ids whose mass first reaches p; masked (-inf) ids are never drawn. */
START_TEST(sampler_distribution)
{
    /* probabilities 0.5 0.25 0.125 0.0625 0.0625 at T = 1, and two masked ids */
    const float lg[7] = {(float)log(8.0), (float)log(4.0), -INFINITY, (float)log(2.0), 0.0f, 0.0f,
                         -INFINITY};
    const int N = 40000;
    const double temps[3] = {1.0, 2.0, 1.0}, tops[3] = {1.0, 1.0, 0.7};
    for (int c = 0; c < 3; c++) {
        double p[7], z = 0;
        for (int v = 0; v < 7; v++) z += p[v] = exp((double)lg[v] / temps[c]);
        for (int v = 0; v < 7; v++) p[v] /= z;
        if (tops[c] < 1) { /* ids 0 and 1 (0.5 + 0.25 >= 0.7), renormalized */
            for (int v = 2; v < 7; v++) p[v] = 0;
            z = p[0] + p[1];
            p[0] /= z;
            p[1] /= z;
        }
        glmq_sampler *s = new_sampler(temps[c], tops[c], 7 + (uint64_t)c, 7);
        int count[7] = {0};
        for (int k = 0; k < N; k++) count[draw(s, lg)]++;
        for (int v = 0; v < 7; v++) {
            double f = (double)count[v] / N, sd = sqrt(p[v] * (1 - p[v]) / N);
            ck_assert_msg(fabs(f - p[v]) <= 5 * sd + 1e-12, "case %d id %d: %.4f vs %.4f", c, v,
                          f, p[v]);
        }
        ck_assert_int_eq(count[2] + count[6], 0);
        glmq_sampler_free(s);
    }
}
END_TEST

// --- quality -------------------------------------------------------------------------------

/* Perplexity through the API: PyTorch's golden for both models and texts (check_metrics.c's
 * bounds: 1e-5 relative on the reference and exact kernels, 1e-3 on the fast ones), and equal
 * to the internal glmq_perplexity bit for bit. _i = model * 3 + policy. */
START_TEST(ppl_goldens)
{
    const int mi = _i / 3, pol = _i % 3;
    const char *model = models[mi];
    char *dir = tu_sample_path(model, "st");
    glmq_model *m = open_model(pol == 0 ? dir : packs[mi][pol]);
    cJSON *man = manifest(model);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(man, "perplexity"), "results");
    const char *texts[2] = {"eval_en", "eval_zh"};
    const glmq_kernel_mode modes[3] = {GLMQ_KERNELS_REFERENCE, GLMQ_KERNELS_EXACT,
                                       GLMQ_KERNELS_FAST};
    const double bound[3] = {1e-5, 1e-5, 1e-3};
    for (int t = 0; t < 2; t++) {
        const cJSON *gold = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res, texts[t]), policies[pol]);
        const double want = cJSON_GetObjectItemCaseSensitive(gold, "ppl")->valuedouble;
        size_t len, n;
        char *text = sample_text(texts[t], &len);
        int32_t *ids = tokenize(m, text, len, 0, &n);
        for (int k = 0; k < 3; k++) {
            glmq_eval_params p;
            glmq_eval_params_default(&p);
            p.kernels = modes[k];
            p.threads = 2;
            glmq_ppl_result r;
            glmq_err err = {0};
            ck_assert_msg(glmq_eval_perplexity(m, ids, (int64_t)n, &p, &r, &err) == GLMQ_OK,
                          "%s", err.msg);
            ck_assert_int_eq(r.n_scored, jint(gold, "n_tokens"));
            ck_assert_int_eq(r.n_windows, jint(gold, "n_windows"));
            double rel = fabs(r.ppl / want - 1);
            ck_assert_msg(rel <= bound[k], "%s %s %s %s: ppl %.9f vs golden %.9f (%.2e)", model,
                          policies[pol], texts[t], glmq_kernel_mode_name(modes[k]), r.ppl, want,
                          rel);
            /* the internal path with the same settings (the default kernels) */
            if (modes[k] != GLMQ_KERNELS_FAST) continue;
            glmq_eval_opts o;
            glmq_eval_opts_default(&o);
            o.threads = 2;
            o.mode = (glmq_forward_mode)modes[k];
            glmq_ppl_result ri;
            ck_assert_int_eq(glmq_perplexity(m, ids, (int64_t)n, &o, &ri, &err), GLMQ_OK);
            ck_assert_mem_eq(&r, &ri, sizeof r);
        }
        free(ids);
        free(text);
    }
    cJSON_Delete(man);
    glmq_model_close(m);
    free(dir);
}
END_TEST

/* Drift through the API equals the internal glmq_drift_eval; a model against itself on the
 * same kernels drifts exactly 0; the fast INT4 pack drifts measurably; the strided protocol
 * and window limits pass through. */
START_TEST(drift_api)
{
    char *dir = tu_sample_path("glm2-tiny", "st");
    glmq_model *r = open_model(dir), *q = open_model(packs[0][2]);
    size_t len, n;
    char *text = sample_text("eval_en", &len);
    int32_t *ids = tokenize(r, text, len, 0, &n);
    glmq_eval_params p;
    glmq_eval_params_default(&p);
    p.max_chunks = 3;
    p.threads = 2;
    glmq_err err = {0};
    glmq_drift d, di;
    ck_assert_msg(glmq_eval_drift(q, r, ids, (int64_t)n, &p, &d, &err) == GLMQ_OK, "%s",
                  err.msg);
    glmq_eval_opts o;
    glmq_eval_opts_default(&o);
    o.max_chunks = 3;
    o.threads = 2;
    o.mode = GLMQ_FWD_FAST;
    o.ref_mode = GLMQ_FWD_EXACT;
    ck_assert_int_eq(glmq_drift_eval(r, q, ids, (int64_t)n, &o, &di, &err), GLMQ_OK);
    ck_assert_int_eq(d.n_positions, 3 * 254);
    ck_assert_int_eq(d.n_positions, di.n_positions);
    ck_assert_int_eq(d.n_layers, di.n_layers);
    ck_assert_mem_eq(d.kld, di.kld, (size_t)d.n_positions * sizeof *d.kld);
    ck_assert_mem_eq(d.layer_rel_err, di.layer_rel_err, (size_t)d.n_layers * sizeof(double));
    ck_assert(d.kld_mean == di.kld_mean && d.ppl_ratio == di.ppl_ratio &&
              d.top1_agreement == di.top1_agreement && d.dlogit_max == di.dlogit_max);
    ck_assert(d.kld_mean > 1e-5 && d.top1_agreement < 1);
    glmq_drift_free(&d);
    glmq_drift_free(&di);
    ck_assert_ptr_null(d.kld);

    p.kernels = p.ref_kernels = GLMQ_KERNELS_FAST;
    ck_assert_int_eq(glmq_eval_drift(q, q, ids, (int64_t)n, &p, &d, &err), GLMQ_OK);
    ck_assert(d.kld_max == 0 && d.top1_agreement == 1 && d.ppl_ratio == 1);
    glmq_drift_free(&d);

    /* strided: windows of 128 every 64, the first two */
    p.strided = 1;
    p.ctx = 128;
    p.stride = 64;
    p.max_chunks = 2;
    ck_assert_int_eq(glmq_eval_drift(q, r, ids, (int64_t)n, &p, &d, &err), GLMQ_OK);
    ck_assert_int_eq(d.n_positions, 127 + 64);
    glmq_drift_free(&d);
    glmq_drift_free(NULL);
    free(ids);
    free(text);
    glmq_model_close(q);
    glmq_model_close(r);
    free(dir);
}
END_TEST

// --- bad input -----------------------------------------------------------------------------

#define EXPECT_ERR(call, want)                                                                  \
    do {                                                                                        \
        glmq_err e_ = {0};                                                                      \
        glmq_err *err = &e_;                                                                    \
        glmq_status st_ = (call);                                                               \
        ck_assert_msg(st_ == (want), "%s: status %d (%s), want %d", #call, (int)st_, e_.msg,    \
                      (int)(want));                                                             \
        ck_assert_int_eq(e_.code, (want));                                                      \
        ck_assert_msg(e_.msg[0] != 0, "%s: no message", #call);                                 \
    } while (0)

START_TEST(bad_inputs)
{
    char *dir = tu_sample_path("glm2-tiny", "st"), *dir1 = tu_sample_path("glm1-tiny", "st");
    glmq_model *m = NULL, *m1;
    EXPECT_ERR(glmq_model_open("/nonexistent/model", &m, err), GLMQ_E_IO);
    ck_assert_ptr_null(m);
    EXPECT_ERR(glmq_model_open(NULL, &m, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_model_open(dir, NULL, err), GLMQ_E_INVALID);
    char *notpack = tu_path(tmpdir, "not.glmq");
    tu_write_file(notpack, "hello, world", 12);
    EXPECT_ERR(glmq_model_open(notpack, &m, err), GLMQ_E_FORMAT);
    ck_assert_ptr_null(m);
    m = open_model(dir);
    m1 = open_model(dir1);
    glmq_model_info info = info_of(m);
    EXPECT_ERR(glmq_model_get_info(NULL, &info, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_model_get_info(m, NULL, err), GLMQ_E_INVALID);

    /* tokens */
    int32_t ids[8];
    size_t n;
    EXPECT_ERR(glmq_tokenize(NULL, "a", 1, 0, ids, 8, &n, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_tokenize(m, NULL, 3, 0, ids, 8, &n, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_tokenize(m, "a", 1, 0, ids, 8, NULL, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_tokenize(m, "a", 1, 0, NULL, 8, &n, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_tokenize(m, "a", 1, 0x80, ids, 8, &n, err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_tokenize(m, NULL, 0, 0, ids, 8, &n, NULL), GLMQ_OK);
    ck_assert_uint_eq(n, 0);
    const int32_t bad_id[2] = {5, (int32_t)info.vocab + 100};
    char buf[64];
    size_t tl;
    EXPECT_ERR(glmq_detokenize(m, bad_id, 2, buf, sizeof buf, &tl, err), GLMQ_E_VALUE);
    EXPECT_ERR(glmq_detokenize(m, NULL, 2, buf, sizeof buf, &tl, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_detokenize(m, bad_id, 1, NULL, 4, &tl, err), GLMQ_E_INVALID);

    /* sessions */
    glmq_session *s = NULL;
    glmq_session_opts so;
    glmq_session_opts_default(&so);
    EXPECT_ERR(glmq_session_create(NULL, &so, &s, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_session_create(m, &so, NULL, err), GLMQ_E_INVALID);
    so.kernels = (glmq_kernel_mode)7;
    EXPECT_ERR(glmq_session_create(m, &so, &s, err), GLMQ_E_INVALID);
    ck_assert_ptr_null(s);
    ck_assert_ptr_null(glmq_kernel_mode_name((glmq_kernel_mode)7));
    so.kernels = GLMQ_KERNELS_FAST;
    so.max_tokens = 4;
    glmq_err e0 = {0};
    ck_assert_int_eq(glmq_session_create(m, &so, &s, &e0), GLMQ_OK);
    float *lg = malloc(8 * (size_t)info.vocab * sizeof *lg);
    const int32_t good[3] = {info.tok_gmask, info.tok_sop, 300};
    ck_assert_int_eq(glmq_session_eval(s, good, 3, lg, &e0), GLMQ_OK);
    EXPECT_ERR(glmq_session_eval(s, bad_id, 2, lg, err), GLMQ_E_VALUE);
    ck_assert_int_eq(glmq_session_n_tokens(s), 3); /* unchanged by the failed call */
    EXPECT_ERR(glmq_session_eval(s, good, 2, lg, err), GLMQ_E_INVALID); /* 5 > 4 tokens */
    ck_assert_int_eq(glmq_session_n_tokens(s), 3);
    EXPECT_ERR(glmq_session_eval(s, NULL, 2, lg, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_session_eval(s, good, -1, lg, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_session_eval(NULL, good, 1, lg, err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_session_eval(s, good, 0, lg, &e0), GLMQ_OK);
    ck_assert_int_eq(glmq_session_eval(s, good + 2, 1, lg, &e0), GLMQ_OK);
    ck_assert_int_eq(glmq_session_n_tokens(s), 4);
    glmq_session_free(s);
    /* ChatGLM-6B: the first call must carry its [gMASK] ... <sop> context */
    s = NULL;
    ck_assert_int_eq(glmq_session_create(m1, NULL, &s, &e0), GLMQ_OK);
    ck_assert_int_eq(glmq_session_max_tokens(s), info_of(m1).ctx < 2048 ? info_of(m1).ctx : 2048);
    EXPECT_ERR(glmq_session_eval(s, good + 2, 1, lg, err), GLMQ_E_INVALID);
    glmq_session_free(s);
    glmq_session_free(NULL);
    glmq_session_reset(NULL);
    ck_assert_int_eq(glmq_session_n_tokens(NULL), 0);

    /* sampler */
    glmq_sampler *smp = NULL;
    glmq_sampler_params sp;
    glmq_sampler_params_default(&sp);
    sp.temperature = -1;
    EXPECT_ERR(glmq_sampler_create(&sp, 10, &smp, err), GLMQ_E_INVALID);
    sp.temperature = NAN;
    EXPECT_ERR(glmq_sampler_create(&sp, 10, &smp, err), GLMQ_E_INVALID);
    sp.temperature = 1;
    sp.top_p = 0;
    EXPECT_ERR(glmq_sampler_create(&sp, 10, &smp, err), GLMQ_E_INVALID);
    sp.top_p = 1.5;
    EXPECT_ERR(glmq_sampler_create(&sp, 10, &smp, err), GLMQ_E_INVALID);
    sp.top_p = 1;
    EXPECT_ERR(glmq_sampler_create(&sp, 0, &smp, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_sampler_create(NULL, 10, &smp, err), GLMQ_E_INVALID);
    ck_assert_ptr_null(smp);
    ck_assert_int_eq(glmq_sampler_create(&sp, 3, &smp, &e0), GLMQ_OK);
    int32_t id;
    const float nan_row[3] = {0, NAN, 1}, inf_row[3] = {0, INFINITY, 1},
                masked[3] = {-INFINITY, -INFINITY, -INFINITY};
    EXPECT_ERR(glmq_sampler_sample(smp, nan_row, &id, err), GLMQ_E_VALUE);
    EXPECT_ERR(glmq_sampler_sample(smp, inf_row, &id, err), GLMQ_E_VALUE);
    EXPECT_ERR(glmq_sampler_sample(smp, masked, &id, err), GLMQ_E_VALUE);
    EXPECT_ERR(glmq_sampler_sample(smp, NULL, &id, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_sampler_sample(NULL, nan_row, &id, err), GLMQ_E_INVALID);
    glmq_sampler_free(smp);
    glmq_sampler_free(NULL);

    /* quality */
    glmq_ppl_result r;
    glmq_drift d;
    glmq_eval_params p;
    glmq_eval_params_default(&p);
    const int32_t text_ids[4] = {300, 301, 302, 303};
    EXPECT_ERR(glmq_eval_perplexity(m, text_ids, 0, &p, &r, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_eval_perplexity(m, NULL, 4, &p, &r, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_eval_perplexity(NULL, text_ids, 4, &p, &r, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_eval_perplexity(m, text_ids, 4, &p, NULL, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_eval_perplexity(m, bad_id, 2, &p, &r, err), GLMQ_E_VALUE);
    p.ctx = 2;
    EXPECT_ERR(glmq_eval_perplexity(m, text_ids, 4, &p, &r, err), GLMQ_E_INVALID);
    p.ctx = 0;
    p.kernels = (glmq_kernel_mode)-1;
    EXPECT_ERR(glmq_eval_perplexity(m, text_ids, 4, &p, &r, err), GLMQ_E_INVALID);
    p.kernels = GLMQ_KERNELS_FAST;
    p.strided = 1;
    EXPECT_ERR(glmq_eval_perplexity(m1, text_ids, 4, &p, &r, err), GLMQ_E_UNSUPPORTED);
    p.strided = 0;
    EXPECT_ERR(glmq_eval_drift(m, m1, text_ids, 4, &p, &d, err), GLMQ_E_INVALID);
    ck_assert_ptr_null(d.kld);
    EXPECT_ERR(glmq_eval_drift(m, NULL, text_ids, 4, &p, &d, err), GLMQ_E_INVALID);
    EXPECT_ERR(glmq_eval_drift(m, m, text_ids, 4, &p, NULL, err), GLMQ_E_INVALID);
    ck_assert_int_eq(glmq_eval_perplexity(m, text_ids, 4, NULL, &r, &e0), GLMQ_OK);
    ck_assert_int_eq(r.n_scored, 4);

    free(lg);
    glmq_model_close(m1);
    glmq_model_close(m);
    glmq_model_close(NULL);
    free(notpack);
    free(dir1);
    free(dir);
}
END_TEST

// --- the sample program --------------------------------------------------------------------

static const char *sample_bin(void)
{
    const char *b = getenv("GLMQ_SAMPLE_GENERATE");
    return b && *b ? b : "sample_generate";
}

/* samples/generate.c, on the public library alone, continues a prompt as `glmq generate`
 * does (greedy and seeded sampling), on the checkpoint and on a pack; errors exit 1 with the
 * library's message, usage errors 2. */
START_TEST(sample_generate_runs)
{
    char *dir = tu_sample_path("glm2-tiny", "st");
    const char *paths[2] = {dir, packs[0][2]};
    for (int k = 0; k < 2; k++) {
        char *a = NULL, *b = NULL;
        ck_assert_int_eq(tu_run(&a, "'%s' '%s' 'And God said' 16 2>/dev/null", sample_bin(),
                                paths[k]), 0);
        ck_assert_int_eq(tu_run(&b, "'%s' generate '%s' -p 'And God said' -n 16 2>/dev/null",
                                tu_bin(), paths[k]), 0);
        ck_assert_int_gt((int)strlen(a), 10);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        ck_assert_int_eq(tu_run(&a, "'%s' '%s' 'In the beginning' 12 0.9 5 2>/dev/null",
                                sample_bin(), paths[k]), 0);
        ck_assert_int_eq(tu_run(&b, "'%s' generate '%s' -p 'In the beginning' -n 12 --temp 0.9 "
                                    "--seed 5 2>/dev/null", tu_bin(), paths[k]), 0);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    char *out = NULL;
    ck_assert_int_eq(tu_run(&out, "'%s' /nonexistent/model hi 3", sample_bin()), 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot open '/nonexistent/model'"));
    free(out);
    ck_assert_int_eq(tu_run(&out, "'%s' '%s'", sample_bin(), dir), 2);
    free(out);
    free(dir);
}
END_TEST

/* One test case per area, so that CK_RUN_CASE can pick one (e.g. under the sanitizers). */
static TCase *area(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, make_packs, remove_packs);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = area(s, "model");
    tcase_add_loop_test(tc, model_info, 0, 2);
    tcase_add_test(tc, bad_inputs);
    tc = area(s, "tokens");
    tcase_add_loop_test(tc, tokenize_goldens, 0, 2);
    tcase_add_test(tc, token_buffers);
    tc = area(s, "session");
    tcase_add_loop_test(tc, session_matches_torch, 0, 6);
    tcase_add_loop_test(tc, incremental_equals_oneshot, 0, 6);
    tcase_add_test(tc, threads_identical);
    tcase_add_loop_test(tc, open_load, 0, 2);
    tc = area(s, "sampler");
    tcase_add_test(tc, sampler_greedy_and_seeded);
    tcase_add_test(tc, sampler_distribution);
    tc = area(s, "quality");
    tcase_add_loop_test(tc, ppl_goldens, 0, 6);
    tcase_add_test(tc, drift_api);
    tc = area(s, "sample");
    tcase_add_test(tc, sample_generate_runs);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
