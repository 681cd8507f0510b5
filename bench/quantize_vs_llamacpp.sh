#!/usr/bin/env bash
# Quantization speed and peak memory: qforge vs llama.cpp's llama_model_quantize on the same synthetic
# TinyLlama-shaped F16 model (2048 embd, 5632 ff, 32 heads, 4 KV heads, 32000 vocab; LAYERS layers, default 22
# = ~1.1B parameters), same thread count, interleaved, in one run. Output goes to OUT_DIR (use a RAM disk
# such as /dev/shm to take the disk out of the measurement).
# Usage: bench/quantize_vs_llamacpp.sh [THREADS=2] [LAYERS=22] [OUT_DIR=/dev/shm/qforge-bench]
# Environment: BUILD (build folder, default build/bench), TYPES (default "Q8_0 Q4_0 Q4_K_M"), REPS (runs of
# each tool per type, alternating llama.cpp and qforge; default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
LAYERS="${2:-22}"
OUT="${3:-/dev/shm/qforge-bench}"
BUILD="${BUILD:-build/bench}"
TYPES="${TYPES:-Q8_0 Q4_0 Q4_K_M}"
REPS="${REPS:-1}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" --target qforge_cli make_synthetic_model llamacpp_quantize >/dev/null
mkdir -p "$OUT"
MODEL="$OUT/tinyllama-shape-${LAYERS}l-f16.gguf"
[ -f "$MODEL" ] || "$BUILD"/tests/support/make_synthetic_model "$MODEL" --layers "$LAYERS" --embd 2048 \
  --ff 5632 --heads 32 --kv-heads 4 --vocab 32000 --type F16

measure() {  # label command... -> prints "label wall_seconds user_cpu_seconds peak_rss_MB"
  local label="$1"; shift
  /usr/bin/time -f "%e %U %M" -o "$OUT/time.txt" "$@" >/dev/null
  read -r secs user kb < "$OUT/time.txt"
  echo "$label $secs $user $((kb / 1024))"
}

# ratio = llama.cpp / qforge for wall time; cpu ratio the same for user CPU seconds, which moves less when
# other processes load the machine.
printf "%-8s %-9s %9s %9s %9s %12s %9s %9s\n" type tool seconds "user s" MB/s "peak RSS MB" ratio "cpu ratio"
in_mb=$(( $(stat -L -c %s "$MODEL") / 1000000 ))
ftype_of() { case "$1" in Q8_0) echo 7 ;; Q4_0) echo 2 ;; Q4_1) echo 3 ;; Q5_0) echo 8 ;; Q5_1) echo 9 ;;
  Q4_K_M) echo 15 ;; Q5_K_M) echo 17 ;; Q6_K) echo 18 ;; *) echo "no llama ftype for $1" >&2; exit 2 ;; esac; }
for type in $TYPES; do
  ftype=$(ftype_of "$type")
  for rep in $(seq "$REPS"); do
    read -r _ ls lu lm < <(measure llama "$BUILD"/bench/llamacpp_quantize "$MODEL" "$OUT/l-$type.gguf" "$ftype" "$THREADS")
    read -r _ qs qu qm < <(measure qforge "$BUILD"/qforge quantize "$MODEL" "$OUT/q-$type.gguf" --type "$type" \
      -t "$THREADS" --force -q)
    awk -v t="$type" -v ls="$ls" -v lu="$lu" -v lm="$lm" -v qs="$qs" -v qu="$qu" -v qm="$qm" -v mb="$in_mb" 'BEGIN {
      printf "%-8s %-9s %9.2f %9.2f %9.0f %12d\n", t, "llama.cpp", ls, lu, mb / ls, lm
      printf "%-8s %-9s %9.2f %9.2f %9.0f %12d %8.2fx %8.2fx\n", t, "qforge", qs, qu, mb / qs, qm, ls / qs, lu / qu }'
    rm -f "$OUT/l-$type.gguf" "$OUT/q-$type.gguf"
  done
done
