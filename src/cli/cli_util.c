/* placeholder */ typedef int glmq_placeholder_src_cli_cli_util_c;
