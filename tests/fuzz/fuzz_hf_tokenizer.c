/*
 * fuzz_hf_tokenizer.c - fuzz target for formats/hf_tokenizer.c (tokenizer.json -> tiktoken rank
 * file).
 *
 * The input is a tokenizer.json. Oracles: the reader returns a status without crashing or
 * leaking; on success the rank file it writes has one line per rank, loads with glmq's tiktoken
 * loader to exactly that many ranks, and converting the same input twice gives the same bytes.
 */
#include "formats/hf_tokenizer.h"
#include "formats/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_hf_tokenizer: oracle failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    int32_t nr = 0, nr2 = 0;
    glmq_err err = {0};
    glmq_status st = glmq_hf_tokenizer_ranks((const char *)data, size, "fuzz", &out, &n, &nr, &err);
    if (st != GLMQ_OK) {
        check(out == NULL && n == 0 && err.msg[0], "a failure leaves no output and a message");
        return 0;
    }
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += out[i] == '\n';
    check(lines == (size_t)nr, "one line per rank");
    check(glmq_hf_tokenizer_ranks((const char *)data, size, "fuzz", &again, &n2, &nr2, &err) ==
                  GLMQ_OK &&
              n2 == n && nr2 == nr && memcmp(again, out, n) == 0,
          "deterministic");
    glmq_tokenizer *t = NULL;
    check(glmq_tokenizer_load_tiktoken(out, n, NULL, &t, &err) == GLMQ_OK, "rank file loads");
    glmq_tok_info ti;
    glmq_tokenizer_info(t, &ti);
    check(ti.n_base == nr, "rank count");
    glmq_ids ids = {0};
    static const char text[] = "Hello, world! 123 \xe4\xbd\xa0\xe5\xa5\xbd\n\n";
    check(glmq_tokenizer_encode(t, text, sizeof text - 1, &ids, &err) == GLMQ_OK, "encode");
    glmq_ids_free(&ids);
    glmq_tokenizer_free(t);
    free(out);
    free(again);
    return 0;
}
