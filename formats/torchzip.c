/* placeholder */ typedef int glmq_placeholder_formats_torchzip_c;
