#!/bin/sh
# Install the real llama.cpp that judges glmq's GGUF files: the npm package node-llama-cpp and
# its prebuilt CPU libraries for this platform (libllama, libggml*), pinned, into
# $GLMQ_LLAMA_PEER (default /opt/glmq-peer). On x86-64 every package version (and its integrity
# hash) comes from tests/peer/package-lock.json; elsewhere the two packages are
# pinned by version. Needs Node.js >= 20 and npm; the packages' install
# scripts are not run (they would try to download or build llama.cpp: the prebuilt libraries in
# the platform package are what the tests use). Nothing is installed when the pinned versions are
# already there.
set -eu
NLC_VERSION=3.22.1
dir="${GLMQ_LLAMA_PEER:-/opt/glmq-peer}"
case "$(uname -m)" in
x86_64) plat=linux-x64 ;;
aarch64) plat=linux-arm64 ;;
*) echo "glmq: no prebuilt llama.cpp package for $(uname -m); GGUF peer tests will be skipped" >&2; exit 0 ;;
esac
have() {
    [ -f "$dir/node_modules/node-llama-cpp/package.json" ] &&
        [ -f "$dir/node_modules/@node-llama-cpp/$plat/package.json" ] &&
        grep -q "\"version\": \"$NLC_VERSION\"" "$dir/node_modules/node-llama-cpp/package.json" &&
        grep -q "\"version\": \"$NLC_VERSION\"" "$dir/node_modules/@node-llama-cpp/$plat/package.json"
}
have && exit 0
if ! command -v npm >/dev/null 2>&1; then
    echo "glmq: npm not found: cannot install the llama.cpp peer (node-llama-cpp $NLC_VERSION)" >&2
    exit 1
fi
echo "glmq: installing the llama.cpp peer (npm node-llama-cpp@$NLC_VERSION, @node-llama-cpp/$plat) into $dir"
mkdir -p "$dir"
here="$(cd "$(dirname "$0")" && pwd)"
if [ "$plat" = linux-x64 ]; then
    cp "$here/peer/package.json" "$here/peer/package-lock.json" "$dir/"
    # `npm install` with the lock file in place takes every version from it (`npm ci` refuses a
    # lock without the other platforms' optional packages, which the registry mirror omits)
    (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
else
    [ -f "$dir/package.json" ] || echo '{"name":"glmq-peer","private":true}' >"$dir/package.json"
    npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error \
        "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/$plat@$NLC_VERSION"
fi
have
