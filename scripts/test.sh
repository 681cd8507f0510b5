#!/usr/bin/env bash
# The whole test suite: install dependencies, build (release), run every ctest test (unit, differential,
# e2e with llama.cpp as referee, the hostile-input corpus), then the sanitizer stages of docs/testing.md
# ("Sanitizer matrix"): ASan+UBSan on every unit-test binary and on the hostile corpus through the CLI,
# ThreadSanitizer on the tests that run threads, and finally every parser fuzzer for FUZZ_SECONDS each (30).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
stage() { echo "== test.sh: $* ($(date -u +%H:%M:%S))"; }

scripts/install-deps.sh
stage "release build and ctest"
scripts/build.sh release
ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 900

# ASan+UBSan: every unit-test binary (one per layer) and the hostile corpus through the instrumented CLI.
# The e2e scripts are not repeated here (they drive the same code through the CLI); docs/testing.md has the costs.
layers="formats core quant kernels runtime algo eval plan pipeline"
stage "ASan+UBSan build"
cmake --preset asan >/dev/null
asan_targets=(qforge_cli make_hostile_files)
for layer in $layers; do asan_targets+=("qforge_${layer}_test"); done
cmake --build --preset asan -j "$jobs" --target "${asan_targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for layer in $layers; do
  stage "ASan+UBSan qforge_${layer}_test"
  "build/asan/qforge_${layer}_test" --gtest_brief=1
done
stage "ASan+UBSan hostile corpus"
ctest --test-dir build/asan -L hostile --output-on-failure
unset ASAN_OPTIONS UBSAN_OPTIONS

# ThreadSanitizer on everything that starts threads: ParallelFor, the runtime's thread pool and 1-vs-N thread
# forward passes, quantize with 1 and 2 threads, GPTQ with 2 and 3 threads.
stage "TSan build"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs" --target qforge_core_test qforge_runtime_test qforge_pipeline_test qforge_algo_test
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
stage "TSan threaded tests"
build/tsan/qforge_core_test --gtest_brief=1 --gtest_filter='ParallelFor.*'
build/tsan/qforge_runtime_test --gtest_brief=1 \
  --gtest_filter='ThreadPool.*:LlamaContext.ThreadCountDoesNotChangeLogits:LlamaContext.BatchedPrefillEqualsTokenByToken'
build/tsan/qforge_pipeline_test --gtest_brief=1 --gtest_filter='Determinism.*'
build/tsan/qforge_algo_test --gtest_brief=1 --gtest_filter='Gptq.BytesDoNotDependOnThreads'
unset TSAN_OPTIONS

stage "fuzzers"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh
echo "test.sh: all tests passed"
