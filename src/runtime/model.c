/*
 * model.c - open a model from a packed file or a checkpoint directory (see model.h).
 *
 * For a checkpoint directory the files are mapped read-only, whole; a tensor whose bytes are
 * stored contiguously, uncompressed and element-aligned in the file becomes a view into the
 * mapping, anything else (deflated zip members, strided storage, unaligned offsets) is read
 * into a private buffer through the same bounded readers the converter uses. The tensors of
 * THUDM's quantized releases (formats/thudm_quant.h) are repacked into glmq's INT8/INT4 rows in
 * a private buffer, codes and fp16 scales as they are, so the forward pass runs the integer
 * kernels on exactly the source's values (the same rows `glmq convert` writes).
 */
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE */
#include "runtime/model.h"
#include "runtime/tokenize.h"

#include "formats/checkpoint.h"
#include "core/hash.h"
#include "formats/source.h"
#include "formats/layout.h"
#include "formats/pack.h"
#include "formats/thudm_quant.h"
#include "quant/ggml_repack.h"
#include "runtime/model_gguf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *name;
    glmq_tensor_info info;
} mtensor;

struct glmq_model {
    glmq_config cfg;
    int is_pack;
    glmq_pack *pack;
    glmq_gguf *gguf;
    glmq_checkpoint *ck;
    void **maps;      /* per checkpoint file */
    uint64_t *map_sizes;
    mtensor *t;
    int64_t nt;
    void **owned;     /* private copies */
    int64_t nowned;
    const void *tok;
    size_t tok_size;
    uint64_t ident;
    char weight_type[16];
    _Atomic(glmq_tokenizer *) tok_cache; /* glmq_model_tokenizer_cached: set once, on first use */
};

const glmq_config *glmq_model_config(const glmq_model *m) { return &m->cfg; }
const char *glmq_model_kind(const glmq_model *m)
{
    return m->gguf ? "gguf" : m->is_pack ? "glmq" : "checkpoint";
}
uint64_t glmq_model_ident(const glmq_model *m) { return m->ident; }
const char *glmq_model_weight_type(const glmq_model *m) { return m->weight_type; }
const glmq_pack *glmq_model_pack(const glmq_model *m) { return m->pack; }

/* Fold a layer weight's storage type into the model's weight type ("mixed" once two differ). */
static void note_weight_type(glmq_model *m, int *seen, glmq_type type)
{
    const char *tn = glmq_type_name(type);
    const int first = !(*seen)++;
    snprintf(m->weight_type, sizeof m->weight_type, "%s",
             first || !strcmp(m->weight_type, tn) ? tn : "mixed");
}

const void *glmq_model_tokenizer(const glmq_model *m, size_t *size)
{
    if (size) *size = m->tok_size;
    return m->tok;
}

glmq_status glmq_model_tokenizer_cached(const glmq_model *cm, const glmq_tokenizer **out,
                                        glmq_err *err)
{
    *out = NULL;
    glmq_model *m = (glmq_model *)cm; /* the cache is not part of the model's value */
    glmq_tokenizer *t = atomic_load_explicit(&m->tok_cache, memory_order_acquire);
    if (!t) {
        GLMQ_TRY(glmq_model_tokenizer_open(cm, &t, err));
        glmq_tokenizer *none = NULL;
        /* another thread may have stored one meanwhile: keep the first, drop ours */
        if (!atomic_compare_exchange_strong_explicit(&m->tok_cache, &none, t,
                                                     memory_order_acq_rel, memory_order_acquire)) {
            glmq_tokenizer_free(t);
            t = none;
        }
    }
    *out = t;
    return GLMQ_OK;
}

const glmq_tensor_info *glmq_model_tensor(const glmq_model *m, const char *name)
{
    for (int64_t i = 0; i < m->nt; i++)
        if (!strcmp(m->t[i].info.name, name)) return &m->t[i].info;
    return NULL;
}

glmq_status glmq_model_swap(glmq_model *m, const char *name, const glmq_tensor_info *t,
                            glmq_tensor_info *saved, glmq_err *err)
{
    for (int64_t i = 0; i < m->nt; i++) {
        if (strcmp(m->t[i].info.name, name) != 0) continue;
        GLMQ_FAIL_IF(t->rows != m->t[i].info.rows || t->cols != m->t[i].info.cols, err,
                     GLMQ_E_SHAPE, "tensor '%s': cannot swap in a view of another shape", name);
        if (saved) *saved = m->t[i].info;
        const char *keep = m->t[i].info.name;
        m->t[i].info = *t;
        m->t[i].info.name = keep;
        return GLMQ_OK;
    }
    return glmq_fail(err, GLMQ_E_INVALID, "no tensor named '%s'", name);
}

void glmq_model_close(glmq_model *m)
{
    if (!m) return;
    glmq_tokenizer_free(atomic_load_explicit(&m->tok_cache, memory_order_acquire));
    glmq_pack_close(m->pack);
    glmq_gguf_close(m->gguf);
    if (m->ck) {
        for (uint32_t f = 0; f < m->ck->set.nfiles; f++)
            if (m->maps && m->maps[f] && m->maps[f] != MAP_FAILED) munmap(m->maps[f], m->map_sizes[f]);
        glmq_checkpoint_close(m->ck);
    }
    for (int64_t i = 0; i < m->nowned; i++) free(m->owned[i]);
    for (int64_t i = 0; i < m->nt; i++) free(m->t[i].name);
    free(m->owned);
    free(m->maps);
    free(m->map_sizes);
    free(m->t);
    free(m);
}

static glmq_status open_pack(glmq_model *m, const char *path, int load, glmq_err *err)
{
    m->is_pack = 1;
    GLMQ_TRY(glmq_pack_open_load(path, load, &m->pack, err));
    cJSON *meta = cJSON_Parse(glmq_pack_metadata(m->pack));
    GLMQ_FAIL_IF(!meta, err, GLMQ_E_FORMAT, "'%s': metadata is not JSON", path);
    glmq_status st = glmq_config_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"),
                                           &m->cfg, err);
    /* the recipe's base type, until the layer weights below say what is stored (--tensor-type
     * rules can mix types: then "mixed", as for a checkpoint) */
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(meta, "quantization");
    const cJSON *wt = cJSON_GetObjectItemCaseSensitive(q, "weight_type");
    snprintf(m->weight_type, sizeof m->weight_type, "%s",
             cJSON_IsString(wt) ? wt->valuestring : "?");
    cJSON_Delete(meta);
    if (st != GLMQ_OK) return glmq_err_prefix(err, st, "'%s': ", path);
    m->nt = glmq_pack_tensor_count(m->pack);
    m->t = calloc((size_t)m->nt + 1, sizeof *m->t);
    GLMQ_FAIL_IF(!m->t, err, GLMQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < m->nt; i++) GLMQ_TRY(glmq_pack_tensor(m->pack, i, &m->t[i].info, err));
    if (glmq_pack_blob(m->pack, "tokenizer.model", &m->tok, &m->tok_size, NULL) != GLMQ_OK) {
        m->tok = NULL;
        m->tok_size = 0;
    }
    /* the header checksum authenticates the whole table of contents, tensor checksums included */
    m->ident = glmq_pack_header_checksum(m->pack);
    /* sanity: every expected tensor is present with the right shape */
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_config_tensors(&m->cfg, &want, &nw, err));
    st = GLMQ_OK;
    int seen_weight = 0;
    for (int64_t i = 0; i < nw && st == GLMQ_OK; i++) {
        const glmq_tensor_info *t = glmq_model_tensor(m, want[i].name);
        if (!t) {
            if (!want[i].optional)
                st = glmq_fail(err, GLMQ_E_SHAPE, "'%s': tensor '%s' is missing", path,
                               want[i].name);
            continue;
        }
        if (want[i].role == GLMQ_ROLE_LAYER_WEIGHT) note_weight_type(m, &seen_weight, t->type);
        if (t->ndim != want[i].ndim || t->shape[0] != want[i].shape[0] ||
            (want[i].ndim == 2 && t->shape[1] != want[i].shape[1]))
            st = glmq_fail(err, GLMQ_E_SHAPE, "'%s': tensor '%s' has the wrong shape", path,
                           want[i].name);
    }
    free(want);
    return st;
}

/*
 * A Q4_0 / Q8_0 matrix in glmq's layout, so that the EXACT and FAST kernels multiply it: INT4 /
 * INT8 when its blocks carry one scale per row (glmq's per-row export), else INT4_G32 / INT8_G32
 * (any other Q4_0, e.g. llama.cpp's own, and Q8_0 without a code -128). The decoded values are
 * the same floats (quant/ggml_repack.h). Any other matrix keeps its ggml view (decoded row by row
 * on the plain exact path). The copy is anonymous memory of the size of the tensor.
 */
static glmq_status repack(glmq_model *m, glmq_tensor_info *t, glmq_err *err)
{
    const int q4 = t->type == GLMQ_TYPE_GGML + GLMQ_GGML_Q4_0;
    if (!q4 && t->type != GLMQ_TYPE_GGML + GLMQ_GGML_Q8_0) return GLMQ_OK;
    glmq_type to = q4 ? GLMQ_TYPE_INT4 : GLMQ_TYPE_INT8;
    int64_t spr = 1;
    const int64_t rb = glmq_row_bytes(to, t->cols);
    uint8_t *buf = aligned_alloc(64, (size_t)(t->rows * rb) + 64);
    uint16_t *sc = malloc((size_t)t->rows * sizeof *sc + 1);
    if (!buf || !sc) {
        free(buf);
        free(sc);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory for tensor '%s'", t->name);
    }
    int64_t r = 0;
    for (; r < t->rows; r++) {
        const uint8_t *src = (const uint8_t *)t->data + r * t->row_stride;
        uint16_t d;
        int ok = q4 ? glmq_q4_0_row_to_int4(src, t->cols, buf + r * rb, &d)
                    : glmq_q8_0_row_to_int8(src, t->cols, buf + r * rb, &d);
        if (!ok) break;
        glmq_wr_le16(&sc[r], d);
    }
    if (r < t->rows) { /* blocks with their own scales: the group-wise type of 32 */
        free(sc);
        to = q4 ? GLMQ_TYPE_INT4_G32 : GLMQ_TYPE_INT8_G32;
        spr = glmq_scales_per_row(to, t->cols);
        sc = malloc((size_t)(t->rows * spr) * sizeof *sc);
        if (!sc) {
            free(buf);
            return glmq_fail(err, GLMQ_E_NOMEM, "out of memory for tensor '%s'", t->name);
        }
        for (r = 0; r < t->rows; r++) {
            const uint8_t *src = (const uint8_t *)t->data + r * t->row_stride;
            int ok = q4 ? glmq_q4_0_row_to_int4g32(src, t->cols, buf + r * rb, sc + r * spr)
                        : glmq_q8_0_row_to_int8g32(src, t->cols, buf + r * rb, sc + r * spr);
            if (!ok) { /* a non-finite d or a Q8_0 code -128: decoded by ggml's rule */
                free(buf);
                free(sc);
                return GLMQ_OK;
            }
        }
    }
    m->owned[m->nowned++] = buf;
    m->owned[m->nowned++] = sc;
    t->type = to;
    t->row_stride = rb;
    t->data = buf;
    t->data_size = (size_t)(t->rows * rb);
    t->scales = sc;
    t->scales_size = (size_t)(t->rows * spr) * sizeof *sc;
    return GLMQ_OK;
}

/* Every tensor the config expects, found under its llama.cpp name, checked for shape, viewed in
 * place (the mapping), and named as in the checkpoint. */
static glmq_status open_gguf(glmq_model *m, const char *path, int load, glmq_err *err)
{
    GLMQ_TRY(glmq_gguf_open_load(path, load, &m->gguf, err));
    const glmq_gguf *g = m->gguf;
    GLMQ_TRY(glmq_gguf_model_config(g, &m->cfg, err));
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_config_tensors(&m->cfg, &want, &nw, err));
    glmq_status st = GLMQ_OK;
    m->t = calloc((size_t)nw + 1, sizeof *m->t);
    m->owned = calloc(2 * (size_t)nw + 1, sizeof *m->owned);
    GLMQ_FAIL_IF_G(!m->t || !m->owned, err, GLMQ_E_NOMEM, "out of memory");
    int seen_weight = 0;
    for (int64_t i = 0; i < nw; i++) {
        char gn[96];
        if (!glmq_gguf_tensor_name(want[i].slot, want[i].layer, gn, sizeof gn)) continue;
        const glmq_gguf_tensor *gt = glmq_gguf_find_tensor(g, gn);
        if (!gt) {
            GLMQ_FAIL_IF_G(!want[i].optional, err, GLMQ_E_SHAPE,
                           "'%s': tensor '%s' (the checkpoint's '%s') is missing", path, gn,
                           want[i].name);
            continue;
        }
        mtensor *mt = &m->t[m->nt];
        mt->name = glmq_strdup(want[i].name);
        GLMQ_FAIL_IF_G(!mt->name, err, GLMQ_E_NOMEM, "out of memory");
        m->nt++;
        GLMQ_TRY_G(glmq_gguf_tensor_view(g, gt, mt->name, &mt->info, err));
        glmq_tensor_info *t = &mt->info;
        GLMQ_FAIL_IF_G(t->ndim != want[i].ndim || t->shape[0] != want[i].shape[0] ||
                           (want[i].ndim == 2 && t->shape[1] != want[i].shape[1]),
                       err, GLMQ_E_SHAPE,
                       "'%s': tensor '%s' (info at byte %llu) has ne = {%lld, %lld}, expected "
                       "{%lld, %lld} for this configuration",
                       path, gn, (unsigned long long)gt->info_offset, (long long)gt->ne[0],
                       (long long)gt->ne[1],
                       (long long)(want[i].ndim == 2 ? want[i].shape[1] : want[i].shape[0]),
                       (long long)(want[i].ndim == 2 ? want[i].shape[0] : 1));
        if (glmq_slot_is_matrix(want[i].slot)) GLMQ_TRY_G(repack(m, t, err));
        if (want[i].role == GLMQ_ROLE_LAYER_WEIGHT) note_weight_type(m, &seen_weight, t->type);
    }
    /* a glmq export carries its tokenizer file verbatim */
    const uint8_t *tok = NULL;
    uint64_t ntok = 0;
    GLMQ_TRY_G(glmq_gguf_get_arr(g, "glmq.tokenizer.file", 0, GLMQ_GGUF_U8, &tok, &ntok, err));
    m->tok = tok;
    m->tok_size = (size_t)ntok;
    /* identity: the header, metadata and tensor table (the tensor data is not hashed here) */
    const glmq_gguf_tensor *t0 = glmq_gguf_tensor_count(g) ? glmq_gguf_tensor_at(g, 0) : NULL;
    m->ident = t0 ? XXH3_64bits(t0->data - t0->offset, (size_t)glmq_gguf_data_offset(g)) : 0;
fail:
    free(want);
    return st;
}

static glmq_type dtype_to_type(glmq_dtype d)
{
    return d == GLMQ_DT_F16 ? GLMQ_TYPE_F16 : d == GLMQ_DT_BF16 ? GLMQ_TYPE_BF16 : GLMQ_TYPE_F32;
}

/* A tensor THUDM quantized: its codes and scales repacked into private INT8/INT4 rows. */
static glmq_status load_thudm(glmq_model *m, glmq_checkpoint *ck, const glmq_ckpt_tensor *ct,
                              glmq_tensor_info *t, glmq_err *err)
{
    const glmq_src_tensor *s = &ck->set.tensors[ct->src];
    const int bits = ct->qbits;
    const glmq_type type = glmq_thudm_type(bits);
    const int64_t rows = ct->want.shape[0], cols = ct->want.shape[1], sb = glmq_src_cols(s);
    const int64_t rb = glmq_row_bytes(type, cols);
    uint8_t *data = aligned_alloc(64, (size_t)(rows * rb) + 64);
    uint16_t *sc = malloc((size_t)rows * sizeof *sc + 2);
    int8_t *codes = malloc((size_t)(rows * sb) + 1);
    if (data) m->owned[m->nowned++] = data;
    if (sc) m->owned[m->nowned++] = sc;
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF_G(!data || !sc || !codes, err, GLMQ_E_NOMEM, "out of memory for tensor '%s'",
                   s->name);
    GLMQ_TRY_G(glmq_src_read_rows_raw(&ck->set, s, 0, rows, codes, err));
    GLMQ_TRY_G(glmq_src_read_rows_raw(&ck->set, &ck->set.tensors[ct->scale_src], 0, 1, sc, err));
    for (int64_t r = 0; r < rows && st == GLMQ_OK; r++)
        st = glmq_thudm_row(codes + r * sb, bits, cols, sc[r], data + r * rb, s->name, r, err);
    if (st != GLMQ_OK) {
        glmq_err_prefix(err, st, "'%s': ", ck->dir);
        goto fail;
    }
    t->type = type;
    t->ndim = 2;
    t->shape[0] = t->rows = rows;
    t->shape[1] = t->cols = cols;
    t->row_stride = rb;
    t->data = data;
    t->data_size = (size_t)(rows * rb);
    t->scales = sc;
    t->scales_size = (size_t)rows * sizeof *sc;
fail:
    free(codes);
    return st;
}

static glmq_status open_dir(glmq_model *m, const char *path, glmq_err *err)
{
    GLMQ_TRY(glmq_checkpoint_open(path, &m->ck, err));
    glmq_checkpoint *ck = m->ck;
    m->cfg = ck->cfg;
    m->tok = ck->tokenizer.data;
    m->tok_size = ck->tokenizer.size;
    uint32_t nf = ck->set.nfiles;
    m->maps = calloc(nf + 1, sizeof *m->maps);
    m->map_sizes = calloc(nf + 1, sizeof *m->map_sizes);
    m->t = calloc((size_t)ck->n_tensors + 1, sizeof *m->t);
    m->owned = calloc((size_t)ck->n_tensors * 2 + 1, sizeof *m->owned); /* data (+ scales) */
    GLMQ_FAIL_IF(!m->maps || !m->map_sizes || !m->t || !m->owned, err, GLMQ_E_NOMEM,
                 "out of memory");
    XXH3_state_t *h = XXH3_createState();
    GLMQ_FAIL_IF(!h, err, GLMQ_E_NOMEM, "out of memory");
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, ck->config_json.data, ck->config_json.size);
    for (uint32_t f = 0; f < nf; f++) {
        m->map_sizes[f] = ck->set.files[f].size;
        XXH3_64bits_update(h, ck->set.files[f].base, strlen(ck->set.files[f].base));
        XXH3_64bits_update(h, &m->map_sizes[f], sizeof m->map_sizes[f]);
        if (m->map_sizes[f] == 0) continue;
        m->maps[f] = mmap(NULL, m->map_sizes[f], PROT_READ, MAP_PRIVATE, ck->set.files[f].fd, 0);
        if (m->maps[f] == MAP_FAILED) {
            m->maps[f] = NULL;
            XXH3_freeState(h);
            return glmq_fail(err, GLMQ_E_IO, "cannot map '%s': %s", ck->set.files[f].path,
                             strerror(errno));
        }
#if defined(MADV_HUGEPAGE)
        /* advisory: 2 MiB page-cache folios where the file system has them (pack_read.c) */
        (void)madvise(m->maps[f], m->map_sizes[f], MADV_HUGEPAGE);
#endif
    }
    m->ident = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    snprintf(m->weight_type, sizeof m->weight_type, "%s", "f32");
    int seen_weight = 0;
    for (int64_t i = 0; i < ck->n_tensors; i++) {
        const glmq_ckpt_tensor *ct = &ck->tensors[i];
        if (ct->src < 0) continue;
        const glmq_src_tensor *s = &ck->set.tensors[ct->src];
        const glmq_src_storage *sto = &ck->set.storages[s->storage];
        glmq_tensor_info *t = &m->t[m->nt].info;
        t->name = s->name;
        if (ct->qbits) {
            GLMQ_TRY(load_thudm(m, ck, ct, t, err));
            if (ct->want.role == GLMQ_ROLE_LAYER_WEIGHT) note_weight_type(m, &seen_weight, t->type);
            m->nt++;
            continue;
        }
        t->type = dtype_to_type(s->dtype);
        if (ct->want.role == GLMQ_ROLE_LAYER_WEIGHT) note_weight_type(m, &seen_weight, t->type);
        t->ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t->shape[d] = s->shape[d];
        t->cols = glmq_src_cols(s);
        t->rows = glmq_src_rows(s);
        size_t es = glmq_dtype_size(s->dtype);
        t->row_stride = t->cols * (int64_t)es;
        t->data_size = (size_t)s->nelem * es;
        uint64_t off = sto->offset + s->byte_offset;
        if (s->contiguous && !sto->deflated && off % es == 0) {
            t->data = (const uint8_t *)m->maps[sto->file] + off;
        } else {
            void *buf = malloc(t->data_size ? t->data_size : 1);
            GLMQ_FAIL_IF(!buf, err, GLMQ_E_NOMEM, "out of memory for tensor '%s'", s->name);
            m->owned[m->nowned++] = buf;
            GLMQ_TRY(glmq_src_read_rows_raw(&ck->set, s, 0, glmq_src_rows(s), buf, err));
            t->data = buf;
        }
        m->nt++;
    }
    return GLMQ_OK;
}

/* 1 when the file starts with GGUF's magic. */
static int is_gguf(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char magic[4] = {0};
    ssize_t n = read(fd, magic, 4);
    close(fd);
    return n == 4 && !memcmp(magic, "GGUF", 4);
}

glmq_status glmq_model_open(const char *path, glmq_model **out, glmq_err *err)
{
    return glmq_model_open_flags(path, 0, out, err);
}

glmq_status glmq_model_open_flags(const char *path, unsigned flags, glmq_model **out,
                                  glmq_err *err)
{
    GLMQ_FAIL_IF(!out, err, GLMQ_E_INVALID, "glmq_model_open: no output pointer given");
    *out = NULL;
    GLMQ_FAIL_IF(!path, err, GLMQ_E_INVALID, "glmq_model_open: no path given");
    GLMQ_FAIL_IF(flags & ~GLMQ_OPEN_LOAD, err, GLMQ_E_INVALID,
                 "glmq_model_open: unknown flags 0x%x", flags & ~GLMQ_OPEN_LOAD);
    const int load = (flags & GLMQ_OPEN_LOAD) != 0;
    glmq_model *m = calloc(1, sizeof *m);
    GLMQ_FAIL_IF(!m, err, GLMQ_E_NOMEM, "out of memory");
    atomic_init(&m->tok_cache, NULL);
    struct stat sb;
    glmq_status st;
    if (stat(path, &sb) != 0)
        st = glmq_fail(err, GLMQ_E_IO, "cannot open '%s': %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        st = open_dir(m, path, err);
    else if (is_gguf(path))
        st = open_gguf(m, path, load, err);
    else
        st = open_pack(m, path, load, err);
    if (st != GLMQ_OK) {
        glmq_model_close(m);
        return st;
    }
    *out = m;
    return GLMQ_OK;
}
