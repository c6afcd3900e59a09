#!/usr/bin/env bash
# Runs the libFuzzer targets of the sanitizer build (scripts/test.sh --sanitize address,undefined
# builds them with clang-14, ASan + UBSan), each for a fixed time, two at a time, from seeds
# written now by fuzz_make_seeds (one small input of each format; the CSV seeds are made here, not
# kept in the repository) and the committed inputs of fuzz/corpus/<target>/ (regressions), copied:
# the repository's corpus is not changed.
#
#   scripts/fuzz.sh [--seconds 60] [--build-dir build-sanitize] [--jobs 2] [target ...]
#
# Prints one line per target (seconds, executions, corpus size, result) and writes them to
# <build-dir>/fuzz-run/results.json; a crash, leak, timeout or out-of-memory leaves its input under
# <build-dir>/fuzz-run/artifacts/ and makes the exit status 1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
build_dir="$root/build-sanitize"
jobs=2
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build_dir=$(realpath -m "$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for exe in "$build_dir"/fuzz/fuzz_*; do
    t=$(basename "$exe")
    [ -x "$exe" ] && [ "$t" != fuzz_make_seeds ] && targets+=("$t")
  done
fi
out="$build_dir/fuzz-run"
rm -rf "$out"
mkdir -p "$out/artifacts"
"$build_dir/fuzz/fuzz_make_seeds" "$out/seeds" > /dev/null
# libtorch's and OpenCV's process-wide allocations are theirs: leaks are checked per input
# (libFuzzer's own check), not in the state left at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

run_one() {
  local t=$1 exe="$build_dir/fuzz/$t"
  if [ ! -x "$exe" ]; then
    echo "{\"target\": \"$t\", \"result\": \"not built\"}" > "$out/$t.json"
    return
  fi
  local corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  [ ! -d "$out/seeds/$t" ] || cp -r "$out/seeds/$t/." "$corpus/"
  [ ! -d "$root/fuzz/corpus/$t" ] || cp -r "$root/fuzz/corpus/$t/." "$corpus/"
  local status=0
  "$exe" "$corpus" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -max_len=262144 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" > "$out/$t.log" 2>&1 || status=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$' || echo 0)
  local files
  files=$(find "$corpus" -type f | wc -l)
  local result=ok
  [ "$status" -eq 0 ] || result="failed (exit $status; see $out/$t.log)"
  printf '{"target": "%s", "seconds": %s, "executions": %s, "corpus_files": %s, "result": "%s"}\n' \
    "$t" "$seconds" "${execs:-0}" "$files" "$result" > "$out/$t.json"
}

echo "fuzz: ${#targets[@]} target(s), $seconds s each, $jobs at a time (logs in $out)"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
failed=0
{
  echo "["
  first=1
  for t in "${targets[@]}"; do
    [ $first -eq 1 ] || echo ","
    first=0
    cat "$out/$t.json"
  done
  echo "]"
} > "$out/results.json"
for t in "${targets[@]}"; do
  line=$(cat "$out/$t.json")
  echo "fuzz: $line"
  [[ "$line" == *'"result": "ok"'* ]] || failed=1
done
ls "$out/artifacts" | grep -q . && { echo "fuzz: inputs that failed: $out/artifacts/" >&2; failed=1; }
exit $failed
