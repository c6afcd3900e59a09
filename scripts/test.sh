#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds and runs the whole test suite with ctest.
# Data-backed tests (ctest label `data`) run when FERVID_DATA points at the shared datasets.
#
#   scripts/test.sh [--sanitize undefined|address|address,undefined] [extra ctest args...]
#     (the sanitizer build is clang-14's, with the fuzzers of fuzz/: scripts/fuzz.sh runs them)
#   scripts/test.sh --without-opencv [extra ctest args...]   # the core alone (build-core-only/)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"
setup_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build_dir="$root/build-sanitize"
  setup_args=(--sanitize "$2" --build-dir "$build_dir")
  [[ "$2" != *address* ]] || setup_args+=(--fuzz)
  shift 2
elif [ "${1:-}" = "--without-opencv" ]; then
  build_dir="$root/build-core-only"
  setup_args=(--without-opencv --build-dir "$build_dir")
  shift
fi
bash "$root/scripts/setup.sh" "${setup_args[@]}"
label_filter=()
if [ -n "${FERVID_DATA:-}" ]; then
  export FERVID_DATA=$(realpath "$FERVID_DATA")
  echo "test: FERVID_DATA=$FERVID_DATA"
else
  label_filter=(-LE data)
  echo "test: FERVID_DATA is not set: the tests labelled 'data' are left out (set it to ../shared/data)"
fi
# ASan: libtorch's own allocations are not instrumented; leak checking at exit reports
# libtorch's global state, which is not ours (see README, "Sanitizers").
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# ctest runs tests side by side on every core, and each test's libtorch uses every core too:
# with OpenMP's default busy-waiting, oversubscribed threads spin against each other and a
# training test ran 10-15x slower (measured: 229 s -> 24 s for four CLI tests). Passive waiting
# costs nothing measurable on its own.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
cd "$build_dir"
ctest -j "$(nproc)" --output-on-failure --timeout 900 "${label_filter[@]}" "$@"
