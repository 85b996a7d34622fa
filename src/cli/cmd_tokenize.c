/*
 * cmd_tokenize.c - glmq tokenize MODEL --text FILE [--json] [--prefix] [--special]
 */
#include "cli.h"
#include "core/file.h"
#include "runtime/tokenize.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: glmq tokenize MODEL --text FILE [--json] [--prefix] [--special]\n"
    "\n"
    "Prints the token ids of FILE (space-separated; --json: a JSON array) using the tokenizer of\n"
    "MODEL, a .glmq file (its embedded tokenizer) or a directory with config.json and\n"
    "tokenizer.model / ice_text.model (weights are not needed). No special tokens unless\n"
    "--prefix, which adds the model's prompt framing ([gMASK] sop before the text for\n"
    "ChatGLM2/3 and GLM-4, [gMASK] <sop> after it for ChatGLM-6B), or --special, which maps\n"
    "special-token text in FILE ([gMASK], sop, <|user|>, <sop>, <|endoftext|>, ...) to the\n"
    "special ids as the upstream tokenizers' special-token mode does.\n";

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    int json = 0, prefix = 0, special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--text")) {
            if (++i >= argc) return cli_usage("tokenize", "--text needs a file");
            text = argv[i];
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--prefix")) {
            prefix = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (a[0] == '-') {
            return cli_usage("tokenize", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage("tokenize", "unexpected argument '%s'", a);
        }
    }
    if (!model) return cli_usage("tokenize", "missing MODEL");
    if (!text) return cli_usage("tokenize", "missing --text FILE");
    glmq_err err = {0};
    glmq_tokenizer *t = NULL;
    size_t len = 0;
    char *buf = NULL;
    glmq_ids v = {0};
    int rc = EXIT_OK;
    if (glmq_tokenizer_load(model, &t, &err) != GLMQ_OK) return cli_error(&err);
    if (glmq_read_file(text, &buf, &len, &err) != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    unsigned flags = (prefix ? GLMQ_TOKENIZE_PROMPT : 0u) | (special ? GLMQ_TOKENIZE_SPECIAL : 0u);
    glmq_status st = glmq_tokenizer_encode_ex(t, buf, len, flags, &v, &err);
    if (st != GLMQ_OK) {
        rc = cli_error(&err);
        goto done;
    }
    if (json) putchar('[');
    for (size_t i = 0; i < v.n; i++) printf(json ? "%s%d" : "%s%d", i ? (json ? ", " : " ") : "", v.ids[i]);
    printf(json ? "]\n" : "\n");
done:
    glmq_ids_free(&v);
    free(buf);
    glmq_tokenizer_close(t);
    return rc;
}
