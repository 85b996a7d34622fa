#!/bin/sh
# Cross-compile glmq for 64-bit ARM (aarch64) and run tests under qemu-user: the NEON and SDOT
# kernels (quant/dot_neon*.c) against the scalar reference, and the scalar path on an ARM ABI
# (unsigned char, other alignment and libc). Correctness only - speed cannot be measured under
# emulation. Needs root for apt-get the first time (Debian multiarch: gcc-aarch64-linux-gnu,
# qemu-user and the arm64 -dev packages of the dependencies).
#
#   sh tests/cross/run-arm64.sh [BUILD_DIR]      (default build-arm64)
#
# The llama.cpp peer tests are not built (they judge formats, not the CPU). Under qemu-user most
# of the suite is too slow for CI (every fp16 conversion and Check assertion is emulated: tests
# of a few seconds natively run past 10 minutes) and the CLI tests cannot exec an arm64 binary
# without binfmt_misc, so this runs the readers and quantizers that finish in seconds: the
# hostile-input parsers (safetensors, torch zip, pickle), config.json and the scalar quantizers
# (check_quant, against its golden values), then the kernel tests:
#
#   check_quant  also under -cpu cortex-a57 (ARMv8.0, no SDOT): the detected level must be neon;
#   check_dot    every level the emulated CPU offers against _ref (prepared bytes equal, FAST_ROW
#                bit for bit, EXACT/FAST_B32 within tolerance, GEMM == GEMV, row sub-ranges):
#                  -cpu max (SDOT: the neon and dotprod levels both run)  sweep cases i%5 == 0
#                  -cpu max, GLMQ_CPU=neon (dotprod capped)               sweep cases i%7 == 1
#                  -cpu max, GLMQ_CPU=ref (the scalar path forced)        sweep cases i%7 == 4
#                GLMQ_TEST_THIN=k[:o] (tests/check_dot.c) thins only the shape sweep (k coprime
#                with 6, the period of its type rotation, so that every type is visited); its
#                other cases run in full (the whole 576-case sweep takes over 10 minutes per
#                run under qemu on a loaded 2-core VM). The "threads" test case (tag threads)
#                is left out: the thread pool does not finish under qemu-user 7.2 at any
#                level, ref included (natively it runs in every ctest run); the sweep's row
#                sub-range checks cover the kernels' side of thread splits.
#   check_attn   -cpu max (the ARM levels use the _ref attention kernel).
# Timings on the project's 2-core x86 VM at load average 12-15: the test part of this script took
# 12 min wall clock and 2 min 23 s CPU (check_dot: 297 s at -cpu max, 178 s / 187 s at neon / ref).
#
# What it proves: glmq builds warning-free for aarch64, those readers and quantizers give the
# x86 results on an ARM ABI, and the NEON and SDOT kernels agree with the scalar reference.
set -eu
cd "$(dirname "$0")/../.."
dir=${1:-build-arm64}
pkgs="gcc-aarch64-linux-gnu qemu-user libc6-dev:arm64 zlib1g-dev:arm64 libcjson-dev:arm64
      libxxhash-dev:arm64 check:arm64"
missing=0
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run-arm64: the arm64 toolchain is missing and installing it needs root" >&2
        exit 1
    fi
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
fi
cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=tests/cross/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLMQ_WERROR=ON -DGLMQ_LLAMA_PEER=/nonexistent >/dev/null
cmake --build "$dir" -j"$(nproc)"
# an aarch64 ELF (e_machine 0xb7 at byte 18)
[ "$(od -An -tx1 -j18 -N1 "$dir/glmq" | tr -d ' ')" = b7 ]
# Check's fork mode (a child per test, timed by a POSIX timer) hangs under qemu-user 7.2, so the
# tests run in one process each, as under ASan (tests/run.sh --sanitize).
export CK_FORK=no
QEMU_CPU=max ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" \
    -R '^check_(safetensors|torchzip|pickle|config|quant|quant_neon)$'
# no SDOT on an ARMv8.0 core: detection must stop at neon (check_quant's dispatch test)
QEMU_CPU=cortex-a57 ctest --test-dir "$dir" --output-on-failure -R '^check_quant$'
# the kernels: dotprod + neon, neon forced, ref forced, each on its own fifth/seventh of the sweep
export CK_EXCLUDE_TAGS=threads
QEMU_CPU=max GLMQ_TEST_THIN=5:0 ctest --test-dir "$dir" --output-on-failure -R '^check_(dot|attn)$'
QEMU_CPU=max GLMQ_TEST_THIN=7:1 ctest --test-dir "$dir" --output-on-failure -R '^check_dot_neon$'
QEMU_CPU=max GLMQ_TEST_THIN=7:4 ctest --test-dir "$dir" --output-on-failure -R '^check_dot_ref$'
