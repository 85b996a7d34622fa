/*
 * testutil.h - helpers shared by the Check suites: temp dirs, files, running the CLI, .npy.
 * Environment (set by tests/CMakeLists.txt): GLMQ_SAMPLES, GLMQ_TESTDATA, GLMQ_BIN, GLMQ_TMP.
 */
#ifndef GLMQ_TESTUTIL_H
#define GLMQ_TESTUTIL_H

#include "glmq.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Path of an env var (falls back to a sane default), never NULL. */
const char *tu_samples(void);
const char *tu_testdata(void);
const char *tu_bin(void);

/* Create a fresh empty temp dir (under GLMQ_TMP or /tmp); returned string is static per call
 * slot: copy it if you need more than one. Removes it recursively with tu_rmtree. */
char *tu_mkdtemp(void);              /* malloc'd path */
void tu_rmtree(const char *path);
/* join two path components into a malloc'd string */
char *tu_path(const char *a, const char *b);

/* samples/<model>/<sub> as a malloc'd path. */
char *tu_sample_path(const char *model, const char *sub);
/* Number of entries in a directory, not counting '.'-files. */
int tu_count_entries(const char *dir);

/* Whole-file helpers. tu_read_file returns malloc'd bytes (+NUL) or NULL. */
int tu_write_file(const char *path, const void *data, size_t n);
uint8_t *tu_read_file(const char *path, size_t *n);
int tu_file_exists(const char *path);
/* Copy a directory's regular files (non-recursive) into dst (created). */
int tu_copy_dir(const char *src, const char *dst);

/* Run a shell command line; capture stdout+stderr into a malloc'd string (*out, may be NULL).
 * Returns the exit status (0-255), or -1 if it did not exit normally. */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Convert samples/<model>/st to `type` (2 threads) into dir/<model>-<name>.glmq through the
 * public API; returns the malloc'd pack path, or NULL with err set. */
char *tu_convert_sample(const char *dir, const char *model, glmq_type type, glmq_err *err);

/* samples/<model>/golden/manifest.json parsed (cJSON_Delete it), or NULL if it cannot be read
 * or parsed: the description of the PyTorch goldens of a sample. */
struct cJSON *tu_manifest(const char *model);

/* Minimal .npy reader (v1/v2 headers, little-endian, C order). dtype receives the descr string
 * ("<f4", "|i1", "<u2", "<i4", ...); shape up to 4 dims. Returns malloc'd data or NULL. */
void *tu_npy_load(const char *path, char dtype[8], int *ndim, int64_t shape[4], size_t *nbytes);

/* splitmix64: the next value of the deterministic generator with state *s. */
uint64_t tu_splitmix64(uint64_t *s);

/* The checkpoint name of a GGUF tensor of llama.cpp's chatglm architecture ("blk.0.attn_qkv.weight"
 * -> "transformer.encoder.layers.0.self_attention.query_key_value.weight"); aborts the test on a
 * name it does not know. */
void tu_gguf_hf_name(const char *gguf, char *out, size_t n);

#endif
