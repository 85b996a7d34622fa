/*
 * file.h - whole-file reading for small inputs (evaluation texts, id lists, prompts). Internal.
 */
#ifndef GLMQ_CORE_FILE_H
#define GLMQ_CORE_FILE_H

#include "core/internal.h"

/*
 * Read the file at `path` whole: *out receives a malloc'd copy (free() it) with a NUL after the
 * last byte, *len the number of bytes (embedded NULs are kept).
 * @return GLMQ_OK, or GLMQ_E_IO "cannot read '<path>': <strerror>" (EIO for a read error,
 *         ENOMEM when the buffer cannot grow) with *out == NULL.
 */
glmq_status glmq_read_file(const char *path, char **out, size_t *len, glmq_err *err);

#endif
