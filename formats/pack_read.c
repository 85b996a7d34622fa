/* placeholder */ typedef int glmq_placeholder_formats_pack_read_c;
