/* placeholder */ typedef int glmq_placeholder_src_cli_cmd_check_c;
