#!/usr/bin/env bash
# Prefill and decode speed: `qforge bench` vs llama.cpp (pinned libllama, bench/llamacpp_bench.cc) on the same
# GGUF files, same thread count, the two tools run alternately. The model is a synthetic TinyLlama-shaped F16
# model (2048 embd, 5632 ff, 32 heads, 4 KV heads, 32000 vocab; LAYERS layers, default 22 = ~1.1B parameters)
# quantized by `qforge quantize` to Q4_0, Q8_0 and Q4_K_M; both tools read the same quantized files.
# Files go to OUT_DIR (a RAM disk; reused by later runs when present).
# Usage: bench/decode_vs_llamacpp.sh [LAYERS=22] [OUT_DIR=/dev/shm/qforge-decode]
#   environment: P=64 (prompt tokens), N=32 (generated tokens), R=3 (runs, median), THREADS="1 2",
#   TYPES="Q4_0 Q8_0 Q4_K_M", BUILD=build/bench (build directory),
#   QUANTIZER=qforge|llamacpp (who writes the quantized files; llama.cpp's quantizer is much faster),
#   NO_BUILD=1 (use the binaries already in BUILD), QFORGE=path (the qforge binary; default BUILD/qforge)
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS="${1:-22}"
OUT="${2:-/dev/shm/qforge-decode}"
P="${P:-64}"
N="${N:-32}"
R="${R:-3}"
THREADS="${THREADS:-1 2}"
TYPES="${TYPES:-Q4_0 Q8_0 Q4_K_M}"
BUILD="${BUILD:-build/bench}"
QUANTIZER="${QUANTIZER:-qforge}"
QFORGE="${QFORGE:-$BUILD/qforge}"
if [ "${NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD" --target qforge_cli make_synthetic_model llamacpp_bench llamacpp_quantize >/dev/null
fi
mkdir -p "$OUT"
MODEL="$OUT/tinyllama-shape-${LAYERS}l-f16.gguf"
if [ ! -f "$MODEL" ]; then
  "$BUILD"/tests/support/make_synthetic_model "$MODEL.tmp" --layers "$LAYERS" --embd 2048 --ff 5632 \
    --heads 32 --kv-heads 4 --vocab 32000 --type F16 >&2
  mv "$MODEL.tmp" "$MODEL"
fi

json_field() {  # json_field FIELD <<< '{"FIELD": 1.5, ...}' -> 1.5
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Wall-clock tokens/s and their ratio; then the same ratios per CPU-second of each process (robust to other
# load on the machine; at 2 threads llama.cpp's spinning workers count too), and the fraction of the measured
# read bandwidth qforge's decode reaches; last, the 1-minute load average when the row was measured (other
# processes' load makes wall-clock ratios, above all at 2 threads, meaningless: the CPU-s ratios hold up better).
printf "| type | threads | qforge prefill tok/s | llama.cpp prefill tok/s | ratio | qforge decode tok/s | llama.cpp decode tok/s | ratio | prefill ratio per CPU-s | decode ratio per CPU-s | qforge decode / bandwidth bound | load |\n"
printf "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
llama_ftype() {  # llama.cpp's llama_ftype numbers
  case "$1" in Q4_0) echo 2 ;; Q8_0) echo 7 ;; Q4_K_M) echo 15 ;; *) echo "no llama_ftype for $1" >&2; exit 2 ;; esac
}

for type in $TYPES; do
  q="$OUT/q-${LAYERS}l-$type.gguf"
  if [ ! -f "$q" ]; then
    if [ "$QUANTIZER" = llamacpp ]; then
      "$BUILD"/bench/llamacpp_quantize "$MODEL" "$q.tmp" "$(llama_ftype "$type")" 2
    else
      "$QFORGE" quantize "$MODEL" "$q.tmp" --type "$type" >/dev/null
    fi
    mv "$q.tmp" "$q"
  fi
  for t in $THREADS; do
    # Alternate the tools run by run so that background load hits both alike; each run is a median of R.
    qj=$("$QFORGE" bench -m "$q" -p "$P" -n "$N" -t "$t" -r "$R" --json)
    lj=$("$BUILD"/bench/llamacpp_bench "$q" "$P" "$N" "$t" "$R")
    qp=$(json_field prefill_tok_s <<< "$qj"); qd=$(json_field decode_tok_s <<< "$qj")
    lp=$(json_field prefill_tok_s <<< "$lj"); ld=$(json_field decode_tok_s <<< "$lj")
    qpc=$(json_field prefill_tok_per_cpu_s <<< "$qj"); qdc=$(json_field decode_tok_per_cpu_s <<< "$qj")
    lpc=$(json_field prefill_tok_per_cpu_s <<< "$lj"); ldc=$(json_field decode_tok_per_cpu_s <<< "$lj")
    bwf=$(json_field bandwidth_fraction <<< "$qj")
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v ty="$type" -v t="$t" -v qp="$qp" -v lp="$lp" -v qd="$qd" -v ld="$ld" -v qpc="$qpc" -v lpc="$lpc" \
        -v qdc="$qdc" -v ldc="$ldc" -v bwf="$bwf" -v load="$load" 'BEGIN {
      printf "| %s | %d | %.1f | %.1f | %.2fx | %.2f | %.2f | %.2fx | %.2fx | %.2fx | %.0f%% | %s |\n", ty, t, qp, lp, qp / lp,
        qd, ld, qd / ld, qpc / lpc, qdc / ldc, 100 * bwf, load }'
  done
done
