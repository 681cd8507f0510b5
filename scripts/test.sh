#!/usr/bin/env bash
# The whole test suite: install dependencies, build (release), run every ctest test (unit, differential,
# e2e with llama.cpp as referee), run the parser and core tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, then every parser fuzzer briefly. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
ctest --test-dir build/release --output-on-failure -j "$(nproc)" --timeout 900

# Hostile-input tables and core code under ASan+UBSan (the parsers are where memory errors would hide).
cmake --preset asan >/dev/null
cmake --build --preset asan --target qforge_formats_test qforge_core_test -j "$(nproc)"
ASAN_OPTIONS=detect_leaks=1 build/asan/qforge_formats_test --gtest_brief=1
ASAN_OPTIONS=detect_leaks=1 build/asan/qforge_core_test --gtest_brief=1

scripts/fuzz.sh
echo "test.sh: all tests passed"
