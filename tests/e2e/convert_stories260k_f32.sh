#!/usr/bin/env bash
# qforge convert stories260K.bin (llama2.c) -> F32 GGUF. F32 conversion only copies weights, so llama.cpp must
# see the same model as the reference GGUF: same greedy story, and the same NLL on the same pieces within 1e-4
# (identical tensors give identical logits; 1e-4 only leaves room for a different but equivalent layout).
# The output file is the fixture e2e_stories260k_f32 used by the f16, HF and inspect tests.
source "$(dirname "$0")/common.sh"
out="$WORK/stories260K-f32.gguf"
rm -f "$out"
run "$QFORGE" convert "$MODELS/stories260K/stories260K.bin" -o "$out" --outtype f32
[[ -s "$out" ]] || fail "convert did not write $out"
gen=$(referee_generate "$out"); echo "$gen"
expect_text_prefix "$gen" "$LILY_PARK"
ours=$(referee_nll "$out" --max-pieces "$PIECES"); echo "$ours"
ref=$(referee_nll "$MODELS/stories260K/stories260K.gguf" --max-pieces "$PIECES"); echo "$ref"
[[ $(json_num "$ours" tokens) == $(json_num "$ref" tokens) ]] || fail "token counts differ (tokenizer metadata?)"
expect_close "$(json_num "$ours" nll)" "$(json_num "$ref" nll)" 1e-4 "converted F32 NLL vs reference GGUF"
