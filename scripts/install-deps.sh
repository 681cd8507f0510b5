#!/usr/bin/env bash
# Installs everything qforge needs on Debian 12: compilers and libraries from apt, and the pinned
# llama.cpp referee binaries (npm package node-llama-cpp, from the committed lockfile).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build git pkg-config clang libclang-rt-14-dev
          libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
          libeigen3-dev chromium fonts-dejavu-core)
# Node.js/npm only fetch the pinned llama.cpp referee; any install that provides the commands will do
# (Debian's packages, or NodeSource's nodejs which bundles npm and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# llama.cpp as an independent referee for tests and benchmarks (prebuilt, no compilation, no scripts).
if [ ! -f tests/referee/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.4.0.so ]; then
  echo "install-deps: npm ci (node-llama-cpp 3.21.1, pinned by tests/referee/package-lock.json)"
  (cd tests/referee && npm ci --omit=optional --ignore-scripts --no-audit --no-fund)
fi
echo "install-deps: done"
