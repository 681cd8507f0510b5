#!/usr/bin/env bash
# Budgeted mixed precision vs llama.cpp's fixed mixes at equal file size.
# For each model: llama.cpp's Q3_K_M, Q4_K_M, Q5_K_M (llama_model_quantize through bench/llamacpp_quantize),
# then `qforge quantize --target-size <that file's size> --measure M` (one measurement per model, on the
# first half of the TinyStories sample), and the mean KLD of both against the F32 model on the held-out
# second half (`qforge eval --ref`). Cross-check: llama.cpp's own mean NLL of each file on the same held-out
# text (tests/referee qforge_referee nll), ΔNLL against the F32 model.
# Usage: bench/budget_vs_llamacpp.sh [OUT_DIR=/tmp/qforge-budget-bench] [THREADS=2]  (QFORGE_BUILD_DIR: build dir)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/qforge-budget-bench}"
THREADS="${2:-2}"
B="${QFORGE_BUILD_DIR:-build/budget-bench}"
SHARED="${QFORGE_SHARED_DIR:-/work/shared}"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQFORGE_BUILD_BENCH=ON >/dev/null
cmake --build "$B" --target qforge_cli make_synthetic_model llamacpp_quantize qforge_referee >/dev/null
Q="$B/qforge"
REFEREE="$(find "$B" -name qforge_referee -type f -perm -u+x | head -1)"
mkdir -p "$OUT"

# Calibration = first half of the sample, held-out = second half (split at a story boundary).
TEXT="$SHARED/data/tinystories/tinystories_valid_head.txt"
python3 - "$TEXT" "$OUT" <<'EOF'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
cut = t.index("\n\n", len(t) // 2) + 2
open(sys.argv[2] + "/calib.txt", "w", encoding="utf-8").write(t[:cut])
open(sys.argv[2] + "/heldout.txt", "w", encoding="utf-8").write(t[cut:])
EOF

# Models as F32 GGUF: stories260K as shipped, BabyLlama converted, a synthetic 256-multiple model.
cp "$SHARED/models/stories260K/stories260K.gguf" "$OUT/stories260K.gguf"
[ -f "$OUT/babyllama.gguf" ] || "$Q" convert "$SHARED/models/babyllama-tok105/babyllama105.bin" -o "$OUT/babyllama.gguf" --outtype f32 >/dev/null
[ -f "$OUT/synthetic.gguf" ] || "$B/tests/support/make_synthetic_model" "$OUT/synthetic.gguf" --layers 2 --embd 256 \
  --ff 512 --vocab 256 --type F32 >/dev/null

kld() {  # model ref -> mean KLD and its uncertainty
  "$Q" eval -m "$1" --ref "$2" --text "$OUT/heldout.txt" -c 128 --chunks 40 -t "$THREADS" --json |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.6f %.6f" % (j["kld"]["mean"], j["kld"]["unc"]))'
}
nll() {  # model -> llama.cpp mean NLL over the first 200 held-out pieces
  "$REFEREE" nll "$1" --text "$OUT/heldout.txt" --split-blank-lines --max-pieces 200 --ctx 128 |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.8f" % j["nll"])'
}

printf "| model | mix | bytes | llama.cpp KLD | qforge same mix KLD | qforge budget KLD | budget/llama.cpp | llama.cpp ΔNLL | qforge budget ΔNLL | winner |\n"
printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
for model in stories260K babyllama synthetic; do
  F="$OUT/$model.gguf"
  [ -f "$OUT/$model.measure.json" ] || "$Q" measure -m "$F" --calib "$OUT/calib.txt" --calib-tokens 2048 --calib-ctx 128 \
    -o "$OUT/$model.measure.json" -t "$THREADS" -q >"$OUT/$model.measure.log"
  base_nll="$(nll "$F")"
  for spec in Q3_K_M:12 Q4_K_M:15 Q5_K_M:17; do
    mix="${spec%%:*}"; ftype="${spec##*:}"
    L="$OUT/$model-llama-$mix.gguf"; G="$OUT/$model-qforge-$mix.gguf"
    "$B/bench/llamacpp_quantize" "$F" "$L" "$ftype" 1
    size=$(stat -c %s "$L")
    "$Q" quantize "$F" "$G" --target-size "$size" --measure "$OUT/$model.measure.json" -t "$THREADS" -q -f \
      >"$OUT/$model-qforge-$mix.log"
    gsize=$(stat -c %s "$G")
    [ "$gsize" -le "$size" ] || { echo "budget exceeded: $G $gsize > $size" >&2; exit 1; }
    # qforge's own encoders on llama.cpp's fixed mix: separates the encoder from the allocation.
    "$Q" quantize "$F" "$OUT/$model-qmix-$mix.gguf" --type "$mix" -t "$THREADS" -q -f >/dev/null
    read -r mk mu < <(kld "$OUT/$model-qmix-$mix.gguf" "$F")
    read -r lk lu < <(kld "$L" "$F")
    read -r gk gu < <(kld "$G" "$F")
    ln="$(nll "$L")"; gn="$(nll "$G")"
    python3 - "$model" "$mix" "$size" "$gsize" "$lk" "$lu" "$gk" "$gu" "$base_nll" "$ln" "$gn" "$mk" "$mu" <<'EOF'
import sys
m, mix, size, gsize, lk, lu, gk, gu, b, ln, gn, mk, mu = sys.argv[1:]
lk, lu, gk, gu, b, ln, gn, mk, mu = map(float, (lk, lu, gk, gu, b, ln, gn, mk, mu))
win = "qforge" if gk < lk else "llama.cpp"
print(f"| {m} | {mix} | {size} (qforge {gsize}) | {lk:.5f} ± {lu:.5f} | {mk:.5f} ± {mu:.5f} | {gk:.5f} ± {gu:.5f} | {gk/lk:.3f} | {ln-b:+.5f} | {gn-b:+.5f} | {win} |")
EOF
  done
done
