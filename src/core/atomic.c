/*
 * atomic.c - the atomic file writer (scheme and contracts in atomic.h).
 *
 * Invariants:
 *   - the target path is only ever changed by one rename() of a complete, fsync'd file;
 *   - while a file is being written it has no name (O_TMPFILE), or a name of the pattern
 *     ".<name>.glmq-tmp.<pid>.<16 hex>" (the fallback, and the instant between linkat and rename
 *     in commit) that encodes the owner's pid, so a later writer of the same output can tell a
 *     leftover of a killed process from a live writer; a named file is also held under
 *     flock(LOCK_EX) until it is renamed or removed;
 *   - all names are resolved against one descriptor of the target's directory taken at open, so
 *     the temporary and the target always share a file system and a directory;
 *   - every failure path removes what was created; errors name the target path.
 * The basename kept in a temporary name is cut to TEMP_BASE_MAX bytes so that long output names
 * stay within NAME_MAX; the stale-file scan uses the same cut.
 */
#define _GNU_SOURCE /* O_TMPFILE, AT_EMPTY_PATH, flock, getrandom */
#include "core/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define TEMP_TAG ".glmq-tmp."
#define TEMP_BASE_MAX 200
#define TEMP_TRIES 100

struct glmq_atomic_file {
    char *path;  /* the target as given */
    char *base;  /* its last component */
    int dirfd;   /* the target's directory */
    int fd;      /* the file being written */
    char *temp;  /* name of the temporary inside dirfd; NULL while it has none (O_TMPFILE) */
};

static int tmpfile_disabled(void)
{
    const char *v = getenv("GLMQ_NO_O_TMPFILE");
    return v && *v && strcmp(v, "0") != 0;
}

static uint64_t random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    /* no entropy yet (early boot) or no getrandom: uniqueness is all we need, O_EXCL does the
     * rest */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)getpid() << 44) ^ (uint64_t)(uintptr_t)&r;
    return glmq_splitmix64(&z);
}

/* ".<base>.glmq-tmp." (base cut to TEMP_BASE_MAX bytes), malloc'd. */
static char *temp_prefix(const char *base)
{
    size_t n = 1 + TEMP_BASE_MAX + sizeof TEMP_TAG;
    char *p = malloc(n);
    if (p) snprintf(p, n, ".%.*s" TEMP_TAG, TEMP_BASE_MAX, base);
    return p;
}

/* A fresh temporary name ".<base>.glmq-tmp.<pid>.<16 hex>", malloc'd. */
static char *temp_name(const char *base)
{
    size_t n = 1 + TEMP_BASE_MAX + sizeof TEMP_TAG + 24 + 17;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, ".%.*s" TEMP_TAG "%ld.%016llx", TEMP_BASE_MAX, base, (long)getpid(),
                 (unsigned long long)random64());
    return p;
}

/* Parse "<pid>.<16 hex>" (the tail of a temporary name after the prefix). */
static int parse_tail(const char *s, long *pid)
{
    long v = 0;
    int nd = 0;
    for (; *s >= '0' && *s <= '9'; s++, nd++) {
        if (nd >= 10) return 0;
        v = v * 10 + (*s - '0');
    }
    if (nd == 0 || v <= 0 || v > INT_MAX || *s != '.') return 0;
    s++;
    for (int i = 0; i < 16; i++, s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    if (*s) return 0;
    *pid = v;
    return 1;
}

/* Remove the temporaries of `base` in dirfd left by processes that are gone: the pid encoded in
 * the name no longer exists and nobody holds the file's lock (a fork child that inherited the
 * descriptor would). Best effort: an unreadable directory is simply not cleaned. */
static void remove_stale(int dirfd, const char *base)
{
    char *prefix = temp_prefix(base);
    if (!prefix) return;
    size_t plen = strlen(prefix);
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        free(prefix);
        return;
    }
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        if (strncmp(e->d_name, prefix, plen) != 0 || !parse_tail(e->d_name + plen, &pid))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        int fd = openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) fd = openat(dirfd, e->d_name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dirfd, e->d_name, 0);
        close(fd);
    }
    closedir(d);
    free(prefix);
}

/* Split path into a malloc'd directory ("." when there is no slash) and base name. */
static glmq_status split_path(glmq_atomic_file *af, char **dir, glmq_err *err)
{
    const char *path = af->path;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    GLMQ_FAIL_IF(!*base || !strcmp(base, ".") || !strcmp(base, ".."), err, GLMQ_E_INVALID,
                 "'%s': an output path must name a file, not a directory", path);
    af->base = glmq_strdup(base);
    size_t dl = slash ? (size_t)(slash - path) : 0;
    *dir = malloc(dl + 2);
    GLMQ_FAIL_IF(!af->base || !*dir, err, GLMQ_E_NOMEM, "out of memory");
    if (!slash) {
        strcpy(*dir, ".");
    } else if (dl == 0) {
        strcpy(*dir, "/");
    } else {
        memcpy(*dir, path, dl);
        (*dir)[dl] = 0;
    }
    return GLMQ_OK;
}

static glmq_status create_named(glmq_atomic_file *af, glmq_err *err)
{
    for (int tries = 0; tries < TEMP_TRIES; tries++) {
        char *name = temp_name(af->base);
        GLMQ_FAIL_IF(!name, err, GLMQ_E_NOMEM, "out of memory");
        int fd = openat(af->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0666);
        if (fd >= 0) {
            /* Marks the file as owned for the stale scan of other writers; a file system
             * without locks (ENOLCK) still has the pid test. */
            flock(fd, LOCK_EX | LOCK_NB);
            af->fd = fd;
            af->temp = name;
            return GLMQ_OK;
        }
        int e = errno;
        free(name);
        if (e != EEXIST)
            return glmq_fail(err, GLMQ_E_IO, "cannot create a temporary file for '%s': %s",
                             af->path, strerror(e));
    }
    return glmq_fail(err, GLMQ_E_IO, "cannot create a temporary file for '%s': %d names taken",
                     af->path, TEMP_TRIES);
}

glmq_status glmq_atomic_open(const char *path, glmq_atomic_file **out, glmq_err *err)
{
    *out = NULL;
    glmq_status st = GLMQ_OK;
    char *dir = NULL;
    GLMQ_FAIL_IF(!path || !*path, err, GLMQ_E_INVALID, "empty output path");
    glmq_atomic_file *af = calloc(1, sizeof *af);
    GLMQ_FAIL_IF(!af, err, GLMQ_E_NOMEM, "out of memory");
    af->fd = -1;
    af->dirfd = -1;
    af->path = glmq_strdup(path);
    GLMQ_FAIL_IF_G(!af->path, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(split_path(af, &dir, err));
    af->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (af->dirfd < 0 && errno == EACCES) /* write-only directory: no scan, no dir fsync */
        af->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    GLMQ_FAIL_IF_G(af->dirfd < 0, err, GLMQ_E_IO, "cannot create '%s': directory '%s': %s", path,
                   dir, strerror(errno));
    remove_stale(af->dirfd, af->base);
#ifdef O_TMPFILE
    if (!tmpfile_disabled()) {
        af->fd = openat(af->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        /* EISDIR: a kernel older than O_TMPFILE took it as O_DIRECTORY */
        GLMQ_FAIL_IF_G(af->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL,
                       err, GLMQ_E_IO, "cannot create '%s': %s", path, strerror(errno));
    }
#endif
    if (af->fd < 0) GLMQ_TRY_G(create_named(af, err));
    free(dir);
    *out = af;
    return GLMQ_OK;
fail:
    free(dir);
    glmq_atomic_discard(af);
    return st;
}

int glmq_atomic_fd(const glmq_atomic_file *af) { return af->fd; }
const char *glmq_atomic_path(const glmq_atomic_file *af) { return af->path; }
const char *glmq_atomic_temp_name(const glmq_atomic_file *af) { return af->temp; }

glmq_status glmq_atomic_write(glmq_atomic_file *af, const void *data, size_t n, glmq_err *err)
{
    const uint8_t *p = data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = write(af->fd, p, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            off_t pos = lseek(af->fd, 0, SEEK_CUR);
            return glmq_fail(err, GLMQ_E_IO, "'%s': write of %zu bytes at byte %lld failed: %s",
                             af->path, n, (long long)pos, strerror(e));
        }
        p += r;
        n -= (size_t)r;
    }
    return GLMQ_OK;
}

glmq_status glmq_atomic_check_space(const glmq_atomic_file *af, uint64_t bytes, glmq_err *err)
{
    /* fstatvfs instead of posix_fallocate: on tmpfs the latter zero-fills every page, which
     * costs as much memory bandwidth as writing the file. RLIMIT_FSIZE behaves like a full
     * disk, so it is checked too. */
    struct statvfs vs;
    if (fstatvfs(af->fd, &vs) == 0 && vs.f_frsize > 0) {
        uint64_t avail = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
        GLMQ_FAIL_IF(avail < bytes, err, GLMQ_E_IO,
                     "'%s': not enough space: the file needs %llu bytes, the filesystem has "
                     "%llu available",
                     af->path, (unsigned long long)bytes, (unsigned long long)avail);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        GLMQ_FAIL_IF((uint64_t)rl.rlim_cur < bytes, err, GLMQ_E_IO,
                     "'%s': the file needs %llu bytes but this process may write at most %llu "
                     "(RLIMIT_FSIZE)",
                     af->path, (unsigned long long)bytes, (unsigned long long)rl.rlim_cur);
    return GLMQ_OK;
}

/* Give the nameless (O_TMPFILE) inode a temporary name in the target's directory. */
static glmq_status link_tmpfile(glmq_atomic_file *af, glmq_err *err)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", af->fd);
    /* the lock makes the name we are about to give it safe from another writer's stale scan
     * even when the pid test cannot see us (a writer in another pid namespace) */
    flock(af->fd, LOCK_EX | LOCK_NB);
    for (int tries = 0; tries < TEMP_TRIES; tries++) {
        char *name = temp_name(af->base);
        GLMQ_FAIL_IF(!name, err, GLMQ_E_NOMEM, "out of memory");
        int rc = linkat(AT_FDCWD, proc, af->dirfd, name, AT_SYMLINK_FOLLOW);
        if (rc != 0 && errno == ENOENT) /* no /proc: AT_EMPTY_PATH, if permitted */
            rc = linkat(af->fd, "", af->dirfd, name, AT_EMPTY_PATH);
        if (rc == 0) {
            af->temp = name;
            return GLMQ_OK;
        }
        int e = errno;
        free(name);
        if (e != EEXIST)
            return glmq_fail(err, GLMQ_E_IO, "cannot give '%s' its name: linkat: %s", af->path,
                             strerror(e));
    }
    return glmq_fail(err, GLMQ_E_IO, "cannot give '%s' its name: %d temporary names taken",
                     af->path, TEMP_TRIES);
}

glmq_status glmq_atomic_commit(glmq_atomic_file *af, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF_G(fsync(af->fd) != 0, err, GLMQ_E_IO, "'%s': fsync failed: %s", af->path,
                   strerror(errno));
    if (!af->temp) GLMQ_TRY_G(link_tmpfile(af, err));
    GLMQ_FAIL_IF_G(renameat(af->dirfd, af->temp, af->dirfd, af->base) != 0, err, GLMQ_E_IO,
                   "cannot rename the temporary '%s' to '%s': %s", af->temp, af->path,
                   strerror(errno));
    free(af->temp);
    af->temp = NULL; /* nothing to remove any more */
    /* best effort: some file systems refuse fsync on directories (and an O_PATH descriptor
     * of a write-only directory cannot be synced) */
    fsync(af->dirfd);
    /* the data is on disk (fsync above); a late close error changes nothing */
    glmq_atomic_discard(af);
    return GLMQ_OK;
fail:
    glmq_atomic_discard(af);
    return st;
}

void glmq_atomic_discard(glmq_atomic_file *af)
{
    if (!af) return;
    if (af->temp) unlinkat(af->dirfd, af->temp, 0); /* before close: still under our lock */
    if (af->fd >= 0) close(af->fd);
    if (af->dirfd >= 0) close(af->dirfd);
    free(af->temp);
    free(af->base);
    free(af->path);
    free(af);
}

glmq_status glmq_atomic_write_file(const char *path, const void *data, size_t n, glmq_err *err)
{
    glmq_atomic_file *af = NULL;
    GLMQ_TRY(glmq_atomic_open(path, &af, err));
    glmq_status st = glmq_atomic_write(af, data, n, err);
    if (st != GLMQ_OK) {
        glmq_atomic_discard(af);
        return st;
    }
    return glmq_atomic_commit(af, err);
}
