#!/usr/bin/env bash
# The reports every issue-12 recipe run is chosen on: FER2013 PublicTest with FER2013's own
# labels, and the cross-dataset crop sets of $FERVID_DATA/xds scored whole (no detection).
# PrivateTest is not read here: it is read once, for the final choice.
#   FERVID_DATA=../shared/data bash experiments/eval_run.sh experiments/<run> [fervid binary]
set -euo pipefail
run=${1:?usage: eval_run.sh RUN_DIR [FERVID]}
fervid=${2:-build/fervid}
data=${FERVID_DATA:?set FERVID_DATA to the shared datasets}
model="$run/best.fervid"
[[ -f $model ]] || { echo "eval_run.sh: $model does not exist" >&2; exit 1; }
"$fervid" --threads 2 eval --model "$model" --data "$data/fer2013/fer2013.csv.gz" --split PublicTest \
  --ferplus none --out "$run/eval-public-none"
for set in diffusionfer muxspace; do
  "$fervid" --threads 2 eval --model "$model" --data "$data/xds/$set" --whole-image --out "$run/eval-xds-$set"
done
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
for name in ["eval-public-none", "eval-xds-diffusionfer", "eval-xds-muxspace"]:
    m = json.load(open(f"{run}/{name}/report.json"))["metrics"]
    rec = {k: v["recall"] for k, v in m["per_class"].items()}
    print(f"{name:24s} acc {100*m['accuracy']:.2f}  UAR {100*m['uar']:.2f}  "
          f"macro-F1 {m['macro_f1']:.3f}  ECE {m['ece']:.4f}  "
          + " ".join(f"{k} {v:.3f}" for k, v in rec.items()))
PY
