#!/usr/bin/env bash
# Size budgets on stories260K: qforge measure (small), then quantize --target-size / --target-bpw hit the
# budget within 0.5% from below, the same inputs give the same bytes, --dry-run writes nothing, the plan is
# in the metadata, and llama.cpp loads every budgeted file (a finite NLL on the first pieces).
# stories260K's ffn_down rows (172) fit no block type, so they stay F16: no plan is below ~7.5 bpw.
source "$(dirname "$0")/common.sh"
model="$MODELS/stories260K/stories260K.gguf"
measure="$WORK/measure.json"
rm -f "$WORK"/*.gguf "$measure"
run "$QFORGE" measure -m "$model" --calib "$TEXT" --calib-tokens 512 --calib-ctx 64 --probe-tensors 8 -o "$measure" -t 2 -q
[[ -s "$measure" ]] || fail "measure did not write $measure"

# within_below VALUE LIMIT WHAT: LIMIT * 0.995 <= VALUE <= LIMIT.
within_below() {
  awk -v v="$1" -v l="$2" 'BEGIN { exit !(v <= l && v >= 0.995 * l) }' || fail "$3: $1 is not within 0.5% below $2"
  note "ok: $3: $1 within 0.5% below $2"
}

for size in 270000 300000 420000; do
  out="$WORK/size-$size.gguf"
  run "$QFORGE" quantize "$model" "$out" --target-size "$size" --measure "$measure" -t 2 -q
  within_below "$(stat -c %s "$out")" "$size" "--target-size $size file size"
  nll=$(referee_nll "$out" --max-pieces 20); echo "$nll"
  json_num "$nll" nll >/dev/null
done

for bpw in 8 9.5 12; do
  out="$WORK/bpw-$bpw.gguf"
  log=$("$QFORGE" quantize "$model" "$out" --target-bpw "$bpw" --measure "$measure" -t 2 -q) || fail "quantize --target-bpw $bpw"
  echo "$log"
  got=$(printf '%s\n' "$log" | sed -n 's/^tensor data: [0-9]* bytes, budget [0-9]* ([0-9.]*% of it), \([0-9.]*\) bits per weight$/\1/p')
  [[ -n "$got" ]] || fail "no bits-per-weight line in the quantize output"
  within_below "$got" "$bpw" "--target-bpw $bpw bits per weight"
done

# Same inputs, same bytes.
run "$QFORGE" quantize "$model" "$WORK/again.gguf" --target-size 300000 --measure "$measure" -t 1 -q
cmp "$WORK/size-300000.gguf" "$WORK/again.gguf" || fail "two runs with the same budget differ"
note "ok: identical output for identical inputs (2 threads vs 1)"

# The plan is recorded in the metadata.
meta=$("$QFORGE" inspect "$WORK/size-300000.gguf")
for key in quantize.budget.target quantize.budget.predicted_kld quantize.budget.tensor_types; do
  [[ "$meta" == *"$key"* ]] || fail "metadata key $key missing"
done
note "ok: quantize.budget.* keys present"

# --dry-run prints the plan and writes nothing; --tensor-type still wins.
plan=$("$QFORGE" quantize "$model" "$WORK/dry.gguf" --target-size 300000 --measure "$measure" --dry-run \
  --tensor-type 'blk\.0\.attn_q=Q8_0')
[[ ! -e "$WORK/dry.gguf" ]] || fail "--dry-run wrote a file"
printf '%s\n' "$plan" | grep -Eq 'blk\.0\.attn_q\.weight +Q8_0 .*--tensor-type' || fail "override not in the plan: $plan"
printf '%s\n' "$plan" | grep -q 'predicted file size' || fail "no predicted size in the dry-run output"
note "ok: dry run"

# A measurement of another model is refused.
run "$QFORGE" convert "$MODELS/stories260K/stories260K.bin" -o "$WORK/other.gguf" --outtype f16
if "$QFORGE" quantize "$WORK/other.gguf" "$WORK/x.gguf" --target-size 300000 --measure "$measure" -q 2>"$WORK/err.txt"; then
  fail "a stale measurement was accepted"
fi
note "ok: stale measurement refused: $(cat "$WORK/err.txt")"
