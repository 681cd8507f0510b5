#!/usr/bin/env bash
# Sanity of the referee itself on the reference stories260K.gguf (made by llama.cpp's own converter):
# greedy decoding prints the story in llama2.c's doc/stories260K.md, and the NLL over the whole TinyStories
# sample matches the independent float64 NumPy value 1.6810 (README "Reference values"); float32 inference
# and the 4-digit rounding of the reference allow ~1e-3, so 2e-3.
source "$(dirname "$0")/common.sh"
ref="$MODELS/stories260K/stories260K.gguf"
gen=$(referee_generate "$ref"); echo "$gen"
expect_text_prefix "$gen" "$LILY_PARK"
out=$(referee_nll "$ref"); echo "$out"
[[ $(json_num "$out" tokens) == 380662 && $(json_num "$out" pieces) == 4300 ]] ||
  fail "expected 4300 pieces and 380662 predicted tokens (README)"
expect_close "$(json_num "$out" nll)" 1.6810 2e-3 "reference GGUF NLL vs README"
