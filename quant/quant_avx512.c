/* placeholder */ typedef int glmq_placeholder_quant_quant_avx512_c;
