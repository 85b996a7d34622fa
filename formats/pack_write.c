/* placeholder */ typedef int glmq_placeholder_formats_pack_write_c;
