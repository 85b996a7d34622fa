/* placeholder */ typedef int glmq_placeholder_src_cli_main_c;
