#!/usr/bin/env bash
# qforge quantize's command-line contract on stories260K (seconds): --json summary, no overwrite without
# --force, identical bytes for -t 1 and -t 2, NaN in a weight stops with the tensor and index (and
# --allow-nonfinite goes on), an unknown type lists the valid ones, a write failure (RLIMIT_FSIZE standing
# in for a full disk) reports it and leaves no file behind.
source "$(dirname "$0")/common.sh"
src="$MODELS/stories260K/stories260K.gguf"
out="$WORK/q8.gguf"
rm -rf "$WORK"/*

json=$("$QFORGE" quantize "$src" "$out" --type Q8_0 -t 2 --json 2>"$WORK/progress.txt") || fail "quantize --json failed"
echo "$json"
[[ "$json" == *'"tensors":48,'* ]] || fail "--json does not report 48 tensors"
# 8.5 bits for Q8_0 blocks; the ffn_down fallbacks to F16 and the F32 norms raise the average.
expect_close "$(json_num "$json" bits_per_weight)" 10 1.5 "Q8_0 bits per weight"
json_num "$json" seconds >/dev/null
json_num "$json" mb_per_s >/dev/null
[[ "$json" == *'"types":{'*'"Q8_0":{'* ]] || fail "--json has no per-type counts"
[[ $(json_num "$json" file_bytes) == $(stat -c %s "$out") ]] || fail "file_bytes is not the output's size"
# stderr is not a terminal here: plain progress lines, ending at 100%.
grep -q '^quantize: 100%.*MB/s' "$WORK/progress.txt" || fail "no plain progress line: $(cat "$WORK/progress.txt")"
gen=$(referee_generate "$out" -n 8); echo "$gen"

sum=$(cksum <"$out")
if "$QFORGE" quantize "$src" "$out" --type Q4_0 -q 2>"$WORK/err.txt"; then fail "overwrote $out without --force"; fi
grep -q "already exists; use --force" "$WORK/err.txt" || fail "unexpected message: $(cat "$WORK/err.txt")"
[[ $(cksum <"$out") == "$sum" ]] || fail "refused overwrite still changed $out"
run "$QFORGE" quantize "$src" "$out" --type Q4_K_M -t 1 -q --force
run "$QFORGE" quantize "$src" "$WORK/t2.gguf" --type Q4_K_M -t 2 -q
cmp "$out" "$WORK/t2.gguf" || fail "-t 1 and -t 2 outputs differ"
note "ok: --force overwrites, -t 1 and -t 2 give identical bytes"

# A NaN in the middle of token_embd.weight (tensor data of the llama2.c file starts after a 28-byte header).
cp "$MODELS/stories260K/stories260K.bin" "$WORK/nan.bin"
cp "$MODELS/stories260K/tok512.bin" "$WORK/tokenizer.bin"
printf '\x00\x00\xc0\x7f' | dd of="$WORK/nan.bin" bs=1 seek=$((28 + 4 * 70)) conv=notrunc status=none
if "$QFORGE" quantize "$WORK/nan.bin" "$WORK/nan.gguf" --type Q4_0 -q 2>"$WORK/err.txt"; then fail "NaN accepted"; fi
grep -q "tensor token_embd.weight: element 70 (row 1, column 6) is nan" "$WORK/err.txt" ||
  fail "NaN error does not name the tensor and index: $(cat "$WORK/err.txt")"
[[ ! -e "$WORK/nan.gguf" ]] || fail "failed run left $WORK/nan.gguf"
run "$QFORGE" quantize "$WORK/nan.bin" "$WORK/nan.gguf" --type Q4_0 -q --allow-nonfinite
note "ok: NaN named, --allow-nonfinite accepted"

if "$QFORGE" quantize "$src" "$WORK/x.gguf" --type Q9_Z 2>"$WORK/err.txt"; then fail "unknown type accepted"; fi
grep -q "unknown type 'Q9_Z' (known: .*Q4_K_M" "$WORK/err.txt" || fail "unknown type message: $(cat "$WORK/err.txt")"

mkdir -p "$WORK/full"
if (trap '' XFSZ; ulimit -f 64; "$QFORGE" quantize "$src" "$WORK/full/q.gguf" --type Q8_0 -q 2>"$WORK/err.txt"); then
  fail "write beyond the file size limit succeeded"
fi
grep -q "full/q.gguf: write failed" "$WORK/err.txt" || fail "write failure message: $(cat "$WORK/err.txt")"
[[ -z "$(ls -A "$WORK/full")" ]] || fail "failed write left files: $(ls -A "$WORK/full")"
note "ok: unknown type lists the valid ones; a failed write reports it and leaves nothing"
