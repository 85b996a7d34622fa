/*
 * file.c - read a small file whole, and view a model file (see file.h).
 *
 * glmq_read_file streams with fread into a buffer that doubles, so it works on pipes and /proc
 * files whose size is unknown in advance; one byte is always kept free for the terminating NUL.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include "core/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* 2 MiB: the x86-64 / arm64 (4 KiB granule) huge page the loaded view is aligned to. */
#define HUGE_ALIGN ((size_t)2 << 20)

void *glmq_huge_alloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - 2 * HUGE_ALIGN) return NULL;
    /* over-allocate by one huge page, then trim the head to the 2 MiB boundary and the tail to
     * the last page the size needs, so that munmap(p, size) releases everything */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t len = size + HUGE_ALIGN;
    uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *m = (uint8_t *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    const size_t used = (size + page - 1) / page * page;
    if (m > raw) munmap(raw, (size_t)(m - raw));
    if (raw + len > m + used) munmap(m + used, (size_t)(raw + len - (m + used)));
#if defined(MADV_HUGEPAGE)
    (void)madvise(m, used, MADV_HUGEPAGE); /* advisory: the kernel may not give huge pages */
#endif
    return m;
}

void glmq_huge_free(void *p, size_t size)
{
    if (p) munmap(p, size);
}

glmq_status glmq_file_view(int fd, const char *path, uint64_t size, int load, void **out,
                           glmq_err *err)
{
    *out = NULL;
    GLMQ_FAIL_IF(size == 0 || size > SIZE_MAX - 2 * HUGE_ALIGN, err, GLMQ_E_IO,
                 "'%s': cannot view %llu bytes", path, (unsigned long long)size);
    if (!load) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        GLMQ_FAIL_IF(m == MAP_FAILED, err, GLMQ_E_IO, "cannot map '%s': %s", path,
                     strerror(errno));
        *out = m;
        return GLMQ_OK;
    }
    uint8_t *m = glmq_huge_alloc((size_t)size);
    GLMQ_FAIL_IF(!m, err, GLMQ_E_IO, "cannot allocate %llu bytes for '%s': %s",
                 (unsigned long long)size, path, strerror(errno));
    uint64_t off = 0;
    while (off < size) {
        const size_t want = size - off < ((size_t)1 << 30) ? (size_t)(size - off) : (size_t)1 << 30;
        const ssize_t r = pread(fd, m + off, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            const int e = r < 0 ? errno : 0;
            glmq_huge_free(m, (size_t)size);
            if (e) return glmq_fail(err, GLMQ_E_IO, "cannot read '%s' at byte %llu: %s", path,
                                    (unsigned long long)off, strerror(e));
            return glmq_fail(err, GLMQ_E_IO, "'%s' ended at byte %llu while loading %llu bytes",
                             path, (unsigned long long)off, (unsigned long long)size);
        }
        off += (uint64_t)r;
    }
    if (mprotect(m, (size_t)size, PROT_READ) != 0) {
        const int e = errno;
        glmq_huge_free(m, (size_t)size);
        return glmq_fail(err, GLMQ_E_IO, "cannot protect the copy of '%s': %s", path, strerror(e));
    }
    *out = m;
    return GLMQ_OK;
}
