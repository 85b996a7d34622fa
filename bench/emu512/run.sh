#!/bin/sh
# Runs bench/dot_hash.c with the AVX-512 / VNNI kernels of quant/dot_avx512.c compiled against
# bench/emu512/immintrin.h (SIMDe, Debian libsimde-dev, plus the intrinsics it lacks), so that
# their outputs can be compared before/after a change on a machine without AVX-512.
# From the repository root, after building build/ (libglmq_internal.a): sh bench/emu512/run.sh
# The emulation computes each intrinsic exactly (vfmadd as fmaf), so equal hashes mean equal
# operation sequences; hashes are of glmq's own output: a before/after check, never a golden.
set -e
out=${TMPDIR:-/tmp}/glmq_emu512
mkdir -p "$out"
sed -E '/^#pragma (GCC (push_options|pop_options|target)|clang attribute)/d' quant/dot_avx512.c \
    > "$out/dot_avx512_emu.c"
cc -O2 -std=c11 -ffp-contract=off -mavx2 -mfma -mf16c -D_POSIX_C_SOURCE=200809L \
    -DGLMQ_HAVE_X86=1 -Ibench/emu512 -I. -Isrc -c "$out/dot_avx512_emu.c" -o "$out/emu512.o"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -DGLMQ_HAVE_X86=1 -DDOT_HASH_EMU512 -I. -Isrc \
    bench/dot_hash.c "$out/emu512.o" build/libglmq_internal.a -lxxhash -lcjson -lz -lm -lpthread \
    -o "$out/dot_hash_emu512"
"$out/dot_hash_emu512"
