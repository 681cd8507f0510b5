# Shared helpers for the end-to-end test scripts (sourced, not run). Plain bash + awk: no jq, no python.
# Every script takes the same named arguments, passed by tests/e2e/CMakeLists.txt:
#   --qforge BIN --referee BIN --shared DIR --work DIR [--fixture BIN] [--f32 GGUF] [--pieces N]
set -euo pipefail

QFORGE="" REFEREE="" SHARED="" WORK="" FIXTURE="" F32_GGUF="" PIECES=400
while [[ $# -gt 0 ]]; do
  case "$1" in
    --qforge) QFORGE=$2; shift 2 ;;
    --referee) REFEREE=$2; shift 2 ;;
    --shared) SHARED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --fixture) FIXTURE=$2; shift 2 ;;
    --f32) F32_GGUF=$2; shift 2 ;;
    --pieces) PIECES=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n "$WORK" ]] || { echo "--work is required" >&2; exit 2; }
mkdir -p "$WORK"

MODELS="$SHARED/models"
TEXT="$SHARED/data/tinystories/tinystories_valid_head.txt"
LILY_PARK="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
LILY_SUN="Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine."

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# run CMD...: echo and run a command, failing the test with its output if it fails.
run() {
  note "$*"
  "$@" || fail "command failed (exit $?): $*"
}

# json_num JSON KEY: the number stored under KEY in a one-line JSON object, or fail.
json_num() {
  local v
  v=$(printf '%s\n' "$1" | sed -n "s/.*\"$2\": *\([-+0-9.eE]*\).*/\1/p")
  [[ "$v" =~ ^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]] || fail "no finite number \"$2\" in: $1"
  echo "$v"
}

# expect_close A B TOL WHAT: |A - B| <= TOL.
expect_close() {
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }' ||
    fail "$4: $1 vs $2 differ by more than $3"
  note "ok: $4: $1 vs $2 (|diff| = $(awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.3g", d }') <= $3)"
}

# expect_text_prefix JSON PREFIX: the generated "text" starts with PREFIX (which needs no JSON escaping).
expect_text_prefix() {
  [[ "$1" == *"\"text\": \"$2"* ]] || fail "generated text does not start with \"$2\": $1"
  note "ok: generation starts with \"$2\""
}

# referee_nll GGUF [extra args]: the referee's JSON for the README protocol on the TinyStories sample.
referee_nll() {
  local model=$1; shift
  note "qforge_referee nll $model $*" >&2
  "$REFEREE" nll "$model" --text "$TEXT" --split-blank-lines "$@" || fail "referee nll failed on $model"
}

# referee_generate GGUF [extra args]: the referee's greedy continuation of "Once upon a time". (later args win, e.g. -n 100)
referee_generate() {
  local model=$1; shift
  "$REFEREE" generate "$model" --prompt "Once upon a time" -n 40 "$@" || fail "referee generate failed on $model"
}
