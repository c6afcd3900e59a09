#!/usr/bin/env bash
# Trains the paper-size configuration (mcsa, width 1.0, input 224) on FER2013 on a lent GPU
# machine (PyTorch with CUDA, CMake, nvcc; no OpenCV, no ../shared, no network), evaluates the
# model chosen on PublicTest on PrivateTest (single crop, flip, ten-crop), and leaves the results
# in $OUT. Core-only build: -DFERVID_WITH_OPENCV=OFF, target fervid_cli alone.
#
# 1. Here (this machine), once per session, from the repository root:
#      scripts/gpu_train.sh stage [FER2013_CSV_GZ [TRAIN_ROWS|none]]
#    copies into .gpu-deps/ what the build needs beyond PyTorch (CLI11, fmt, nlohmann_json and
#    zlib's headers, from this Debian, ~3 MB) and writes .gpu-data/fer2013-train<N>-public.csv.xz:
#    a seeded TRAIN_ROWS (default 16000) of Training plus all of PublicTest, which is what fits
#    (all of FER2013 is ~75 MB as CSV.xz; see below). Both folders must be ignored
#    (echo /.gpu-deps/ >> .git/info/exclude; same for /.gpu-data/) and named in `carry`.
# 2. On the device machine (the `run` tool, timeout_s 600):
#      command: scripts/gpu_train.sh .gpu-data/fer2013-train16000-public.csv.xz [more train flags]
#      carry:   [".gpu-deps", ".gpu-data"]
#    Environment (all optional): BUDGET_S (seconds this script may take in all, default 540; the
#    training budget is what the build leaves, less a reserve for evaluation), EPOCHS (upper
#    bound, default 30), BATCH (32), LR (0.01), THREADS (8), BUILD (/tmp/fervid-gpu-build).
#
# $OUT receives at most 8 files (the tool's limit), none over 16 MiB: train.log (build, device,
# progress, command), config.json, metrics.jsonl, eval.json (PrivateTest, when the CSV holds it;
# else score the model here on CPU), and best.fervid (~45 MB at width 1.0) split into parts
# of 16,000,000 bytes (best.fervid.part00 ...; rebuild with `cat best.fervid.part* > best.fervid`
# and check it against the sha256 printed at the end of train.log).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

if [[ "${1:-}" == "stage" ]]; then
  src=${2:-${FERVID_DATA:-../shared/data}/fer2013/fer2013.csv.gz}
  train_rows=${3:-16000}
  deps=.gpu-deps
  rm -rf "$deps"
  mkdir -p "$deps/include" "$deps/lib" "$deps/share/cmake" "$deps/lib/x86_64-linux-gnu/cmake"
  # Header-only libraries with their CMake package files (they locate themselves by path).
  cp -r /usr/include/CLI /usr/include/nlohmann "$deps/include/"
  cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$deps/share/cmake/"
  # fmt: headers, package files and the shared library (x86-64, C++11 ABI, as PyTorch's wheels).
  cp -r /usr/include/fmt "$deps/include/"
  cp -r /usr/lib/x86_64-linux-gnu/cmake/fmt "$deps/lib/x86_64-linux-gnu/cmake/"
  fmt_so=$(readlink -f /usr/lib/x86_64-linux-gnu/libfmt.so)
  cp "$fmt_so" "$deps/lib/x86_64-linux-gnu/"
  cp "$fmt_so" "$deps/lib/x86_64-linux-gnu/$(objdump -p "$fmt_so" | awk '/SONAME/ {print $2}')"
  # zlib: headers and the library under the names FindZLIB and the loader look for (plain copies:
  # symbolic links travel as links only).
  cp /usr/include/zlib.h /usr/include/zconf.h "$deps/include/"
  z_so=$(readlink -f /usr/lib/x86_64-linux-gnu/libz.so)
  cp "$z_so" "$deps/lib/libz.so"
  cp "$z_so" "$deps/lib/libz.so.1"
  du -sh "$deps"
  if [[ "$train_rows" == "none" ]]; then exit 0; fi
  # The data. All of FER2013 does not travel: as CSV.xz it is ~75 MB (~2.1 kB a row), its raw
  # pixels alone xz to ~64 MB, and the working tree (~15 MB) and this folder share the 64 MiB.
  # So: a seeded random `train_rows` of Training plus all of PublicTest (checkpoint choice);
  # PrivateTest stays here, where the returned model is scored (see the end of this script).
  mkdir -p .gpu-data
  out=.gpu-data/fer2013-train${train_rows}-public.csv.xz
  if [[ "$src" == *.gz ]]; then zcat "$src"; else cat "$src"; fi |
    python3 -c '
import random, sys
n = int(sys.argv[1])
header = sys.stdin.readline()
train, public = [], []
for line in sys.stdin:
    usage = line.rstrip("\r\n").rsplit(",", 1)[-1]
    (train if usage == "Training" else public if usage == "PublicTest" else []).append(line)
random.Random(1).shuffle(train)
sys.stdout.write(header)
sys.stdout.writelines(train[:n])
sys.stdout.writelines(public)
print(f"{min(n, len(train))} Training + {len(public)} PublicTest rows", file=sys.stderr)
' "$train_rows" | xz -6 -T0 > "$out"
  du -sh "$out"
  echo "staged; carry [\"$deps\", \".gpu-data\"] and pass $out (what travels must stay under 64 MiB)"
  exit 0
fi

csv_xz=${1:?usage: scripts/gpu_train.sh FER2013.csv.xz [fervid train flags...]  (or: scripts/gpu_train.sh stage)}
shift
: "${OUT:?OUT must name the folder that receives the results}"
mkdir -p "$OUT"
budget_s=${BUDGET_S:-540}
build=${BUILD:-/tmp/fervid-gpu-build}
work=/tmp/fervid-gpu-work
deps="$here/.gpu-deps"
log="$OUT/train.log"
exec > >(tee -a "$log") 2>&1

echo "== $(date -u +%FT%TZ) gpu_train.sh on $(hostname)"
nvidia-smi -L || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')

# ---- configure and build the core and the CLI (no OpenCV, no tests, no benchmarks) ----------
prefix="$torch_prefix"
extra=()
if [[ -d "$deps" ]]; then  # staged packages, named directly (no reliance on CMake's search of lib/<arch>)
  prefix="$torch_prefix;$deps"
  extra+=(-DCLI11_DIR="$deps/share/cmake/CLI11" -Dnlohmann_json_DIR="$deps/share/cmake/nlohmann_json"
          -Dfmt_DIR="$deps/lib/x86_64-linux-gnu/cmake/fmt")
  [[ -f "$deps/include/zlib.h" ]] && extra+=(-DZLIB_ROOT="$deps")
fi
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
if ! command -v nvcc > /dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH=/usr/local/cuda/bin:$PATH; fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # Hopper; spares Torch's CMake the detection
t0=$SECONDS
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DFERVID_WITH_OPENCV=OFF \
  -DFERVID_BUILD_TESTS=OFF -DFERVID_BUILD_BENCH=OFF -DFERVID_BUILD_SERVER=OFF \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--no-as-needed" "${extra[@]}"
# --no-as-needed: keeps libtorch_cuda.so linked although no symbol of it is named, else
# torch::cuda::is_available() is false in the program.
cmake --build "$build" --target fervid_cli -j "$(nproc)"
fervid="$build/fervid"
export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:$deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$fervid" --version
echo "== build: $((SECONDS - t0)) s"

# ---- data ------------------------------------------------------------------------------------
mkdir -p "$work"
csv="$work/fer2013.csv"
case "$csv_xz" in
  *.xz) xz -dc "$csv_xz" > "$csv" ;;
  *.gz) csv="$csv_xz" ;;
  *) csv="$csv_xz" ;;
esac
export FERVID_CACHE="$work/cache"

# ---- train -----------------------------------------------------------------------------------
# The training budget: what is left of BUDGET_S after the build, less ~3 minutes for the epoch
# that overruns --minutes (it stops after the epoch that passes it) and for the evaluations.
left=$((budget_s - SECONDS - 180))
if ((left < 60)); then
  echo "gpu_train.sh: only ${left} s left for training after the build; raise BUDGET_S" >&2
  exit 1
fi
minutes=$(awk -v s="$left" 'BEGIN { printf "%.1f", s / 60 }')
run="$work/run"
rm -rf "$run"
set -x
"$fervid" --threads "${THREADS:-8}" train --data "$csv" --out "$run" --device cuda \
  --variant mcsa --width 1 --input 224 --batch "${BATCH:-32}" --lr "${LR:-0.01}" \
  --epochs "${EPOCHS:-30}" --minutes "$minutes" --seed 1 --log-every 100 "$@"
set +x
cp "$run/config.json" "$run/metrics.jsonl" "$OUT/"
cat "$run/command.txt"

# ---- evaluate the model chosen on PublicTest, on PrivateTest (when the data holds it) ----------
if grep -q -m1 ',PrivateTest' "$csv"; then
  for tta in none flip tencrop; do
    "$fervid" eval --model "$run/best.fervid" --data "$csv" --split PrivateTest --tta "$tta" --device cuda \
      --json --out "$work/eval-$tta" > "$work/eval-$tta.json"
  done
  python3 - "$work" "$OUT/eval.json" <<'EOF'
import json, sys
work, out = sys.argv[1], sys.argv[2]
reports = {t: json.load(open(f"{work}/eval-{t}.json")) for t in ("none", "flip", "tencrop")}
json.dump(reports, open(out, "w"), indent=2)
for t, r in reports.items():
    m = r["metrics"]
    print(f"PrivateTest tta={t}: accuracy {100 * m['accuracy']:.2f}%  macro-F1 {m['macro_f1']:.4f}")
EOF
else
  echo "no PrivateTest rows in $csv_xz: score the model where the data is, e.g."
  echo "  cat best.fervid.part* > best.fervid && fervid eval --model best.fervid --data fer2013.csv.gz --split PrivateTest --tta flip"
fi
split -b 16000000 -d "$run/best.fervid" "$OUT/best.fervid.part"
sha256sum "$run/best.fervid"
echo "== done in $SECONDS s"
