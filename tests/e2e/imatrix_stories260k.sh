#!/usr/bin/env bash
# qforge imatrix on stories260K with TinyStories text, then quantize with and without --imatrix and compare
# KLD against the F32 model on held-out text (the file's last 250 kB; calibration uses its first 500 kB, so
# the two never overlap). Also: the .dat and .gguf outputs carry the same importance, the provenance keys are
# written, llama.cpp loads the imatrix-quantized file and scores it like qforge does, and an imatrix made for
# another model is refused naming the tensor. Prints the KLD table (docs/formats.md quotes it).
source "$(dirname "$0")/common.sh"
model="$MODELS/stories260K/stories260K.gguf"
calib="$WORK/calib.txt" held="$WORK/heldout.txt"
head -c 500000 "$TEXT" >"$calib"
tail -c 250000 "$TEXT" >"$held"
docs=${IMATRIX_E2E_DOCS:-100}

run "$QFORGE" imatrix -m "$model" --calib "$calib" --calib-tokens 8192 --calib-ctx 256 -t 1 -o "$WORK/im.gguf"
run "$QFORGE" imatrix -m "$model" --calib "$calib" --calib-tokens 8192 --calib-ctx 256 -t 1 -o "$WORK/im.dat"
head -c 4 "$WORK/im.gguf" | grep -q GGUF || fail "im.gguf is not a GGUF file"
head -c 4 "$WORK/im.dat" | grep -q GGUF && fail "im.dat was written as GGUF"

run "$QFORGE" eval -m "$model" -f "$held" --split-on-blank-lines --chunks "$docs" -t 1 --save-ref "$WORK/ref.bin" >/dev/null
kld_of() {  # kld_of MODEL: mean KLD vs the F32 reference on the held-out documents
  local j
  j=$("$QFORGE" eval -m "$1" -f "$held" --split-on-blank-lines --chunks "$docs" -t 1 --ref-logits "$WORK/ref.bin" --json |
    tr -d '\n ') || fail "eval failed on $1"
  printf '%s\n' "$j" | sed -n 's/.*"kld":{[^}]*"mean":\([-+0-9.eE]*\).*/\1/p'
}
table="type plain_kld imatrix_kld ratio"
for t in Q4_0 Q4_1 Q5_0 IQ4_NL; do
  run "$QFORGE" quantize "$model" "$WORK/plain-$t.gguf" --type "$t" -q -t 1 --force
  run "$QFORGE" quantize "$model" "$WORK/imx-$t.gguf" --type "$t" --imatrix "$WORK/im.gguf" -q -t 1 --force
  plain=$(kld_of "$WORK/plain-$t.gguf") imx=$(kld_of "$WORK/imx-$t.gguf")
  [[ -n "$plain" && -n "$imx" ]] || fail "no KLD for $t"
  table+=$'\n'"$t $plain $imx $(awk -v a="$imx" -v b="$plain" 'BEGIN { printf "%.3f", a / b }')"
done
echo "$table" | column -t
# The importance must help on average: the mean KLD ratio over the four types is below 1.
awk 'NR > 1 { s += $4; n++ } END { exit !(s / n < 1.0) }' <<<"$table" || fail "imatrix did not lower the mean KLD"
note "ok: imatrix lowers KLD on held-out text (mean ratio $(awk 'NR > 1 { s += $4; n++ } END { printf "%.3f", s / n }' <<<"$table"))"

# The legacy file holds the same means (up to F32 rounding of mean·ncall): same size, and close KLD.
run "$QFORGE" quantize "$model" "$WORK/imx-dat-Q4_0.gguf" --type Q4_0 --imatrix "$WORK/im.dat" -q -t 1 --force
expect_close "$(kld_of "$WORK/imx-dat-Q4_0.gguf")" "$(kld_of "$WORK/imx-Q4_0.gguf")" 0.002 "Q4_0 KLD with im.dat vs im.gguf"

meta=$("$QFORGE" inspect "$WORK/imx-Q4_0.gguf")
for k in quantize.imatrix.file quantize.imatrix.dataset quantize.imatrix.entries_count quantize.imatrix.chunks_count; do
  grep -q "$k" <<<"$meta" || fail "provenance key $k missing"
done
note "ok: provenance keys written"

# llama.cpp loads the imatrix-quantized file; its NLL on the same documents matches qforge's.
ours=$("$QFORGE" eval -m "$WORK/imx-Q4_0.gguf" -f "$TEXT" --split-on-blank-lines --chunks 50 -t 1 --json | tr -d '\n ')
ours_nll=$(printf '%s\n' "$ours" | sed -n 's/.*"nll":{"unc":[-+0-9.eE]*,"value":\([-+0-9.eE]*\)}.*/\1/p')
ref=$(referee_nll "$WORK/imx-Q4_0.gguf" --max-pieces 50)
expect_close "$ours_nll" "$(json_num "$ref" nll)" 0.01 "imatrix Q4_0: qforge vs llama.cpp NLL"

# An imatrix for another model (stories260K: 64 columns) against BabyLlama (128) is an error naming a tensor.
if out=$("$QFORGE" quantize "$MODELS/babyllama-tok105/babyllama105.bin" "$WORK/bad.gguf" --type Q4_0 \
  --imatrix "$WORK/im.gguf" -q --force 2>&1); then
  fail "quantize accepted an imatrix made for another model"
fi
grep -q "imatrix entry blk.0.attn_k.weight has 64 values but the model's tensor has 128 columns" <<<"$out" ||
  fail "unexpected error: $out"
note "ok: wrong-model imatrix refused: $out"
