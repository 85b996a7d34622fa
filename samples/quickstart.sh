#!/bin/sh
# Quick start: install what is missing, build glmq, convert the bundled sample model to INT4,
# inspect it, check its checksums, read it through the C API, and run the quality gate.
set -eu
cd "$(dirname "$0")/.."
sh tests/install-deps.sh
echo "building glmq in build/ ..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out
set -x
./build/glmq convert samples/glm2-tiny/st -o out/glm2-tiny-int4.glmq --type int4
./build/glmq info out/glm2-tiny-int4.glmq
./build/glmq check out/glm2-tiny-int4.glmq
./build/sample_read_pack out/glm2-tiny-int4.glmq
# the CI quality gate: drift of the INT4 file against the original checkpoint (exit 3 on a miss)
set +e
./build/glmq verify out/glm2-tiny-int4.glmq --ref samples/glm2-tiny/st \
    --text samples/text/eval_en.txt --max-ppl-ratio 1.01 --max-kld 0.01 --min-top1 0.9 \
    --report out/verify.json --plot out/verify.svg
{ gate=$?; set +x; } 2>/dev/null
set -e
case $gate in
0) verdict="passed (every threshold held)" ;;
3) verdict="FAILED (a threshold was missed; see out/verify.json)" ;;
*) verdict="did not run (error $gate)" ;;
esac
size() { wc -c <"$1" | tr -d ' '; }
cat <<SUMMARY

what you got:
  out/glm2-tiny-int4.glmq   $(size out/glm2-tiny-int4.glmq) bytes   the INT4 model (glmq info / check / verify it)
  out/verify.json           $(size out/verify.json) bytes   the gate's report: every metric and threshold
  out/verify.svg            $(size out/verify.svg) bytes   per-layer error and KL histogram (open in a browser)
  quality gate:             $verdict
next: sh tests/run.sh runs the test suite; README.md lists every command.
SUMMARY
exit $gate
