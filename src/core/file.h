/*
 * file.h - whole-file reading for small inputs (evaluation texts, id lists, prompts), and the
 * read-only view of a model file (mapped, or loaded into anonymous memory). Internal.
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

/*
 * size (>= 1) bytes of zero-filled anonymous memory, private and read-write, starting on a
 * 2 MiB boundary and advised MADV_HUGEPAGE (advisory: transparent huge pages where the kernel
 * gives them, so that large buffers read in long runs cost few TLB misses); NULL when size is
 * 0 or too large, or the mapping fails (errno set by mmap). Release with glmq_huge_free(p,
 * size) (or munmap(p, size)); glmq_huge_free(NULL, n) does nothing.
 */
void *glmq_huge_alloc(size_t size);
void glmq_huge_free(void *p, size_t size);

/*
 * A read-only view of the first `size` bytes of the open file fd (size >= 1, the file's size):
 *   load == 0  the file mapped MAP_PRIVATE (pages come from the page cache on first touch);
 *   load != 0  an anonymous private mapping, 2 MiB aligned and advised MADV_HUGEPAGE before it
 *              is filled, read in whole with pread and then made read-only: the weights live in
 *              anonymous memory (transparent huge pages where the kernel gives them) and no
 *              later change of the file is seen (`--no-mmap`).
 * Either way release it with munmap(*out, size). `path` only names the file in messages.
 * @return GLMQ_OK, or GLMQ_E_IO ("cannot map", "cannot allocate", "cannot read '<path>' at byte
 *         N", "'<path>' ended at byte N") with *out == NULL.
 */
glmq_status glmq_file_view(int fd, const char *path, uint64_t size, int load, void **out,
                           glmq_err *err);

#endif
