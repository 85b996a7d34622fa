/*
 * hf_tokenizer.h - a Hugging Face `tokenizers` file (tokenizer.json) of the GLM-4 family, turned
 * into the GLM-4 tiktoken rank file glmq already reads (internal).
 *
 * The transformers-native GLM repositories (glm-4-9b-chat-hf, GLM-4-0414, GLM-Z1-0414) ship
 * tokenizer.json instead of THUDM's tokenizer.model. Theirs is the GLM-4 tiktoken vocabulary
 * written by transformers' TikTokenConverter: a byte-level BPE model whose vocab maps GPT-2
 * byte-to-unicode strings to ids equal to the tiktoken ranks, whose merges are every split of
 * every token into two tokens, ordered by the rank of the merged token, and whose pre-tokenizer
 * is GLM-4's split regex followed by ByteLevel without its own regex. Exactly then byte-pair
 * encoding by merge order equals tiktoken's merging by rank, so the file is the rank file in
 * another spelling; glmq_hf_tokenizer_ranks checks all of that and writes the rank file.
 */
#ifndef GLMQ_FORMATS_HF_TOKENIZER_H
#define GLMQ_FORMATS_HF_TOKENIZER_H

#include "core/internal.h"

/* The GLM-4 pre-tokenizer regex as tokenizer.json spells it (Split.pattern.Regex). */
extern const char glmq_hf_glm4_pattern[];

/*
 * Validate tokenizer.json text (json, len bytes; `path` for messages) and produce the equivalent
 * tiktoken rank file: one line "<base64 token bytes> <rank>\n" per vocab entry, ranks 0..n-1.
 * Checked, each refusal naming the reason:
 *   - normalizer absent or null; pre_tokenizer = Sequence[Split(GLM-4 regex, Isolated, not
 *     inverted), ByteLevel(add_prefix_space false, use_regex false)];
 *   - model.type "BPE" without dropout, unk_token, subword prefix/suffix or byte_fallback;
 *   - vocab: ids exactly 0..n-1, keys valid byte-level strings (GPT-2 byte-to-unicode), distinct
 *     byte strings, all 256 single bytes present;
 *   - merges ("a b" strings or [a, b] pairs): both parts and their concatenation in the vocab,
 *     in nondecreasing rank of the concatenation, no duplicate, and exactly one merge per split
 *     of a token into two tokens (the complete set that makes merge order equal rank order);
 *   - added_tokens: ids above the BPE vocabulary, distinct; GLM-4's specials (<|endoftext|>,
 *     [MASK], [gMASK], [sMASK], <sop>, <eop>, <|system|>, ...) at the ids glmq numbers them
 *     (n, n+1, ...); other added tokens only after those 14 (they are not encoded from text).
 * On success *out (malloc'd, free()) holds the rank file, *out_len its size, *n_ranks the BPE
 * vocabulary size. Hostile input gives GLMQ_E_FORMAT / GLMQ_E_UNSUPPORTED, never a crash.
 */
glmq_status glmq_hf_tokenizer_ranks(const char *json, size_t len, const char *path, uint8_t **out,
                                    size_t *out_len, int32_t *n_ranks, glmq_err *err);

#endif /* GLMQ_FORMATS_HF_TOKENIZER_H */
