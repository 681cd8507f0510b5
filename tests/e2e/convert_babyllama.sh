#!/usr/bin/env bash
# qforge convert babyllama105.bin (tokenizer tok105.bin found beside it) -> F32 GGUF: a 105-character
# SentencePiece vocabulary without byte tokens. llama.cpp must load it, greedy decoding must print the story
# from ../shared/models/README.md, and the NLL must match a reference (unknown characters -> <unk>, n_ctx =
# seq_len = 256):
#   --pieces all: the README's independent float64 NumPy value 0.8514 over all 4,300 paragraphs / 743,696
#                 tokens, within 5e-3 (label "slow": ~95 s of CPU with one thread).
#   --pieces 400: 0.7171099 over the first 400 paragraphs / 79,469 tokens, measured by this referee on an F32
#                 GGUF written by an independent throwaway Python script (whose full-sample NLL is 0.8513596,
#                 i.e. the README value). Same weights and same llama.cpp give the same logits, so 1e-4.
source "$(dirname "$0")/common.sh"
out="$WORK/babyllama105-f32.gguf"
rm -f "$out"
run "$QFORGE" convert "$MODELS/babyllama-tok105/babyllama105.bin" -o "$out" --outtype f32
[[ -s "$out" ]] || fail "convert did not write $out"
gen=$(referee_generate "$out" --ctx 256 -n 100); echo "$gen"  # one token per character
expect_text_prefix "$gen" "$LILY_SUN"
case "$PIECES" in
  all) want_nll=0.8514 want_tokens=743696 tol=5e-3 limit=() ;;
  400) want_nll=0.7171099 want_tokens=79469 tol=1e-4 limit=(--max-pieces 400) ;;
  *) fail "no BabyLlama reference for --pieces $PIECES (use 400 or all)" ;;
esac
nll=$(referee_nll "$out" --ctx 256 "${limit[@]}"); echo "$nll"
[[ $(json_num "$nll" tokens) == "$want_tokens" ]] ||
  fail "expected $want_tokens predicted tokens (character vocabulary, unknown characters -> <unk>)"
expect_close "$(json_num "$nll" nll)" "$want_nll" "$tol" "BabyLlama NLL vs reference"
