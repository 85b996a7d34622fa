/* placeholder */ typedef int glmq_placeholder_bench_synth_c;
