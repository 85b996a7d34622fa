/*
 * sat.c - GLM-130B's tensor-parallel SAT checkpoint as one checkpoint (see sat.h and
 * formats/GLM130B.md for the layout and where each fact comes from).
 *
 * Nothing here reads weights: the rank files' pickles are parsed (formats/torchzip.c) and every
 * merged tensor is a composite of slices (formats/source.h), which convert/ and the runtime read
 * row chunk by row chunk. So converting the 260 GB release holds about one chunk of one tensor.
 */
#include "formats/sat.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANKS 256
#define MAX_CONFIG (1u << 20)
#define RANK_FMT "mp_rank_%02d_model_states.pt"

static int regular(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    int w = snprintf(p, sizeof p, "%s/%s", dir, name);
    return w > 0 && (size_t)w < sizeof p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int glmq_sat_detect(const char *dir)
{
    /* a Hugging Face directory (config.json) may keep a DeepSpeed `latest` from its training */
    return !regular(dir, "config.json") &&
           (regular(dir, "latest") || regular(dir, "mp_rank_00_model_states.pt"));
}

/* Read a small file whole (NUL-terminated). Absent: OK with *out NULL when !required. */
static glmq_status slurp(const char *path, int required, size_t limit, char **out, size_t *n,
                         glmq_err *err)
{
    *out = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!required && errno == ENOENT) return GLMQ_OK;
        return glmq_fail(err, GLMQ_E_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    glmq_status st = GLMQ_OK;
    struct stat sb;
    char *buf = NULL;
    GLMQ_FAIL_IF_G(fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode), err, GLMQ_E_IO,
                   "'%s' is not a regular file", path);
    GLMQ_FAIL_IF_G((uint64_t)sb.st_size > limit, err, GLMQ_E_FORMAT,
                   "'%s' is %lld bytes; more than the %zu allowed for this file", path,
                   (long long)sb.st_size, limit);
    buf = malloc((size_t)sb.st_size + 1);
    GLMQ_FAIL_IF_G(!buf, err, GLMQ_E_NOMEM, "out of memory");
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        GLMQ_FAIL_IF_G(r <= 0, err, GLMQ_E_IO, "'%s': read failed at byte %zu", path, got);
        got += (size_t)r;
    }
    buf[got] = 0;
    *out = buf;
    *n = got;
    buf = NULL;
fail:
    free(buf);
    close(fd);
    return st;
}

/* The iteration folder: DIR/<contents of DIR/latest>, or DIR itself. */
static glmq_status iteration_dir(const char *dir, char *out, size_t cap, glmq_err *err)
{
    char *tag = NULL;
    size_t n = 0;
    char lp[4096];
    snprintf(lp, sizeof lp, "%s/latest", dir);
    GLMQ_TRY(slurp(lp, 0, 256, &tag, &n, err));
    if (!tag) {
        snprintf(out, cap, "%s", dir);
        return GLMQ_OK;
    }
    while (n > 0 && (tag[n - 1] == '\n' || tag[n - 1] == '\r' || tag[n - 1] == ' ')) tag[--n] = 0;
    int ok = n > 0 && !strchr(tag, '/') && strcmp(tag, ".") && strcmp(tag, "..");
    for (size_t i = 0; ok && i < n; i++) ok = tag[i] > ' ' && tag[i] < 0x7f;
    glmq_status st = GLMQ_OK;
    if (!ok)
        st = glmq_fail(err, GLMQ_E_FORMAT,
                       "'%s': the iteration tag is not a plain folder name (SAT writes the "
                       "iteration number or 'release')",
                       lp);
    else {
        int w = snprintf(out, cap, "%s/%s", dir, tag);
        if (w < 0 || (size_t)w >= cap)
            st = glmq_fail(err, GLMQ_E_INVALID, "'%s': path too long", lp);
        else if (!regular(out, "mp_rank_00_model_states.pt"))
            st = glmq_fail(err, GLMQ_E_IO,
                           "'%s' names iteration '%s', but '%s' has no "
                           "mp_rank_00_model_states.pt",
                           lp, tag, out);
    }
    free(tag);
    return st;
}

/* Count the rank files mp_rank_NN_model_states.pt of `it`: they must be 0..n-1, none missing. */
static glmq_status count_ranks(const char *it, int *n_ranks, glmq_err *err)
{
    DIR *d = opendir(it);
    GLMQ_FAIL_IF(!d, err, GLMQ_E_IO, "cannot open '%s': %s", it, strerror(errno));
    unsigned char seen[MAX_RANKS] = {0};
    int hi = -1, count = 0;
    const struct dirent *e;
    glmq_status st = GLMQ_OK;
    while ((e = readdir(d)) != NULL) {
        int r = -1, end = 0;
        if (sscanf(e->d_name, "mp_rank_%d_model_states.pt%n", &r, &end) != 1 ||
            e->d_name[end] != 0 || end == 0)
            continue;
        GLMQ_FAIL_IF_G(r < 0 || r >= MAX_RANKS, err, GLMQ_E_UNSUPPORTED,
                       "'%s/%s': rank %d is outside 0..%d", it, e->d_name, r, MAX_RANKS - 1);
        char canon[64];
        snprintf(canon, sizeof canon, RANK_FMT, r);
        GLMQ_FAIL_IF_G(strcmp(canon, e->d_name) != 0, err, GLMQ_E_FORMAT,
                       "'%s/%s': rank file not named as SAT names it ('%s')", it, e->d_name,
                       canon);
        seen[r] = 1;
        count++;
        if (r > hi) hi = r;
    }
    for (int r = 0; r <= hi; r++)
        GLMQ_FAIL_IF_G(!seen[r], err, GLMQ_E_FORMAT,
                       "'%s': rank file '" RANK_FMT "' is missing (ranks up to %d are present)",
                       it, r, hi);
    GLMQ_FAIL_IF_G(count < 1, err, GLMQ_E_IO, "'%s': no mp_rank_NN_model_states.pt files", it);
    *n_ranks = count;
fail:
    closedir(d);
    return st;
}

/* The rank tensor "mp_rank_NN/<name>", or -1. */
static int64_t rank_tensor(const glmq_src_set *s, int r, const char *name)
{
    char nm[GLMQ_SRC_NAME_MAX];
    int w = snprintf(nm, sizeof nm, "mp_rank_%02d/%s", r, name);
    if (w < 0 || (size_t)w >= sizeof nm) return -1;
    return glmq_src_find(s, nm);
}

static const char *file_of(const glmq_src_set *s, int64_t t)
{
    return s->files[s->storages[s->tensors[t].storage].file].path;
}

/* Shapes read from rank 0 (hidden, vocab, GeGLU width, layers), for the config decision. */
static void derive_shapes(const glmq_src_set *s, int n, glmq_config *d)
{
    memset(d, 0, sizeof *d);
    int64_t e = rank_tensor(s, 0, "transformer.word_embeddings.weight");
    if (e >= 0 && s->tensors[e].ndim == 2) {
        d->vocab = s->tensors[e].shape[0] * n;
        d->hidden = s->tensors[e].shape[1];
    }
    int64_t g = rank_tensor(s, 0, "transformer.layers.0.mlp.dense_h_to_4h.weight");
    if (g >= 0 && s->tensors[g].ndim == 2) d->ffn = s->tensors[g].shape[0] * n / 2;
    char nm[128];
    for (int64_t l = 0; l < 4096; l++) {
        snprintf(nm, sizeof nm, "transformer.layers.%lld.input_layernorm.weight", (long long)l);
        if (rank_tensor(s, 0, nm) < 0) break;
        d->n_layers = l + 1;
    }
}

/* How one glm130b tensor is split across the ranks. */
typedef enum { SPLIT_ROWS, SPLIT_GLU, SPLIT_COLS, SPLIT_NONE } split_kind;

static split_kind split_of(glmq_slot s)
{
    switch (s) {
    case GLMQ_SLOT_EMBED:
    case GLMQ_SLOT_QKV:
    case GLMQ_SLOT_QKV_B: return SPLIT_ROWS;
    case GLMQ_SLOT_H4H:
    case GLMQ_SLOT_H4H_B: return SPLIT_GLU;
    case GLMQ_SLOT_DENSE:
    case GLMQ_SLOT_FHH: return SPLIT_COLS;
    default: return SPLIT_NONE;
    }
}

static const char *split_name(split_kind k)
{
    return k == SPLIT_ROWS   ? "rows split across ranks"
           : k == SPLIT_GLU  ? "GeGLU halves split across ranks"
           : k == SPLIT_COLS ? "columns split across ranks"
                             : "replicated on every rank";
}

/* A replicated vector (norm, row-parallel bias): rank r's copy must equal rank 0's, bit for
 * bit (SAT keeps them in sync; a difference means mixed-up files). Marks the copy as read. */
static glmq_status same_as_rank0(glmq_src_set *s, int64_t t0, int64_t t, glmq_err *err)
{
    const size_t bytes = (size_t)s->tensors[t].nelem * glmq_dtype_size(s->tensors[t].dtype);
    uint8_t *a = malloc(bytes ? bytes : 1), *b = malloc(bytes ? bytes : 1);
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF_G(!a || !b, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(glmq_src_read_rows_raw(s, &s->tensors[t0], 0, 1, a, err));
    GLMQ_TRY_G(glmq_src_read_rows_raw(s, &s->tensors[t], 0, 1, b, err));
    GLMQ_FAIL_IF_G(memcmp(a, b, bytes) != 0, err, GLMQ_E_FORMAT,
                   "'%s': tensor '%s' differs from rank 0's copy in '%s' (replicated on every "
                   "rank: the rank files do not belong together)",
                   file_of(s, t), strchr(s->tensors[t].name, '/') + 1, file_of(s, t0));
    s->tensors[t].used_as_piece = 1;
fail:
    free(a);
    free(b);
    return st;
}

/* Check every rank's slice of e and add the composite. */
static glmq_status add_merged(glmq_src_set *s, const glmq_expected_tensor *e, int n,
                              glmq_src_piece *pc, glmq_err *err)
{
    const split_kind k = split_of(e->slot);
    int64_t want[2] = {e->shape[0], e->ndim == 2 ? e->shape[1] : 0};
    int ax = k == SPLIT_COLS ? 1 : 0;
    if (k != SPLIT_NONE) {
        GLMQ_FAIL_IF(want[ax] % (k == SPLIT_GLU ? 2 * n : n) != 0, err, GLMQ_E_SHAPE,
                     "tensor '%s' [%lld%s%lld]: %s, but %d ranks do not divide it", e->name,
                     (long long)e->shape[0], e->ndim == 2 ? ", " : "",
                     e->ndim == 2 ? (long long)e->shape[1] : 0LL, split_name(k), n);
        want[ax] /= n;
    }
    for (int r = 0; r < n; r++) {
        int64_t t = rank_tensor(s, r, e->name);
        char path[96];
        snprintf(path, sizeof path, RANK_FMT, r);
        GLMQ_FAIL_IF(t < 0, err, GLMQ_E_SHAPE,
                     "'%s': tensor '%s' is missing (rank %d of %d; needed by glm130b)", path,
                     e->name, r, n);
        const glmq_src_tensor *st = &s->tensors[t];
        int ok = st->ndim == e->ndim && st->shape[0] == want[0] &&
                 (e->ndim == 1 || st->shape[1] == want[1]);
        GLMQ_FAIL_IF(!ok, err, GLMQ_E_SHAPE,
                     "'%s': tensor '%s' has shape [%lld%s%lld] (ndim %d); with %d ranks (%s) "
                     "each must be [%lld%s%lld]",
                     file_of(s, t), e->name, (long long)st->shape[0], st->ndim == 2 ? ", " : "",
                     st->ndim == 2 ? (long long)st->shape[1] : 0LL, st->ndim, n, split_name(k),
                     (long long)want[0], e->ndim == 2 ? ", " : "",
                     e->ndim == 2 ? (long long)want[1] : 0LL);
        if (r > 0)
            GLMQ_FAIL_IF(st->dtype != s->tensors[pc[0].tensor].dtype, err, GLMQ_E_FORMAT,
                         "'%s': tensor '%s' is %s but rank 0 stores it as %s", file_of(s, t),
                         e->name, glmq_dtype_name(st->dtype),
                         glmq_dtype_name(s->tensors[pc[0].tensor].dtype));
        if (k == SPLIT_NONE && r > 0) GLMQ_TRY(same_as_rank0(s, pc[0].tensor, t, err));
        /* k == SPLIT_GLU: piece r = first half of rank r, piece n + r = its second half */
        const int64_t len = k == SPLIT_GLU ? want[0] / 2 : want[ax];
        pc[r] = (glmq_src_piece){t, 0, len};
        if (k == SPLIT_GLU) pc[n + r] = (glmq_src_piece){t, len, len};
    }
    int np = k == SPLIT_NONE ? 1 : k == SPLIT_GLU ? 2 * n : n;
    return glmq_src_add_composite(s, e->name, ax, pc, np, err);
}

/* model_config.json of the directory, or of the folder above an iteration folder. */
static glmq_status read_config(const char *dir, const char *it, char **json, size_t *n,
                               char *path, size_t cap, glmq_err *err)
{
    snprintf(path, cap, "%s/model_config.json", dir);
    GLMQ_TRY(slurp(path, 0, MAX_CONFIG, json, n, err));
    if (*json || strcmp(dir, it) != 0) return GLMQ_OK;
    snprintf(path, cap, "%s/../model_config.json", dir);
    GLMQ_TRY(slurp(path, 0, MAX_CONFIG, json, n, err));
    if (!*json) snprintf(path, cap, "%s/model_config.json", dir);
    return GLMQ_OK;
}

/* The hyper-parameters used, as SAT's model_config.json spells them (kept in the pack). */
static char *config_text(const glmq_config *c, int n)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "model_class", "GLM130B");
    cJSON_AddNumberToObject(j, "num_layers", (double)c->n_layers);
    cJSON_AddNumberToObject(j, "hidden_size", (double)c->hidden);
    cJSON_AddNumberToObject(j, "num_attention_heads", (double)c->n_heads);
    cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab);
    cJSON_AddNumberToObject(j, "inner_hidden_size", (double)c->ffn);
    cJSON_AddNumberToObject(j, "max_sequence_length", (double)c->seq_length);
    cJSON_AddNumberToObject(j, "model_parallel_size", (double)n);
    cJSON_AddStringToObject(j, "layernorm_order", "post");
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

glmq_status glmq_sat_open(glmq_checkpoint *c, int *n_ranks, glmq_err *err)
{
    char it[4096], cpath[4200], rp[4400], pre[32];
    char *json = NULL;
    size_t jn = 0;
    glmq_expected_tensor *want = NULL;
    glmq_src_piece *pc = NULL;
    int64_t nw = 0;
    int n = 0;
    glmq_status st = GLMQ_OK;
    GLMQ_TRY(iteration_dir(c->dir, it, sizeof it, err));
    GLMQ_TRY(count_ranks(it, &n, err));
    for (int r = 0; r < n; r++) {
        snprintf(rp, sizeof rp, "%s/" RANK_FMT, it, r);
        snprintf(pre, sizeof pre, "mp_rank_%02d/", r);
        GLMQ_TRY(glmq_torchzip_load_prefix(&c->set, rp, pre, err));
    }
    glmq_config shapes;
    derive_shapes(&c->set, n, &shapes);
    int64_t mp = 0;
    GLMQ_TRY(read_config(c->dir, it, &json, &jn, cpath, sizeof cpath, err));
    GLMQ_TRY_G(glmq_config_parse_sat(json, jn, cpath, &shapes, &c->cfg, &mp, err));
    GLMQ_FAIL_IF_G(mp > 0 && mp != n, err, GLMQ_E_FORMAT,
                   "'%s': model_parallel_size is %lld but '%s' holds %d rank files", cpath,
                   (long long)mp, it, n);
    GLMQ_FAIL_IF_G(c->cfg.n_heads % n != 0, err, GLMQ_E_SHAPE,
                   "'%s': %lld attention heads cannot be split over %d ranks", it,
                   (long long)c->cfg.n_heads, n);
    GLMQ_TRY_G(glmq_config_tensors(&c->cfg, &want, &nw, err));
    pc = calloc(2 * (size_t)n, sizeof *pc);
    GLMQ_FAIL_IF_G(!pc, err, GLMQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < nw; i++) {
        if (want[i].optional && rank_tensor(&c->set, 0, want[i].name) < 0)
            continue; /* the tied output layer: GLM-130B has no lm_head of its own */
        GLMQ_TRY_G(add_merged(&c->set, &want[i], n, pc, err));
    }
    if (!json) {
        json = config_text(&c->cfg, n);
        GLMQ_FAIL_IF_G(!json, err, GLMQ_E_NOMEM, "out of memory");
        jn = strlen(json);
    }
    c->config_json.name = glmq_strdup("model_config.json");
    GLMQ_FAIL_IF_G(!c->config_json.name, err, GLMQ_E_NOMEM, "out of memory");
    c->config_json.data = (uint8_t *)json;
    c->config_json.size = jn;
    json = NULL;
    *n_ranks = n;
fail:
    free(json);
    free(want);
    free(pc);
    return st;
}
