/* placeholder */ typedef int glmq_placeholder_samples_read_pack_c;
