/*
 * check_config.c - config.json parsing, architecture detection and the expected-tensor tables.
 *
 * Expected values come from GLM-SPEC (A.2, B.1, C.1 tables and the byte totals of A.3, B.2, C.2,
 * G.3) and from the real upstream index files in tests/data/upstream, never from glmq itself.
 */
#include "formats/config.h"
#include "formats/glm_tensors.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static glmq_status parse_dir(const char *model, glmq_config *c, glmq_err *err)
{
    char *dir = tu_path(tu_testdata(), "upstream");
    char *md = tu_path(dir, model);
    char *cp = tu_path(md, "config.json"), *tp = tu_path(md, "tokenizer_config.json");
    size_t n = 0, tn = 0;
    char *cj = (char *)tu_read_file(cp, &n);
    char *tj = (char *)tu_read_file(tp, &tn);
    ck_assert_ptr_nonnull(cj);
    glmq_status st = glmq_config_parse(cj, n, tj, tn, cp, c, err);
    free(cj);
    free(tj);
    free(cp);
    free(tp);
    free(md);
    free(dir);
    return st;
}

static glmq_status parse_str(const char *json, glmq_config *c, glmq_err *err)
{
    return glmq_config_parse(json, strlen(json), NULL, 0, "config.json", c, err);
}

START_TEST(chatglm_6b)
{
    glmq_config c;
    glmq_err err = {0};
    ck_assert_int_eq(parse_dir("chatglm-6b", &c, &err), GLMQ_OK);
    ck_assert_int_eq(c.arch, GLMQ_ARCH_CHATGLM1);
    ck_assert_int_eq(c.vocab, 130528);
    ck_assert_int_eq(c.hidden, 4096);
    ck_assert_int_eq(c.n_layers, 28);
    ck_assert_int_eq(c.n_heads, 32);
    ck_assert_int_eq(c.head_dim, 128);
    ck_assert_int_eq(c.ffn, 16384);
    ck_assert_int_eq(c.tok_mask, 130000);
    ck_assert_int_eq(c.tok_gmask, 130001);
    ck_assert_int_eq(c.tok_sop, 130004);
    ck_assert_int_eq(c.tok_eop, 130005);
    ck_assert_int_eq(c.tok_pad, 3);
    ck_assert_int_eq(c.num_image_tokens, 0);
    ck_assert_double_eq_tol(c.alpha, 7.483314773547883, 1e-12);
    ck_assert_double_eq_tol(c.norm_eps, 1e-5, 1e-12);
}
END_TEST

START_TEST(chatglm_6b_early)
{
    glmq_config c;
    glmq_err err = {0};
    ck_assert_int_eq(parse_dir("chatglm-6b-early", &c, &err), GLMQ_OK);
    ck_assert_int_eq(c.arch, GLMQ_ARCH_CHATGLM1);
    ck_assert_int_eq(c.vocab, 150528);
    ck_assert_int_eq(c.num_image_tokens, 20000);
    ck_assert_int_eq(c.tok_gmask, 150001);
    ck_assert_int_eq(c.tok_sop, 150004);
}
END_TEST

START_TEST(chatglm2_and_3)
{
    const char *m[] = {"chatglm2-6b", "chatglm3-6b"};
    for (int i = 0; i < 2; i++) {
        glmq_config c;
        glmq_err err = {0};
        ck_assert_int_eq(parse_dir(m[i], &c, &err), GLMQ_OK);
        ck_assert_int_eq(c.arch, GLMQ_ARCH_CHATGLM2);
        ck_assert_int_eq(c.vocab, 65024);
        ck_assert_int_eq(c.n_layers, 28);
        ck_assert_int_eq(c.ffn, 13696);
        ck_assert_int_eq(c.head_dim, 128);
        ck_assert_int_eq(c.n_kv_groups, 2);
        ck_assert(c.qkv_bias && !c.linear_bias && c.rmsnorm && c.post_layer_norm);
        ck_assert_double_eq(c.rope_ratio, 1.0);
        ck_assert_int_eq(c.tok_eos, 2);
        ck_assert_int_eq(c.seq_length, i == 0 ? 32768 : 8192);
        /* B.7: special tokens numbered after the 64789 SentencePiece pieces */
        glmq_config_set_special(&c, 64789, 0);
        ck_assert_int_eq(c.tok_mask, 64789);
        ck_assert_int_eq(c.tok_gmask, 64790);
        ck_assert_int_eq(c.tok_sop, 64792);
        ck_assert_int_eq(c.tok_eop, 64793);
    }
}
END_TEST

START_TEST(glm4)
{
    const char *m[] = {"glm-4-9b", "glm-4-9b-chat", "glm-4-9b-chat-1m"};
    const double ratio[] = {1, 500, 10000};
    const int groups[] = {2, 2, 4};
    for (int i = 0; i < 3; i++) {
        glmq_config c;
        glmq_err err = {0};
        ck_assert_int_eq(parse_dir(m[i], &c, &err), GLMQ_OK);
        ck_assert_int_eq(c.arch, GLMQ_ARCH_CHATGLM2);
        ck_assert_int_eq(c.vocab, 151552);
        ck_assert_int_eq(c.n_layers, 40);
        ck_assert_int_eq(c.n_kv_groups, groups[i]);
        ck_assert_double_eq(c.rope_ratio, ratio[i]);
        ck_assert_double_eq_tol(c.norm_eps, 1.5625e-07, 1e-15);
        ck_assert_int_eq(c.tok_eos, 151329); /* first of the eos list */
        /* C.3: ranks 0..151328, then <|endoftext|>, [MASK], [gMASK], [sMASK], <sop>, <eop> */
        glmq_config_set_special(&c, 151329, 1);
        ck_assert_int_eq(c.tok_gmask, 151331);
        ck_assert_int_eq(c.tok_sop, 151333);
        ck_assert_int_eq(c.tok_eop, 151334);
    }
}
END_TEST

/* The expected-tensor table equals the real checkpoint's weight_map (less inv_freq) and its
 * byte total equals the spec's (G.3 / A.3). */
static const struct {
    const char *model, *index;
    uint64_t bytes;
} tables[] = {
    {"chatglm-6b", "pytorch_model.bin.index.json", UINT64_C(13415858176)},
    {"chatglm2-6b", "pytorch_model.bin.index.json", UINT64_C(12487168000)},
    {"chatglm3-6b", "pytorch_model.bin.index.json", UINT64_C(12487168000)},
    {"glm-4-9b", "model.safetensors.index.json", UINT64_C(18799902720)},
    {"glm-4-9b-chat", "model.safetensors.index.json", UINT64_C(18799902720)},
    {"glm-4-9b-chat-1m", "model.safetensors.index.json", UINT64_C(18967715840)},
};

START_TEST(tensor_tables)
{
    glmq_config c;
    glmq_err err = {0};
    ck_assert_int_eq(parse_dir(tables[_i].model, &c, &err), GLMQ_OK);
    glmq_expected_tensor *t = NULL;
    int64_t n = 0;
    ck_assert_int_eq(glmq_config_tensors(&c, &t, &n, &err), GLMQ_OK);
    char *dir = tu_path(tu_testdata(), "upstream");
    char *md = tu_path(dir, tables[_i].model);
    char *ip = tu_path(md, tables[_i].index);
    char *js = (char *)tu_read_file(ip, NULL);
    ck_assert_ptr_nonnull(js);
    cJSON *root = cJSON_Parse(js);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    ck_assert_ptr_nonnull(map);
    uint64_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(cJSON_GetObjectItemCaseSensitive(map, t[i].name) != NULL,
                      "%s: expected tensor '%s' not in the upstream index", tables[_i].model,
                      t[i].name);
        uint64_t e = (uint64_t)t[i].shape[0] * (uint64_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
        bytes += 2 * e;
    }
    ck_assert_uint_eq(bytes, tables[_i].bytes);
    int mapped = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        int found = 0;
        for (int64_t i = 0; i < n && !found; i++) found = !strcmp(t[i].name, it->string);
        ck_assert_msg(found || strstr(it->string, "inv_freq"), "%s: index tensor '%s' unknown",
                      tables[_i].model, it->string);
        mapped++;
    }
    cJSON_Delete(root);
    free(js);
    free(ip);
    free(md);
    free(dir);
    free(t);
}
END_TEST

static const struct {
    const char *json, *msg;
    glmq_status code;
} bad[] = {
    {"not json", "not valid JSON", GLMQ_E_FORMAT},
    {"[1,2]", "not a JSON object", GLMQ_E_FORMAT},
    {"{\"model_type\":\"chatglm\"}", "cannot tell the GLM architecture", GLMQ_E_UNSUPPORTED},
    {"{\"model_type\":\"glm4_moe\",\"hidden_size\":8}", "mixture-of-experts", GLMQ_E_UNSUPPORTED},
    {"{\"model_type\":\"glm\",\"partial_rotary_factor\":0.25}", "partial_rotary_factor 0.25",
     GLMQ_E_UNSUPPORTED},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16,\"multi_query_attention\":true,"
     "\"multi_query_group_num\":2,\"quantization_bit\":2}",
     "quantization_bit = 2: THUDM's quantized releases use 4 or 8", GLMQ_E_UNSUPPORTED},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16,\"quantization_embeddings\":true}",
     "quantization_embeddings is true but quantization_bit is 0", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16,\"pre_seq_len\":128}",
     "P-tuning", GLMQ_E_UNSUPPORTED},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16,\"multi_query_attention\":true,"
     "\"multi_query_group_num\":3}",
     "does not divide num_attention_heads", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":-64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16}",
     "hidden_size", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64.5,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16}",
     "not an integer", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":\"64\",\"num_layers\":2,"
     "\"num_attention_heads\":4,\"ffn_hidden_size\":32,\"kv_channels\":16}",
     "not a number", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16}",
     "missing required field 'hidden_size'", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":99999999,"
     "\"num_attention_heads\":4,\"ffn_hidden_size\":32,\"kv_channels\":16}",
     "num_layers", GLMQ_E_FORMAT},
    {"{\"position_encoding_2d\":true,\"padded_vocab_size\":100}", "mixes", GLMQ_E_FORMAT},
    {"{\"vocab_size\":100,\"hidden_size\":60,\"num_layers\":2,\"num_attention_heads\":8,"
     "\"inner_hidden_size\":32,\"position_encoding_2d\":true,\"gmask_token_id\":1,"
     "\"bos_token_id\":2}",
     "does not divide hidden_size", GLMQ_E_FORMAT},
    {"{\"vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"inner_hidden_size\":32,\"position_encoding_2d\":true,\"gmask_token_id\":100,"
     "\"bos_token_id\":10}",
     "outside vocab_size", GLMQ_E_FORMAT},
    {"{\"padded_vocab_size\":100,\"hidden_size\":64,\"num_layers\":2,\"num_attention_heads\":4,"
     "\"ffn_hidden_size\":32,\"kv_channels\":16,\"multi_query_attention\":false}",
     "multi_query_attention = false", GLMQ_E_UNSUPPORTED},
};

START_TEST(bad_configs)
{
    glmq_config c;
    glmq_err err = {0};
    glmq_status st = parse_str(bad[_i].json, &c, &err);
    ck_assert_int_eq(st, bad[_i].code);
    ck_assert_msg(strstr(err.msg, bad[_i].msg) != NULL, "case %d: message '%s' lacks '%s'", _i,
                  err.msg, bad[_i].msg);
    ck_assert_msg(strstr(err.msg, "config.json") != NULL, "message names the file: %s", err.msg);
}
END_TEST

START_TEST(json_roundtrip)
{
    glmq_config c, d;
    glmq_err err = {0};
    ck_assert_int_eq(parse_dir("glm-4-9b-chat-1m", &c, &err), GLMQ_OK);
    glmq_config_set_special(&c, 151329, 1);
    cJSON *j = glmq_config_to_json(&c);
    ck_assert_int_eq(glmq_config_from_json(j, &d, &err), GLMQ_OK);
    cJSON_Delete(j);
    ck_assert_int_eq(d.arch, c.arch);
    ck_assert_int_eq(d.n_kv_groups, 4);
    ck_assert_int_eq(d.tok_gmask, 151331);
    ck_assert_double_eq(d.rope_ratio, 10000);
    ck_assert_str_eq(d.tokenizer_kind, "tiktoken");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, chatglm_6b);
    tcase_add_test(tc, chatglm_6b_early);
    tcase_add_test(tc, chatglm2_and_3);
    tcase_add_test(tc, glm4);
    tcase_add_loop_test(tc, tensor_tables, 0, (int)(sizeof tables / sizeof tables[0]));
    tcase_add_loop_test(tc, bad_configs, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, json_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
