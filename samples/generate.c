/*
 * generate.c - how another program runs a model with libglmq's public API.
 *
 *   sample_generate MODEL "prompt" [N [TEMPERATURE [SEED]]]
 *
 * MODEL is a .glmq file or a Hugging Face checkpoint directory. The prompt is framed the way
 * the model expects ([gMASK] sop ...), evaluated once (prefill), then up to N tokens (default
 * 32) are sampled one at a time on the session's KV cache and printed as text as they come.
 * Temperature 0 (the default) is greedy decoding; the same SEED gives the same text.
 * Every call returns a glmq_status and fills a glmq_err message; nothing here is glmq-internal.
 */
#include <glmq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const glmq_err *err)
{
    fprintf(stderr, "generate: %s\n", err->msg[0] ? err->msg : glmq_status_str(err->code));
    return 1;
}

/* Print what the continuation adds to the text printed so far. A character whose bytes are
 * split across tokens decodes as U+FFFD until its last byte arrives: hold it back till then. */
static glmq_status print_new(const glmq_model *m, const int32_t *ids, size_t n, size_t *printed,
                             int final, glmq_err *err)
{
    size_t len = 0;
    glmq_status st = glmq_detokenize(m, ids, n, NULL, 0, &len, err); /* measure */
    char *text = st == GLMQ_OK ? malloc(len + 1) : NULL;
    if (text) st = glmq_detokenize(m, ids, n, text, len + 1, &len, err);
    if (st == GLMQ_OK && text) {
        size_t end = len;
        if (!final && len >= 3 && !memcmp(text + len - 3, "\xef\xbf\xbd", 3)) end = len - 3;
        if (end > *printed) {
            fwrite(text + *printed, 1, end - *printed, stdout);
            fflush(stdout);
            *printed = end;
        }
    }
    free(text);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N [TEMPERATURE [SEED]]]\n", argv[0]);
        return 2;
    }
    const char *prompt = argv[2];
    long n_new = argc > 3 ? strtol(argv[3], NULL, 10) : 32;
    glmq_sampler_params sp;
    glmq_sampler_params_default(&sp);
    if (argc > 4) sp.temperature = strtod(argv[4], NULL);
    if (argc > 5) sp.seed = strtoull(argv[5], NULL, 10);
    if (n_new < 1 || n_new > 100000) {
        fprintf(stderr, "generate: N must be from 1 to 100000\n");
        return 2;
    }

    glmq_err err = {0};
    glmq_model *model = NULL;
    glmq_session *session = NULL;
    glmq_sampler *sampler = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    glmq_model_info info;
    size_t n_prompt = 0, printed = 0;
    int rc = 1;

    /* 1. Open the model and tokenize the prompt with its own tokenizer: count, then fill. */
    if (glmq_model_open(argv[1], &model, &err) != GLMQ_OK ||
        glmq_model_get_info(model, &info, &err) != GLMQ_OK ||
        glmq_tokenize(model, prompt, strlen(prompt), GLMQ_TOKENIZE_PROMPT, NULL, 0, &n_prompt,
                      &err) != GLMQ_OK)
        goto done;
    ids = malloc((n_prompt + (size_t)n_new) * sizeof *ids);
    logits = malloc(n_prompt * (size_t)info.vocab * sizeof *logits);
    if (!ids || !logits) {
        fprintf(stderr, "generate: out of memory\n");
        goto done;
    }
    if (glmq_tokenize(model, prompt, strlen(prompt), GLMQ_TOKENIZE_PROMPT, ids, n_prompt,
                      &n_prompt, &err) != GLMQ_OK)
        goto done;
    fprintf(stderr, "%s model (%s weights, vocabulary %lld): %zu prompt tokens\n",
            info.architecture, info.weight_type, (long long)info.vocab, n_prompt);

    /* 2. A session holds the KV cache: room for the prompt and the continuation. */
    glmq_session_opts so;
    glmq_session_opts_default(&so); /* fast int8 kernels, all cores */
    so.max_tokens = (int64_t)n_prompt + n_new;
    if (glmq_session_create(model, &so, &session, &err) != GLMQ_OK ||
        glmq_sampler_create(&sp, info.vocab, &sampler, &err) != GLMQ_OK)
        goto done;

    /* 3. Prefill: one call over the whole prompt; its last row predicts the first new token. */
    if (glmq_session_eval(session, ids, (int64_t)n_prompt, logits, &err) != GLMQ_OK) goto done;
    const float *last = logits + (n_prompt - 1) * (size_t)info.vocab;

    /* 4. Decode: sample, stop at an end token, append the token to the cache, repeat. */
    size_t n = n_prompt;
    for (long k = 0; k < n_new; k++) {
        int32_t next;
        if (glmq_sampler_sample(sampler, last, &next, &err) != GLMQ_OK) goto done;
        if (next == info.tok_eos || next == info.tok_eop) break;
        ids[n++] = next;
        if (print_new(model, ids + n_prompt, n - n_prompt, &printed, 0, &err) != GLMQ_OK)
            goto done;
        if (k + 1 == n_new) break;
        if (glmq_session_eval(session, &next, 1, logits, &err) != GLMQ_OK) goto done;
        last = logits;
    }
    if (print_new(model, ids + n_prompt, n - n_prompt, &printed, 1, &err) != GLMQ_OK) goto done;
    printf("\n");
    rc = 0;
done:
    if (rc && err.code != GLMQ_OK) fail(&err);
    free(logits);
    free(ids);
    glmq_sampler_free(sampler);
    glmq_session_free(session);
    glmq_model_close(model);
    return rc;
}
