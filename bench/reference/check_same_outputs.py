#!/usr/bin/python3
"""Runs a .fervid model file through the Python reference (fervid_ref.py) and, optionally,
through fervid itself (fervid_dump_logits), and compares logits and embeddings.

  # Python's logits for a model file, as JSON (deterministic input, or --input FILE)
  /usr/bin/python3 bench/reference/check_same_outputs.py experiments/x/best.fervid

  # the same beside fervid's: exit 1 unless max |logit difference| < --tolerance
  /usr/bin/python3 bench/reference/check_same_outputs.py MODEL --dump-tool build/bench/fervid_dump_logits

  # seeded random networks of every variant, saved by fervid and compared (the ctest test)
  /usr/bin/python3 bench/reference/check_same_outputs.py --random all --width 0.125 --input-size 32 \\
      --dump-tool build/bench/fervid_dump_logits --workdir /tmp/ref-models

--input takes raw little-endian float32 ([N, C, S, S], N from the size) or a .npy array; both
sides get the same values. Without it, both build fervid_ref.deterministic_input(seed).
Prints JSON on stdout; a human summary on stderr.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import fervid_ref as ref
except ImportError as e:  # the ctest test must fail, not skip, without torch
    sys.exit(f"check_same_outputs: {e}: this needs Python PyTorch (Debian: apt-get install python3-torch; "
             f"run with /usr/bin/python3, not {sys.executable})")


def read_input(path, config):
    import numpy as np

    if path.endswith(".npy"):
        a = np.load(path).astype(np.float32)
    else:
        raw = open(path, "rb").read()
        if len(raw) % 4:
            raise ValueError(f"input file {path}: {len(raw)} bytes is not a whole number of float32 values")
        a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    per_image = config.in_channels * config.input_size * config.input_size
    if a.size == 0 or a.size % per_image:
        raise ValueError(f"input file {path}: {a.size} values is not a whole number of images of {per_image}")
    return torch.from_numpy(a.reshape(-1, config.in_channels, config.input_size, config.input_size).copy())


def python_outputs(model_path, args):
    model, header = ref.load_fervid(model_path)
    c = model.config
    if args.input:
        x = read_input(args.input, c)
    else:
        x = ref.deterministic_input((args.batch, c.in_channels, c.input_size, c.input_size), args.input_seed)
    with torch.no_grad():
        out = model(x)
    return {"model": model_path, "variant": c.variant, "parameter_count": ref.parameter_count(model),
            "tensor_count": len(ref.fervid_state(model)), "input_shape": list(x.shape),
            "input_seed": None if args.input else args.input_seed,
            "logits": out.logits.double().tolist(), "embedding": out.embedding.double().tolist()}, x


def run_tool(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def max_abs_diff(a, b):
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    if ta.shape != tb.shape:
        raise RuntimeError(f"shapes differ: fervid {list(ta.shape)}, python {list(tb.shape)}")
    return (ta - tb).abs().max().item(), tb.abs().max().item()


def compare(fervid, python, tolerance):
    d_logits, scale = max_abs_diff(fervid["logits"], python["logits"])
    d_embed, _ = max_abs_diff(fervid["embedding"], python["embedding"])
    same_counts = (fervid["parameter_count"] == python["parameter_count"]
                   and fervid["tensor_count"] == python["tensor_count"])
    ok = same_counts and d_logits < tolerance
    return {"model": python["model"], "variant": python["variant"], "input_shape": python["input_shape"],
            "max_abs_diff_logits": d_logits, "max_abs_diff_embedding": d_embed, "max_abs_logit": scale,
            "parameter_count": {"fervid": fervid["parameter_count"], "python": python["parameter_count"]},
            "tensor_count": {"fervid": fervid["tensor_count"], "python": python["tensor_count"]},
            "ok": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="a .fervid model file")
    ap.add_argument("--random", metavar="VARIANTS",
                    help="comma-separated variants (or 'all'): seeded random networks made and saved by --dump-tool")
    ap.add_argument("--width", type=float, default=0.125, help="with --random (default 0.125)")
    ap.add_argument("--input-size", type=int, default=32, help="with --random (default 32)")
    ap.add_argument("--seed", type=int, default=1, help="network seed with --random (default 1)")
    ap.add_argument("--workdir", help="folder for the --random model files (default: a temporary one)")
    ap.add_argument("--batch", type=int, default=2, help="deterministic input batch (default 2)")
    ap.add_argument("--input-seed", type=int, default=0, help="deterministic input seed (default 0)")
    ap.add_argument("--input", help="input tensor file: raw float32 or .npy, instead of the deterministic one")
    ap.add_argument("--dump-tool", help="fervid_dump_logits: compare against fervid")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max abs logit difference (default 1e-4)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads for both sides (0: library default)")
    args = ap.parse_args()

    if (args.model is None) == (args.random is None):
        ap.error("give a model file or --random VARIANTS")
    if args.random and not args.dump_tool:
        ap.error("--random needs --dump-tool (fervid makes the files)")
    if args.dump_tool and not os.access(args.dump_tool, os.X_OK):
        sys.exit(f"check_same_outputs: dump tool {args.dump_tool} is missing or not executable "
                 f"(build it: cmake --build build --target fervid_dump_logits)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="fervid-ref-") as tmp:
        common = ["--threads", str(args.threads)]
        if args.input:  # one raw float32 file serves both sides, whatever the given format
            if args.model is None:
                ap.error("--input goes with a model file, not --random")
            raw = os.path.join(tmp, "input.f32")
            cfg = ref.ModelConfig.from_json(ref.read_fervid(args.model)[0]["config"])
            read_input(args.input, cfg).numpy().astype("<f4").tofile(raw)
            common += ["--input", raw]
        else:
            common += ["--batch", str(args.batch), "--input-seed", str(args.input_seed)]

        if not args.dump_tool:
            out, _ = python_outputs(args.model, args)
            print(json.dumps(out))
            return 0

        jobs = []  # (model path, fervid command)
        if args.random:
            variants = list(ref.VARIANTS) if args.random == "all" else args.random.split(",")
            for v in variants:
                if v not in ref.VARIANTS:
                    ap.error(f"unknown variant '{v}' (expected one of: {', '.join(ref.VARIANTS)} or all)")
            workdir = args.workdir or tmp
            os.makedirs(workdir, exist_ok=True)
            for v in variants:
                path = os.path.join(workdir, f"random-{v}-w{args.width:g}-s{args.input_size}.fervid")
                jobs.append((path, [args.dump_tool, "--random", v, "--save", path, "--width", str(args.width),
                                    "--input-size", str(args.input_size), "--seed", str(args.seed)] + common))
        else:
            jobs.append((args.model, [args.dump_tool, "--model", args.model] + common))

        results = []
        for path, cmd in jobs:
            fervid = run_tool(cmd)  # with --random this also writes the file
            python, _ = python_outputs(path, args)
            r = compare(fervid, python, args.tolerance)
            results.append(r)
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['variant']:5s} {os.path.basename(path)}: "
                  f"max |logit diff| {r['max_abs_diff_logits']:.3g} (|logit| up to {r['max_abs_logit']:.3g}), "
                  f"max |embedding diff| {r['max_abs_diff_embedding']:.3g}, parameters "
                  f"{r['parameter_count']['fervid']} fervid / {r['parameter_count']['python']} python, tensors "
                  f"{r['tensor_count']['fervid']} / {r['tensor_count']['python']}", file=sys.stderr)
        ok = all(r["ok"] for r in results)
        print(json.dumps({"tolerance": args.tolerance, "torch": torch.__version__, "ok": ok, "results": results},
                         indent=1))
        if not ok:
            print(f"check_same_outputs: the Python reference differs from fervid (tolerance {args.tolerance})",
                  file=sys.stderr)
        return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ref.ModelFileError, RuntimeError, ValueError, OSError) as e:
        sys.exit(f"check_same_outputs: {e}")
