/* placeholder */ typedef int glmq_placeholder_quant_quant_ref_c;
