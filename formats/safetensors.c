/* placeholder */ typedef int glmq_placeholder_formats_safetensors_c;
