#!/bin/sh
# Quick start: install what is missing, build glmq, convert the bundled sample model to INT4,
# then inspect and verify the packed file.
set -eu
cd "$(dirname "$0")/.."
sh tests/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out
set -x
./build/glmq convert samples/glm2-tiny/st -o out/glm2-tiny-int4.glmq --type int4
./build/glmq info out/glm2-tiny-int4.glmq | head -40
./build/glmq check out/glm2-tiny-int4.glmq
./build/sample_read_pack out/glm2-tiny-int4.glmq
