/*
 * checkpoint.c - open a Hugging Face GLM checkpoint directory and validate it against its config.
 *
 * Policy decided here (mechanism lives in formats/):
 *   - weights: model.safetensors.index.json > model.safetensors > pytorch_model.bin.index.json >
 *     pytorch_model.bin (HF's preference for safetensors, GLM-SPEC D.5);
 *   - a shard index must only name plain file names in the directory; every weight_map entry must
 *     exist in the shard it names; a tensor in a shard but not in the map is a warning; the
 *     index's total_size is never trusted (it is stale for ChatGLM-6B, A.1);
 *   - every expected tensor (the table of glm_tensors.c) must be present with dtype F16/BF16/F32
 *     and the expected shape, before any output is written; in THUDM's quantized releases
 *     (config.json quantization_bit) the quantized ones are int8 codes plus fp16 `<name>_scale`
 *     instead (check_thudm, formats/thudm_quant.h); rotary `inv_freq` buffers are
 *     skipped; anything else unexpected is reported as a warning;
 *   - the tokenizer is tokenizer.model (v2 family) or ice_text.model (v1); its kind
 *     (SentencePiece protobuf or tiktoken rank text) is sniffed, and v2 special-token ids are
 *     numbered after its pieces/ranks.
 */
#include "formats/checkpoint.h"
#include "formats/hf_tokenizer.h"
#include "formats/sat.h"
#include "formats/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SMALL_FILE (64u << 20) /* config/tokenizer/index files */

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int file_exists(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat sb;
    int ok = p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return ok;
}

/* Read a small file whole. Absent and !required -> OK with data NULL. */
static glmq_status read_small(const char *dir, const char *name, int required, glmq_small_file *f,
                              glmq_err *err)
{
    f->name = glmq_strdup(name);
    GLMQ_FAIL_IF(!f->name, err, GLMQ_E_NOMEM, "out of memory");
    char *p = path_join(dir, name);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = GLMQ_OK;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (!required && errno == ENOENT) goto fail;
        st = glmq_fail(err, GLMQ_E_IO, "cannot open '%s': %s", p, strerror(errno));
        goto fail;
    }
    struct stat sb;
    GLMQ_FAIL_IF_G(fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode), err, GLMQ_E_IO,
                   "'%s' is not a regular file", p);
    GLMQ_FAIL_IF_G((uint64_t)sb.st_size > MAX_SMALL_FILE, err, GLMQ_E_FORMAT,
                   "'%s' is %lld bytes; more than the %u MiB allowed for this kind of file", p,
                   (long long)sb.st_size, MAX_SMALL_FILE >> 20);
    f->size = (size_t)sb.st_size;
    f->data = malloc(f->size + 1);
    GLMQ_FAIL_IF_G(!f->data, err, GLMQ_E_NOMEM, "out of memory");
    size_t got = 0;
    while (got < f->size) {
        ssize_t r = read(fd, f->data + got, f->size - got);
        if (r < 0 && errno == EINTR) continue;
        GLMQ_FAIL_IF_G(r <= 0, err, GLMQ_E_IO, "'%s': read failed at byte %zu", p, got);
        got += (size_t)r;
    }
    f->data[f->size] = 0;
fail:
    if (fd >= 0) close(fd);
    free(p);
    return st;
}

static void free_small(glmq_small_file *f)
{
    free(f->name);
    free(f->data);
    memset(f, 0, sizeof *f);
}

glmq_status glmq_checkpoint_warn(glmq_checkpoint *c, glmq_err *err, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **w = realloc(c->warnings, (size_t)(c->n_warnings + 1) * sizeof *w);
    GLMQ_FAIL_IF(!w, err, GLMQ_E_NOMEM, "out of memory");
    c->warnings = w;
    w[c->n_warnings] = glmq_strdup(buf);
    GLMQ_FAIL_IF(!w[c->n_warnings], err, GLMQ_E_NOMEM, "out of memory");
    c->n_warnings++;
    return GLMQ_OK;
}

/* A shard name from an index must be a plain file name. */
static int plain_name(const char *s)
{
    return s[0] && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static glmq_status load_file(glmq_checkpoint *c, const char *name, int safetensors, glmq_err *err)
{
    char *p = path_join(c->dir, name);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = safetensors ? glmq_safetensors_load(&c->set, p, err)
                                 : glmq_torchzip_load(&c->set, p, err);
    free(p);
    return st;
}

/* Load every shard named by an index and cross-check the weight map. */
static glmq_status load_sharded(glmq_checkpoint *c, const char *index_name, int safetensors,
                                glmq_err *err)
{
    GLMQ_TRY(read_small(c->dir, index_name, 1, &c->index, err));
    glmq_status st = GLMQ_OK;
    const char **shards = NULL;
    size_t nshards = 0;
    cJSON *root = cJSON_ParseWithLength((const char *)c->index.data, c->index.size);
    GLMQ_FAIL_IF_G(!root || !cJSON_IsObject(root), err, GLMQ_E_FORMAT,
                   "'%s/%s': not a JSON object", c->dir, index_name);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    GLMQ_FAIL_IF_G(!cJSON_IsObject(map), err, GLMQ_E_FORMAT, "'%s/%s': no 'weight_map' object",
                   c->dir, index_name);
    int n = cJSON_GetArraySize(map);
    GLMQ_FAIL_IF_G(n <= 0, err, GLMQ_E_FORMAT, "'%s/%s': empty weight_map", c->dir, index_name);
    shards = calloc((size_t)n, sizeof *shards);
    GLMQ_FAIL_IF_G(!shards, err, GLMQ_E_NOMEM, "out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        GLMQ_FAIL_IF_G(!cJSON_IsString(it), err, GLMQ_E_FORMAT,
                       "'%s/%s': weight_map entry '%s' is not a file name", c->dir, index_name,
                       it->string);
        GLMQ_FAIL_IF_G(!plain_name(it->valuestring), err, GLMQ_E_FORMAT,
                       "'%s/%s': weight_map entry '%s' names '%s', which is not a plain file "
                       "name in the checkpoint directory",
                       c->dir, index_name, it->string, it->valuestring);
        shards[nshards++] = it->valuestring;
    }
    /* distinct shard names, sorted (deterministic load order) */
    qsort(shards, nshards, sizeof *shards, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < nshards; i++)
        if (k == 0 || strcmp(shards[k - 1], shards[i])) shards[k++] = shards[i];
    nshards = k;
    for (size_t i = 0; i < nshards; i++) {
        GLMQ_FAIL_IF_G(!file_exists(c->dir, shards[i]), err, GLMQ_E_IO,
                       "'%s/%s' names shard '%s', which does not exist in '%s'", c->dir,
                       index_name, shards[i], c->dir);
        GLMQ_TRY_G(load_file(c, shards[i], safetensors, err));
    }
    /* every mapped tensor must be in the shard the map names */
    cJSON_ArrayForEach(it, map)
    {
        int64_t ti = glmq_src_find(&c->set, it->string);
        GLMQ_FAIL_IF_G(ti < 0, err, GLMQ_E_FORMAT,
                       "'%s/%s': tensor '%s' is mapped to '%s' but that shard does not contain it",
                       c->dir, index_name, it->string, it->valuestring);
        const glmq_src_tensor *t = &c->set.tensors[ti];
        const char *base = c->set.files[c->set.storages[t->storage].file].base;
        GLMQ_FAIL_IF_G(strcmp(base, it->valuestring) != 0, err, GLMQ_E_FORMAT,
                       "'%s/%s': tensor '%s' is mapped to '%s' but found in '%s'", c->dir,
                       index_name, it->string, it->valuestring, base);
    }
    for (int64_t i = 0; i < c->set.ntensors; i++)
        if (!cJSON_GetObjectItemCaseSensitive(map, c->set.tensors[i].name))
            GLMQ_TRY_G(glmq_checkpoint_warn(c, err, "tensor '%s' is in a shard but not in '%s'",
                            c->set.tensors[i].name, index_name));
fail:
    free(shards);
    cJSON_Delete(root);
    return st;
}

/* transformers-native repositories ship tokenizer.json instead of tokenizer.model: a GLM-4
 * one becomes the equivalent tiktoken rank file (formats/hf_tokenizer.h), held as the
 * checkpoint's tokenizer under the name "tokenizer.json", so convert stores a tokenizer every
 * reader understands. */
static glmq_status load_tokenizer_json(glmq_checkpoint *c, glmq_err *err)
{
    glmq_small_file j = {0};
    glmq_status st = read_small(c->dir, "tokenizer.json", 1, &j, err);
    char *p = path_join(c->dir, "tokenizer.json");
    uint8_t *ranks = NULL;
    size_t n = 0;
    int32_t nr = 0;
    GLMQ_FAIL_IF_G(!p, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(st);
    GLMQ_TRY_G(glmq_hf_tokenizer_ranks((const char *)j.data, j.size, p, &ranks, &n, &nr, err));
    free_small(&c->tokenizer);
    c->tokenizer.name = glmq_strdup("tokenizer.json");
    GLMQ_FAIL_IF_G(!c->tokenizer.name, err, GLMQ_E_NOMEM, "out of memory");
    c->tokenizer.data = ranks;
    c->tokenizer.size = n;
    ranks = NULL;
fail:
    free(ranks);
    free(p);
    free_small(&j);
    return st;
}

static glmq_status load_tokenizer(glmq_checkpoint *c, glmq_err *err)
{
    const char *name = c->cfg.arch == GLMQ_ARCH_CHATGLM1 && file_exists(c->dir, "ice_text.model")
                           ? "ice_text.model"
                           : "tokenizer.model";
    GLMQ_TRY(read_small(c->dir, name, 0, &c->tokenizer, err));
    if (!c->tokenizer.data && c->cfg.arch == GLMQ_ARCH_CHATGLM2 &&
        file_exists(c->dir, "tokenizer.json"))
        GLMQ_TRY(load_tokenizer_json(c, err));
    if (!c->tokenizer.data) {
        GLMQ_TRY(glmq_checkpoint_warn(c, err,
                      "no tokenizer file (tokenizer.model or ice_text.model): the packed file "
                      "will not be able to tokenize text"));
        if (c->cfg.arch == GLMQ_ARCH_CHATGLM1)
            snprintf(c->cfg.tokenizer_kind, sizeof c->cfg.tokenizer_kind, "sentencepiece");
        else
            snprintf(c->cfg.tokenizer_kind, sizeof c->cfg.tokenizer_kind, "none");
        return GLMQ_OK;
    }
    /* Parse it with the tokenizer module (the same validation `verify` applies later): the v2
     * special tokens are numbered after its pieces or ranks. A first byte 0x0A (field 1,
     * length-delimited) means a SentencePiece ModelProto, else a tiktoken rank file. */
    const uint8_t *d = c->tokenizer.data;
    int is_sp = c->tokenizer.size > 0 && d[0] == 0x0a;
    GLMQ_FAIL_IF(!is_sp && c->cfg.arch == GLMQ_ARCH_CHATGLM1, err, GLMQ_E_FORMAT,
                 "'%s/%s': ChatGLM-6B needs a SentencePiece model", c->dir, name);
    glmq_tokenizer *tok = NULL;
    glmq_status st = is_sp ? glmq_tokenizer_load_sp(d, c->tokenizer.size, NULL, &tok, err)
                           : glmq_tokenizer_load_tiktoken(d, c->tokenizer.size, NULL, &tok, err);
    if (st != GLMQ_OK) return glmq_err_prefix(err, st, "'%s/%s': ", c->dir, name);
    glmq_tok_info info;
    glmq_tokenizer_info(tok, &info);
    glmq_tokenizer_free(tok);
    glmq_config_set_special(&c->cfg, info.n_base, !is_sp);
    GLMQ_FAIL_IF(c->cfg.tok_eop >= c->cfg.vocab, err, GLMQ_E_FORMAT,
                 "'%s/%s': special tokens numbered after the tokenizer's %s (up to id %lld) do "
                 "not fit in the vocabulary of %lld rows",
                 c->dir, name, is_sp ? "pieces" : "ranks", (long long)c->cfg.tok_eop,
                 (long long)c->cfg.vocab);
    return GLMQ_OK;
}

static int is_float(glmq_dtype t)
{
    return t == GLMQ_DT_F16 || t == GLMQ_DT_BF16 || t == GLMQ_DT_F32;
}

/* 1 when config.json says THUDM quantized this tensor (formats/thudm_quant.h): the four layer
 * weights of every layer, plus the embedding and the output layer with quantization_embeddings. */
static int thudm_quantized(const glmq_config *cfg, const glmq_expected_tensor *w)
{
    if (!cfg->quant_bits || w->ndim != 2) return 0;
    return w->quant == GLMQ_QUANT_DEFAULT ||
           (cfg->quant_embeddings && (w->role == GLMQ_ROLE_EMBED || w->role == GLMQ_ROLE_OUTPUT));
}

/* A quantized tensor of a THUDM release: int8 codes [rows, cols * bits / 8] and the fp16 scales
 * `<name>_scale` [rows], checked strictly (the values of the scales when they are read). */
static glmq_status check_thudm(glmq_checkpoint *c, glmq_ckpt_tensor *ct, uint8_t *used,
                               glmq_err *err)
{
    const int bits = c->cfg.quant_bits;
    const glmq_src_tensor *t = &c->set.tensors[ct->src];
    const char *file = c->set.files[c->set.storages[t->storage].file].path;
    const int64_t rows = ct->want.shape[0], cols = ct->want.shape[1];
    GLMQ_FAIL_IF(t->dtype != GLMQ_DT_I8, err, GLMQ_E_UNSUPPORTED,
                 "'%s': tensor '%s' has dtype %s; config.json's quantization_bit %d means THUDM's "
                 "int8-stored codes",
                 file, t->name, glmq_dtype_name(t->dtype), bits);
    GLMQ_FAIL_IF(bits == 4 && cols % 2 != 0, err, GLMQ_E_SHAPE,
                 "'%s': tensor '%s' has %lld columns, which pairs of int4 codes cannot hold "
                 "(quantization_bit 4 packs two columns per byte)",
                 file, t->name, (long long)cols);
    const int64_t scols = cols * bits / 8;
    GLMQ_FAIL_IF(t->ndim != 2 || t->shape[0] != rows || t->shape[1] != scols, err, GLMQ_E_SHAPE,
                 "'%s': tensor '%s' has shape [%lld%s%lld]; config.json with quantization_bit "
                 "%d implies int8 [%lld, %lld] (%s)",
                 file, t->name, (long long)(t->ndim ? t->shape[0] : 0), t->ndim > 1 ? ", " : "",
                 (long long)(t->ndim > 1 ? t->shape[1] : 0), bits, (long long)rows,
                 (long long)scols,
                 bits == 4 ? "two int4 codes per byte" : "one code per element");
    char sname[GLMQ_SRC_NAME_MAX + 8];
    snprintf(sname, sizeof sname, "%s_scale", t->name);
    int64_t si = glmq_src_find(&c->set, sname);
    GLMQ_FAIL_IF(si < 0, err, GLMQ_E_SHAPE,
                 "'%s': tensor '%s' is missing (the fp16 per-row scales of the quantized '%s')",
                 c->dir, sname, t->name);
    const glmq_src_tensor *s = &c->set.tensors[si];
    const char *sfile = c->set.files[c->set.storages[s->storage].file].path;
    GLMQ_FAIL_IF(s->dtype != GLMQ_DT_F16, err, GLMQ_E_UNSUPPORTED,
                 "'%s': tensor '%s' has dtype %s; expected F16 (THUDM's weight_scale, which "
                 "glmq's fp16 scale table keeps exactly)",
                 sfile, sname, glmq_dtype_name(s->dtype));
    GLMQ_FAIL_IF(s->ndim != 1 || s->shape[0] != rows, err, GLMQ_E_SHAPE,
                 "'%s': tensor '%s' has %d dimension(s) of %lld; expected [%lld] (one scale per "
                 "row of '%s')",
                 sfile, sname, s->ndim, (long long)(s->ndim ? s->shape[0] : 0), (long long)rows,
                 t->name);
    ct->qbits = bits;
    ct->scale_src = si;
    used[si] = 1;
    return GLMQ_OK;
}

static glmq_status check_tensors(glmq_checkpoint *c, glmq_err *err)
{
    glmq_expected_tensor *want = NULL;
    int64_t n = 0;
    GLMQ_TRY(glmq_config_tensors(&c->cfg, &want, &n, err));
    glmq_status st = GLMQ_OK;
    uint8_t *used = calloc((size_t)c->set.ntensors + 1, 1);
    c->tensors = calloc((size_t)n, sizeof *c->tensors);
    GLMQ_FAIL_IF_G(!used || !c->tensors, err, GLMQ_E_NOMEM, "out of memory");
    c->n_tensors = n;
    for (int64_t i = 0; i < n; i++) {
        glmq_ckpt_tensor *ct = &c->tensors[i];
        ct->want = want[i];
        ct->scale_src = -1;
        ct->src = glmq_src_find(&c->set, want[i].name);
        if (ct->src < 0) {
            GLMQ_FAIL_IF_G(!want[i].optional, err, GLMQ_E_SHAPE,
                           "'%s': tensor '%s' is missing (needed by the %s architecture of "
                           "config.json)",
                           c->dir, want[i].name, glmq_arch_name(c->cfg.arch));
            continue;
        }
        const glmq_src_tensor *t = &c->set.tensors[ct->src];
        used[ct->src] = 1;
        if (thudm_quantized(&c->cfg, &want[i])) {
            GLMQ_TRY_G(check_thudm(c, ct, used, err));
            continue;
        }
        const char *file = c->set.files[c->set.storages[t->storage].file].path;
        GLMQ_FAIL_IF_G(!is_float(t->dtype), err, GLMQ_E_UNSUPPORTED,
                       "'%s': tensor '%s' has dtype %s; expected F16, BF16 or F32", file,
                       t->name, glmq_dtype_name(t->dtype));
        int ok = t->ndim == want[i].ndim;
        for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == want[i].shape[d];
        if (!ok) {
            char got[96] = "", exp[96] = "";
            size_t gl = 0, el = 0;
            for (int d = 0; d < t->ndim && gl < sizeof got; d++)
                gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%lld", d ? ", " : "",
                                       (long long)t->shape[d]);
            for (int d = 0; d < want[i].ndim && el < sizeof exp; d++)
                el += (size_t)snprintf(exp + el, sizeof exp - el, "%s%lld", d ? ", " : "",
                                       (long long)want[i].shape[d]);
            st = glmq_fail(err, GLMQ_E_SHAPE,
                           "'%s': tensor '%s' has shape [%s]; config.json implies [%s]", file,
                           t->name, got, exp);
            goto fail;
        }
    }
    for (int64_t i = 0; i < c->set.ntensors; i++) {
        if (used[i] || c->set.tensors[i].used_as_piece) continue;
        const char *nm = c->set.tensors[i].name;
        if (glmq_tensor_is_buffer(nm)) continue; /* recomputed, never used */
        GLMQ_TRY_G(glmq_checkpoint_warn(c, err, "ignoring unexpected tensor '%s'", nm));
    }
fail:
    free(used);
    free(want);
    return st;
}

/* ---- transformers-native layouts (model_type "glm" / "glm4", GLM-SPEC C.4) ----------------
 *
 * GlmForCausalLM and Glm4ForCausalLM name the same weights differently and split the fused
 * query/key/value projection into q_proj, k_proj and v_proj (an early transformers converter
 * kept a fused qkv_proj, also accepted). map_hf_layout presents them under glmq's canonical
 * names (formats/glm_tensors.c), as second names of the same tensors (q/k/v: composite
 * tensors, formats/source.h), so validation, convert, the runtime and export all see the
 * canonical layout:
 *     model.embed_tokens.weight            -> transformer.embedding.word_embeddings.weight
 *     model.layers.N.<hf leaf>             -> transformer.encoder.layers.N.<canonical leaf>
 *     q_proj | k_proj | v_proj (rows)      -> self_attention.query_key_value (weight and bias)
 *     model.norm.weight                    -> transformer.encoder.final_layernorm.weight
 *     lm_head.weight                       -> transformer.output_layer.weight
 * gate_up_proj keeps its rows (gate first, then up: the order of dense_h_to_4h). With
 * tie_word_embeddings the output layer is the whole embedding (another name of it; the
 * packed file then stores the output layer like any untied checkpoint's, and a stray lm_head is
 * ignored with a warning, as transformers ties it to the embedding on load). */

/* Present tensor `from` (when present) as `to`: a second name of the same bytes, so the
 * runtime still maps it and convert still reads it in one sequential pass. */
static glmq_status hf_alias(glmq_checkpoint *c, const char *from, const char *to, glmq_err *err)
{
    int64_t i = glmq_src_find(&c->set, from);
    if (i < 0) return GLMQ_OK; /* check_tensors names the canonical tensor that is missing */
    const glmq_src_tensor *t = &c->set.tensors[i];
    GLMQ_FAIL_IF(t->ndim < 1 || t->ndim > 2, err, GLMQ_E_SHAPE, "'%s': tensor '%s' is %d-D",
                 c->set.files[c->set.storages[t->storage].file].path, from, t->ndim);
    return glmq_src_add_alias(&c->set, i, to, err);
}

/* Join <pre>q_proj.<kind>, k_proj, v_proj into `to` after checking each one's rows, or alias a
 * fused <pre>qkv_proj.<kind>. Absent: nothing (check_tensors reports the canonical name). */
static glmq_status hf_qkv(glmq_checkpoint *c, const char *pre, const char *kind, const char *to,
                          glmq_err *err)
{
    char nm[3][GLMQ_SRC_NAME_MAX], fused[GLMQ_SRC_NAME_MAX];
    static const char *const part[3] = {"q_proj", "k_proj", "v_proj"};
    const int64_t want[3] = {c->cfg.n_heads * c->cfg.head_dim,
                             c->cfg.n_kv_groups * c->cfg.head_dim,
                             c->cfg.n_kv_groups * c->cfg.head_dim};
    snprintf(fused, sizeof fused, "%sqkv_proj.%s", pre, kind);
    glmq_src_piece p[3];
    int found = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(nm[k], sizeof nm[k], "%s%s.%s", pre, part[k], kind);
        p[k].tensor = glmq_src_find(&c->set, nm[k]);
        found += p[k].tensor >= 0;
    }
    if (!found) return hf_alias(c, fused, to, err);
    GLMQ_FAIL_IF(glmq_src_find(&c->set, fused) >= 0, err, GLMQ_E_FORMAT,
                 "'%s': both '%s' and separate q/k/v projections are present", c->dir, fused);
    for (int k = 0; k < 3; k++) {
        GLMQ_FAIL_IF(p[k].tensor < 0, err, GLMQ_E_SHAPE,
                     "'%s': tensor '%s' is missing (its layer has the other q/k/v projections)",
                     c->dir, nm[k]);
        const glmq_src_tensor *t = &c->set.tensors[p[k].tensor];
        GLMQ_FAIL_IF(t->ndim < 1 || t->shape[0] != want[k], err, GLMQ_E_SHAPE,
                     "'%s': tensor '%s' has %lld rows; config.json implies %lld (%s)",
                     c->set.files[c->set.storages[t->storage].file].path, nm[k],
                     (long long)(t->ndim ? t->shape[0] : 0), (long long)want[k],
                     k ? "num_key_value_heads x head_dim" : "num_attention_heads x head_dim");
        p[k].first = 0;
        p[k].count = want[k];
    }
    return glmq_src_add_composite(&c->set, to, 0, p, 3, err);
}

static glmq_status map_hf_layout(glmq_checkpoint *c, glmq_err *err)
{
    static const struct {
        const char *hf, *canon;
    } leaf[] = {
        {"input_layernorm.weight", "input_layernorm.weight"},
        {"self_attn.o_proj.weight", "self_attention.dense.weight"},
        {"post_attention_layernorm.weight", "post_attention_layernorm.weight"},
        {"mlp.gate_up_proj.weight", "mlp.dense_h_to_4h.weight"},
        {"mlp.down_proj.weight", "mlp.dense_4h_to_h.weight"},
        {"post_self_attn_layernorm.weight", "post_self_attn_layernorm.weight"},
        {"post_mlp_layernorm.weight", "post_mlp_layernorm.weight"},
    };
    const glmq_tensor_table *tb = glmq_tensor_table_of(c->cfg.arch);
    GLMQ_FAIL_IF(!tb, err, GLMQ_E_INTERNAL, "no tensor table");
    const char *embed = "model.embed_tokens.weight";
    GLMQ_TRY(hf_alias(c, embed, "transformer.embedding.word_embeddings.weight", err));
    for (int64_t l = 0; l < c->cfg.n_layers; l++) {
        char pre[64], from[GLMQ_SRC_NAME_MAX], to[GLMQ_SRC_NAME_MAX];
        snprintf(pre, sizeof pre, "model.layers.%lld.", (long long)l);
        for (size_t k = 0; k < sizeof leaf / sizeof leaf[0]; k++) {
            snprintf(from, sizeof from, "%s%s", pre, leaf[k].hf);
            snprintf(to, sizeof to, "%s.%lld.%s", tb->layer_prefix, (long long)l, leaf[k].canon);
            GLMQ_TRY(hf_alias(c, from, to, err));
        }
        char apre[96];
        snprintf(apre, sizeof apre, "%sself_attn.", pre);
        snprintf(to, sizeof to, "%s.%lld.self_attention.query_key_value.weight", tb->layer_prefix,
                 (long long)l);
        GLMQ_TRY(hf_qkv(c, apre, "weight", to, err));
        if (!c->cfg.qkv_bias) continue; /* stray q/k/v biases are reported by check_tensors */
        snprintf(to, sizeof to, "%s.%lld.self_attention.query_key_value.bias", tb->layer_prefix,
                 (long long)l);
        GLMQ_TRY(hf_qkv(c, apre, "bias", to, err));
    }
    GLMQ_TRY(hf_alias(c, "model.norm.weight", "transformer.encoder.final_layernorm.weight", err));
    const char *out = "transformer.output_layer.weight";
    if (!c->cfg.tied_output) {
        GLMQ_FAIL_IF(glmq_src_find(&c->set, "lm_head.weight") < 0 &&
                         glmq_src_find(&c->set, embed) >= 0,
                     err, GLMQ_E_SHAPE,
                     "'%s': tensor 'lm_head.weight' is missing and config.json has "
                     "tie_word_embeddings = false",
                     c->dir);
        return hf_alias(c, "lm_head.weight", out, err);
    }
    c->cfg.tied_output = 0; /* from here on an ordinary (stored) output layer */
    return hf_alias(c, embed, out, err);
}

/* A new checkpoint for directory `dir` (checked to be one), nothing read yet. */
static glmq_status new_checkpoint(const char *dir, glmq_checkpoint **out, glmq_err *err)
{
    *out = NULL;
    glmq_checkpoint *c = calloc(1, sizeof *c);
    GLMQ_FAIL_IF(!c, err, GLMQ_E_NOMEM, "out of memory");
    glmq_src_set_init(&c->set);
    c->dir = glmq_strdup(dir);
    struct stat sb;
    glmq_status st = GLMQ_OK;
    if (!c->dir)
        st = glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = glmq_fail(err, GLMQ_E_IO, "'%s' is not a checkpoint directory", dir);
    if (st != GLMQ_OK) {
        glmq_checkpoint_close(c);
        return st;
    }
    *out = c;
    return GLMQ_OK;
}

/* config.json, tokenizer_config.json and the tokenizer: everything but the weights. */
static glmq_status read_meta(glmq_checkpoint *c, glmq_err *err)
{
    GLMQ_TRY(read_small(c->dir, "config.json", 1, &c->config_json, err));
    GLMQ_TRY(read_small(c->dir, "tokenizer_config.json", 0, &c->tokenizer_cfg, err));
    char *cpath = path_join(c->dir, "config.json");
    GLMQ_FAIL_IF(!cpath, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = glmq_config_parse((const char *)c->config_json.data, c->config_json.size,
                                       (const char *)c->tokenizer_cfg.data,
                                       c->tokenizer_cfg.size, cpath, &c->cfg, err);
    free(cpath);
    GLMQ_TRY(st);
    return load_tokenizer(c, err);
}

glmq_status glmq_checkpoint_open_meta(const char *dir, glmq_checkpoint **out, glmq_err *err)
{
    glmq_checkpoint *c = NULL;
    GLMQ_TRY(new_checkpoint(dir, &c, err));
    glmq_status st = read_meta(c, err);
    if (st != GLMQ_OK) {
        glmq_checkpoint_close(c);
        return st;
    }
    *out = c;
    return GLMQ_OK;
}

glmq_status glmq_checkpoint_open(const char *dir, glmq_checkpoint **out, glmq_err *err)
{
    glmq_checkpoint *c = NULL;
    GLMQ_TRY(new_checkpoint(dir, &c, err));
    glmq_status st = GLMQ_OK;
    if (glmq_sat_detect(dir)) { /* GLM-130B's tensor-parallel SAT layout (formats/sat.h) */
        int ranks = 0;
        c->weights_format = "sat";
        c->sharded = 1;
        GLMQ_TRY_G(glmq_sat_open(c, &ranks, err));
        GLMQ_TRY_G(glmq_checkpoint_warn(c, err,
                        "GLM-130B: %d ranks merged; no tokenizer is read (icetk is not "
                        "supported): give token ids",
                        ranks));
        snprintf(c->cfg.tokenizer_kind, sizeof c->cfg.tokenizer_kind, "none");
        goto tensors;
    }

    GLMQ_TRY_G(read_meta(c, err));

    if (file_exists(dir, "model.safetensors.index.json")) {
        c->weights_format = "safetensors";
        c->sharded = 1;
        GLMQ_TRY_G(load_sharded(c, "model.safetensors.index.json", 1, err));
    } else if (file_exists(dir, "model.safetensors")) {
        c->weights_format = "safetensors";
        GLMQ_TRY_G(load_file(c, "model.safetensors", 1, err));
    } else if (file_exists(dir, "pytorch_model.bin.index.json")) {
        c->weights_format = "pytorch";
        c->sharded = 1;
        GLMQ_TRY_G(load_sharded(c, "pytorch_model.bin.index.json", 0, err));
    } else if (file_exists(dir, "pytorch_model.bin")) {
        c->weights_format = "pytorch";
        GLMQ_TRY_G(load_file(c, "pytorch_model.bin", 0, err));
    } else {
        st = glmq_fail(err, GLMQ_E_IO,
                       "'%s': no weights found (model.safetensors[.index.json] or "
                       "pytorch_model.bin[.index.json])",
                       dir);
        goto fail;
    }
tensors:
    for (uint32_t i = 0; i < c->set.nstorages; i++)
        GLMQ_TRY_G(glmq_src_storage_verify(&c->set, i, err));
    if (c->cfg.hf_layout) GLMQ_TRY_G(map_hf_layout(c, err));
    GLMQ_TRY_G(check_tensors(c, err));
    *out = c;
    return GLMQ_OK;
fail:
    glmq_checkpoint_close(c);
    return st;
}

void glmq_checkpoint_close(glmq_checkpoint *c)
{
    if (!c) return;
    glmq_src_set_free(&c->set);
    free_small(&c->config_json);
    free_small(&c->tokenizer);
    free_small(&c->tokenizer_cfg);
    free_small(&c->index);
    for (int64_t i = 0; i < c->n_warnings; i++) free(c->warnings[i]);
    free(c->warnings);
    free(c->tensors);
    free(c->dir);
    free(c);
}
