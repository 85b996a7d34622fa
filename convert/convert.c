/* placeholder */ typedef int glmq_placeholder_convert_convert_c;
