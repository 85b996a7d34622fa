#!/bin/sh
# Cross-compile glmq for 64-bit ARM (aarch64) and run the test suite under qemu-user: the scalar
# kernel path on an ARM ABI (unsigned char, other alignment and libc), correctness only - speed
# cannot be measured under emulation. Needs root for apt-get the first time (Debian multiarch:
# gcc-aarch64-linux-gnu, qemu-user and the arm64 -dev packages of the dependencies).
#
#   sh tests/cross/run-arm64.sh [BUILD_DIR]      (default build-arm64)
#
# The llama.cpp peer tests are not built (they judge formats, not the CPU). Under qemu-user most
# of the suite is too slow for CI (every fp16 conversion and Check assertion is emulated: tests
# of a few seconds natively run past 10 minutes) and the CLI tests cannot exec an arm64 binary
# without binfmt_misc, so this runs the readers and quantizers that finish in seconds: the
# hostile-input parsers (safetensors, torch zip, pickle), config.json and the scalar quantizers
# (check_quant, against its golden values). What it proves: glmq builds warning-free for aarch64
# and those readers and quantizers give the x86 results on an ARM ABI (unsigned char, another
# libc); the kernels' scalar path is what runs there.
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
CK_FORK=no ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" \
    -R '^check_(safetensors|torchzip|pickle|config|quant)$'
