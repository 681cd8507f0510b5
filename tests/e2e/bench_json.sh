#!/usr/bin/env bash
# qforge bench on the converted stories260K (F32), 1 thread: --json reports positive finite speeds, the
# read-bandwidth probe and the fraction of it decode used, the requested sizes back, and the KV-cache bytes its
# formula gives for this shape; a missing model is a clear error naming the file. (Speeds are measured by the
# benchmark scripts in bench/, not judged here.)
source "$(dirname "$0")/common.sh"
[[ -s "$F32_GGUF" ]] || fail "missing F32 fixture $F32_GGUF (convert_stories260k_f32 must pass first)"
note "$QFORGE bench -m $F32_GGUF -p 8 -n 4 -t 1 -r 2 --json"
json=$("$QFORGE" bench -m "$F32_GGUF" -p 8 -n 4 -t 1 -r 2 --json) || fail "qforge bench --json failed"
echo "$json"
positive() {  # positive KEY: the field is a number > 0
  local v
  v=$(json_num "$json" "$1")
  awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "$1 = $v, expected > 0"
  note "ok: $1 = $v"
}
for key in prefill_tok_s decode_tok_s prefill_tok_per_cpu_s decode_tok_per_cpu_s weight_bytes_per_token \
           read_bandwidth_bytes_s bandwidth_fraction; do
  positive "$key"
done
[[ $(json_num "$json" n_prompt) == 8 && $(json_num "$json" n_gen) == 4 && $(json_num "$json" threads) == 1 ]] ||
  fail "n_prompt / n_gen / threads not echoed as 8 / 4 / 1"
# F16 K and V rows of kv_dim = 4 KV heads x 8 = 32 per layer (5 layers), read at the average decode position
# 8 + 4 / 2: 2 tensors x 2 bytes x 5 x 32 x 10 = 6400 bytes per token.
expect_close "$(json_num "$json" kv_bytes_per_token)" 6400 0.5 "KV-cache bytes per decoded token"

missing="$WORK/no-such-model.gguf"
note "$QFORGE bench -m $missing"
if "$QFORGE" bench -m "$missing" -p 2 -n 1 -t 1 >"$WORK/missing.out" 2>"$WORK/missing.err"; then
  fail "bench on a missing model exited 0"
fi
grep -q "no-such-model.gguf" "$WORK/missing.err" || fail "the error does not name the file: $(cat "$WORK/missing.err")"
note "ok: $(head -n 1 "$WORK/missing.err")"
