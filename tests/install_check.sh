#!/bin/sh
# install_check.sh BUILD_DIR SOURCE_DIR [LIBDIR INCLUDEDIR BINDIR] - the install works for a program outside the
# tree (run by ctest as install_check).
#
# Installs BUILD_DIR into a temporary prefix with `cmake --install --prefix`, then checks:
#   1. the files: libglmq.a, libglmq.so with a SONAME (and its link), include/glmq.h, bin/glmq,
#      lib/pkgconfig/glmq.pc and the CMake package (config, version file, exported targets);
#   2. libglmq.so exports exactly the GLMQ_API functions of the installed glmq.h;
#   3. every samples/*.c compiles and links against the shared library with
#      `cc $(pkg-config --cflags --libs glmq)`;
#   4. read_pack, run on a pack that the built glmq converts from samples/glm2-tiny/st with
#      LD_LIBRARY_PATH at the installed lib, loads the installed libglmq.so and prints what the
#      checkpoint holds (its tokenizer.model size, a tensor name of its safetensors header, all
#      checksums matching, and row 0 of the layer-0 QKV weight equal to codes x scale of the
#      PyTorch golden samples/glm2-tiny/golden/quant_l0_qkv_int4_*.npy);
#   5. read_pack links statically from libglmq.a with `pkg-config --static --libs glmq` alone
#      and prints the same;
#   6. a CMake project with find_package(glmq REQUIRED) builds read_pack against glmq::glmq and
#      glmq::glmq_static, and both print the same.
# Environment: GLMQ_BIN (the built glmq), GLMQ_SAMPLES, GLMQ_TMP (set by ctest), CC (the compiler
# of the build), GLMQ_SAN_FLAGS (the build's -fsanitize flags, which its consumers need too).
# LIBDIR, INCLUDEDIR and BINDIR are the build's CMAKE_INSTALL_* (default lib, include, bin); when
# one is absolute the install cannot go to a temporary prefix and the check is skipped (77).
# Exits 1 with a message on the first failure.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
libdir=${3:-lib}
incdir=${4:-include}
bindir=${5:-bin}
samples=${GLMQ_SAMPLES:-$src/samples}
bin=${GLMQ_BIN:-$build/glmq}
cc=${CC:-cc}
san=${GLMQ_SAN_FLAGS:-}
unset DESTDIR
for d in "$libdir" "$incdir" "$bindir"; do
    case "$d" in
    /*) echo "install_check: skipped: absolute install directory $d"; exit 77 ;;
    esac
done

fail() {
    echo "install_check: FAIL: $*" >&2
    exit 1
}
mkdir -p "${GLMQ_TMP:-/tmp}"
t=$(mktemp -d "${GLMQ_TMP:-/tmp}/install_check.XXXXXX")
trap 'rm -rf "$t"' EXIT
p=$t/prefix
lib=$p/$libdir

# ---- 1. the installed files ---------------------------------------------------------------
cmake --install "$build" --prefix "$p" >"$t/install.log" 2>&1 ||
    { cat "$t/install.log" >&2; fail "cmake --install $build"; }
for f in "$lib/libglmq.a" "$lib/libglmq.so" "$p/$incdir/glmq.h" "$p/$bindir/glmq" \
    "$lib/pkgconfig/glmq.pc" "$lib/cmake/glmq/glmqConfig.cmake" \
    "$lib/cmake/glmq/glmqConfigVersion.cmake" "$lib/cmake/glmq/glmqTargets.cmake"; do
    [ -s "$f" ] || fail "not installed: ${f#"$p"/}"
done
"$p/$bindir/glmq" --version >/dev/null || fail "installed $bindir/glmq does not run"
soname=$(readelf -d "$lib/libglmq.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
case "$soname" in
libglmq.so.[0-9]*) ;;
*) fail "libglmq.so has no versioned SONAME (got '$soname')" ;;
esac
[ -e "$lib/$soname" ] || fail "SONAME link $soname not installed"
ar t "$lib/libglmq.a" | grep -q '\.o$' || fail "libglmq.a holds no objects"

# ---- 2. exports == the GLMQ_API functions of glmq.h ----------------------------------------
sed -n 's/^GLMQ_API[^(]*[ *]\(glmq_[A-Za-z0-9_]*\)(.*/\1/p' "$p/$incdir/glmq.h" | sort -u >"$t/api"
nm -D --defined-only "$lib/libglmq.so" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sort -u >"$t/exports"
[ -s "$t/api" ] || fail "no GLMQ_API function found in glmq.h"
if ! cmp -s "$t/api" "$t/exports"; then
    echo "exported (>) vs declared GLMQ_API (<):" >&2
    diff "$t/api" "$t/exports" >&2 || true
    fail "libglmq.so exports differ from the GLMQ_API functions of glmq.h"
fi

# ---- 3. every sample builds with pkg-config ------------------------------------------------
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ "$(pkg-config --variable=prefix glmq)" = "$p" ] || fail "pkg-config glmq is not the installed one"
n=0
for c in "$src"/samples/*.c; do
    name=$(basename "$c" .c)
    # shellcheck disable=SC2046,SC2086 # word splitting of the flags is intended
    $cc $san -o "$t/$name" "$c" $(pkg-config --cflags --libs glmq) ||
        fail "samples/$name.c does not build with pkg-config --cflags --libs glmq"
    readelf -d "$t/$name" | grep -q "NEEDED.*\[$soname\]" ||
        fail "samples/$name.c is not linked to the shared library"
    n=$((n + 1))
done
[ $n -gt 0 ] || fail "no samples/*.c"

# ---- 4. read_pack runs on the installed shared library -------------------------------------
"$bin" convert "$samples/glm2-tiny/st" -o "$t/tiny.glmq" --type int4 >/dev/null 2>&1 ||
    fail "$bin convert samples/glm2-tiny/st"
LD_LIBRARY_PATH=$lib ldd "$t/read_pack" | grep -q "$soname => $lib/$soname" ||
    fail "read_pack does not load $lib/$soname"
qkv=transformer.encoder.layers.0.self_attention.query_key_value.weight
LD_LIBRARY_PATH=$lib "$t/read_pack" "$t/tiny.glmq" "$qkv" >"$t/out.shared" 2>"$t/err" ||
    { cat "$t/err" >&2; fail "read_pack (shared) failed"; }
tok=$(wc -c <"$samples/glm2-tiny/st/tokenizer.model" | tr -d ' ')
grep -q "^format [0-9]*\.[0-9]*, [1-9][0-9]* tensors$" "$t/out.shared" ||
    fail "read_pack: no 'format X.Y, N tensors' line"
grep -qx "tokenizer.model: $tok bytes" "$t/out.shared" ||
    fail "read_pack: tokenizer.model is not $tok bytes"
grep -qx "all checksums match" "$t/out.shared" || fail "read_pack: checksums"
first=$(sed -n 's/^  \([^ ]*\) .* rows [0-9]* cols [0-9]*$/\1/p' "$t/out.shared" | head -n 1)
[ -n "$first" ] || fail "read_pack: no tensor listed"
head -c 65536 "$samples/glm2-tiny/st/model.safetensors" | grep -aq "\"$first\"" ||
    fail "read_pack: first tensor '$first' is not in the checkpoint"
# the dequantized row 0 of the layer-0 QKV weight: codes x scale of the PyTorch golden
g=$samples/glm2-tiny/golden
npy_off() { echo $((10 + $(od -An -t u2 -j 8 -N 2 "$1"))); } # .npy 1.0: data after the header
codes=$(od -An -t d1 -j "$(npy_off "$g/quant_l0_qkv_int4_codes.npy")" -N 6 "$g/quant_l0_qkv_int4_codes.npy")
half=$(od -An -t u2 -j "$(npy_off "$g/quant_l0_qkv_int4_scales.npy")" -N 2 "$g/quant_l0_qkv_int4_scales.npy")
want=$(echo "$codes" | awk -v h="$half" '{
    e = int(h / 1024) % 32; m = h % 1024
    s = (e ? (1 + m / 1024) * 2 ^ (e - 15) : m * 2 ^ -24) * (h >= 32768 ? -1 : 1)
    for (i = 1; i <= NF; i++) printf " %.6f", $i * s }')
grep -qxF "$qkv row 0:$want ..." "$t/out.shared" ||
    fail "read_pack: $qkv row 0 is not$want ... (golden)"

# ---- 5. static link from libglmq.a with pkg-config --static --------------------------------
mkdir "$t/static"
ln -s "$lib/libglmq.a" "$t/static/libglmq.a"
# shellcheck disable=SC2046,SC2086
$cc $san -o "$t/read_pack_static" "$samples/read_pack.c" $(pkg-config --cflags glmq) \
    -L"$t/static" $(pkg-config --static --libs glmq) ||
    fail "read_pack does not link statically with pkg-config --static --libs glmq"
readelf -d "$t/read_pack_static" | grep -q "NEEDED.*libglmq" &&
    fail "read_pack_static still needs libglmq.so"
"$t/read_pack_static" "$t/tiny.glmq" "$qkv" >"$t/out.static" || fail "read_pack (static) failed"
cmp -s "$t/out.shared" "$t/out.static" || fail "read_pack static and shared print different output"

# ---- 6. find_package(glmq) from a CMake project --------------------------------------------
mkdir "$t/consumer"
cat >"$t/consumer/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(glmq_consumer C)
find_package(glmq REQUIRED)
add_executable(read_pack_shared "$samples/read_pack.c")
target_link_libraries(read_pack_shared PRIVATE glmq::glmq)
add_executable(read_pack_static "$samples/read_pack.c")
target_link_libraries(read_pack_static PRIVATE glmq::glmq_static)
EOF
cmake -S "$t/consumer" -B "$t/consumer/build" -DCMAKE_PREFIX_PATH="$p" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" -DCMAKE_BUILD_TYPE=Release \
    >"$t/consumer.log" 2>&1 || { cat "$t/consumer.log" >&2; fail "find_package(glmq) consumer: configure"; }
grep -qx "glmq_DIR:PATH=$lib/cmake/glmq" "$t/consumer/build/CMakeCache.txt" ||
    fail "find_package(glmq) did not find the installed package"
cmake --build "$t/consumer/build" >"$t/consumer.log" 2>&1 ||
    { cat "$t/consumer.log" >&2; fail "find_package(glmq) consumer: build"; }
readelf -d "$t/consumer/build/read_pack_shared" | grep -q "NEEDED.*\[$soname\]" ||
    fail "glmq::glmq is not the shared library"
readelf -d "$t/consumer/build/read_pack_static" | grep -q "NEEDED.*libglmq" &&
    fail "glmq::glmq_static needs libglmq.so"
for k in shared static; do
    LD_LIBRARY_PATH=$lib "$t/consumer/build/read_pack_$k" "$t/tiny.glmq" "$qkv" >"$t/out.cmake" ||
        fail "consumer read_pack_$k failed"
    cmp -s "$t/out.shared" "$t/out.cmake" || fail "consumer read_pack_$k prints different output"
done

echo "install_check: ok ($n sample(s); $soname, $(wc -l <"$t/exports" | tr -d ' ') exported functions)"
