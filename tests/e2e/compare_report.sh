#!/usr/bin/env bash
# qforge compare on both bundled llama2.c models (stories260K, BabyLlama) with the default types and small
# settings, then the HTML report rendered by headless Chromium: the screenshot is a non-trivial PNG and the
# rendered DOM holds an <svg> with at least one plotted <circle> and a <table> with one row per type.
# Chromium is required (scripts/install-deps.sh installs it): without it the test FAILS, it does not skip.
source "$(dirname "$0")/common.sh"

# The default --types of qforge compare (tools/qforge/compare.cc).
TYPES=(Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K)

CHROMIUM=""
for c in chromium chromium-browser; do
  if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
done
[[ -n "$CHROMIUM" ]] ||
  fail "chromium not found on PATH: it renders report.html; install it with scripts/install-deps.sh (apt package chromium)"
note "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"

PROFILES=()
cleanup() { for d in "${PROFILES[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

# chromium_run OUT_LOG ARGS...: headless Chromium with a fresh profile and no network chatter; bounded in time.
chromium_run() {
  local log=$1; shift
  local profile
  profile=$(mktemp -d)
  PROFILES+=("$profile")
  timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --user-data-dir="$profile" "$@" 2>"$log"
}

# check_report NAME SOURCE: runs compare on SOURCE into $WORK/NAME and checks the rendered report.
check_report() {
  local name=$1 source=$2
  local dir="$WORK/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  [[ -s "$source" ]] || fail "missing model $source"
  local cmd=("$QFORGE" compare "$source" --text "$TEXT" -o "$dir" -c 128 --chunks 20 -t 1)
  note "${cmd[*]}"
  local t0=$SECONDS
  "${cmd[@]}" >"$dir/compare.log" 2>&1 || { cat "$dir/compare.log" >&2; fail "qforge compare failed on $source"; }
  cat "$dir/compare.log"
  note "compare on $name took $((SECONDS - t0)) s"
  [[ -s "$dir/report.json" ]] || fail "$name: no report.json"
  [[ -s "$dir/report.html" ]] || fail "$name: no report.html"

  local html
  html=$(cd "$dir" && pwd)/report.html
  local png="$dir/report.png" dom="$dir/report.dom.html"
  note "chromium --screenshot=$png --window-size=1200,1600 file://$html"
  chromium_run "$dir/chromium-screenshot.log" --screenshot="$png" --window-size=1200,1600 "file://$html" ||
    { cat "$dir/chromium-screenshot.log" >&2; fail "$name: chromium --screenshot failed"; }
  [[ -f "$png" ]] || { cat "$dir/chromium-screenshot.log" >&2; fail "$name: chromium wrote no $png"; }
  local size
  size=$(stat -c %s "$png")
  [[ "$size" -gt 8000 ]] || fail "$name: screenshot $png is only $size bytes"
  [[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] || fail "$name: $png is not a PNG"
  note "ok: $name: screenshot $png, $size bytes"

  note "chromium --dump-dom file://$html"
  chromium_run "$dir/chromium-dom.log" --dump-dom "file://$html" >"$dom" ||
    { cat "$dir/chromium-dom.log" >&2; fail "$name: chromium --dump-dom failed"; }
  grep -q '<svg' "$dom" || fail "$name: rendered DOM has no <svg> element ($dom)"
  local circles
  circles=$(grep -o '<circle' "$dom" | wc -l)
  [[ "$circles" -ge 1 ]] || fail "$name: the plot has no point (<circle>) ($dom)"
  # Types that give identical files share a point, so at most one point per type.
  [[ "$circles" -le ${#TYPES[@]} ]] || fail "$name: $circles points for ${#TYPES[@]} types ($dom)"
  grep -q '<table' "$dom" || fail "$name: rendered DOM has no <table> ($dom)"
  local rows
  rows=$(grep -o '<tr[^>]*><td>[^<]*</td>' "$dom" | sed 's/.*<td>\(.*\)<\/td>/\1/')
  local nrows
  nrows=$(printf '%s\n' "$rows" | grep -c . || true)
  [[ "$nrows" -eq ${#TYPES[@]} ]] || fail "$name: table has $nrows data rows, want ${#TYPES[@]}: $(echo $rows)"
  for t in "${TYPES[@]}"; do
    printf '%s\n' "$rows" | grep -qx "$t" || fail "$name: no table row for $t (rows: $(echo $rows))"
  done
  note "ok: $name: <svg> with $circles points, <table> with rows $(echo $rows)"
}

check_report stories260K "$MODELS/stories260K/stories260K.bin"
check_report babyllama "$MODELS/babyllama-tok105/babyllama105.bin"
note "ok: compare reports render for both models"
