/* placeholder */ typedef int glmq_placeholder_src_core_pool_c;
