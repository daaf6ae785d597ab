"""``facerec infer VIDEO``: one answer per person seen in a video file or a live stream."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from facerec.cli.common import EXIT_OK, EXIT_PARTIAL, add, positive_int
from facerec.names import shown_name
from facerec.progress import progress
from facerec.text import printable


def add_video_args(p) -> None:
    from facerec.video.analyze import DEFAULT_EVERY, DETECT_SIDE, MIN_DETECTIONS
    from facerec.video.frames import RECONNECTS

    g = p.add_argument_group("video (a .mp4/.mkv/.avi/.webm/.mov file, a stream URL or webcam:N)")
    add(
        g,
        "--every",
        type=positive_int,
        default=DEFAULT_EVERY,
        help=f"look for faces every N frames, faces followed in between (default {DEFAULT_EVERY}: 6 looks a "
        "second at 30 fps; 1 looks at every frame, several times slower)",
    )
    add(g, "--annotate", default=None, metavar="OUT.mp4", help="write the video with boxes, names and track ids")
    add(g, "--faces-dir", default=None, metavar="DIR", help="save each track's best face crop here")
    add(
        g,
        "--detect-side",
        type=positive_int,
        default=DETECT_SIDE,
        help=f"search for faces at this longest side (default {DETECT_SIDE}: 1080p and 720p are searched at 960x540; YuNet found as many faces there as at 1280x720)",
    )
    add(
        g,
        "--min-detections",
        type=positive_int,
        default=MIN_DETECTIONS,
        help=f"drop tracks seen at fewer detection steps (default {MIN_DETECTIONS}: flickers)",
    )
    add(g, "--max-seconds", type=float, default=None, help="refuse a longer file; stop a live source after this")
    add(
        g,
        "--reconnects",
        type=int,
        default=RECONNECTS,
        help=f"times a dropped live source is opened again (default {RECONNECTS})",
    )


def run_video(args, gallery, pipe, calibration) -> int:
    from facerec.errors import InputError
    from facerec.video import VideoOptions, analyze_video, open_video
    from facerec.video.annotate import VideoWriter, annotate_file, draw

    spec = args.input
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise InputError(f"--max-seconds must be > 0, got {args.max_seconds}")
    if args.reconnects < 0:
        raise InputError(f"--reconnects must be >= 0, got {args.reconnects}")
    faces_dir = Path(args.faces_dir) if args.faces_dir else None
    if faces_dir is not None:
        faces_dir.mkdir(parents=True, exist_ok=True)
    source = open_video(spec, max_seconds=args.max_seconds, reconnects=args.reconnects)
    options = VideoOptions(
        every=args.every,
        detect_side=args.detect_side,
        min_detections=args.min_detections,
        topk=args.topk,
        keep_crops=faces_dir is not None,
    )
    live_writer, on_frame = None, None
    if source.live and args.annotate:  # a stream is drawn as it plays, with each track's vote so far
        live_writer = VideoWriter(args.annotate, fps=source.fps, width=source.width, height=source.height)

        def on_frame(frame, boxes):
            live_writer.write(draw(frame.rgb(), boxes))

    # frames/s and the time left, on a terminal (a live source: the count so far)
    bar = progress(total=None if source.live else source.frame_count, desc="frames", quiet=args.quiet, unit="frame")
    try:
        report = analyze_video(
            source,
            gallery,
            pipe,
            calibration=calibration,
            options=options,
            on_frame=on_frame,
            on_decoded=lambda frame: bar.update(1),
        )
    except BaseException:
        if live_writer is not None:
            live_writer.abort()
        raise
    finally:
        bar.close()
    if live_writer is not None:
        live_writer.close()
    if args.annotate and not source.live:
        annotate_file(spec, report, args.annotate)
    if faces_dir is not None:
        _save_faces(report, faces_dir)
    (print_json if args.format == "json" else print_table)(report)
    for note in report.notes:
        print(f"warning: {printable(note)}", file=sys.stderr)
    if report.error:
        print(f"error: {printable(report.error)}", file=sys.stderr)
    return EXIT_PARTIAL if report.error or any("truncated" in n for n in report.notes) else EXIT_OK


def _save_faces(report, folder: Path) -> None:
    from PIL import Image

    for t in report.tracks:
        if t.crop is None or t.crop.size == 0:
            continue
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in t.pred)[:64]
        path = folder / f"track_{t.track:04d}_{name}.jpg"
        tmp = path.with_name(f".{path.name}.part")
        Image.fromarray(t.crop).save(tmp, format="JPEG", quality=92)
        tmp.replace(path)


def print_json(report) -> None:
    for t in report.tracks:
        print(json.dumps(t.to_json()))
    print(json.dumps({"summary": report.summary()}))


def print_table(report) -> None:
    s = report.summary()
    thr = (
        "closed set"
        if report.threshold is None
        else f"open-set threshold {report.threshold:.4f}: {report.threshold_promise}"
    )
    print(
        f"{printable(report.source)}: {report.frames} frames at {report.fps:g} fps, {report.width}x{report.height}, "
        f"faces detected every {report.every} frame(s); {thr}"
    )
    people = s["people"]
    if people:
        print("people seen:")
        for name, ranges in people.items():
            spans = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in ranges)
            print(f"  {printable(shown_name(name)):<28} {spans}")
    else:
        print("people seen: none of the gallery's")
    print(f"tracks: {len(report.tracks)} ({s['unknown_tracks']} unknown, {report.dropped_tracks} flickers dropped)")
    for t in report.tracks:
        answer = shown_name(t.pred) if t.pred != "unknown" else f"unknown (nearest: {shown_name(t.candidate) or '-'})"
        dist = "-" if t.distance is None else f"{t.distance:.4f}"
        print(
            f"  track {t.track:>3}: {printable(answer):<36} {t.start_s:6.2f}-{t.end_s:6.2f} s  "
            f"{t.frames} detections, {t.embedded} identified, distance {dist}"
        )
    rate = f"{s['frames_per_s']:.1f} frames/s" if s["frames_per_s"] else ""
    print(f"analysed in {report.seconds:.1f} s {rate}")
