/* placeholder */ typedef int glmq_placeholder_src_cli_cmd_convert_c;
