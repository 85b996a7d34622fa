/* placeholder */ typedef int glmq_placeholder_src_cli_cmd_bench_c;
