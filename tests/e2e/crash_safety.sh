#!/usr/bin/env bash
# Crash safety of `qforge quantize` output, on a synthetic model big enough that writing takes ~1-2 s:
#  1. SIGKILL at random moments (several runs): the output path holds either the previous complete file or
#     the new complete file, byte for byte, never a partial one. A killed process cannot remove its
#     temporary file ("<output>.tmp-<pid>-<n>" beside the output); the test checks that such leftovers are
#     exactly the killed runs' temporaries and that a later run neither trips over them nor touches them.
#  2. SIGINT mid-write: exit status 130, the "interrupted" message, no temporary file, the previous file kept.
#  3. A write failure mid-file (RLIMIT_FSIZE with SIGXFSZ ignored, so write() fails like a full disk):
#     non-zero exit, "write failed", no temporary file, the previous file kept.
#   crash_safety.sh --qforge BIN --synth make_synthetic_model --work DIR [--seed N] [--runs N]
set -euo pipefail

QFORGE="" SYNTH="" WORK="" SEED=7 RUNS=6
while [[ $# -gt 0 ]]; do
  case "$1" in
    --qforge) QFORGE=$2; shift 2 ;;
    --synth) SYNTH=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x "$QFORGE" && -x "$SYNTH" && -n "$WORK" ]] || { echo "usage: see the header of $0" >&2; exit 2; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }
rm -rf "$WORK"
mkdir -p "$WORK"
RANDOM=$SEED
note "seed $SEED (rerun with --seed $SEED to repeat the kill times)"

# Replacing an existing output needs --force once the CLI has it; older CLIs overwrite silently.
force=()
if "$QFORGE" quantize --help 2>&1 | grep -q -- "--force"; then force=(--force); fi

src="$WORK/src.gguf"
"$SYNTH" "$src" --layers 4 --embd 512 --ff 1536 --vocab 4096 --type F32 >/dev/null || fail "make_synthetic_model failed"
out="$WORK/out.gguf"
# Run directly (never through a function or subshell), so that $! is qforge's own pid and a signal reaches it.
args=(quantize "$src" "$out" --type Q4_K_M -t 1 "${force[@]}")

# The previous complete file (another type) and the new complete file, to compare bytes against.
"$QFORGE" quantize "$src" "$WORK/previous.gguf" --type Q8_0 -t 1 >/dev/null 2>&1 || fail "reference Q8_0 failed"
start=$(date +%s%N)
"$QFORGE" quantize "$src" "$WORK/complete.gguf" --type Q4_K_M -t 1 >/dev/null 2>&1 || fail "reference Q4_K_M failed"
ms=$((($(date +%s%N) - start) / 1000000))
prev_sum=$(cksum <"$WORK/previous.gguf")
new_sum=$(cksum <"$WORK/complete.gguf")
note "one quantize run takes ${ms} ms; previous $(stat -c %s "$WORK/previous.gguf") bytes, new $(stat -c %s "$WORK/complete.gguf") bytes"
(( ms >= 200 )) || fail "quantize took only ${ms} ms: the model is too small to kill it mid-write"

temps() { find "$WORK" -maxdepth 1 -name 'out.gguf.tmp-*' -printf '%f\n' | sort; }

# 1. SIGKILL at random points in (5%, 95%) of the measured duration.
killed_pids=()
outcomes=""
for ((run = 1; run <= RUNS; run++)); do
  cp "$WORK/previous.gguf" "$out"
  delay_ms=$((ms * (5 + RANDOM % 91) / 100))
  "$QFORGE" "${args[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  kill -KILL "$pid" 2>/dev/null || true
  status=0
  wait "$pid" || status=$?
  sum=$(cksum <"$out")
  if [[ "$sum" == "$prev_sum" ]]; then
    what="previous file"
  elif [[ "$sum" == "$new_sum" ]]; then
    what="new complete file"
  else
    fail "run $run (killed after ${delay_ms} ms): $out is neither the previous nor the complete file ($(stat -c %s "$out") bytes)"
  fi
  [[ $status == 137 ]] && killed_pids+=("$pid")
  outcomes+="$what, "
  note "run $run: SIGKILL after ${delay_ms} ms (exit $status): output is the $what"
done
[[ "$outcomes" == *"previous file"* ]] || fail "no run was killed before its rename: the kill points test nothing"

# Leftover temporaries: one per killed run that had created it, named after that run's pid, nothing else.
leftover=$(temps)
note "leftover temporaries after ${#killed_pids[@]} kills: $(echo ${leftover:-none})"
for name in $leftover; do
  pid=${name#out.gguf.tmp-}
  pid=${pid%%-*}
  [[ " ${killed_pids[*]} " == *" $pid "* ]] || fail "temporary $name does not belong to a killed run"
done
# A new run neither fails because of them nor removes them (it cannot know whether their owner is alive).
"$QFORGE" "${args[@]}" >/dev/null 2>&1 || fail "quantize after the kills failed"
[[ "$(cksum <"$out")" == "$new_sum" ]] || fail "quantize after the kills wrote different bytes"
[[ "$(temps)" == "$leftover" ]] || fail "a later run changed the leftover temporaries"
rm -f "$WORK"/out.gguf.tmp-*
note "ok: every kill left the previous or the new complete file; leftovers are the killed runs' own temporaries"

# 2. SIGINT halfway: the handler removes the temporary file, says so, and re-raises (exit 128 + 2).
cp "$WORK/previous.gguf" "$out"
"$QFORGE" "${args[@]}" >/dev/null 2>"$WORK/sigint.txt" &
pid=$!
sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 2000 }')"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
[[ $status == 130 ]] || fail "SIGINT: exit status $status, expected 130 (stderr: $(cat "$WORK/sigint.txt"))"
grep -q "interrupted; partial output removed" "$WORK/sigint.txt" || fail "SIGINT message missing: $(cat "$WORK/sigint.txt")"
[[ -z "$(temps)" ]] || fail "SIGINT left $(temps)"
[[ "$(cksum <"$out")" == "$prev_sum" ]] || fail "SIGINT changed the previous file"
note "ok: SIGINT exits 130 with a message, no temporary left, previous file kept"

# 3. Write failure in the middle of the data (a 4 MB file-size limit; the complete file is larger).
(( $(stat -c %s "$WORK/complete.gguf") > 4 * 1024 * 1024 )) || fail "complete file too small for the 4 MB limit"
cp "$WORK/previous.gguf" "$out"
status=0
(trap '' XFSZ; ulimit -f 4096; exec "$QFORGE" "${args[@]}" >/dev/null 2>"$WORK/full.txt") || status=$?
[[ $status != 0 ]] || fail "write past the file-size limit succeeded"
(( status < 128 )) || fail "write failure killed the process (status $status) instead of an error"
grep -q "out.gguf: write failed: File too large" "$WORK/full.txt" || fail "write failure message: $(cat "$WORK/full.txt")"
[[ -z "$(temps)" ]] || fail "write failure left $(temps)"
[[ "$(cksum <"$out")" == "$prev_sum" ]] || fail "write failure changed the previous file"
note "ok: a failed write reports it, removes its temporary and keeps the previous file"
rm -rf "$WORK"
