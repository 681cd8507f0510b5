#!/usr/bin/env bash
# The Hugging Face route: make_hf_fixture writes stories260K as a sharded HF checkpoint (config.json,
# model-0000N-of-00002.safetensors + index, SentencePiece tokenizer, q/k rows permuted the HF way); qforge
# convert DIR must undo all of that and give llama.cpp the same model as the llama2.c route (the F32 fixture):
# identical greedy tokens and the same NLL within 1e-4 (both are F32 copies of the same weights).
source "$(dirname "$0")/common.sh"
[[ -s "$F32_GGUF" ]] || fail "missing F32 fixture $F32_GGUF (convert_stories260k_f32 must pass first)"
[[ -x "$FIXTURE" ]] || fail "missing make_hf_fixture executable: $FIXTURE"
hf="$WORK/stories260K-hf"
out="$WORK/stories260K-hf-f32.gguf"
rm -rf "$hf" "$out"
run "$FIXTURE" "$MODELS/stories260K/stories260K.bin" "$MODELS/stories260K/tok512.model" "$hf"
shards=$(find "$hf" -maxdepth 1 -name '*.safetensors' | wc -l)
(( shards >= 2 )) || fail "expected a sharded checkpoint in $hf, found $shards .safetensors files"
run "$QFORGE" convert "$hf" -o "$out" --outtype f32
[[ -s "$out" ]] || fail "convert did not write $out"
gen_hf=$(referee_generate "$out"); echo "$gen_hf"
gen_l2c=$(referee_generate "$F32_GGUF"); echo "$gen_l2c"
expect_text_prefix "$gen_hf" "$LILY_PARK"
[[ "$gen_hf" == "$gen_l2c" ]] || fail "greedy generation differs between the HF and llama2.c routes"
note "ok: identical greedy generation"
ours=$(referee_nll "$out" --max-pieces "$PIECES"); echo "$ours"
l2c=$(referee_nll "$F32_GGUF" --max-pieces "$PIECES"); echo "$l2c"
[[ $(json_num "$ours" tokens) == $(json_num "$l2c" tokens) ]] || fail "token counts differ (tokenizer metadata?)"
expect_close "$(json_num "$ours" nll)" "$(json_num "$l2c" nll)" 1e-4 "HF-route NLL vs llama2.c-route NLL"
