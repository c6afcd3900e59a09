#!/usr/bin/env python3
"""Records the golden outputs of the shipped model (tests/golden/expected.json).

Run after replacing models/fervid-default.fervid, from the repository root, with a built CLI:
    python3 scripts/record_golden.py [--fervid build/fervid]
It runs `fervid predict` on the demo image (saving each face as the network sees it into
tests/golden/crops/), then on those crops with --whole-image, and writes the labels and
probabilities the golden tests compare against (within 1e-3). Review the diff before committing.
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fervid", default=os.path.join(ROOT, "build", "fervid"))
    a = ap.parse_args()
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
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".expected.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    print(f"wrote {path}: {len(faces)} face(s) on the demo image, {len(crop_files)} crop(s)")


if __name__ == "__main__":
    main()
