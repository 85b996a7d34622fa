/*
 * glm4_tiny.c - tu_make_glm4_tiny (see glm4_tiny.h): glm2-tiny's weights dressed as a
 * GLM-4-9B-chat checkpoint with the real tokenizer, written with a hand-made safetensors writer
 * (u64 LE header length, JSON header padded with spaces to 8 bytes, then the tensor bytes in
 * header order).
 */
#include "glm4_tiny.h"
#include "testutil.h"
#include "core/internal.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* GLM-4-9B-chat's config.json keys (shared/upstream/glm-4-9b-chat) with glm2-tiny's sizes. */
static const char k_config[] =
    "{\n"
    "  \"_name_or_path\": \"glmq/glm4-tiny\",\n"
    "  \"model_type\": \"chatglm\",\n"
    "  \"architectures\": [\"ChatGLMModel\"],\n"
    "  \"auto_map\": {\n"
    "    \"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\",\n"
    "    \"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\",\n"
    "    \"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\",\n"
    "    \"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\",\n"
    "    \"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"\n"
    "  },\n"
    "  \"add_bias_linear\": false,\n"
    "  \"add_qkv_bias\": true,\n"
    "  \"apply_query_key_layer_scaling\": true,\n"
    "  \"apply_residual_connection_post_layernorm\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"attention_softmax_in_fp32\": true,\n"
    "  \"attn_implementation\": \"sdpa\",\n"
    "  \"bias_dropout_fusion\": true,\n"
    "  \"ffn_hidden_size\": 172,\n"
    "  \"fp32_residual_connection\": false,\n"
    "  \"hidden_dropout\": 0.0,\n"
    "  \"hidden_size\": 128,\n"
    "  \"kv_channels\": 32,\n"
    "  \"layernorm_epsilon\": 1.5625e-07,\n"
    "  \"multi_query_attention\": true,\n"
    "  \"multi_query_group_num\": 2,\n"
    "  \"num_attention_heads\": 4,\n"
    "  \"num_hidden_layers\": 2,\n"
    "  \"num_layers\": 2,\n"
    "  \"rope_ratio\": 2.0,\n"
    "  \"original_rope\": true,\n"
    "  \"padded_vocab_size\": 151552,\n"
    "  \"post_layer_norm\": true,\n"
    "  \"rmsnorm\": true,\n"
    "  \"seq_length\": 512,\n"
    "  \"use_cache\": true,\n"
    "  \"torch_dtype\": \"float16\",\n"
    "  \"transformers_version\": \"4.44.0\",\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"eos_token_id\": [151329, 151336, 151338],\n"
    "  \"pad_token_id\": 151329\n"
    "}\n";

static int widened(const char *name)
{
    return !strcmp(name, "transformer.embedding.word_embeddings.weight") ||
           !strcmp(name, "transformer.output_layer.weight");
}

static glmq_status copy_file(const char *src_dir, const char *dst_dir, const char *name,
                             glmq_err *err)
{
    char *s = tu_path(src_dir, name), *d = tu_path(dst_dir, name);
    size_t n = 0;
    uint8_t *b = tu_read_file(s, &n);
    glmq_status st = GLMQ_OK;
    if (!b)
        st = glmq_fail(err, GLMQ_E_IO, "glm4-tiny: cannot read '%s'", s);
    else if (tu_write_file(d, b, n) != 0)
        st = glmq_fail(err, GLMQ_E_IO, "glm4-tiny: cannot write '%s'", d);
    free(b);
    free(s);
    free(d);
    return st;
}

/* Standard deviation of n f16 values. */
static double f16_std(const uint8_t *p, size_t n)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = glmq_f16_to_f32(glmq_rd_le16(p + 2 * i));
        s += v;
        s2 += v * v;
    }
    double m = s / (double)n;
    double var = s2 / (double)n - m * m;
    return var > 0 ? sqrt(var) : 0.0;
}

static glmq_status write_safetensors(const char *src, const char *dst, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    uint8_t *in = NULL, *row = NULL;
    cJSON *h = NULL, *oh = NULL;
    char *hs = NULL;
    FILE *f = NULL;
    size_t n = 0;
    in = tu_read_file(src, &n);
    GLMQ_FAIL_IF_G(!in || n < 8, err, GLMQ_E_IO, "glm4-tiny: cannot read '%s'", src);
    uint64_t hl = glmq_rd_le64(in);
    GLMQ_FAIL_IF_G(hl > n - 8, err, GLMQ_E_FORMAT, "glm4-tiny: '%s': bad header", src);
    const uint8_t *data = in + 8 + hl;
    const size_t data_n = n - 8 - (size_t)hl;
    h = cJSON_ParseWithLength((const char *)in + 8, (size_t)hl);
    GLMQ_FAIL_IF_G(!h, err, GLMQ_E_FORMAT, "glm4-tiny: '%s': bad header JSON", src);

    /* the new header: same tensors and order, two of them with 151552 rows */
    oh = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(oh, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, h)
    {
        if (!strcmp(t->string, "__metadata__")) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        GLMQ_FAIL_IF_G(!cJSON_IsString(dt) || strcmp(dt->valuestring, "F16") ||
                           !cJSON_IsArray(sh) || cJSON_GetArraySize(of) != 2,
                       err, GLMQ_E_FORMAT, "glm4-tiny: '%s': tensor '%s' is not a plain F16 one",
                       src, t->string);
        uint64_t b = (uint64_t)cJSON_GetArrayItem(of, 0)->valuedouble;
        uint64_t e = (uint64_t)cJSON_GetArrayItem(of, 1)->valuedouble;
        GLMQ_FAIL_IF_G(b > e || e > data_n, err, GLMQ_E_FORMAT,
                       "glm4-tiny: '%s': tensor '%s' offsets out of range", src, t->string);
        cJSON *nt = cJSON_AddObjectToObject(oh, t->string);
        cJSON_AddStringToObject(nt, "dtype", "F16");
        cJSON *ns = cJSON_Duplicate(sh, 1);
        uint64_t size = e - b;
        if (widened(t->string)) {
            GLMQ_FAIL_IF_G(cJSON_GetArraySize(sh) != 2, err, GLMQ_E_FORMAT,
                           "glm4-tiny: '%s': '%s' is not a matrix", src, t->string);
            uint64_t cols = (uint64_t)cJSON_GetArrayItem(sh, 1)->valuedouble;
            cJSON_ReplaceItemInArray(ns, 0, cJSON_CreateNumber(TU_GLM4_VOCAB));
            size = (uint64_t)TU_GLM4_VOCAB * cols * 2;
        }
        cJSON_AddItemToObject(nt, "shape", ns);
        cJSON *no = cJSON_AddArrayToObject(nt, "data_offsets");
        cJSON_AddItemToArray(no, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(no, cJSON_CreateNumber((double)(off + size)));
        off += size;
    }
    hs = cJSON_PrintUnformatted(oh);
    GLMQ_FAIL_IF_G(!hs, err, GLMQ_E_NOMEM, "glm4-tiny: out of memory");
    size_t hn = strlen(hs), pad = (8 - hn % 8) % 8;

    f = fopen(dst, "wb");
    GLMQ_FAIL_IF_G(!f, err, GLMQ_E_IO, "glm4-tiny: cannot create '%s': %s", dst, strerror(errno));
    uint8_t len8[8];
    glmq_wr_le64(len8, (uint64_t)(hn + pad));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hs, 1, hn, f) == hn;
    for (size_t i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
    int index = 0;
    cJSON_ArrayForEach(t, h)
    {
        if (!ok) break;
        if (!strcmp(t->string, "__metadata__")) continue;
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        uint64_t b = (uint64_t)cJSON_GetArrayItem(of, 0)->valuedouble;
        uint64_t e = (uint64_t)cJSON_GetArrayItem(of, 1)->valuedouble;
        ok = fwrite(data + b, 1, (size_t)(e - b), f) == e - b;
        index++;
        if (!ok || !widened(t->string)) continue;
        /* the rows beyond glm2-tiny's: uniform, with the std of the tensor's own rows */
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
        uint64_t rows = (uint64_t)cJSON_GetArrayItem(sh, 0)->valuedouble;
        uint64_t cols = (uint64_t)cJSON_GetArrayItem(sh, 1)->valuedouble;
        double a = f16_std(data + b, (size_t)(rows * cols)) * sqrt(3.0);
        uint64_t seed = 0x676C6D3474696E79ull + (uint64_t)index; /* "glm4tiny" */
        free(row);
        row = malloc((size_t)cols * 2);
        GLMQ_FAIL_IF_G(!row, err, GLMQ_E_NOMEM, "glm4-tiny: out of memory");
        for (uint64_t r = rows; r < TU_GLM4_VOCAB && ok; r++) {
            for (uint64_t c = 0; c < cols; c++) {
                double u = (double)(tu_splitmix64(&seed) >> 11) * (1.0 / 9007199254740992.0);
                glmq_wr_le16(row + 2 * c, glmq_f32_to_f16((float)((2.0 * u - 1.0) * a)));
            }
            ok = fwrite(row, 1, (size_t)cols * 2, f) == cols * 2;
        }
    }
    GLMQ_FAIL_IF_G(!ok, err, GLMQ_E_IO, "glm4-tiny: cannot write '%s'", dst);
    int rc = fclose(f);
    f = NULL;
    GLMQ_FAIL_IF_G(rc != 0, err, GLMQ_E_IO, "glm4-tiny: cannot write '%s'", dst);
fail:
    if (f) fclose(f);
    free(row);
    free(hs);
    cJSON_Delete(h);
    cJSON_Delete(oh);
    free(in);
    return st;
}

glmq_status tu_make_glm4_tiny(const char *dir, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    char *tokdir = NULL, *cfg = NULL, *src = NULL, *dst = NULL, *sdir = NULL;
    const char *tok = getenv("GLMQ_GLM4_TOKENIZER");
    GLMQ_FAIL_IF(!tok || !*tok, err, GLMQ_E_INVALID,
                 "glm4-tiny: GLMQ_GLM4_TOKENIZER (the real GLM-4 tokenizer.model) is not set");
    GLMQ_FAIL_IF(mkdir(dir, 0755) != 0 && errno != EEXIST, err, GLMQ_E_IO,
                 "glm4-tiny: cannot create '%s': %s", dir, strerror(errno));
    tokdir = strdup(tok);
    GLMQ_FAIL_IF_G(!tokdir, err, GLMQ_E_NOMEM, "glm4-tiny: out of memory");
    char *slash = strrchr(tokdir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(tokdir, ".");
    GLMQ_TRY_G(copy_file(tokdir, dir, "tokenizer.model", err));
    GLMQ_TRY_G(copy_file(tokdir, dir, "tokenizer_config.json", err));
    cfg = tu_path(dir, "config.json");
    GLMQ_FAIL_IF_G(tu_write_file(cfg, k_config, sizeof k_config - 1) != 0, err, GLMQ_E_IO,
                   "glm4-tiny: cannot write '%s'", cfg);
    sdir = tu_sample_path("glm2-tiny", "st");
    src = tu_path(sdir, "model.safetensors");
    dst = tu_path(dir, "model.safetensors");
    GLMQ_TRY_G(write_safetensors(src, dst, err));
fail:
    free(tokdir);
    free(cfg);
    free(sdir);
    free(src);
    free(dst);
    return st;
}
