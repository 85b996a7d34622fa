/* placeholder */ typedef int glmq_placeholder_convert_checkpoint_c;
