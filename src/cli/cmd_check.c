/*
 * cmd_check.c - glmq check FILE: verify the header checksum (on open) and every tensor and blob
 * checksum; exit 1 naming the first bad one.
 */
#include "cli.h"

#include <string.h>

int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: glmq check FILE\n\nVerifies the header checksum and the XXH3-64 checksum "
                 "of every tensor and blob.\nExit 0 when all match, 1 naming the first bad one.");
            return EXIT_OK;
        }
        if (argv[i][0] == '-') return cli_usage("check", "unknown option '%s'", argv[i]);
        if (path) return cli_usage("check", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return cli_usage("check", "missing FILE");
    glmq_err err = {0};
    glmq_pack *p = NULL;
    if (glmq_pack_open(path, &p, &err) != GLMQ_OK) return cli_error(&err);
    glmq_status st = glmq_pack_verify(p, &err);
    int64_t n = glmq_pack_tensor_count(p);
    glmq_pack_close(p);
    if (st != GLMQ_OK) return cli_error(&err);
    printf("%s: ok (%lld tensors, all checksums match)\n", path, (long long)n);
    return EXIT_OK;
}
