#!/usr/bin/env bash
# Runs every row of expected.tsv (command, input, expected error text) against a freshly generated hostile
# corpus. A row passes when qforge exits with status 1..125 (an error, not a signal or an abort), its stderr
# contains the expected text, no sanitizer report appears, and the peak RSS stays under --max-rss-mb.
# "OK" as the expected text marks a valid control, which must succeed. Every generated entry must be listed.
#   check_hostile.sh --qforge BIN --generator BIN --expect expected.tsv --work DIR [--max-rss-mb N]
set -uo pipefail

QFORGE="" GEN="" EXPECT="" WORK="" MAX_RSS_MB=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --qforge) QFORGE=$2; shift 2 ;;
    --generator) GEN=$2; shift 2 ;;
    --expect) EXPECT=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --max-rss-mb) MAX_RSS_MB=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x "$QFORGE" && -x "$GEN" && -f "$EXPECT" && -n "$WORK" ]] || { echo "missing or bad arguments" >&2; exit 2; }

# Sanitized binaries reserve terabytes of address space and run heavier: no address-space limit for them,
# ASan's own limits instead (an allocation over 1 GB or an RSS over 1.5 GB is reported as an error).
sanitized=0
if grep -qa "__asan_init\|__tsan_init" "$QFORGE"; then sanitized=1; fi
if [[ -z "$MAX_RSS_MB" ]]; then MAX_RSS_MB=$((sanitized ? 400 : 100)); fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=1024:hard_rss_limit_mb=1536:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"

"$GEN" "$WORK" || { echo "FAIL: make_hostile_files failed" >&2; exit 1; }
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "FAIL: $TIME (GNU time) is needed to measure peak RSS" >&2; exit 1; }

failures=0 rows=0 max_seen_kb=0
declare -A listed
log="$WORK/.log"
while IFS=$'\t' read -r cmd input expected; do
  [[ -z "$cmd" || "$cmd" == \#* ]] && continue
  rows=$((rows + 1))
  listed["${input%%/*}"]=1
  path="$WORK/$input"
  case "$cmd" in
    inspect) args=(inspect "$path") ;;
    json) args=(inspect --json "$path") ;;
    dryrun) args=(quantize "$path" --type Q4_0 --dry-run) ;;
    run) args=(run -m "$path" -p "Once upon a time" -n 4 -t 1) ;;
    imatrix) args=(quantize "$WORK/tok_valid.gguf" --type Q4_0 --dry-run --imatrix "$path") ;;
    *) echo "FAIL: unknown command '$cmd' in $EXPECT" >&2; failures=$((failures + 1)); continue ;;
  esac
  # 4 GB of address space in plain builds: an allocation sized by a hostile count fails fast instead of
  # swapping the machine (the RSS check below is the real bound).
  (
    if [[ $sanitized == 0 ]]; then ulimit -v 4194304; fi
    exec "$TIME" -f "%M" -o "$WORK/.rss" "$QFORGE" "${args[@]}"
  ) >"$log.out" 2>"$log.err"
  status=$?
  rss_kb=$(tail -n 1 "$WORK/.rss" 2>/dev/null)
  [[ "$rss_kb" =~ ^[0-9]+$ ]] || rss_kb=0
  (( rss_kb > max_seen_kb )) && max_seen_kb=$rss_kb
  err=$(cat "$log.err")
  why=""
  if [[ "$expected" == "OK" ]]; then
    [[ $status == 0 ]] || why="valid control failed with status $status"
  elif [[ $status == 0 ]]; then
    why="accepted (exit 0)"
  elif (( status > 125 )); then
    why="died with status $status (signal or abort)"
  elif [[ "$err" != *"$expected"* ]]; then
    why="error text lacks \"$expected\""
  fi
  if [[ -z "$why" ]] && grep -Eq "Sanitizer|runtime error:|terminate called" "$log.err"; then
    why="sanitizer report or uncaught exception"
  fi
  if [[ -z "$why" ]] && (( rss_kb > MAX_RSS_MB * 1024 )); then
    why="peak RSS $((rss_kb / 1024)) MB > $MAX_RSS_MB MB"
  fi
  if [[ -n "$why" ]]; then
    failures=$((failures + 1))
    echo "FAIL: $cmd $input: $why" >&2
    sed 's/^/    | /' "$log.err" | head -n 20 >&2
  else
    printf 'ok: %-7s %-40s %6d KB  %s\n' "$cmd" "$input" "$rss_kb" "$(grep -m1 -o "error.*" "$log.err" | cut -c1-150)"
  fi
done <"$EXPECT"

for entry in "$WORK"/*; do
  name=$(basename "$entry")
  [[ -n "${listed[$name]:-}" ]] || { echo "FAIL: generated $name has no row in $EXPECT" >&2; failures=$((failures + 1)); }
done

echo "hostile corpus: $rows checks, $failures failed, peak RSS of any run $((max_seen_kb / 1024)) MB (limit $MAX_RSS_MB MB)"
[[ $failures == 0 ]]
