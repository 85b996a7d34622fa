/* placeholder */ typedef int glmq_placeholder_src_core_cpu_c;
