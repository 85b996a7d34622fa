/*
 * fuzz_shard_part.c - feed arbitrary bytes to the partial-result reader of a sharded verify
 * (glmq_part_decode, verify/shard.h) and use what it accepts.
 *
 * One convenience for the fuzzer, as fuzz_pack_open has: when the input is at least a header
 * and a trailer long and its trailer (the last 8 bytes, the XXH3-64 of everything before) is
 * all zero, the target first writes the right checksum there; otherwise nearly every mutation
 * would stop at the checksum. Inputs with any other trailer are read as they are. The corpus
 * (corpus/shard_part/, made by gen_part_corpus.c) holds both kinds.
 *
 * Beyond "no crash, no leak, no UB", the target checks the reader's contract and traps on a
 * breach:
 *   - failure: *out == NULL, err.code == the status, a NUL-terminated message naming the file;
 *   - success: the format is canonical, so encoding the part again gives the input byte for
 *     byte; shard < N; the windows are I, I + N, ...; merging the part alone succeeds when
 *     N == 1 (and then the JSON report and the metrics can be made) and otherwise fails naming
 *     a missing shard; merging it twice with itself fails as a duplicate.
 */
#include "verify/shard.h"
#include "core/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static const char *const name = "fuzz.part";

static void use_part(glmq_part *p, const uint8_t *in, size_t size)
{
    glmq_err err = {0};
    uint8_t *enc = NULL;
    size_t n = 0;
    CHECK(glmq_part_encode(p, &enc, &n, &err) == GLMQ_OK);
    CHECK(n == size && memcmp(enc, in, size) == 0);
    free(enc);
    CHECK(p->shard >= 0 && p->shard < p->n_shards);
    for (int64_t r = 0; r < p->n_records; r++)
        CHECK(p->rec[r].window == p->shard + r * p->n_shards && p->rec[r].window < p->n_windows);

    glmq_part *const parts[2] = {p, p};
    const char *const names[2] = {name, "again.part"};
    glmq_drift d[2];
    int nm = -1;
    const glmq_part *first = NULL;
    double secs = -1;
    glmq_status st = glmq_parts_merge(parts, names, 1, d, &nm, &first, &secs, &err);
    if (p->n_shards == 1) {
        CHECK(st == GLMQ_OK && nm == p->nmodes && first == p && secs == p->seconds);
        glmq_eval_opts o;
        glmq_part_opts(p, &o);
        glmq_report_ctx c = {0};
        c.quant = glmq_part_quant(p);
        c.ref = glmq_part_ref(p);
        c.opts = &o;
        c.text_source = p->str[GLMQ_PART_S_TEXT];
        c.exact = nm > 1 ? &d[1] : NULL;
        c.n_shards = 1;
        char *json = glmq_report_json(&d[0], &c);
        CHECK(json != NULL);
        free(json);
        int64_t np = 0;
        for (int64_t r = 0; r < p->n_records; r++) np += p->rec[r].m[0].n_pos;
        CHECK(d[0].n_positions == np && d[0].ppl_ref.n_windows == p->n_windows);
        for (int64_t i = 1; i < np; i++) /* ascending, NaN last */
            CHECK(!(d[0].kld[i] < d[0].kld[i - 1]) && !(d[0].kld[i] == d[0].kld[i] &&
                                                         d[0].kld[i - 1] != d[0].kld[i - 1]));
        glmq_drift_free(&d[0]);
        glmq_drift_free(&d[1]);
    } else {
        CHECK(st == GLMQ_E_INVALID && strstr(err.msg, "missing") && nm == 0 && first == NULL);
        CHECK(d[0].kld == NULL && d[1].kld == NULL);
    }
    memset(&err, 0, sizeof err);
    st = glmq_parts_merge(parts, names, 2, d, &nm, &first, &secs, &err);
    CHECK(st == GLMQ_E_INVALID && strstr(err.msg, "both shard") && strstr(err.msg, name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    if (!in) return 0;
    if (size) memcpy(in, data, size);
    if (size >= GLMQ_PART_HEADER + 8 && glmq_rd_le64(in + size - 8) == 0)
        glmq_wr_le64(in + size - 8, XXH3_64bits(in, size - 8));
    glmq_part *p = (glmq_part *)(uintptr_t)1; /* must be reset to NULL on failure */
    glmq_err err = {0};
    const glmq_status st = glmq_part_decode(in, size, name, &p, &err);
    if (st != GLMQ_OK) {
        CHECK(p == NULL);
        CHECK(err.code == st && err.msg[0] != 0 && memchr(err.msg, 0, sizeof err.msg));
        CHECK(strstr(err.msg, "'fuzz.part'") != NULL || st == GLMQ_E_NOMEM);
    } else {
        CHECK(p != NULL);
        use_part(p, in, size);
        glmq_part_free(p);
    }
    free(in);
    return 0;
}
