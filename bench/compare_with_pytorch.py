#!/usr/bin/python3
"""fervid beside Python PyTorch doing the same work, in the same run.

For each configuration it runs fervid's Google Benchmark (fervid_bench_model, or
fervid_bench_model_file for --model) and the Python reference (bench/reference/fervid_ref.py:
same architecture, batch, thread count; for training the same step as BM_TrainStepBatch32:
CE + center loss lambda_c 0.01, SGD lr 0.01 momentum 0.9 weight decay 5e-4, center update),
alternating fervid, Python, fervid, Python ... each in a fresh process, and reports the median
images/s (mean over the timed calls) of each side and their ratio fervid / Python (above 1: fervid is faster), with the
per-call p50 and p90 latency of each side (each call timed on its own: fervid's counters from
bench_timing.h, Python's perf_counter around each call).

Like for like: where fervid folds BatchNorm into the convolutions and runs under InferenceMode
(infer-mcsa-folded, model-classifier: what the Analyzer runs), the Python side folds too
(torch.nn.utils.fusion.fuse_conv_bn_eval on every conv + BatchNorm pair) and runs under
torch.inference_mode(); model-classifier also takes the same uint8 face, normalises it and
applies the softmax on both sides. Where fervid runs the plain network under NoGradGuard
(infer-mcsa, model), Python runs it plainly under torch.no_grad().

  /usr/bin/python3 bench/compare_with_pytorch.py --repeats 3 --json bench-vs-pytorch.json
  /usr/bin/python3 bench/compare_with_pytorch.py --model models/fervid-mcsa.fervid --configs model

Configurations (--configs, comma-separated; default train-mcsa,train-vgg16,infer-mcsa, plus
`model` when --model is given):
  train-mcsa   training step, mcsa, width 0.25, input 48, batch 32   (BM_TrainStepBatch32)
  train-vgg16  training step, vgg16, width 0.25, input 48, batch 32  (BM_TrainStepBatch32)
  infer-mcsa   inference, mcsa, width 0.25, input 48, batch 1        (BM_InferBatch1)
  infer-mcsa-folded  the same, BatchNorm folded, inference mode       (BM_InferBatch1Folded)
  model        inference of --model's weights, batch 1              (fervid_bench_model_file)
  model-classifier  the same weights through fervid::Classifier, as the Analyzer runs them
                    (BatchNorm folded; gray bytes in, probabilities out) (fervid_bench_model_file)

Timing: fervid_bench_model's benchmarks fix their own minimum time (2 s training, 1 s
inference); the Python side runs as long by default. --min-time overrides the Python side and
fervid_bench_model_file (Google Benchmark lets a benchmark's own MinTime win over the flag).
fervid_bench_model uses every core (configure_runtime(0)): --threads must equal that count.
Both sides inherit this environment (set OMP_WAIT_POLICY the same for both; it is recorded).
Images/s are batch / wall time per iteration on both sides (not Google Benchmark's
items_per_second, which divides by the main thread's CPU time; it is kept in the JSON).
The Python side runs with glibc's default allocator, as a Python user would; --python-mallopt
gives it fervid's settings (configure_runtime: no mmap, high trim threshold) to see their share.
Writes a table to stdout, progress to stderr, and with --json everything measured (atomically).
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# fervid::Variant order (config.h): the first benchmark argument.
VARIANT_INDEX = {"vgg16": 0, "m": 1, "mca": 2, "msa": 3, "mcsa": 4}

CONFIGS = {
    "train-mcsa": dict(kind="train", variant="mcsa", width=0.25, input=48, batch=32, min_time=2.0,
                       benchmark="BM_TrainStepBatch32"),
    "train-vgg16": dict(kind="train", variant="vgg16", width=0.25, input=48, batch=32, min_time=2.0,
                        benchmark="BM_TrainStepBatch32"),
    "infer-mcsa": dict(kind="infer", variant="mcsa", width=0.25, input=48, batch=1, min_time=1.0,
                       benchmark="BM_InferBatch1"),
    "infer-mcsa-folded": dict(kind="infer", variant="mcsa", width=0.25, input=48, batch=1, min_time=1.0,
                              benchmark="BM_InferBatch1Folded", fold=True),
    "model": dict(kind="infer-file", batch=1, min_time=1.0, benchmark="BM_ModelFileInferBatch1"),
    # What fervid's Analyzer runs per face: the Classifier (BatchNorm folded, InferenceMode, a gray
    # crop in, probabilities out); Python does the same with the same weights.
    "model-classifier": dict(kind="infer-file", batch=1, min_time=1.0, benchmark="BM_ModelFileClassifyFace",
                             fold=True, classifier=True),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the Python side: runs in its own process (--worker), like each fervid run --------------

def nearest_rank(sorted_values, q):
    """The q-quantile by nearest rank, as bench_timing.h computes fervid's."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(len(sorted_values), rank) - 1]


def fold_batchnorm(net):
    """Folds every BatchNorm of a conv + BatchNorm pair (fervid_ref.ConvBnRelu) into its conv."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for m in net.modules():
        if isinstance(getattr(m, "conv", None), torch.nn.Conv2d) and isinstance(getattr(m, "bn", None),
                                                                                torch.nn.BatchNorm2d):
            m.conv = fuse_conv_bn_eval(m.conv, m.bn)
            m.bn = torch.nn.Identity()
            folded += 1
    if folded == 0:
        raise RuntimeError("fold_batchnorm: no conv + BatchNorm pair found (fervid_ref changed?)")
    return folded


def worker(spec):
    import torch

    sys.path.insert(0, os.path.join(HERE, "reference"))
    import fervid_ref as ref

    if spec.get("mallopt"):  # fervid::configure_runtime's allocator settings (runtime.cpp)
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc malloc.h
        if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)):
            raise RuntimeError("mallopt failed")
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    if spec["kind"] == "infer-file":
        net, _ = ref.load_fervid(spec["model"])
        cfg = net.config
    else:
        cfg = ref.ModelConfig(variant=spec["variant"], width=spec["width"], input_size=spec["input"])
        net = ref.MCSANet(cfg)
    n = cfg.input_size
    batch = spec["batch"]

    if spec["kind"] == "train":  # BM_TrainStepBatch32
        net.train()
        loss = ref.FerLoss(cfg.num_classes(), cfg.embedding_dim(), lambda_c=0.01)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(batch, cfg.in_channels, n, n)
        y = torch.randint(0, cfg.num_classes(), (batch,), dtype=torch.long)

        def step():
            ref.train_step(net, loss, opt, x, y)

        warmup = 2
        grad = torch.enable_grad()
    else:  # BM_InferBatch1[Folded], BM_ModelFileInferBatch1, BM_ModelFileClassifyFace: eval mode, no autograd
        net.eval()
        if spec.get("fold"):  # as MCSANet::fold_batchnorm: every conv + BatchNorm pair becomes one conv
            probe = torch.randn(2, cfg.in_channels, n, n)
            with torch.no_grad():
                before = net(probe).logits
                fold_batchnorm(net)
                after = net(probe).logits
            if not torch.allclose(before, after, rtol=1e-4, atol=1e-4):
                raise RuntimeError(f"fold_batchnorm changed the outputs: max |diff| {(before - after).abs().max():.3g}")
        if spec.get("classifier"):  # fervid::Classifier: uint8 face -> (x / 255 - mean) / std -> softmax
            face = bytearray((i * 37 + i // 48 * 11) % 256 for i in range(n * n))  # BM_ModelFileClassifyFace's
            pixels = torch.frombuffer(face, dtype=torch.uint8).view(1, 1, n, n)
            scale, shift = 1.0 / (255.0 * cfg.norm_std), -cfg.norm_mean / cfg.norm_std

            def step():
                x = pixels.to(torch.float32).mul_(scale).add_(shift)
                probs = net(x).logits.softmax(1)
                int(probs[0].argmax())
        else:
            x = torch.randn(batch, cfg.in_channels, n, n)

            def step():
                net(x).logits

        warmup = 3
        grad = torch.inference_mode() if spec.get("fold") else torch.no_grad()

    with grad:
        for _ in range(warmup):
            step()
        iterations, calls, start = 0, [], time.perf_counter()
        while True:
            t0 = time.perf_counter()
            step()
            calls.append(time.perf_counter() - t0)
            iterations += 1
            elapsed = time.perf_counter() - start
            if elapsed >= spec["min_time"]:
                break
    calls_ms = sorted(1e3 * c for c in calls)
    return {"iterations": iterations, "ms_per_iter": 1e3 * elapsed / iterations,
            "items_per_second": batch * iterations / elapsed, "threads": torch.get_num_threads(),
            "p50_ms": nearest_rank(calls_ms, 0.5), "p90_ms": nearest_rank(calls_ms, 0.9),
            "mean_call_ms": sum(calls_ms) / len(calls_ms), "torch": torch.__version__}


def run_python(args, spec):
    cmd = [args.python, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"Python worker failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


# ---- the fervid side --------------------------------------------------------------------------

def run_fervid(args, name, cfg, min_time):
    env = dict(os.environ)
    if cfg["kind"] == "infer-file":
        binary = args.file_bench_binary
        env["FERVID_BENCH_MODEL"] = os.path.abspath(args.model)
        env["FERVID_BENCH_THREADS"] = str(args.threads)
        pattern = f"^{cfg['benchmark']}(/real_time)?$"
    else:
        binary = args.bench_binary
        pattern = (f"^{cfg['benchmark']}/variant:{VARIANT_INDEX[cfg['variant']]}/"
                   f"width%:{round(cfg['width'] * 100)}/input:{cfg['input']}/")
    cmd = [binary, f"--benchmark_filter={pattern}", "--benchmark_format=json",
           f"--benchmark_min_time={min_time}"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip()[-2000:]}")
    out = json.loads(p.stdout)
    runs = [b for b in out.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration"]
    if len(runs) != 1:
        raise RuntimeError(f"{binary}: filter {pattern} matched {len(runs)} benchmarks, expected 1 "
                           f"(is the binary older than this script?)")
    b = runs[0]
    to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    threads = int(out.get("context", {}).get("threads", -1))
    if threads != args.threads:
        raise RuntimeError(f"{binary} ran with {threads} threads, not --threads {args.threads} "
                           f"(fervid_bench_model uses every core: pass --threads {threads})")
    # Google Benchmark's items_per_second divides by the main thread's CPU time, which is not
    # wall time once libtorch runs on several threads: images/s here come from real_time.
    ms = b["real_time"] * to_ms
    if "p50_ms" not in b:
        raise RuntimeError(f"{binary}: {b['name']} reports no p50_ms counter (is the binary older than this script?)")
    return {"iterations": b["iterations"], "ms_per_iter": ms, "items_per_second": cfg["batch"] * 1e3 / ms,
            "p50_ms": b["p50_ms"], "p90_ms": b["p90_ms"], "mean_call_ms": b.get("mean_ms"),
            "cpu_ms_per_iter": b["cpu_time"] * to_ms, "gbench_items_per_second_cpu": b.get("items_per_second"),
            "threads": threads, "benchmark": b["name"], "fervid_commit": out.get("context", {}).get("fervid_commit")}


# ---- driver -----------------------------------------------------------------------------------

def git(*a):
    try:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def write_atomically(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".compare-", suffix=".json.tmp", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads on both sides (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side per configuration (default 3)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds per timed run (default: fervid_bench_model's own, 2 train / 1 infer)")
    ap.add_argument("--configs", default=None, help="comma-separated, of: " + ", ".join(CONFIGS))
    ap.add_argument("--model", help="a .fervid file: adds the `model` configuration (its weights, batch 1)")
    ap.add_argument("--bench-binary", default=os.path.join(ROOT, "build/bench/fervid_bench_model"))
    ap.add_argument("--file-bench-binary", default=None,
                    help="fervid_bench_model_file (default: beside --bench-binary)")
    ap.add_argument("--python", default="/usr/bin/python3", help="Python with torch (default /usr/bin/python3)")
    ap.add_argument("--python-mallopt", action="store_true",
                    help="give the Python side fervid's glibc allocator settings (mallopt, as configure_runtime)")
    ap.add_argument("--json", metavar="OUT", help="write the results here (temp file + rename)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    names = (args.configs.split(",") if args.configs else
             ["train-mcsa", "train-vgg16", "infer-mcsa"] + (["model", "model-classifier"] if args.model else []))
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown configuration '{n}' (expected: {', '.join(CONFIGS)})")
    if any(CONFIGS[n]["kind"] == "infer-file" for n in names if n in CONFIGS) and not args.model:
        ap.error("configuration 'model' needs --model FILE")
    if args.model and not os.path.isfile(args.model):
        sys.exit(f"compare_with_pytorch: model file {args.model} not found")
    args.file_bench_binary = args.file_bench_binary or os.path.join(os.path.dirname(args.bench_binary),
                                                                    "fervid_bench_model_file")
    needed = set()
    for n in names:
        needed.add(args.file_bench_binary if CONFIGS[n]["kind"] == "infer-file" else args.bench_binary)
    for b in sorted(needed):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            sys.exit(f"compare_with_pytorch: benchmark binary {b} is missing; build it with "
                     f"cmake --build build --target {os.path.basename(b)} (or pass --bench-binary)")
    if not os.access(args.python, os.X_OK):
        sys.exit(f"compare_with_pytorch: {args.python} not found (Debian: apt-get install python3-torch)")

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    results, torch_version = [], None
    total, done = len(names) * args.repeats * 2, 0
    for name in names:
        cfg = dict(CONFIGS[name])
        min_time = args.min_time if args.min_time is not None else cfg["min_time"]
        spec = {k: cfg.get(k) for k in ("kind", "variant", "width", "input", "batch", "fold", "classifier")}
        spec.update(threads=args.threads, min_time=min_time, mallopt=args.python_mallopt,
                    model=os.path.abspath(args.model) if args.model else None)
        runs = {"fervid": [], "python": []}
        for r in range(args.repeats):
            for side in ("fervid", "python"):
                done += 1
                log(f"[{done}/{total}] {name} {side} #{r + 1} ...")
                res = run_fervid(args, name, cfg, min_time) if side == "fervid" else run_python(args, spec)
                torch_version = res.get("torch", torch_version)
                runs[side].append(res)
                log(f"    {res['items_per_second']:.1f} images/s, {res['ms_per_iter']:.2f} ms/iteration, "
                    f"p50 {res['p50_ms']:.2f} ms, p90 {res['p90_ms']:.2f} ms ({res['iterations']} iterations)")
        med = {s: {k: median_of(v, k) for k in ("items_per_second", "ms_per_iter", "p50_ms", "p90_ms")}
               for s, v in runs.items()}
        entry = {"name": name, **{k: v for k, v in cfg.items() if k != "min_time"}, "min_time_s": min_time,
                 "runs": runs, "median": med,
                 "ratio_fervid_over_python": med["fervid"]["items_per_second"] / med["python"]["items_per_second"]}
        if cfg["kind"] == "infer-file":
            entry["model"] = os.path.abspath(args.model)
        results.append(entry)

    report = {"date": started.isoformat(timespec="seconds"), "git_commit": git("rev-parse", "--short", "HEAD"),
              "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
              "torch_python": torch_version, "threads": args.threads, "repeats": args.repeats,
              "python_mallopt": args.python_mallopt, "images_per_second_from": "real (wall) time",
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "host": platform.node(),
              "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "bench_binary": os.path.abspath(args.bench_binary), "configs": results}

    print(f"fervid vs Python PyTorch {torch_version}, {args.threads} threads, median of {args.repeats} "
          f"(commit {report['git_commit']}{' +changes' if report['git_dirty'] else ''}, "
          f"load {load_before[0]:.1f} -> {report['loadavg_after'][0]:.1f})")
    print(f"{'configuration':18s} {'batch':>5s} {'fervid img/s':>13s} {'python img/s':>13s} "
          f"{'fervid ms':>10s} {'python ms':>10s} {'fervid p50/p90':>15s} {'python p50/p90':>15s} {'fervid/python':>14s}")
    for e in results:
        m = e["median"]
        print(f"{e['name']:18s} {e['batch']:5d} {m['fervid']['items_per_second']:13.1f} "
              f"{m['python']['items_per_second']:13.1f} {m['fervid']['ms_per_iter']:10.2f} "
              f"{m['python']['ms_per_iter']:10.2f} {m['fervid']['p50_ms']:7.2f}/{m['fervid']['p90_ms']:<7.2f} "
              f"{m['python']['p50_ms']:7.2f}/{m['python']['p90_ms']:<7.2f} {e['ratio_fervid_over_python']:13.2f}x")
    if args.json:
        write_atomically(args.json, json.dumps(report, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit(f"compare_with_pytorch: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
