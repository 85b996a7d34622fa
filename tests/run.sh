#!/bin/sh
# Build glmq and run the whole test suite under ctest.
#   sh tests/run.sh              release build in build/, all tests
#   sh tests/run.sh --sanitize   ASan+UBSan build in build-asan/, all tests (CK_FORK=no)
#   sh tests/run.sh --cpu ref    all tests with the kernels forced to the scalar path
#                                (ref|avx2|avxvnni|avx512|avx512vnni)
#   sh tests/run.sh --emulate-avx512
#                                build in build-emu/ with the AVX-512 and VNNI kernels run through
#                                SIMDe (tests/emu/avx512_emu.h) and run all tests at that level: the
#                                AVX-512 code paths on a machine without AVX-512 (and the avxvnni
#                                level, run by the tests that sweep every level)
set -eu
cd "$(dirname "$0")/.."
sh tests/install-deps.sh
# The real llama.cpp judging the GGUF tests (npm); without it they are skipped, unless
# GLMQ_REQUIRE_PEER=1 (CI), which makes a missing peer an error.
if [ "${GLMQ_REQUIRE_PEER:-0}" = 1 ]; then
    sh tests/install-peer.sh
else
    sh tests/install-peer.sh || echo "glmq: continuing without the llama.cpp peer" >&2
fi
dir=build
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLMQ_WERROR=ON"
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) dir=build-asan; flags="-DCMAKE_BUILD_TYPE=Debug -DGLMQ_SANITIZE=address;undefined" ;;
    --cpu) shift; export GLMQ_CPU="$1" ;;
    --emulate-avx512)
        dir=build-emu; flags="$flags -DGLMQ_EMULATE_AVX512=ON"
        GLMQ_EXTRA_PKGS=libsimde-dev sh tests/install-deps.sh ;;
    *) echo "usage: sh tests/run.sh [--sanitize] [--cpu ref|avx2|avxvnni|avx512|avx512vnni] [--emulate-avx512]" >&2; exit 2 ;;
    esac
    shift
done
[ "${GLMQ_REQUIRE_PEER:-0}" = 1 ] && flags="$flags -DGLMQ_REQUIRE_PEER=ON"
cmake -S . -B "$dir" $flags >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2
