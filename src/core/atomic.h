/*
 * atomic.h - the one atomic file writer of libglmq (packs, reports, plots, .npy); internal.
 *
 * A writer never touches the output path until it commits: readers see the old file or the
 * complete new one, never a partial one, and a process killed at any point leaves no file under a
 * name of its own that lives forever.
 *
 *   open     O_TMPFILE in the target's directory (an inode without a name: a kill leaves
 *            nothing); where the file system refuses O_TMPFILE (EOPNOTSUPP, EISDIR, EINVAL) a
 *            named temporary ".<name>.glmq-tmp.<pid>.<16 hex>" created with O_EXCL and held
 *            under flock(LOCK_EX) while it is written.
 *   commit   fsync the data; name the O_TMPFILE inode with linkat (through /proc/self/fd/N, or
 *            AT_EMPTY_PATH) under a temporary name of the same pattern; rename() it over the
 *            target; fsync the directory (best effort: some file systems refuse it).
 *   discard  close and remove whatever was created.
 *   cleanup  every open first removes the named temporaries of the same output whose process is
 *            gone: kill(pid, 0) fails with ESRCH and flock(LOCK_EX|LOCK_NB) can be taken (so a
 *            file still open in a child that inherited the descriptor is left alone).
 *
 * Files are created with mode 0666 & ~umask (0644 under umask 022), like any created file.
 * Errors are glmq_status values with messages that name the target path; nothing is printed.
 * Test hook: with GLMQ_NO_O_TMPFILE set to a non-empty value other than "0", open behaves as if
 * the file system refused O_TMPFILE (the named-temporary path).
 *
 * A glmq_atomic_file is used by one thread at a time, except that glmq_atomic_fd may be used with
 * pwrite from several threads at once.
 */
#ifndef GLMQ_CORE_ATOMIC_H
#define GLMQ_CORE_ATOMIC_H

#include "core/internal.h"

typedef struct glmq_atomic_file glmq_atomic_file;

/* Start writing `path` (its directory must exist). On failure *out is NULL. */
glmq_status glmq_atomic_open(const char *path, glmq_atomic_file **out, glmq_err *err);

/* The file descriptor to write (write/pwrite/ftruncate); owned by af, never close it. */
int glmq_atomic_fd(const glmq_atomic_file *af);

/* The target path as given to glmq_atomic_open (for messages). */
const char *glmq_atomic_path(const glmq_atomic_file *af);

/* The name of the temporary inside the target's directory, or NULL when the file has no name
 * (O_TMPFILE). For messages and tests. */
const char *glmq_atomic_temp_name(const glmq_atomic_file *af);

/* Append n bytes at the current file position (retrying short writes and EINTR). */
glmq_status glmq_atomic_write(glmq_atomic_file *af, const void *data, size_t n, glmq_err *err);

/* Fail early (GLMQ_E_IO) when a file of `bytes` bytes cannot fit: the space available to this
 * user on the file system, and the process's RLIMIT_FSIZE. A later failure is still caught by
 * the writes themselves. */
glmq_status glmq_atomic_check_space(const glmq_atomic_file *af, uint64_t bytes, glmq_err *err);

/* fsync, give the file the target's name (replacing an existing file), fsync the directory.
 * Consumes af whether it succeeds or not; on failure nothing is left behind and an existing
 * target is untouched. */
glmq_status glmq_atomic_commit(glmq_atomic_file *af, glmq_err *err);

/* Close and remove everything created for af, and free it. NULL is a no-op. */
void glmq_atomic_discard(glmq_atomic_file *af);

/* open + write + commit of a whole buffer. */
glmq_status glmq_atomic_write_file(const char *path, const void *data, size_t n, glmq_err *err);

#endif /* GLMQ_CORE_ATOMIC_H */
