#!/usr/bin/env bash
# The reports of the model chosen to ship (after eval_run.sh chose it): PublicTest and PrivateTest
# with every test-time augmentation, FER+ majority labels of both, the xds crop sets whole, and
# each calibrated report again at T = 1 (eval-*-uncalibrated) for the card's before/after ECE.
# This is the one reading of PrivateTest: run it once, for the final choice.
#   FERVID_DATA=../shared/data bash experiments/eval_final.sh experiments/<run> [fervid binary]
set -euo pipefail
run=${1:?usage: eval_final.sh RUN_DIR [FERVID]}
fervid=${2:-build/fervid}
data=${FERVID_DATA:?set FERVID_DATA to the shared datasets}
model="$run/best.fervid"
[[ -f $model ]] || { echo "eval_final.sh: $model does not exist" >&2; exit 1; }
fer="$data/fer2013/fer2013.csv.gz"
ev() { "$fervid" --threads 2 eval --model "$model" "$@"; }
for split in public private; do
  name=$([[ $split == public ]] && echo PublicTest || echo PrivateTest)
  for tta in none flip tencrop; do
    ev --data "$fer" --split "$name" --ferplus none --tta "$tta" --out "$run/eval-$split-$tta"
  done
  ev --data "$fer" --split "$name" --ferplus "$data/fer2013/fer2013new.csv" --out "$run/eval-ferplus-$split-none"
done
ev --data "$fer" --split PrivateTest --ferplus none --temperature 1 --out "$run/eval-private-none-uncalibrated"
for set in diffusionfer muxspace; do
  ev --data "$data/xds/$set" --whole-image --out "$run/eval-xds-$set"
  ev --data "$data/xds/$set" --whole-image --temperature 1 --out "$run/eval-xds-$set-uncalibrated"
done
python3 - "$run" <<'PY'
import json, os, sys
run = sys.argv[1]
for name in sorted(os.listdir(run)):
    p = os.path.join(run, name, "report.json")
    if name.startswith("eval") and os.path.isfile(p):
        r = json.load(open(p))
        m = r["metrics"]
        print(f"{name:36s} T {r['temperature']:.3f}  acc {100*m['accuracy']:.2f}  UAR {100*m['uar']:.2f}  "
              f"macro-F1 {m['macro_f1']:.3f}  ECE {m['ece']:.4f}")
PY
