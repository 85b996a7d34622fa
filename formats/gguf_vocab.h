/*
 * gguf_vocab.h - the tokenizer metadata (tokenizer.ggml.*) of a GGUF file for llama.cpp's
 * `chatglm` architecture, written from glmq's own tokenizer (internal).
 *
 * What is written, per family (the values llama.cpp's converter convert_hf_to_gguf.py writes for
 * the real checkpoints, which its runtime src/llama-vocab.cpp reads):
 *
 *   ChatGLM2/3 (SentencePiece BPE file): tokenizer model "llama" (llama.cpp's SPM tokenizer),
 *     pre "chatglm-spm" (ignored by the SPM tokenizer); one token per id of the padded vocabulary
 *     (cfg->vocab): the file's pieces with their scores, ids 0/1/2 renamed "<unk>" "<bos>"
 *     "<eos>" when they are the unknown/control pieces; token type = the piece type, except that
 *     USER_DEFINED pieces are typed NORMAL as the converter does; then the family specials
 *     ([MASK] [gMASK] [sMASK] sop eop, + the four v3 roles) as CONTROL; then "[PAD<id>]"
 *     UNUSED up to the padded size. One deliberate difference from the converter: these ids
 *     after the file's pieces get a score one below the lowest piece score instead of 0.
 *     llama.cpp's SPM tokenizer merges adjacent symbols into ANY vocabulary entry, best score
 *     first; with 0 the control token "eop" wins inside "Europe" or "geophysics" and splits
 *     the word (measured against the real ChatGLM3 file). Scored last, such a merge happens
 *     only where SentencePiece's own result leaves the pieces of a control token's text side by
 *     side (plain text containing "sop", "eop", ...). Special ids: bos / eos / padding
 *     from config.json (cfg->tok_bos, tok_eos, tok_pad) when present. add_bos_token false.
 *     add_space_prefix false only for a file without add_dummy_prefix (the converter never
 *     writes it; llama.cpp's default for SPM is true).
 *
 *   GLM-4 (tiktoken rank file): tokenizer model "gpt2" (llama.cpp's BPE tokenizer), pre
 *     "llama-bpe" (see below); ranks 0..n-1 as byte-level
 *     strings (GPT-2's byte <-> unicode map) typed NORMAL, the 14 specials CONTROL, "[PAD<id>]"
 *     UNUSED up to the padded size; no scores; merges: for every multi-byte token in rank order,
 *     first the converter's entry - the parts that byte-pair merging of its own bytes reaches
 *     using only lower ranks (two parts, except for the tokens below), byte-level strings joined
 *     by one space - then every other split of the token into two tokens. Special ids:
 *     padding = cfg->tok_pad, eos = cfg->tok_eos (else <|endoftext|>), eot = <|user|>,
 *     unknown = <|endoftext|>. add_bos_token false.
 *     Two deliberate differences from the converter, both because llama.cpp's BPE (merge
 *     pairs listed in a file, by list position) is not tiktoken's (any adjacent pair whose
 *     bytes form a token, by that token's rank; a whole pre-tokenized chunk that is a token is
 *     taken as is), and both measured by check_vocab_peer on the real GLM-4 rank file:
 *     - pre "llama-bpe" instead of "chatglm-bpe": the same pre-tokenizer regex in llama.cpp
 *       (cl100k's, GLM-4's own), plus the whole-chunk look-up (ignore_merges). 1072 GLM-4
 *       tokens have a 3..7-part converter entry that no pair matches, among them common ones
 *       such as " 北京", " 公司", " 如果", which llama.cpp otherwise never produces.
 *     - the extra splits: GLM-4 tokens such as "描述" are formed by tiktoken from another
 *       pair than the converter's entry; with the converter's list alone llama.cpp splits
 *       "描述" inside Chinese text. (319160 merges instead of 151073; every converter entry
 *       is kept, in the same order.)
 *     Side effect of "llama-bpe": llama.cpp reports its BPE default BOS id (11, ",") from
 *     llama_vocab_bos; add_bos_token false keeps it out of prompts.
 *
 * Not written here: the chat template (tokenizer.chat_template, from tokenizer_config.json; not a
 * tokenizer.ggml.* key).
 */
#ifndef GLMQ_FORMATS_GGUF_VOCAB_H
#define GLMQ_FORMATS_GGUF_VOCAB_H

#include "formats/config.h"
#include "formats/gguf.h"
#include "formats/tokenizer.h"

/*
 * Add the tokenizer.ggml.* metadata that llama.cpp's `chatglm` architecture expects for a model
 * whose tokenizer is `tok` (as loaded by formats/tokenizer.h from the model's tokenizer file:
 * SentencePiece for ChatGLM2/3, tiktoken ranks for GLM-4) and whose config is `cfg` (vocab size =
 * cfg's padded vocabulary; ids beyond the tokenizer's pieces are filled the way llama.cpp's own
 * converter fills them). If llama.cpp cannot reproduce glmq's tokenization of this tokenizer
 * (e.g. a SentencePiece normalizer other than identity), write a one-line reason into warn
 * (warn[0] = 0 when none). `warn` may be NULL when warn_size is 0.
 * @return GLMQ_OK; GLMQ_E_UNSUPPORTED for ChatGLM-6B (v1: no llama.cpp architecture) or a
 *         SentencePiece tokenizer with a v1 id offset; GLMQ_E_INVALID when cfg->vocab is smaller
 *         than the tokenizer's vocabulary or two ids would get the same token text (llama.cpp
 *         requires distinct texts); the writer's errors (a duplicate key: the caller must not
 *         write tokenizer.ggml.* keys itself); GLMQ_E_NOMEM.
 */
glmq_status glmq_gguf_add_vocab(glmq_gguf_writer *w, const glmq_config *cfg,
                                const glmq_tokenizer *tok, char *warn, size_t warn_size,
                                glmq_err *err);

/* GPT-2's byte-level alphabet: the code point byte b stands for in a BPE token string (b itself
 * for the printable bytes 33..126, 161..172, 174..255, else 256 + its index among the others). */
uint32_t glmq_gguf_byte_char(uint8_t b);

#endif /* GLMQ_FORMATS_GGUF_VOCAB_H */
