"""Video speed: frames per second of ``facerec infer VIDEO`` (decode, detect every N frames,
track, embed, identify) at 720p and 1080p, for ``--every 1`` and ``--every 5``, against the way
without a tracker in the same run (every face of every frame detected, embedded and identified).

The clip is ``../shared/data/video/video.mp4`` (105 frames of 1080p street scene, ~10 faces a
frame) played forwards, backwards and forwards again (315 frames, 12.6 s: tracks stay whole),
re-encoded as H.264 at each height, so decoding costs what it costs a user's file.

    python bench/video.py --json bench/reported/video_cpu.json
    python bench/video.py --device cuda --json video_gpu.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, print_table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCIKIT_LEARN_DATA", ROOT.parent / "shared" / "data"))
KNOWN = ["Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"]
REAL_TIME = 25.0  # fps of the clip


def make_clip(src: Path, height: int, loops: int, out: Path) -> Path:
    """``src`` ping-ponged ``loops`` times, scaled to ``height``, as H.264 in an .mp4."""
    import av
    import cv2

    frames = [f.to_ndarray(format="rgb24") for f in av.open(str(src)).decode(video=0)]
    order = []
    for k in range(loops):
        order += frames if k % 2 == 0 else frames[::-1]
    h0, w0 = frames[0].shape[:2]
    width = round(w0 * height / h0) // 2 * 2
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for img in order:
            small = img if height == h0 else cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            for p in s.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return out


def gallery(work: Path, device: str, lfw_dir: str | None = None):
    import facerec
    from facerec.gallery import Gallery

    lfw = Path(lfw_dir) if lfw_dir else SHARED / "lfw_home" / "lfw_funneled"
    if not lfw.is_dir():
        sys.exit(f"{lfw}: LFW not found (set SCIKIT_LEARN_DATA to the folder holding lfw_home)")
    people = work / "people"
    for person in KNOWN:
        (people / person).mkdir(parents=True, exist_ok=True)
        for f in sorted((lfw / person).glob("*.jpg"))[:5]:
            (people / person / f.name).symlink_to(f)
    facerec.train(
        people, embedder="facenet-casia", detector="yunet", device=device, model_path=work / "g.npz", out_dir=None
    )
    return Gallery.load(work / "g.npz")


def pipeline(g, device: str, precision: str):
    """The gallery's pipeline in ``precision``; ``fp32-torch`` is PyTorch's own fp32 on a CPU."""
    from facerec.pipeline import Pipeline

    if precision != "fp32-torch":
        return Pipeline.for_model(g, device=device, precision=precision)
    from facerec.embed.facenet import pytorch_reference

    return Pipeline.for_model(g, device=device, embedder=pytorch_reference(g.pipeline.embedder, device=device))


def per_frame(path: Path, g, pipe, cal) -> dict:
    """The baseline: no tracker; every frame's faces detected, embedded and identified."""

    from facerec.gallery.identify import identify
    from facerec.video import VideoOptions, open_video
    from facerec.video.analyze import _detect

    opts, n, faces = VideoOptions(), 0, 0
    t = time.perf_counter()
    for frame in open_video(path).frames():
        image = frame.rgb()
        found = _detect(pipe, image, opts)
        if found:
            identify(g, pipe.embed(image, found), topk=1, calibration=cal)
        n, faces = n + 1, faces + len(found)
    dt = time.perf_counter() - t
    return {"frames": n, "fps": n / dt, "faces_per_frame": faces / max(n, 1)}


def decode_only(path: Path, every: int) -> float:
    from facerec.video import open_video

    n, t = 0, time.perf_counter()
    for frame in open_video(path).frames():
        if frame.index % every == 0:
            frame.rgb()
        n += 1
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(SHARED / "video" / "video.mp4"))
    ap.add_argument("--heights", default="720,1080")
    ap.add_argument("--every", default="1,5")
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lfw-dir", default=None, help="LFW's lfw_funneled folder, for the 6-person gallery")
    ap.add_argument("--no-baseline", action="store_true", help="skip the per-frame way (slow on a CPU)")
    ap.add_argument(
        "--precisions",
        default="fp32",
        help="the embedder's precisions, each timed (fp32, int8 on a CPU, bf16/fp16 on a GPU; fp32-torch: "
        "PyTorch's fp32 on a CPU, where fp32 otherwise runs on ONNX Runtime); the per-frame way uses the first",
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from facerec.gallery.calibration import resolve_threshold
    from facerec.video import VideoOptions, analyze_video, open_video

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        g = gallery(work, args.device, args.lfw_dir)
        pipes = {p: pipeline(g, args.device, p) for p in args.precisions.split(",")}
        first = next(iter(pipes.values()))
        cal = resolve_threshold(g, detector=first.config.detector)
        for height in (int(h) for h in args.heights.split(",")):
            clip = make_clip(Path(args.video), height, args.loops, work / f"clip_{height}.mp4")
            for pipe in pipes.values():  # warm: first calls plan their kernels
                analyze_video(open_video(clip), g, pipe, calibration=cal, options=VideoOptions(every=5))
            base = None if args.no_baseline else per_frame(clip, g, first, cal)
            for every, (precision, pipe) in ((e, p) for e in map(int, args.every.split(",")) for p in pipes.items()):
                decode = decode_only(clip, every)
                rep = analyze_video(open_video(clip), g, pipe, calibration=cal, options=VideoOptions(every=every))
                fps = rep.frames / rep.seconds
                rows.append(
                    {
                        "height": height,
                        "every": every,
                        "precision": precision,
                        "frames": rep.frames,
                        "fps": round(fps, 2),
                        "real_time": round(fps / REAL_TIME, 2),
                        "tracks": len(rep.tracks),
                        "identified_views": sum(t.embedded for t in rep.tracks),
                        "decode_fps": round(decode, 1),
                        "per_frame_fps": None if base is None else round(base["fps"], 2),
                        "speedup": None if base is None else round(fps / base["fps"], 2),
                        "faces_per_frame": None if base is None else round(base["faces_per_frame"], 1),
                    }
                )
                print_table(rows[-1:], list(rows[-1]), header=len(rows) == 1)
    print()
    print_table(rows, list(rows[0]))
    write_json(
        args.json,
        {
            "machine": machine(),
            "device": args.device,
            "command": "python bench/video.py " + " ".join(sys.argv[1:]),
            "clip": f"{args.video}, ping-pong x{args.loops}, H.264 at each height, 25 fps",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
