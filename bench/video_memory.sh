#!/usr/bin/env bash
# Memory growth of `fervid video` over a long stream: replays a clip for MINUTES minutes
# (default 10) and compares resident memory at minute 1 and at the last minute. The requirement:
# within 5%. Exit status 0 when it holds, 1 when not, 2 on a usage or run error.
#
#   bench/video_memory.sh [CLIP] [-- extra fervid video flags]
#   FERVID=build/fervid MINUTES=10 THREADS=1 bench/video_memory.sh clip.mp4 -- --model m.fervid --every 5
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
OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" "$fervid" "${global[@]}" video "$clip" --loop-minutes "$minutes" --json "$@" >"$summary"

python3 - "$summary" "$minutes" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
minutes = int(sys.argv[2])
rss = s.get("rss_mb_by_minute", [])
if len(rss) < minutes:
    print(f"video_memory.sh: expected {minutes} memory samples, got {len(rss)}: {rss}", file=sys.stderr)
    sys.exit(2)
first, last = rss[0], rss[minutes - 1]
ratio = last / first
print(f"frames {s['frames']} in {s['passes']} passes, {s['fps']:.1f} fps, detection every {s['detect_every']}")
print("resident MB by minute: " + ", ".join(f"{v:.1f}" for v in rss))
print(f"minute 1: {first:.1f} MB, minute {minutes}: {last:.1f} MB, ratio {ratio:.4f} (peak {s['peak_rss_mb']:.1f} MB)")
ok = abs(ratio - 1) <= 0.05
print("within 5%: " + ("yes" if ok else "NO"))
sys.exit(0 if ok else 1)
EOF
