/*
 * check_atomic.c - the atomic file writer (src/core/atomic.h) and its users.
 *
 * Every test runs on both paths: O_TMPFILE (the default where the file system supports it; the
 * test probes that itself) and the named-temporary fallback, forced with GLMQ_NO_O_TMPFILE=1.
 * Directory listings here count every entry, dot-files included, since the fallback's temporary
 * names start with a dot. Covered: commit, discard, an existing target untouched when the commit
 * fails, names up to NAME_MAX, file modes under several umasks (also for the pack, report and .npy writers), stale
 * temporaries of dead processes removed and those of live ones kept, and a conversion killed
 * with SIGKILL while its output file is open, which must leave the directory empty (O_TMPFILE)
 * or a temporary that the next writer of the same output removes (fallback).
 */
#define _GNU_SOURCE /* O_TMPFILE, flock */
#include "core/atomic.h"
#include "formats/npy.h"
#include "formats/pack.h"
#include "testutil.h"
#include "verify/report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmpdir;

static void setup(void) { tmpdir = tu_mkdtemp(); }
static void teardown(void)
{
    unsetenv("GLMQ_NO_O_TMPFILE");
    tu_rmtree(tmpdir);
    free(tmpdir);
}

/* Loop index 0: O_TMPFILE path, 1: forced named-temporary fallback. */
static void use_path(int named)
{
    if (named)
        setenv("GLMQ_NO_O_TMPFILE", "1", 1);
    else
        unsetenv("GLMQ_NO_O_TMPFILE");
}

/* Does the file system of dir support O_TMPFILE? */
static int have_tmpfile(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

/* Every entry of dir except "." and "..", dot-files included; names joined by '|' into list. */
static int count_all(const char *dir, char *list, size_t cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    if (list) list[0] = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (list && strlen(list) + strlen(e->d_name) + 2 < cap) {
            strcat(list, e->d_name);
            strcat(list, "|");
        }
    }
    closedir(d);
    return n;
}

static void expect_content(const char *path, const char *want)
{
    size_t n = 0;
    uint8_t *b = tu_read_file(path, &n);
    ck_assert_msg(b != NULL, "cannot read %s", path);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(b, want, n);
    free(b);
}

/* The temporary is invisible (O_TMPFILE) or a dot-name of the documented pattern; the target
 * keeps its old content until the commit, which leaves exactly one entry. */
START_TEST(commit_replaces)
{
    use_path(_i);
    char *out = tu_path(tmpdir, "out.bin");
    ck_assert_int_eq(tu_write_file(out, "old", 3), 0);
    glmq_atomic_file *af = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    ck_assert_str_eq(glmq_atomic_path(af), out);
    const char *temp = glmq_atomic_temp_name(af);
    char list[1024];
    if (_i == 0 && have_tmpfile(tmpdir)) {
        ck_assert_ptr_null(temp);
        ck_assert_int_eq(count_all(tmpdir, list, sizeof list), 1);
    } else {
        ck_assert_ptr_nonnull(temp);
        char pre[64];
        snprintf(pre, sizeof pre, ".out.bin.glmq-tmp.%ld.", (long)getpid());
        ck_assert_msg(strncmp(temp, pre, strlen(pre)) == 0 && strlen(temp) == strlen(pre) + 16,
                      "temporary name %s", temp);
        ck_assert_int_eq(count_all(tmpdir, list, sizeof list), 2);
        char *tp = tu_path(tmpdir, temp);
        ck_assert(tu_file_exists(tp));
        free(tp);
    }
    ck_assert_int_eq(glmq_atomic_write(af, "new ", 4, &err), GLMQ_OK);
    ck_assert_int_eq(pwrite(glmq_atomic_fd(af), "content", 7, 4), 7);
    expect_content(out, "old");
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    expect_content(out, "new content");
    ck_assert_int_eq(count_all(tmpdir, list, sizeof list), 1);
    /* a new target, and the whole-buffer form */
    char *out2 = tu_path(tmpdir, "fresh");
    ck_assert_int_eq(glmq_atomic_write_file(out2, "abc", 3, &err), GLMQ_OK);
    expect_content(out2, "abc");
    ck_assert_int_eq(glmq_atomic_write_file(out2, "", 0, &err), GLMQ_OK);
    expect_content(out2, "");
    ck_assert_int_eq(count_all(tmpdir, list, sizeof list), 2);
    free(out2);
    free(out);
}
END_TEST

/* A name of 250 bytes (NAME_MAX 255): the temporary's name keeps only 200 bytes of it, and
 * the stale scan finds temporaries by the same cut. */
START_TEST(long_name)
{
    use_path(_i);
    char base[251];
    memset(base, 'n', 250);
    base[250] = 0;
    char *out = tu_path(tmpdir, base);
    glmq_atomic_file *af = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    if (glmq_atomic_temp_name(af)) ck_assert_uint_lt(strlen(glmq_atomic_temp_name(af)), 255);
    ck_assert_int_eq(glmq_atomic_write(af, "long", 4, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_OK);
    expect_content(out, "long");
    /* a stale temporary of this output, as a killed writer would have left it */
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0) _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char name[256];
    snprintf(name, sizeof name, ".%.200s.glmq-tmp.%ld.0123456789abcdef", base, (long)dead);
    char *stale = tu_path(tmpdir, name);
    ck_assert_int_eq(tu_write_file(stale, "x", 1), 0);
    ck_assert_int_eq(glmq_atomic_write_file(out, "again", 5, &err), GLMQ_OK);
    ck_assert(!tu_file_exists(stale));
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    expect_content(out, "again");
    free(stale);
    free(out);
}
END_TEST

/* Discard removes everything and leaves an existing target alone; NULL is a no-op. */
START_TEST(discard_removes)
{
    use_path(_i);
    char *out = tu_path(tmpdir, "keep.txt");
    glmq_atomic_file *af = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_write(af, "partial", 7, &err), GLMQ_OK);
    glmq_atomic_discard(af);
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 0);
    ck_assert_int_eq(tu_write_file(out, "precious", 8), 0);
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_write(af, "partial", 7, &err), GLMQ_OK);
    glmq_atomic_discard(af);
    expect_content(out, "precious");
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    glmq_atomic_discard(NULL);
    free(out);
}
END_TEST

/* A commit that cannot rename (the target is a non-empty directory) fails with the path in the
 * message, leaves the target as it was and removes the temporary; bad paths fail cleanly. */
START_TEST(failure_keeps_target)
{
    use_path(_i);
    char *out = tu_path(tmpdir, "target");
    ck_assert_int_eq(mkdir(out, 0755), 0);
    char *inner = tu_path(out, "inside");
    ck_assert_int_eq(tu_write_file(inner, "x", 1), 0);
    glmq_atomic_file *af = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_write(af, "data", 4, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(af, &err), GLMQ_E_IO);
    ck_assert_msg(strstr(err.msg, out) != NULL, "%s", err.msg);
    expect_content(inner, "x");
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    ck_assert_int_eq(count_all(out, NULL, 0), 1);
    /* same through the whole-buffer form */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(glmq_atomic_write_file(out, "data", 4, &err), GLMQ_E_IO);
    ck_assert_msg(strstr(err.msg, out) != NULL, "%s", err.msg);
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    /* missing directory, a path naming a directory, an empty path */
    char *missing = tu_path(tmpdir, "no/such/file");
    ck_assert_int_eq(glmq_atomic_write_file(missing, "d", 1, &err), GLMQ_E_IO);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
    char *slash = tu_path(tmpdir, "dir/");
    ck_assert_int_eq(glmq_atomic_open(slash, &af, &err), GLMQ_E_INVALID);
    ck_assert_ptr_null(af);
    ck_assert_msg(strstr(err.msg, slash) != NULL, "%s", err.msg);
    ck_assert_int_eq(glmq_atomic_open("", &af, &err), GLMQ_E_INVALID);
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    free(slash);
    free(missing);
    free(inner);
    free(out);
}
END_TEST

/* A relative path without a directory part is created in the working directory. */
START_TEST(relative_path)
{
    use_path(_i);
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    glmq_err err = {0};
    glmq_status st = glmq_atomic_write_file("rel.txt", "rel", 3, &err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(st == GLMQ_OK, "%s", err.msg);
    char *p = tu_path(tmpdir, "rel.txt");
    expect_content(p, "rel");
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    free(p);
}
END_TEST

/* Mode 0666 & ~umask, like open(O_CREAT, 0666), on both paths and for a replaced target. */
static const mode_t masks[] = {022, 077, 002, 0, 027};
START_TEST(modes_follow_umask)
{
    use_path(_i % 2);
    mode_t mask = masks[_i / 2];
    char *out = tu_path(tmpdir, "m.txt");
    ck_assert_int_eq(tu_write_file(out, "old", 3), 0);
    ck_assert_int_eq(chmod(out, 0600), 0);
    mode_t old = umask(mask);
    glmq_err err = {0};
    glmq_status st = glmq_atomic_write_file(out, "m", 1, &err);
    umask(old);
    ck_assert_msg(st == GLMQ_OK, "%s", err.msg);
    struct stat sb;
    ck_assert_int_eq(stat(out, &sb), 0);
    ck_assert_msg((sb.st_mode & 07777) == (0666 & ~mask), "umask %03o: mode %03o", (unsigned)mask,
                  (unsigned)(sb.st_mode & 07777));
    free(out);
}
END_TEST

/* The users of the writer: a pack, a report (glmq_atomic_write_file), a plot and a .npy are all
 * 0644 under umask 022 (the report used to be 0600). */
START_TEST(users_mode_0644)
{
    use_path(_i);
    mode_t old = umask(022);
    glmq_err err = {0};
    char *pack = tu_path(tmpdir, "p.glmq");
    glmq_pack_tensor_decl d[1] = {{"a", GLMQ_TYPE_F16, 2, {2, 4}}};
    glmq_pack_writer *w = NULL;
    ck_assert_int_eq(glmq_pack_writer_create(pack, d, 1, NULL, 0, &w, &err), GLMQ_OK);
    uint8_t rows[16] = {0};
    ck_assert_int_eq(glmq_pack_write_rows(w, 0, 0, 2, rows, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_pack_writer_finish(w, "{}", &err), GLMQ_OK);
    char *rep = tu_path(tmpdir, "r.json");
    ck_assert_int_eq(glmq_atomic_write_file(rep, "{}\n", 3, &err), GLMQ_OK);
    char *svg = tu_path(tmpdir, "r.svg");
    double rel[2] = {0.1, 0.2}, kld[3] = {0, 1e-4, 2e-3};
    glmq_drift dr;
    memset(&dr, 0, sizeof dr);
    dr.n_layers = 2;
    dr.layer_rel_err = rel;
    dr.n_positions = 3;
    dr.kld = kld;
    ck_assert_int_eq(glmq_report_svg(&dr, "t", svg, &err), GLMQ_OK);
    char *npy = tu_path(tmpdir, "x.npy");
    float x[2] = {1, 2};
    ck_assert_int_eq(glmq_npy_write_f32(npy, x, 1, 2, &err), GLMQ_OK);
    umask(old);
    const char *files[] = {pack, rep, svg, npy};
    for (int i = 0; i < 4; i++) {
        struct stat sb;
        ck_assert_int_eq(stat(files[i], &sb), 0);
        ck_assert_msg((sb.st_mode & 07777) == 0644, "%s: mode %03o", files[i],
                      (unsigned)(sb.st_mode & 07777));
    }
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 4);
    glmq_pack *p = NULL;
    ck_assert_int_eq(glmq_pack_open(pack, &p, &err), GLMQ_OK);
    glmq_pack_close(p);
    free(pack);
    free(rep);
    free(svg);
    free(npy);
}
END_TEST

/* A process that exits at once: its pid is (very nearly certainly) free afterwards. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
    return pid;
}

static char *make_temp(const char *base, long pid, const char *hex)
{
    char name[256];
    snprintf(name, sizeof name, ".%s.glmq-tmp.%ld.%s", base, pid, hex);
    char *p = tu_path(tmpdir, name);
    ck_assert_int_eq(tu_write_file(p, "stale", 5), 0);
    return p;
}

/* A later writer of the same output removes the named temporaries of dead processes, and only
 * those: not a live process's, not one whose lock is still held, not another output's, not a
 * name that does not follow the pattern, not a directory. */
START_TEST(stale_cleanup)
{
    use_path(_i);
    pid_t dead = dead_pid();
    pid_t live = fork();
    ck_assert_int_ge(live, 0);
    if (live == 0) {
        alarm(120); /* never outlive the test */
        for (;;) pause();
    }
    char *stale = make_temp("o.glmq", dead, "0123456789abcdef");
    char *alive = make_temp("o.glmq", live, "0123456789abcdef");
    char *locked = make_temp("o.glmq", dead, "fedcba9876543210");
    char *other = make_temp("p.glmq", dead, "0123456789abcdef");
    char *bad1 = make_temp("o.glmq", dead, "0123456789abcdeg");
    char *bad2 = make_temp("o.glmq", dead, "0123456789abcdef0");
    char dname[256];
    snprintf(dname, sizeof dname, ".o.glmq.glmq-tmp.%ld.aaaaaaaaaaaaaaaa", (long)dead);
    char *dir = tu_path(tmpdir, dname);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    /* the lock of `locked` is held by this (live) process, as by a child that inherited the
     * descriptor of a writer that died */
    int lfd = open(locked, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(flock(lfd, LOCK_EX), 0);

    char *out = tu_path(tmpdir, "o.glmq");
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_write_file(out, "new", 3, &err), GLMQ_OK);
    ck_assert(!tu_file_exists(stale));
    ck_assert(tu_file_exists(alive));
    ck_assert(tu_file_exists(locked));
    ck_assert(tu_file_exists(other));
    ck_assert(tu_file_exists(bad1));
    ck_assert(tu_file_exists(bad2));
    ck_assert(tu_file_exists(dir));
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 7);

    /* the lock released and the live process gone: both are removed by the next writer */
    close(lfd);
    ck_assert_int_eq(kill(live, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(live, &status, 0), live);
    glmq_atomic_file *af = NULL;
    ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
    glmq_atomic_discard(af);
    ck_assert(!tu_file_exists(alive));
    ck_assert(!tu_file_exists(locked));
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 5);
    expect_content(out, "new");
    free(stale);
    free(alive);
    free(locked);
    free(other);
    free(bad1);
    free(bad2);
    free(dir);
    free(out);
}
END_TEST

/* Two writers of one output at once (fallback names): neither removes the other's temporary;
 * the last commit wins and nothing is left. */
START_TEST(concurrent_writers)
{
    use_path(1);
    char *out = tu_path(tmpdir, "c.txt");
    glmq_atomic_file *a = NULL, *b = NULL;
    glmq_err err = {0};
    ck_assert_int_eq(glmq_atomic_open(out, &a, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_write(a, "first", 5, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_open(out, &b, &err), GLMQ_OK);
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 2);
    ck_assert_str_ne(glmq_atomic_temp_name(a), glmq_atomic_temp_name(b));
    ck_assert_int_eq(glmq_atomic_write(b, "second", 6, &err), GLMQ_OK);
    ck_assert_int_eq(glmq_atomic_commit(a, &err), GLMQ_OK);
    expect_content(out, "first");
    ck_assert_int_eq(glmq_atomic_commit(b, &err), GLMQ_OK);
    expect_content(out, "second");
    ck_assert_int_eq(count_all(tmpdir, NULL, 0), 1);
    free(out);
}
END_TEST

/* The fd of `pid` that points into dir (a file inside it, not dir itself), if any. */
static int child_has_file_in(pid_t pid, const char *dir)
{
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(fds);
    if (!d) return 0;
    size_t dl = strlen(dir);
    int found = 0;
    const struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char link[384], target[PATH_MAX];
        snprintf(link, sizeof link, "%s/%s", fds, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        found = strncmp(target, dir, dl) == 0 && target[dl] == '/';
    }
    closedir(d);
    return found;
}

/* SIGKILL a real conversion (the CLI on samples/glm2-tiny/st) while its output file is open.
 * O_TMPFILE: the directory is empty afterwards. Fallback: exactly one temporary of the killed
 * pid is left, and the next writer of the same output removes it. A kill that misses (the child
 * had already committed, or exited) does not count; the loop runs until a few kills landed. */
START_TEST(kill_mid_write)
{
    const int named = _i;
    const int tmpfile = !named && have_tmpfile(tmpdir);
    char *src = tu_sample_path("glm2-tiny", "st");
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(tmpdir, real));
    char *dir = tu_path(real, "kill");
    char *out = tu_path(dir, "out.glmq");
    int landed = 0, empty = 0, attempts = 0;
    for (; attempts < 400 && landed < 3; attempts++) {
        tu_rmtree(dir);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (named) setenv("GLMQ_NO_O_TMPFILE", "1", 1);
            int nul = open("/dev/null", O_WRONLY);
            dup2(nul, 1);
            dup2(nul, 2);
            execl(tu_bin(), "glmq", "convert", src, "-o", out, "--quiet", "--threads", "1",
                  (char *)NULL);
            _exit(127);
        }
        int seen = 0, status = 0;
        for (;;) {
            if (child_has_file_in(pid, dir)) {
                seen = 1;
                kill(pid, SIGKILL);
                break;
            }
            pid_t r = waitpid(pid, &status, WNOHANG);
            ck_assert_int_ge(r, 0);
            if (r == pid) break;
        }
        if (seen) ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                      "conversion failed (status %d)", status);
        if (!seen || !WIFSIGNALED(status) || tu_file_exists(out)) continue; /* missed */
        landed++;
        char list[1024];
        int n = count_all(dir, list, sizeof list);
        char pre[64];
        snprintf(pre, sizeof pre, ".out.glmq.glmq-tmp.%ld.", (long)pid);
        if (n == 0) {
            ck_assert_msg(!named, "fallback: a kill left nothing to clean up?");
            empty++;
            continue;
        }
        /* a named temporary of the killed pid: the fallback's file, or (O_TMPFILE) the
         * instant between linkat and rename in commit */
        ck_assert_msg(n == 1 && strncmp(list, pre, strlen(pre)) == 0, "left behind: %s", list);
        glmq_atomic_file *af = NULL;
        glmq_err err = {0};
        ck_assert_int_eq(glmq_atomic_open(out, &af, &err), GLMQ_OK);
        glmq_atomic_discard(af);
        ck_assert_msg(count_all(dir, list, sizeof list) == 0, "not cleaned: %s", list);
    }
    ck_assert_msg(landed == 3, "no kill landed while the output was open in %d attempts",
                  attempts);
    if (tmpfile) ck_assert_int_ge(empty, 1);
    /* a complete conversion afterwards leaves exactly its output */
    char *t = NULL;
    ck_assert_int_eq(tu_run(&t, "'%s' convert '%s' -o '%s' --quiet", tu_bin(), src, out), 0);
    free(t);
    ck_assert_int_eq(count_all(dir, NULL, 0), 1);
    free(out);
    free(dir);
    free(src);
}
END_TEST

static Suite *atomic_suite(void)
{
    Suite *s = suite_create("atomic");
    TCase *tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, commit_replaces, 0, 2);
    tcase_add_loop_test(tc, long_name, 0, 2);
    tcase_add_loop_test(tc, discard_removes, 0, 2);
    tcase_add_loop_test(tc, failure_keeps_target, 0, 2);
    tcase_add_loop_test(tc, relative_path, 0, 2);
    tcase_add_loop_test(tc, modes_follow_umask, 0, 2 * (int)(sizeof masks / sizeof masks[0]));
    tcase_add_loop_test(tc, users_mode_0644, 0, 2);
    tcase_add_loop_test(tc, stale_cleanup, 0, 2);
    tcase_add_test(tc, concurrent_writers);
    tcase_add_loop_test(tc, kill_mid_write, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(atomic_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
