/*
 * main.c - the glmq command: a git-style table of subcommands.
 */
#include "cli.h"

#include <signal.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"convert", cmd_convert, "convert a Hugging Face GLM checkpoint to a packed .glmq file"},
    {"export", cmd_export, "export a ChatGLM2/3 or GLM-4 .glmq file as GGUF for llama.cpp"},
    {"info", cmd_info, "show the header, metadata and tensor table of a .glmq file"},
    {"check", cmd_check, "verify every checksum of a .glmq file or a GGUF export"},
    {"bench", cmd_bench, "benchmarks: convert throughput, gemv kernels, forward tokens/s"},
    {"logits", cmd_logits, "FP32 reference logits of a token id sequence, as .npy"},
    {"tokenize", cmd_tokenize, "token ids of a text with the model's own tokenizer"},
    {"ppl", cmd_ppl, "perplexity of a model (a .glmq file or a checkpoint directory)"},
    {"verify", cmd_verify, "quality gate: drift of a quantized model against the original"},
    {"merge", cmd_merge, "combine the partial results of a sharded verify and apply the gate"},
    {"generate", cmd_generate, "continue a prompt (greedy or sampled) with the KV cache"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: glmq <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'glmq <command> --help' describes a command; 'glmq --version' prints the "
               "version,\nthe active kernel level and the levels this CPU runs (ref avx2 avxvnni "
               "avx512 avx512vnni,\nneon dotprod; GLMQ_CPU=<level> caps the choice).\n");
}

int main(int argc, char **argv)
{
    /* A write past RLIMIT_FSIZE must fail with EFBIG (and clean up), not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("glmq %s (kernels: %s; this CPU runs:", GLMQ_VERSION_STRING,
               glmq_cpu_level_name(glmq_cpu_active()));
        /* in capability order (one family per build, after ref) */
        const unsigned set = glmq_cpu_supported();
        for (int rank = 0; rank <= GLMQ_CPU_MAX; rank++)
            for (int l = GLMQ_CPU_REF; l <= GLMQ_CPU_MAX; l++)
                if (((set >> l) & 1) && glmq_cpu_rank((glmq_cpu_level)l) == rank)
                    printf(" %s", glmq_cpu_level_name((glmq_cpu_level)l));
        printf(")\n");
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "glmq: '%s' is not a glmq command. See 'glmq --help'.\n", cmd);
    return EXIT_USAGE;
}
