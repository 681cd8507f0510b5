#!/usr/bin/env bash
# The main job on one model: install, build, then convert it to GGUF and inspect it, quantize it to
# Q4_K_M, generate text from the quantized file, measure what quantization cost (perplexity and KL
# divergence against the float model), and plan memory.
# Usage: scripts/demo.sh [MODEL [TEXT]]
#   MODEL: llama2.c .bin (tokenizer found beside it), Hugging Face folder, or GGUF;
#          default ../shared/models/stories260K/stories260K.bin
#   TEXT:  evaluation text; default ../shared/data/tinystories/tinystories_valid_head.txt
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-../shared/models/stories260K/stories260K.bin}"
TEXT="${2:-../shared/data/tinystories/tinystories_valid_head.txt}"
if [ ! -e "$MODEL" ]; then
  echo "demo: model not found: $MODEL (pass a path: scripts/demo.sh path/to/model [text])" >&2
  exit 2
fi
scripts/install-deps.sh
scripts/build.sh release
QF=build/release/qforge
mkdir -p out
NAME="$(basename "${MODEL%/}")"; NAME="${NAME%.*}"

echo "== convert + inspect"
"$QF" convert "$MODEL" -o "out/$NAME-f32.gguf" --outtype f32
"$QF" inspect "out/$NAME-f32.gguf"
echo "== quantize (Q4_K_M)"
"$QF" quantize "out/$NAME-f32.gguf" "out/$NAME-Q4_K_M.gguf" --type Q4_K_M --force
echo "== run"
"$QF" run -m "out/$NAME-Q4_K_M.gguf" -p "Once upon a time" -n 64 --temp 0 -t 1
if [ -f "$TEXT" ]; then
  echo "== eval (quality cost of Q4_K_M vs the F32 model, first 40 windows of 128 tokens)"
  "$QF" eval -m "out/$NAME-Q4_K_M.gguf" --ref "out/$NAME-f32.gguf" --text "$TEXT" -c 128 --chunks 40 -t 1
  echo "== calibrated (GPTQ with the same mix, calibrated on the text) and a size budget (7 bits per weight: smaller than the Q4_K_M file above)"
  "$QF" quantize "out/$NAME-f32.gguf" "out/$NAME-Q4_K_M-gptq.gguf" --type Q4_K_M --method gptq \
    --calib "$TEXT" --calib-tokens 4096 --calib-ctx 128 --force -q
  "$QF" eval -m "out/$NAME-Q4_K_M-gptq.gguf" --ref "out/$NAME-f32.gguf" --text "$TEXT" -c 128 --chunks 40 -t 1
  "$QF" quantize "out/$NAME-f32.gguf" "out/$NAME-7bpw.gguf" --target-bpw 7 --budget-calib "$TEXT" --force -q
  "$QF" eval -m "out/$NAME-7bpw.gguf" --ref "out/$NAME-f32.gguf" --text "$TEXT" -c 128 --chunks 40 -t 1
fi
echo "== plan (memory at Q4_K_M with a 2048-token context)"
"$QF" plan "out/$NAME-f32.gguf" --type Q4_K_M --ctx 2048
