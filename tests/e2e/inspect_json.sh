#!/usr/bin/env bash
# qforge inspect --json on the converted stories260K: exits 0 and reports the 48 tensors
# (token_embd, output_norm, output + 5 layers x 9), as the reference GGUF has.
source "$(dirname "$0")/common.sh"
[[ -s "$F32_GGUF" ]] || fail "missing F32 fixture $F32_GGUF (convert_stories260k_f32 must pass first)"
note "$QFORGE inspect $F32_GGUF --json"
json=$("$QFORGE" inspect "$F32_GGUF" --json) || fail "qforge inspect --json failed"
echo "${json:0:4000}"
[[ "$json" == *"{"* ]] || fail "inspect --json printed no JSON object"
# 48 distinct GGUF tensor names in the output, or else a tensor count field equal to 48.
names=$(printf '%s\n' "$json" | grep -o '"\(token_embd\|output_norm\|output\|blk\.[0-9]*\.[a-z_]*\)\.weight"' | sort -u | wc -l)
note "distinct tensor names: $names"
if [[ "$names" != 48 ]]; then
  count_re='"(tensors|n_tensors|tensor_count)": *48([^0-9]|$)'
  [[ "$json" =~ $count_re ]] ||
    fail "inspect --json names $names tensors and reports no tensor count of 48"
fi
note "ok: 48 tensors"
