/*
 * read_pack.c - how another runtime reads a .glmq file with libglmq's public API.
 *
 *   sample_read_pack MODEL.glmq [TENSOR_NAME]
 *
 * Opens (maps and validates) the file, prints its config from the metadata JSON, lists the
 * tensors, verifies every checksum, then dequantizes the first row of one tensor (default: the
 * first quantized one) and prints a few values with the row's scale. Error handling follows the
 * library contract: every call returns a glmq_status and fills a glmq_err message.
 */
#include <glmq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const glmq_err *err)
{
    fprintf(stderr, "read_pack: %s\n", err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.glmq [TENSOR_NAME]\n", argv[0]);
        return 2;
    }
    glmq_err err = {0};
    glmq_pack *pack = NULL;

    /* 1. Open: every offset, size and type is validated before any pointer is handed out. */
    if (glmq_pack_open(argv[1], &pack, &err) != GLMQ_OK) return fail(&err);
    uint32_t v = glmq_pack_version(pack);
    printf("format %u.%u, %lld tensors\n", v >> 16, v & 0xffff,
           (long long)glmq_pack_tensor_count(pack));

    /* 2. Metadata is one JSON object (formats/SPEC.md section 7); parse it with any JSON
     *    library. Here we only print its beginning. */
    const char *meta = glmq_pack_metadata(pack);
    printf("metadata: %.160s...\n", meta);

    /* 3. Embedded blobs: the tokenizer file, byte for byte. */
    const void *tok;
    size_t tok_size;
    if (glmq_pack_blob(pack, "tokenizer.model", &tok, &tok_size, &err) == GLMQ_OK)
        printf("tokenizer.model: %zu bytes\n", tok_size);

    /* 4. The tensor table: names, storage types, shapes, mmap'd data and per-row scales. */
    glmq_tensor_info pick = {0};
    int have = 0;
    for (int64_t i = 0; i < glmq_pack_tensor_count(pack); i++) {
        glmq_tensor_info t;
        if (glmq_pack_tensor(pack, i, &t, &err) != GLMQ_OK) return fail(&err);
        if (i < 8) printf("  %-56s %-5s rows %lld cols %lld\n", t.name, glmq_type_name(t.type),
                          (long long)t.rows, (long long)t.cols);
        int quantized = t.type == GLMQ_TYPE_INT8 || t.type == GLMQ_TYPE_INT4;
        if (!have && (argc > 2 ? strcmp(t.name, argv[2]) == 0 : quantized)) {
            pick = t;
            have = 1;
        }
    }

    /* 5. Verify checksums (reads the whole file once). */
    if (glmq_pack_verify(pack, &err) != GLMQ_OK) return fail(&err);
    printf("all checksums match\n");

    /* 6. Dequantize one row. For INT8/INT4, value = code * scale[row]; glmq_tensor_row_f32 does
     *    it for every storage type (SPEC section 5 describes the INT4 nibble layout). */
    if (have) {
        float *row = malloc((size_t)pick.cols * sizeof *row);
        if (!row || glmq_tensor_row_f32(&pick, 0, row, &err) != GLMQ_OK) {
            free(row);
            return fail(&err);
        }
        printf("%s row 0:", pick.name);
        for (int64_t c = 0; c < pick.cols && c < 6; c++) printf(" %.6f", row[c]);
        printf(" ...\n");
        free(row);
    }
    glmq_pack_close(pack); /* every pointer obtained from the pack is now invalid */
    return 0;
}
