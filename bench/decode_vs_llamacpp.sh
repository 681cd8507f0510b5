#!/usr/bin/env bash
# Prefill and decode speed: `qforge bench` vs llama.cpp (pinned libllama, bench/llamacpp_bench.cc) on the same
# GGUF files, same thread count, the two tools run alternately. The model is a synthetic TinyLlama-shaped F16
# model (2048 embd, 5632 ff, 32 heads, 4 KV heads, 32000 vocab; LAYERS layers, default 22 = ~1.1B parameters)
# quantized by `qforge quantize` to Q4_0, Q8_0 and Q4_K_M; both tools read the same quantized files.
# Files go to OUT_DIR (a RAM disk; reused by later runs when present).
# Usage: bench/decode_vs_llamacpp.sh [LAYERS=22] [OUT_DIR=/dev/shm/qforge-decode]
#   environment: P=64 (prompt tokens), N=32 (generated tokens), R=3 (runs, median), THREADS="1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS="${1:-22}"
OUT="${2:-/dev/shm/qforge-decode}"
P="${P:-64}"
N="${N:-32}"
R="${R:-3}"
THREADS="${THREADS:-1 2}"
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_BUILD_BENCH=ON >/dev/null
cmake --build build/bench --target qforge_cli make_synthetic_model llamacpp_bench >/dev/null
mkdir -p "$OUT"
MODEL="$OUT/tinyllama-shape-${LAYERS}l-f16.gguf"
if [ ! -f "$MODEL" ]; then
  build/bench/tests/support/make_synthetic_model "$MODEL.tmp" --layers "$LAYERS" --embd 2048 --ff 5632 \
    --heads 32 --kv-heads 4 --vocab 32000 --type F16 >&2
  mv "$MODEL.tmp" "$MODEL"
fi

json_field() {  # json_field FIELD <<< '{"FIELD": 1.5, ...}' -> 1.5
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

printf "| type | threads | qforge prefill tok/s | llama.cpp prefill tok/s | ratio | qforge decode tok/s | llama.cpp decode tok/s | ratio |\n"
printf "|---|---|---|---|---|---|---|---|\n"
for type in Q4_0 Q8_0 Q4_K_M; do
  q="$OUT/q-${LAYERS}l-$type.gguf"
  if [ ! -f "$q" ]; then
    build/bench/qforge quantize "$MODEL" "$q.tmp" --type "$type" >/dev/null
    mv "$q.tmp" "$q"
  fi
  for t in $THREADS; do
    # Alternate the tools run by run so that background load hits both alike; each run is a median of R.
    qj=$(build/bench/qforge bench -m "$q" -p "$P" -n "$N" -t "$t" -r "$R" --json)
    lj=$(build/bench/bench/llamacpp_bench "$q" "$P" "$N" "$t" "$R")
    qp=$(json_field prefill_tok_s <<< "$qj"); qd=$(json_field decode_tok_s <<< "$qj")
    lp=$(json_field prefill_tok_s <<< "$lj"); ld=$(json_field decode_tok_s <<< "$lj")
    awk -v ty="$type" -v t="$t" -v qp="$qp" -v lp="$lp" -v qd="$qd" -v ld="$ld" 'BEGIN {
      printf "| %s | %d | %.1f | %.1f | %.2fx | %.2f | %.2f | %.2fx |\n", ty, t, qp, lp, qp / lp, qd, ld, qd / ld }'
  done
done
