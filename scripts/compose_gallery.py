#!/usr/bin/env python3
"""Composes a video-call gallery frame from the hand-annotated face photos.

tests/fixtures/face_annotations.json defines, besides the per-photo face boxes, "galleries": a
canvas (size, background grey) tiled with photos of $FERVID_DATA/faces, as a video call shows its
participants, and the faces each gallery is expected to contain (the photos' hand boxes mapped
into the canvas). This script renders such a gallery to a PNG and checks those expected boxes.

Usage (from the repository root):
    FERVID_DATA=../shared/data python3 scripts/compose_gallery.py NAME OUT.png [--boxes]
    python3 scripts/compose_gallery.py --list     # the galleries defined in the annotations
    python3 scripts/compose_gallery.py --check    # recompute every gallery's faces and compare
Options: --annotations PATH (default: tests/fixtures/face_annotations.json next to this script's
parent), --data DIR (default: $FERVID_DATA; photos are read from DIR/faces/<path>), --boxes
(draw the expected face boxes on the output: green, red for "partial"/"bowed", for viewing only;
never use a boxed frame as detector input).

Needs: Python 3 and, for rendering only, Pillow (Debian: apt-get install python3-pil, then run it
with /usr/bin/python3 if another python3 comes first on PATH). --list and --check use only the
standard library. No network, nothing is written but OUT.png.

The composition rule (the same text is in the annotations' note; a C++ composer must follow it
to reproduce the boxes exactly; its pixel values may differ by the resampling filter):
  * canvas: size [W, H], filled with the grey value "background" (R = G = B).
  * each tile {"src", "rect": [tx, ty, tw, th]}: the whole source photo (sw x sh pixels; an alpha
    channel, if any, is composited over the background grey first) is letterboxed into the
    tile: if tw * sh <= th * sw the photo gets width nw = tw and height
    nh = (2 * sh * tw + sw) // (2 * sw), else height nh = th and width
    nw = (2 * sw * th + sh) // (2 * sh) (that is scale = min(tw / sw, th / sh), sizes rounded
    half up, in exact integer arithmetic); it is resized to nw x nh with a bilinear filter
    (PIL's Image.BILINEAR: a triangle filter on pixel centres whose support widens with the
    downscale factor, i.e. antialiased) and pasted at ix = tx + (tw - nw) // 2,
    iy = ty + (th - nh) // 2 ("image_rect" = [ix, iy, nw, nh]); the rest of the tile stays
    background.
  * a face box [x, y, w, h] of the photo (pixel edges: it covers x .. x + w) maps to
    x0 = ix + R(x * nw, sw), x1 = ix + R((x + w) * nw, sw), y0 = iy + R(y * nh, sh),
    y1 = iy + R((y + h) * nh, sh), box [x0, y0, x1 - x0, y1 - y0], where
    R(a, b) = (2 * a + b) // (2 * b) rounds a / b half up.
  * tags are carried over, except "small", which is recomputed on the mapped box
    (min(w, h) < 40 px).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ANNOTATIONS = os.path.join(HERE, "..", "tests", "fixtures", "face_annotations.json")
TAG_ORDER = ["frontal", "partial", "bowed", "small", "picture"]
SMALL_PX = 40


def round_div(a, b):
    """a / b rounded half up, for integers a >= 0, b > 0."""
    return (2 * a + b) // (2 * b)


def placement(src_size, rect):
    """Where the letterboxed photo lands in its tile: [ix, iy, nw, nh]."""
    sw, sh = src_size
    tx, ty, tw, th = rect
    if tw * sh <= th * sw:
        nw, nh = tw, round_div(sh * tw, sw)
    else:
        nw, nh = round_div(sw * th, sh), th
    nw, nh = max(1, nw), max(1, nh)
    return [tx + (tw - nw) // 2, ty + (th - nh) // 2, nw, nh]


def map_box(box, src_size, image_rect):
    sw, sh = src_size
    ix, iy, nw, nh = image_rect
    x, y, w, h = box
    x0 = ix + round_div(x * nw, sw)
    x1 = ix + round_div((x + w) * nw, sw)
    y0 = iy + round_div(y * nh, sh)
    y1 = iy + round_div((y + h) * nh, sh)
    return [x0, y0, x1 - x0, y1 - y0]


def sort_tags(tags):
    return sorted(set(tags), key=lambda t: (TAG_ORDER.index(t) if t in TAG_ORDER else len(TAG_ORDER), t))


def mapped_tags(tags, box):
    out = [t for t in tags if t != "small"]
    if min(box[2], box[3]) < SMALL_PX:
        out.append("small")
    return sort_tags(out)


def gallery_faces(ann, gallery):
    """The expected faces of a gallery, recomputed from the per-photo annotations."""
    faces = []
    for ti, tile in enumerate(gallery["tiles"]):
        img = ann["images"][tile["src"]]
        rect = placement(img["size"], tile["rect"])
        for fi, face in enumerate(img["faces"]):
            box = map_box(face["box"], img["size"], rect)
            faces.append({"box": box, "tags": mapped_tags(face["tags"], box), "tile": ti, "src_face": fi})
    return faces


def check(ann):
    """Recomputes image_rect and faces of every gallery; returns the list of mismatches."""
    errors = []
    for name, g in ann["galleries"].items():
        for ti, tile in enumerate(g["tiles"]):
            if tile["src"] not in ann["images"]:
                errors.append("%s tile %d: unknown src %s" % (name, ti, tile["src"]))
                continue
            x, y, w, h = tile["rect"]
            if x < 0 or y < 0 or x + w > g["size"][0] or y + h > g["size"][1]:
                errors.append("%s tile %d: rect outside the canvas" % (name, ti))
            want = placement(ann["images"][tile["src"]]["size"], tile["rect"])
            if tile.get("image_rect") != want:
                errors.append("%s tile %d: image_rect %s, expected %s" % (name, ti, tile.get("image_rect"), want))
        if errors:
            continue
        want = gallery_faces(ann, g)
        have = g.get("faces", [])
        if len(want) != len(have):
            errors.append("%s: %d faces listed, %d expected" % (name, len(have), len(want)))
        for a, b in zip(have, want):
            if a != b:
                errors.append("%s: face %s, expected %s" % (name, json.dumps(a), json.dumps(b)))
    return errors


def load_photo(path, background):
    from PIL import Image  # rendering only
    im = Image.open(path)
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (background, background, background, 255))
        bg.alpha_composite(im)
        im = bg
    return im.convert("RGB")


def render(ann, name, data_root, boxes=False):
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise SystemExit("compose_gallery: rendering needs Pillow (Debian: apt-get install python3-pil, then run "
                         "/usr/bin/python3 scripts/compose_gallery.py ...); --list and --check work without it")
    g = ann["galleries"][name]
    bgv = int(g["background"])
    canvas = Image.new("RGB", tuple(g["size"]), (bgv, bgv, bgv))
    for tile in g["tiles"]:
        img = ann["images"][tile["src"]]
        photo = load_photo(os.path.join(data_root, "faces", tile["src"]), bgv)
        if list(photo.size) != list(img["size"]):
            raise SystemExit("compose_gallery: %s is %dx%d, the annotations say %dx%d"
                             % (tile["src"], photo.size[0], photo.size[1], img["size"][0], img["size"][1]))
        ix, iy, nw, nh = placement(img["size"], tile["rect"])
        canvas.paste(photo.resize((nw, nh), Image.BILINEAR), (ix, iy))
    if boxes:
        d = ImageDraw.Draw(canvas)
        for face in g["faces"]:
            x, y, w, h = face["box"]
            hard = "partial" in face["tags"] or "bowed" in face["tags"]
            d.rectangle([x, y, x + w - 1, y + h - 1], outline=(255, 0, 0) if hard else (0, 255, 0))
    return canvas


def main(argv):
    ap = argparse.ArgumentParser(description="Render a gallery of tests/fixtures/face_annotations.json to a PNG.")
    ap.add_argument("name", nargs="?", help="gallery name, e.g. gallery-3x3-1280x720")
    ap.add_argument("out", nargs="?", help="output PNG path")
    ap.add_argument("--annotations", default=DEFAULT_ANNOTATIONS)
    ap.add_argument("--data", default=os.environ.get("FERVID_DATA"), help="dataset root (default $FERVID_DATA)")
    ap.add_argument("--boxes", action="store_true", help="draw the expected face boxes (for viewing only)")
    ap.add_argument("--list", action="store_true", help="list the galleries")
    ap.add_argument("--check", action="store_true", help="recompute the galleries' faces and compare (stdlib only)")
    args = ap.parse_args(argv)
    with open(args.annotations) as fh:
        ann = json.load(fh)
    if args.list:
        for name, g in ann["galleries"].items():
            print("%s  %dx%d  %d tiles  %d faces" % (name, g["size"][0], g["size"][1], len(g["tiles"]), len(g["faces"])))
        return 0
    if args.check:
        errors = check(ann)
        for e in errors:
            print("compose_gallery: " + e, file=sys.stderr)
        print("compose_gallery: %d galleries, %s" % (len(ann["galleries"]), "mismatches: %d" % len(errors) if errors else "all faces match"))
        return 1 if errors else 0
    if not args.name or not args.out:
        ap.error("give a gallery NAME and an OUT.png (or --list / --check)")
    if args.name not in ann["galleries"]:
        ap.error("no gallery %r; have: %s" % (args.name, ", ".join(ann["galleries"])))
    if not args.data:
        ap.error("set FERVID_DATA (or --data) to the dataset root, e.g. ../shared/data")
    render(ann, args.name, args.data, args.boxes).save(args.out)
    print("compose_gallery: wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
