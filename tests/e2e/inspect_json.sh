#!/usr/bin/env bash
# qforge inspect --json on the converted stories260K: exits 0 and reports the 48 tensors
# (token_embd, output_norm, output + 5 layers x 9), as the reference GGUF has.
source "$(dirname "$0")/common.sh"
[[ -s "$F32_GGUF" ]] || fail "missing F32 fixture $F32_GGUF (convert_stories260k_f32 must pass first)"
note "$QFORGE inspect $F32_GGUF --json"
json=$("$QFORGE" inspect "$F32_GGUF" --json) || fail "qforge inspect --json failed"
printf '%s\n' "$json" | head -c 4000; echo
[[ "$json" == *"{"* ]] || fail "inspect --json printed no JSON object"
# Either a tensor count field, or 48 tensor entries named by their GGUF names.
count=$(printf '%s\n' "$json" | sed -n 's/.*"\(n_tensors\|tensor_count\|n_tensor\)": *\([0-9]*\).*/\2/p' | head -n1)
if [[ -z "$count" ]]; then
  count=$(printf '%s\n' "$json" | grep -o '"\(token_embd\|output_norm\|output\|blk\.[0-9]*\.[a-z_]*\)\.weight"' | sort -u | wc -l)
fi
[[ "$count" == 48 ]] || fail "inspect --json reports $count tensors, expected 48"
note "ok: 48 tensors"
