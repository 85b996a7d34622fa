/*
 * cmd_check.c - glmq check FILE: verify the header checksum (on open) and every tensor and blob
 * checksum; exit 1 naming the first bad one. A GGUF file (magic "GGUF") is checked against the
 * glmq.tensor_xxh3 checksums glmq export wrote; a GGUF without them (one made by llama.cpp's
 * tools) cannot be verified and is an error too: "not a glmq export: no checksums".
 */
#include "cli.h"

#include <string.h>

/* 1 when the file starts with the GGUF magic (a missing or short file is left to the pack
 * reader, whose message names it). */
static int is_gguf(const char *path)
{
    char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(m, "GGUF", 4);
}

int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: glmq check FILE\n\nVerifies the header checksum and the XXH3-64 checksum "
                 "of every tensor and blob of a .glmq file,\nor every tensor of a GGUF file "
                 "written by 'glmq export' against its glmq.tensor_xxh3 key.\nExit 0 when all "
                 "match, 1 naming the first bad one (a GGUF without glmq checksums is an error).");
            return EXIT_OK;
        }
        if (argv[i][0] == '-') return cli_usage("check", "unknown option '%s'", argv[i]);
        if (path) return cli_usage("check", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return cli_usage("check", "missing FILE");
    glmq_err err = {0};
    int64_t n = 0;
    if (is_gguf(path)) {
        if (glmq_export_verify(path, &n, &err) != GLMQ_OK) return cli_error(&err);
        printf("%s: ok (GGUF, %lld tensors, all checksums match)\n", path, (long long)n);
        return EXIT_OK;
    }
    glmq_pack *p = NULL;
    if (glmq_pack_open(path, &p, &err) != GLMQ_OK) return cli_error(&err);
    glmq_status st = glmq_pack_verify(p, &err);
    n = glmq_pack_tensor_count(p);
    glmq_pack_close(p);
    if (st != GLMQ_OK) return cli_error(&err);
    printf("%s: ok (%lld tensors, all checksums match)\n", path, (long long)n);
    return EXIT_OK;
}
