#!/usr/bin/env bash
# Memory growth of `fervid video` over a long stream: replays a clip for MINUTES minutes
# (default 10), sampling resident memory once a minute (--memory-every 60), and compares it at
# minute 1 and at the last minute. The requirement: within 5%. Exit status 0 when it holds, 1
# when not, 2 on a usage or run error. With JSON_OUT=path, the result is also written there as
# JSON (peak, minute 1, last minute, growth %, every sample, the run's settings and speed).
#
#   bench/video_memory.sh [CLIP] [-- extra fervid video flags]
#   FERVID=build/fervid MINUTES=10 THREADS=1 bench/video_memory.sh clip.mp4 -- --model m.fervid --every 5
#   JSON_OUT=experiments/bench/video-memory.json bench/video_memory.sh
#
# CLIP defaults to $FERVID_DATA/faces/videos/face_recognition_short_hamilton_clip.mp4.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fervid="${FERVID:-$here/../build/fervid}"
minutes="${MINUTES:-10}"
global=()
[[ -n "${THREADS:-}" ]] && global=(--threads "$THREADS")
clip="${1:-${FERVID_DATA:-}/faces/videos/face_recognition_short_hamilton_clip.mp4}"
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift

if [[ ! -x "$fervid" ]]; then
  echo "video_memory.sh: $fervid is not an executable (set FERVID=path/to/fervid)" >&2
  exit 2
fi
if [[ ! -f "$clip" ]]; then
  echo "video_memory.sh: no clip at '$clip' (give one, or set FERVID_DATA)" >&2
  exit 2
fi
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || (( minutes < 2 )); then
  echo "video_memory.sh: MINUTES must be a whole number >= 2, got '$minutes'" >&2
  exit 2
fi

summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT
# Progress (stderr) passes through; the JSON summary (stdout) is kept.
OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" "$fervid" "${global[@]}" video "$clip" --loop-minutes "$minutes" \
  --memory-every 60 --json "$@" >"$summary"

commit="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
python3 - "$summary" "$minutes" "${JSON_OUT:-}" "$clip" "$*" "$commit" <<'EOF'
import datetime, json, sys
s = json.load(open(sys.argv[1]))
minutes, out, clip, extra, commit = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
rss, at = s.get("rss_mb_samples", []), s.get("rss_sample_s", [])
if len(rss) < minutes:
    print(f"video_memory.sh: expected {minutes} memory samples, got {len(rss)}: {rss}", file=sys.stderr)
    sys.exit(2)
first, last = rss[0], rss[minutes - 1]
ratio = last / first
ok = abs(ratio - 1) <= 0.05
print(f"frames {s['frames']} in {s['passes']} passes, {s['fps']:.1f} fps, detection every {s['detect_every']}")
print("resident MB by minute: " + ", ".join(f"{v:.1f}" for v in rss))
print(f"minute 1: {first:.1f} MB, minute {minutes}: {last:.1f} MB, ratio {ratio:.4f} (peak {s['peak_rss_mb']:.1f} MB)")
print("within 5%: " + ("yes" if ok else "NO"))
if out:
    result = {
        "what": "fervid video --loop-minutes: resident memory over a long stream (bench/video_memory.sh)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "clip": clip, "extra_flags": extra, "minutes": minutes,
        "frames": s["frames"], "passes": s["passes"], "fps": s["fps"],
        "detect_every": s["detect_every"], "full_scan_every": s["full_scan_every"], "scan": s.get("scan"),
        "peak_rss_mb": s["peak_rss_mb"], "rss_mb_minute_1": first, f"rss_mb_minute_{minutes}": last,
        "growth_percent": 100 * (ratio - 1), "within_5_percent": ok,
        "rss_mb_by_minute": rss, "sample_s": at,
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    print(f"wrote {out}")
sys.exit(0 if ok else 1)
EOF
