#!/usr/bin/env python3
"""End to end on the xds sets (detect, crop with a recipe, classify), with `fervid eval`.

    FERVID_DATA=../shared/data python3 experiments/detector/xds_end_to_end.py [--fervid build/fervid]
        [--model M] [--out DIR] [--recipes NAME ...]

For each set and recipe it runs `fervid eval --format photos --split all` (or `--format folder`
for the whole image, no detection) and writes eval-<set>-<recipe>/report.json here, then
xds-end-to-end.json and a Markdown table on stdout. An image in which no face is found is a
counted skip for `fervid eval` (its metrics cover the faces found); here it also counts as wrong,
so accuracy and UAR (mean per-class recall) are over every image of the set. The classifier is
the shipped one throughout; only how the face is found and cut changes.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECIPES = {
    "haar-margin0.1": ["--format", "photos", "--detector", "haar", "--margin", "0.1", "--offset-y", "0"],
    "blazeface-margin0.1": ["--format", "photos", "--detector", "blazeface", "--margin", "0.1", "--offset-y", "0"],
    "blazeface-calibrated": ["--format", "photos"],  # the shipped model's recipe: margin 0.178, offset -0.049
    "whole-image": ["--format", "folder"],
}
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp")


def images_per_class(folder):
    counts = {}
    for c in sorted(os.listdir(folder)):
        d = os.path.join(folder, c)
        if os.path.isdir(d):
            counts[c] = sum(1 for f in os.listdir(d) if f.lower().endswith(IMAGE_EXT))
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", default=os.path.join(ROOT, "build", "fervid"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "fervid-default.fervid"))
    ap.add_argument("--out", default=HERE, help="where eval-<set>-<recipe>/ and xds-end-to-end.json go")
    ap.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = os.environ.get("FERVID_DATA")
    if not data:
        sys.exit("xds_end_to_end: set FERVID_DATA to the shared datasets (../shared/data)")
    results = {"model": os.path.relpath(args.model, ROOT), "sets": {}}
    for name in ("diffusionfer", "muxspace"):
        folder = os.path.join(data, "xds", name)
        totals = images_per_class(folder)
        results["sets"][name] = {"images": sum(totals.values()), "per_class_images": totals, "recipes": {}}
        for recipe in args.recipes:
            flags = RECIPES[recipe]
            out = os.path.join(args.out, f"eval-{name}-{recipe}")
            cmd = [args.fervid, "eval", "--model", args.model, "--data", folder, "--split", "all", "--out", out] + flags
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"xds_end_to_end: {' '.join(cmd)} failed:\n{p.stderr}")
            with open(os.path.join(out, "report.json")) as f:
                m = json.load(f)["metrics"]
            correct, recalls = 0, []
            for c, n in totals.items():
                pc = m["per_class"][c]
                hits = round(pc["recall"] * pc["support"])
                correct += hits
                recalls.append(hits / n)
            n_all = sum(totals.values())
            results["sets"][name]["recipes"][recipe] = {
                "command": " ".join(os.path.relpath(x, ROOT) if x.startswith(ROOT) else x for x in cmd),
                "faces_found": m["samples"],
                "found_share": m["samples"] / n_all,
                "accuracy_end_to_end": correct / n_all,
                "uar_end_to_end": sum(recalls) / len(recalls),
                "accuracy_on_found": m["accuracy"],
                "macro_f1_on_found": m["macro_f1"],
            }
    target = os.path.join(args.out, "xds-end-to-end.json")
    with open(target + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    os.replace(target + ".tmp", target)
    print("| set | recipe | faces found | accuracy | UAR |")
    print("|---|---|---|---|---|")
    for name, s in results["sets"].items():
        for recipe, r in s["recipes"].items():
            print(f"| {name} | {recipe} | {r['faces_found']} of {s['images']} ({100 * r['found_share']:.1f}%) | "
                  f"{100 * r['accuracy_end_to_end']:.1f}% | {100 * r['uar_end_to_end']:.1f}% |")


if __name__ == "__main__":
    main()
