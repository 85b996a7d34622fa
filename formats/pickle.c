/* placeholder */ typedef int glmq_placeholder_formats_pickle_c;
