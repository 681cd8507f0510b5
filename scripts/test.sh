#!/usr/bin/env bash
# The whole test suite: install dependencies, build (release), run every ctest test (unit, golden,
# property, e2e with llama.cpp as referee), then the parser fuzzers briefly. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
ctest --test-dir build/release --output-on-failure -j "$(nproc)" --timeout 600
if [ -x scripts/fuzz.sh ]; then
  scripts/fuzz.sh
fi
echo "test.sh: all tests passed"
