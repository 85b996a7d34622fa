/* placeholder */ typedef int glmq_placeholder_convert_config_c;
