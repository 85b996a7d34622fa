#!/bin/sh
# The layering rule (README "Layers"): a folder includes only folders below it.
#
#   0 src/core      status, fp16, CPU detection, pool, hashing
#   1 formats       file formats: safetensors, torch zip/pickle, packed file, config.json,
#                   checkpoint directories, tokenizer files
#   2 quant         quantizers, kernels, the kernel table
#   3 src/runtime   model loading, forward pass, sampling
#   4 convert verify   (peers: neither includes the other)
#   5 bench         the benchmarks behind `glmq bench` and the synthetic checkpoint generator
#   6 src/cli       the glmq command (includes everything below it)
#   src/glmq.h, the public header, includes nothing of the project and may be included by all.
#   tests/ and samples/ stand above all layers.
#
# Every `#include "x/..."` in a library or CLI file is resolved to its layer; an include of the
# same layer is allowed only within the same folder. Prints each violation; exits 1 if any.
set -eu
cd "${1:-$(dirname "$0")/..}"

layer_of() {
    case "$1" in
    src/core/*|core/*) echo 0 core ;;
    formats/*) echo 1 formats ;;
    quant/*) echo 2 quant ;;
    src/runtime/*|runtime/*) echo 3 runtime ;;
    convert/*) echo 4 convert ;;
    verify/*) echo 4 verify ;;
    bench/*) echo 5 bench ;;
    src/cli/*|cli/*) echo 6 cli ;;
    glmq.h|src/glmq.h) echo -1 public ;;
    *) echo 99 unknown ;;
    esac
}

bad=0
files=$(find src formats quant convert verify bench -name '*.[ch]' | sort)
[ -n "$files" ] || { echo "check_layers: no sources found" >&2; exit 1; }
n=0
for f in $files; do
    set -- $(layer_of "$f"); fl=$1; fn=$2
    [ "$fn" = public ] && continue
    dir=$(dirname "$f")
    # quoted includes only; system headers are <...>
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        n=$((n + 1))
        case "$inc" in
        */*) target=$inc ;;
        *) target=$(echo "$dir/$inc" | sed 's#^src/##') ;;  # same-folder include
        esac
        set -- $(layer_of "$target"); tl=$1; tn=$2
        if [ "$tn" = unknown ]; then
            echo "$f: #include \"$inc\": not in any layer"; bad=1
        elif [ "$tl" -gt "$fl" ]; then
            echo "$f: #include \"$inc\": layer $tn ($tl) is above $fn ($fl)"; bad=1
        elif [ "$tl" -eq "$fl" ] && [ "$tn" != "$fn" ]; then
            echo "$f: #include \"$inc\": $fn and $tn are peers"; bad=1
        fi
    done
done
echo "check_layers: $(echo "$files" | wc -l) files, $n includes checked"
exit $bad
