#!/usr/bin/env bash
# Installs fervid's dependencies from Debian's archive when missing (quiet when all is there),
# then configures and builds. Idempotent: run it again and it only rebuilds what changed.
#
#   scripts/setup.sh [--build-dir DIR] [--sanitize undefined|address|address,undefined] [--fuzz] [--without-opencv] [--no-build]
#
# --fuzz builds with clang-14 and adds the libFuzzer targets (fuzz/; needs --sanitize with address):
# CI's one sanitizer build, for the test suite and the fuzzers alike.
# --without-opencv builds the core alone (model, losses, data from CSV, training, the CLI's info /
# data / train / eval / cv / ablate), as on a GPU machine whose PyTorch brings libtorch but no OpenCV
# (and no oneDNN headers).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"
sanitize=""
do_build=1
without_opencv=0
fuzz=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$(realpath -m "$2"); shift 2 ;;
    --sanitize) sanitize="$2"; shift 2 ;;
    --without-opencv) without_opencv=1; shift ;;
    --fuzz) fuzz=1; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# Every package fervid builds, tests or benchmarks with. libopenblas0-openmp: Debian's libtorch
# is ~12x slower on small convolutions with the reference BLAS (docs: perf-notes).
packages=(
  build-essential cmake ccache git pkg-config
  libtorch-dev libopenblas0-openmp
  libdnnl-dev  # the oneDNN libtorch already uses, called directly for the face detector's graph
  libopencv-dev opencv-data libdlib-dev libdlib-data zlib1g-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev  # `fervid serve`
  libgtest-dev libbenchmark-dev
  python3-torch  # the reference in bench/ (same library from Python): speed ratios, same-weights checks
  clang-14 libclang-rt-14-dev  # the sanitizer build and its fuzzers (libFuzzer)
)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" > /tmp/fervid-apt.log 2>&1 ||
    { echo "setup: apt-get install failed; see /tmp/fervid-apt.log" >&2; tail -20 /tmp/fervid-apt.log >&2; exit 1; }
fi

# ccache: paths relative to the checkout, and the build folder left out of the hash (-g1 in the
# sanitizer build), so that another clone of the same commit hits the same cache entries.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1

[ "$do_build" -eq 1 ] || exit 0

build_type=Release
extra=()
# The sanitizer build exists to run the tests: no benchmarks there.
[ -z "$sanitize" ] || extra=(-DFERVID_BUILD_BENCH=OFF)
# ... and without oneDNN's headers, as there: TF.js graphs then run on libtorch.
[ "$without_opencv" -eq 0 ] || extra=(-DFERVID_WITH_OPENCV=OFF -DFERVID_BUILD_BENCH=OFF -DFERVID_WITH_DNNL=OFF)
if [ "$fuzz" -eq 1 ]; then
  [[ "$sanitize" == *address* ]] || { echo "setup.sh: --fuzz needs --sanitize with address" >&2; exit 2; }
  extra+=(-DFERVID_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14)
fi
jobs=$(nproc)
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DFERVID_SANITIZE="$sanitize" "${extra[@]}" > "$build_dir.configure.log" 2>&1 ||
  { cat "$build_dir.configure.log" >&2; exit 1; }
echo "setup: building in $build_dir ($jobs jobs)"
cmake --build "$build_dir" -j "$jobs" 2>&1 | grep -E 'error|warning|Error|Linking CXX executable' || true
test "${PIPESTATUS[0]}" -eq 0 || { echo "setup: build failed" >&2; exit 1; }
