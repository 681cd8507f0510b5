#!/usr/bin/env bash
# qforge convert --outtype f16: llama.cpp loads the file, the story is unchanged, and the NLL stays close to F32.
# Tolerance: fp16 stores each weight with relative error <= 2^-11 (~4.9e-4), and llama.cpp's CPU matmul also
# rounds the activations to fp16 for F16 weights. These errors are unbiased and mostly cancel in the dot
# products and in the average over ~39k predicted tokens: measured |NLL(f16) - NLL(f32)| = 6.2e-6 on the first
# 400 pieces (1.4414055 vs 1.4414117, llama.cpp v0.4.0, all 2-D tensors F16), 1.9e-5 with qforge's F16 on the first
# 100 pieces, 3.8e-6 on the whole sample. 3x the largest is ~6e-5; we use a floor
# of 1e-4, still far below what a wrong conversion (e.g. a bf16/f16 mix-up or a byte-order slip) would give.
source "$(dirname "$0")/common.sh"
[[ -s "$F32_GGUF" ]] || fail "missing F32 fixture $F32_GGUF (convert_stories260k_f32 must pass first)"
out="$WORK/stories260K-f16.gguf"
rm -f "$out"
run "$QFORGE" convert "$MODELS/stories260K/stories260K.bin" -o "$out" --outtype f16
[[ -s "$out" ]] || fail "convert did not write $out"
f32_size=$(stat -c %s "$F32_GGUF"); f16_size=$(stat -c %s "$out")
(( f16_size < f32_size * 3 / 4 )) || fail "F16 file ($f16_size bytes) is not much smaller than F32 ($f32_size bytes)"
gen=$(referee_generate "$out"); echo "$gen"
expect_text_prefix "$gen" "$LILY_PARK"
ours=$(referee_nll "$out" --max-pieces "$PIECES"); echo "$ours"
f32=$(referee_nll "$F32_GGUF" --max-pieces "$PIECES"); echo "$f32"
expect_close "$(json_num "$ours" nll)" "$(json_num "$f32" nll)" 1e-4 "F16 NLL vs F32 NLL"
