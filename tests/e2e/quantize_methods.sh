#!/usr/bin/env bash
# qforge quantize --method rtn|imatrix|gptq|awq|awq+gptq on stories260K at Q4_0, calibrated on the first
# 400 kB of the TinyStories sample and evaluated on the rest (no calibration token is scored). Checks: every
# file is byte-identical twice and with 1 vs 2 threads; llama.cpp loads it and scores the TinyStories pieces
# with a finite NLL; every calibrated method's mean KLD vs the F32 model is below RTN's. Prints the table.
# Then the k-quant path (Q4_K_M) on a synthetic model whose rows are multiples of 256 and without GQA (so
# AWQ also folds attn_output into attn_v): determinism and llama.cpp loading for every method.
source "$(dirname "$0")/common.sh"
ref="$MODELS/stories260K/stories260K.gguf"
calib="$WORK/calib.txt" heldout="$WORK/heldout.txt"
head -c 400000 "$TEXT" > "$calib"
tail -c +400001 "$TEXT" > "$heldout"
calib_args=(--calib "$calib" --calib-tokens 4096 --calib-ctx 128)

# kld_mean JSON: the "mean" inside the "kld" object of qforge eval --json.
kld_mean() {
  local flat
  flat=$(printf '%s' "$1" | tr -d '\n')
  json_num "$(printf '%s\n' "$flat" | sed -n 's/.*"kld": *{\([^}]*\)}.*/\1/p')" mean
}

declare -A kld
for method in rtn imatrix gptq awq awq+gptq; do
  out="$WORK/stories260K-Q4_0-$method.gguf"
  extra=()
  [[ $method == rtn ]] || extra=("${calib_args[@]}")
  run "$QFORGE" quantize "$ref" "$out" --type Q4_0 --method "$method" "${extra[@]}" -t 1 -f -q
  run "$QFORGE" quantize "$ref" "$out.again" --type Q4_0 --method "$method" "${extra[@]}" -t 1 -f -q
  run "$QFORGE" quantize "$ref" "$out.t2" --type Q4_0 --method "$method" "${extra[@]}" -t 2 -f -q
  cmp -s "$out" "$out.again" || fail "$method: two runs wrote different bytes"
  cmp -s "$out" "$out.t2" || fail "$method: 1 vs 2 threads wrote different bytes"
  note "ok: $method: identical bytes twice and with 1 vs 2 threads"
  rm -f "$out.again" "$out.t2"
  nll=$(referee_nll "$out" --max-pieces 50); echo "$nll"
  v=$(json_num "$nll" nll)
  awk -v x="$v" 'BEGIN { exit !(x > 0 && x < 10) }' || fail "$method: llama.cpp NLL $v is not plausible"
  ev=$("$QFORGE" eval -m "$out" --text "$heldout" --ref "$ref" -c 128 --chunks 100 -t 1 --json) ||
    fail "qforge eval failed on $out"
  kld[$method]=$(kld_mean "$ev")
done

echo
echo "stories260K Q4_0, mean KLD vs F32 on held-out TinyStories (100 windows of 128 tokens)"
printf '%-10s %10s %10s\n' method "mean KLD" "vs RTN"
for method in rtn imatrix gptq awq awq+gptq; do
  printf '%-10s %10.5f %10.3f\n' "$method" "${kld[$method]}" "$(awk -v a="${kld[$method]}" -v b="${kld[rtn]}" 'BEGIN { print a / b }')"
done
for method in imatrix gptq awq awq+gptq; do
  awk -v a="${kld[$method]}" -v b="${kld[rtn]}" 'BEGIN { exit !(a < b) }' ||
    fail "$method: mean KLD ${kld[$method]} is not below RTN's ${kld[rtn]}"
done
note "ok: every calibrated method has a lower mean KLD than RTN"

# k-quants: make_synthetic_model is built by qforge_e2e_deps, next to the CLI in the build tree.
synth_bin="$(dirname "$QFORGE")/tests/support/make_synthetic_model"
[[ -x "$synth_bin" ]] || fail "make_synthetic_model not found at $synth_bin (build qforge_e2e_deps)"
synth="$WORK/synthetic-f32.gguf"
run "$synth_bin" "$synth" --layers 2 --embd 256 --ff 512 --heads 4 --kv-heads 4 --vocab 512 --type F32
for method in rtn imatrix gptq awq awq+gptq; do
  out="$WORK/synthetic-Q4_K_M-$method.gguf"
  extra=()
  [[ $method == rtn ]] || extra=(--calib "$calib" --calib-tokens 2048 --calib-ctx 128)
  run "$QFORGE" quantize "$synth" "$out" --type Q4_K_M --method "$method" "${extra[@]}" -t 1 -f -q
  run "$QFORGE" quantize "$synth" "$out.t2" --type Q4_K_M --method "$method" "${extra[@]}" -t 2 -f -q
  cmp -s "$out" "$out.t2" || fail "synthetic $method: 1 vs 2 threads wrote different bytes"
  rm -f "$out.t2"
  nll=$(referee_nll "$out" --max-pieces 5); echo "$nll"
  v=$(json_num "$nll" nll)
  awk -v x="$v" 'BEGIN { exit !(x > 0 && x < 20) }' || fail "synthetic $method: llama.cpp NLL $v is not finite"
done
note "ok: Q4_K_M on the synthetic model: deterministic and loaded by llama.cpp for every method"
