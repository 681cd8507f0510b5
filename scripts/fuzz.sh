#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset "fuzz", clang) and runs every tests/fuzz/*_fuzz binary for
# FUZZ_SECONDS (default 30; docs/testing.md has the per-target numbers) on a scratch copy of its seed corpus
# tests/fuzz/corpus/<name>/, so the checked-in seeds never grow. Exits non-zero if any fuzzer crashes, and
# says where the crash input is (a crash input, once fixed, is added to the seeds as a regression file).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

shopt -s nullglob
fuzzers=(build/fuzz/tests/fuzz/*_fuzz)
if [ ${#fuzzers[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzzers were built (tests/fuzz/*_fuzz.cc)" >&2
  exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# Crash inputs outlive the scratch dir so they can be replayed: <binary> <crash file>.
artifacts="build/fuzz/crashes"
failed=()
for bin in "${fuzzers[@]}"; do
  [ -x "$bin" ] || continue
  name="$(basename "$bin")"
  seeds="tests/fuzz/corpus/$name"
  mkdir -p "$seeds" "$scratch/$name" "$artifacts/$name"
  cp -R "$seeds/." "$scratch/$name/"
  echo "fuzz.sh: $name for ${FUZZ_SECONDS}s ($(find "$seeds" -type f | wc -l) seeds)"
  log="$scratch/$name.log"
  # -timeout: one input taking >10 s is a hang worth reporting; rss limit keeps the shared machine alive.
  if ! "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/$name/" "$scratch/$name" >"$log" 2>&1; then
    failed+=("$name")
    echo "fuzz.sh: $name FAILED; last lines of its log:" >&2
    tail -n 40 "$log" >&2
    crash="$(ls -t "$artifacts/$name"/* 2>/dev/null | head -n 1 || true)"
    echo "fuzz.sh: crash input: ${crash:-<none written>}; replay with: $bin $crash" >&2
  else
    # The final statistics: executions, coverage (cov = edges, ft = features) and the corpus it grew to.
    grep -E "^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs" "$log" | sed "s/^/fuzz.sh: $name: /" || true
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: ${#failed[@]} fuzzer(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#fuzzers[@]} fuzzer(s) ran ${FUZZ_SECONDS}s each without a crash"
