/*
 * file.c - read a small file whole (see file.h).
 *
 * Streams with fread into a buffer that doubles, so it works on pipes and /proc files whose
 * size is unknown in advance; one byte is always kept free for the terminating NUL.
 */
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

glmq_status glmq_read_file(const char *path, char **out, size_t *len, glmq_err *err)
{
    *out = NULL;
    if (len) *len = 0;
    GLMQ_FAIL_IF(!path, err, GLMQ_E_INVALID, "no file name given");
    FILE *f = fopen(path, "rb");
    if (!f) return glmq_fail(err, GLMQ_E_IO, "cannot read '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *p = realloc(b, cap * 2);
            if (!p) {
                free(b);
                b = NULL;
                break;
            }
            b = p;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return glmq_fail(err, GLMQ_E_IO, "cannot read '%s': %s", path,
                         strerror(bad ? EIO : ENOMEM));
    }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return GLMQ_OK;
}
