#!/usr/bin/env bash
# The main job on one model: install, build, convert the model to GGUF and inspect the result.
# Usage: scripts/demo.sh [MODEL]   (MODEL: llama2.c .bin, Hugging Face folder, safetensors or GGUF;
#        default ../shared/models/stories260K/stories260K.bin with its tok512.bin)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-../shared/models/stories260K/stories260K.bin}"
if [ ! -e "$MODEL" ]; then
  echo "demo: model not found: $MODEL (pass a path: scripts/demo.sh path/to/model)" >&2
  exit 2
fi
scripts/install-deps.sh
scripts/build.sh release
QF=build/release/qforge
mkdir -p out
NAME="$(basename "${MODEL%/}")"; NAME="${NAME%.*}"
"$QF" convert "$MODEL" -o "out/$NAME-f32.gguf" --outtype f32
"$QF" convert "$MODEL" -o "out/$NAME-f16.gguf" --outtype f16
"$QF" inspect "out/$NAME-f16.gguf"
