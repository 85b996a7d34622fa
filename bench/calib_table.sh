#!/bin/sh
# bench/calib_table.sh - the README's table of quantization schemes: every scheme converted from
# the same checkpoint and gated with `glmq verify --kernels exact` against it on the held-out
# eval texts. Prints Markdown.
#
#   sh bench/calib_table.sh [GLMQ [MODEL_DIR [CALIB_TEXT]]]
#
# Defaults: build/glmq, samples/glm2-outlier/st, samples/text/calib.txt (24 sequences of 256).
# "bits/w" is what the file stores per quantized weight, codes and scales, padding included
# (`glmq info`); the tiny sample's 172-column FFN rows pad to 256 (int4) or 192 (int8).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
glmq=${1:-$here/build/glmq}
model=${2:-$here/samples/glm2-outlier/st}
calib=${3:-$here/samples/text/calib.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

num() { sed -n "s/.*\"$1\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }

echo "| scheme | bits/w | file bytes | text | ppl ratio | KL mean | KL p99 | top-1 |"
echo "|---|---|---|---|---|---|---|---|"
# TYPE GROUP(- = per row) METHOD [extra options]
for scheme in "int4 - rtn" "int4 - search" "int4 - gptq" "int4 - gptq --act-order" \
              "int4 128 rtn" "int4 128 gptq --act-order" "int4 32 rtn" "int4 32 gptq" \
              "int4 32 gptq --act-order" "int8 - rtn" "int8 - gptq --act-order" "int8 32 rtn"; do
    set -- $scheme
    type=$1 group=$2 method=$3
    shift 3
    out="$work/q.glmq"
    gopt=""
    [ "$group" = - ] || gopt="--group $group"
    if [ "$method" = rtn ]; then
        "$glmq" convert "$model" -o "$out" --type "$type" $gopt --quiet
    else
        "$glmq" convert "$model" -o "$out" --type "$type" $gopt --method "$method" \
            --calib "$calib" --calib-ctx 256 --calib-tokens 6144 --quiet "$@"
    fi
    bytes=$(wc -c < "$out")
    bits=$("$glmq" info "$out" | sed -n 's/^quantized: *\([0-9.]*\).*/\1/p')
    name="$type"
    [ "$group" = - ] || name="${type}g$group"
    for t in en zh; do
        "$glmq" verify "$out" --ref "$model" --text "$here/samples/text/eval_$t.txt" \
            --kernels exact --report "$work/r.json" --quiet >/dev/null
        printf '| %s %s%s | %s | %s | %s | %.5f | %.3e | %.3e | %.4f |\n' "$name" "$method" \
            "${1:+ $*}" "$bits" "$bytes" "$t" "$(num ppl_ratio "$work/r.json")" \
            "$(num kld_mean "$work/r.json")" "$(num kld_p99 "$work/r.json")" \
            "$(num top1_agreement "$work/r.json")"
    done
done
