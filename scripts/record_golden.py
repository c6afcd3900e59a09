#!/usr/bin/env python3
"""Records the golden outputs of the shipped model (tests/golden/expected.json).

Run after replacing models/fervid-default.fervid, from the repository root, with a built CLI:
    FERVID_DATA=../shared/data python3 scripts/record_golden.py [--fervid build/fervid]
It runs `fervid predict` on the demo image (saving each face as the network sees it into
tests/golden/crops/), then on those crops with --whole-image, and writes the labels and
probabilities the golden tests compare against (within 1e-3).

With FERVID_DATA (or --fer2013 PATH) it also records one FER2013 PrivateTest row per expression:
for each class, the first PrivateTest row (in file order) that the model predicts as that class
and whose label is that class too (the first predicted as it, if none is labelled so). Only the row
indices, labels and the model's probabilities are stored, never pixels: the dataset stays out of
the repository; tests/golden/test_golden_data.cpp reads the rows from FERVID_DATA. Each row is
classified through `fervid predict --whole-image` on a temporary 48x48 PGM (outside the
repository), which is the classifier on the row's own pixels.

Review the diff before committing.
"""
import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import struct
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def predict(fervid, args):
    p = subprocess.run([fervid, "--threads", "1", "predict", "--json"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"record_golden: fervid predict {' '.join(args)} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def read_gray_png(path):
    """An 8-bit gray, non-interlaced PNG (what OpenCV writes for a CV_8UC1 crop) as rows of ints."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"record_golden: {path}: not a PNG")
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color != 0 or interlace != 0:
                sys.exit(f"record_golden: {path}: expected an 8-bit gray PNG")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], [0] * w
    for y in range(h):
        f, line = raw[y * (w + 1)], list(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return rows


def write_pgm(path, rows):
    with open(path, "wb") as fh:
        fh.write(f"P5\n{len(rows[0])} {len(rows)}\n255\n".encode())
        fh.write(bytes(v for r in rows for v in r))


def variants(rows):
    """Fixed variations of a face crop: the network must give the recorded answer on each."""
    h, w = len(rows), len(rows[0])
    clamp = lambda v: max(0, min(255, int(round(v))))
    return {
        "mirror": [r[::-1] for r in rows],
        "brighter": [[clamp(v + 40) for v in r] for r in rows],
        "low-contrast": [[clamp(128 + 0.6 * (v - 128)) for v in r] for r in rows],
        "shifted": [[rows[min(h - 1, y + 3)][min(w - 1, x + 3)] for x in range(w)] for y in range(h)],
    }


CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # FER2013's emotion order


def private_test_rows(path):
    """(row index from 0 after the header, emotion, 48x48 pixel rows) of every PrivateTest row."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as fh:
        header = fh.readline().strip()
        if header != "emotion,pixels,Usage":
            sys.exit(f"record_golden: {path}: unexpected header {header!r}")
        for i, line in enumerate(fh):
            emotion, pixels, usage = line.strip().split(",")
            if usage != "PrivateTest":
                continue
            v = [int(x) for x in pixels.split()]
            if len(v) != 48 * 48:
                sys.exit(f"record_golden: {path}: row {i}: {len(v)} pixels")
            yield i, int(emotion), [v[y * 48:(y + 1) * 48] for y in range(48)]


def record_fer2013(fervid, model, path):
    rows = list(private_test_rows(path))
    with tempfile.TemporaryDirectory(prefix="fervid-golden-") as tmp:
        files = []
        for i, _, pixels in rows:
            f = os.path.join(tmp, f"row{i}.pgm")
            write_pgm(f, pixels)
            files.append(f)
        got = predict(fervid, ["--model", model, "--whole-image"] + files)["images"]
    if len(got) != len(rows):
        sys.exit(f"record_golden: {len(rows)} rows but {len(got)} predictions")
    picked = []
    for c, name in enumerate(CLASSES):
        predicted = [(r, g["faces"][0]) for r, g in zip(rows, got) if g["faces"][0]["label"] == name]
        if not predicted:
            sys.exit(f"record_golden: the model predicts no PrivateTest row as {name}")
        agreed = [(r, f) for r, f in predicted if r[1] == c]
        (i, emotion, _), face = (agreed or predicted)[0]
        picked.append({"row": i, "usage": "PrivateTest", "emotion": CLASSES[emotion], "label": name,
                       "probs": face["probs"]})
    return {"data": "fer2013/fer2013.csv.gz",
            "note": "row = index of the data row in the CSV (0 = the first row after the header); "
                    "per class, the first PrivateTest row labelled and predicted as that class",
            "rows": picked}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fervid", default=os.path.join(ROOT, "build", "fervid"))
    ap.add_argument("--fer2013", default=None,
                    help="FER2013 CSV (default: $FERVID_DATA/fer2013/fer2013.csv.gz when FERVID_DATA is set)")
    a = ap.parse_args()
    fer = a.fer2013
    if fer is None and os.environ.get("FERVID_DATA"):
        fer = os.path.join(os.environ["FERVID_DATA"], "fer2013", "fer2013.csv.gz")
    model = os.path.join(ROOT, "models", "fervid-default.fervid")
    image = os.path.join(ROOT, "examples", "astronaut.png")
    crops = os.path.join(ROOT, "tests", "golden", "crops")
    os.makedirs(crops, exist_ok=True)
    for f in os.listdir(crops):
        os.remove(os.path.join(crops, f))
    demo = predict(a.fervid, ["--model", model, "--crops", crops, image])
    faces = demo["images"][0]["faces"]
    if not faces:
        sys.exit("record_golden: no face found in the demo image")
    for f in sorted(os.listdir(crops)):
        rows = read_gray_png(os.path.join(crops, f))
        for name, v in variants(rows).items():
            write_pgm(os.path.join(crops, f[:-4] + "-" + name + ".pgm"), v)
    crop_files = sorted(os.listdir(crops))
    on_crops = predict(a.fervid, ["--model", model, "--whole-image"] + [os.path.join(crops, f) for f in crop_files])
    with open(model, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    out = {
        "model": "models/fervid-default.fervid",
        "model_sha256": sha,
        "tolerance": 1e-3,
        "demo_image": {"path": "examples/astronaut.png", "faces": faces},
        "crops": [{"path": "tests/golden/crops/" + f, "label": e["faces"][0]["label"], "probs": e["faces"][0]["probs"]}
                  for f, e in zip(crop_files, on_crops["images"])],
    }
    path = os.path.join(ROOT, "tests", "golden", "expected.json")
    if fer:
        out["fer2013_private_test"] = record_fer2013(a.fervid, model, fer)
    elif os.path.exists(path):  # keep what was recorded with the data
        with open(path) as fh:
            old = json.load(fh)
        if "fer2013_private_test" in old and old.get("model_sha256") == sha:
            out["fer2013_private_test"] = old["fer2013_private_test"]
        elif "fer2013_private_test" in old:
            print("record_golden: the model changed and FERVID_DATA is unset: the FER2013 rows are dropped; "
                  "rerun with FERVID_DATA", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".expected.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    n_fer = len(out.get("fer2013_private_test", {}).get("rows", []))
    print(f"wrote {path}: {len(faces)} face(s) on the demo image, {len(crop_files)} crop(s), {n_fer} FER2013 row(s)")


if __name__ == "__main__":
    main()
