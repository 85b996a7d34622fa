/*
 * regression_driver.c - replays every file of a corpus directory (or the files named on the
 * command line) through LLVMFuzzerTestOneInput, so the fuzz targets run under plain ctest and
 * GCC without libFuzzer (zstd's tests/fuzz/regression_driver.c does the same).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    size_t r = fread(b, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(b, r);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "no such corpus: %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (run_file(p)) return 1;
                files++;
            }
            if (d) closedir(d);
        } else {
            if (run_file(argv[i])) return 1;
            files++;
        }
    }
    printf("%d passed, 0 failed\n", files);
    return 0;
}
