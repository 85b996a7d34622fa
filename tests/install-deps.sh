#!/bin/sh
# Install glmq's build and test dependencies from Debian packages if any is missing.
# Needs root (or sudo) only when something is missing.
set -eu
pkgs="build-essential cmake pkg-config zlib1g-dev libcjson-dev libxxhash-dev check"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
