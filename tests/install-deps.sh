#!/bin/sh
# Install glmq's build and test dependencies from Debian packages if any is missing.
# Needs root (or sudo) only when something is missing.
set -eu
pkgs="build-essential cmake pkg-config zlib1g-dev libcjson-dev libxxhash-dev check ${GLMQ_EXTRA_PKGS:-}"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "glmq: installing the build dependencies with apt-get:$missing"
echo "glmq: (a fresh machine needs a compiler and CMake too: this takes a few minutes; apt's"
echo "glmq:  output is in ${TMPDIR:-/tmp}/glmq-apt.log)"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
log="${TMPDIR:-/tmp}/glmq-apt.log"
echo "glmq: apt-get update ..."
if ! $SUDO apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
echo "glmq: apt-get install ..."
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >>"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
echo "glmq: dependencies installed"
