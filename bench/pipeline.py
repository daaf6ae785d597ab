"""Train-time embedding throughput on LFW: per stage and end to end, against the original's way.

The baseline is the original project's pipeline, measured in the same run on (a prefix of) the
same images: PIL decode, facenet-pytorch's MTCNN called one image at a time, then
InceptionResnetV1 in fp32 batches of 64. The pipeline measured is :class:`facerec.Pipeline`,
the one every command runs.

    python bench/pipeline.py --device cpu --limit 500 --json bench/results/pipeline_cpu.json
    python bench/pipeline.py --device cpu --limit 500 --align yunet --json bench/results/pipeline_cpu_yunet.json
    python bench/pipeline.py --device cuda --json bench/results/pipeline_cuda.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, print_table, write_json  # noqa: E402


def lfw_paths(lfw_dir: str | None, limit: int) -> list[str]:
    candidates = (
        [lfw_dir]
        if lfw_dir
        else [
            os.path.join(os.environ.get("SCIKIT_LEARN_DATA", ""), "lfw_home", "lfw_funneled"),
            str(ROOT.parent / "shared" / "data" / "lfw_home" / "lfw_funneled"),
            str(ROOT / "shared" / "data" / "lfw_home" / "lfw_funneled"),
        ]
    )
    for d in candidates:
        if d and Path(d).is_dir():
            paths = sorted(str(p) for p in Path(d).glob("*/*.jpg"))
            return paths[:limit] if limit else paths
    raise SystemExit(f"no LFW images found in {candidates}; pass --lfw-dir")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def make_embedder(name: str, device: str, precision: str, compile: bool, weights: str | None = None):
    """The named embedder; where its weights cannot be had offline, InceptionResnetV1 with random
    weights (the same compute, so the same speed; said in the JSON)."""
    from facerec.embed import create_embedder
    from facerec.errors import FacerecError

    if precision == "fp32-torch":  # PyTorch's own fp32 on a CPU (where fp32 otherwise runs on ONNX Runtime)
        from facerec.embed.facenet import pytorch_reference

        return pytorch_reference(name, weights=weights, device=device), name
    try:
        return create_embedder(name, weights=weights, device=device, precision=precision, compile=compile), name
    except FacerecError as exc:
        import torch
        from facenet_pytorch import InceptionResnetV1

        from facerec.embed.facenet import CASIA, FaceNetEmbedder

        print(f"note: {exc}; timing random InceptionResnetV1 weights instead", flush=True)
        torch.manual_seed(0)
        return FaceNetEmbedder(
            CASIA, InceptionResnetV1().state_dict(), device, precision=precision, compile=compile
        ), "random-weights"


def baseline(paths: list[str], device: str, embedder) -> float:
    """The original's way: one image at a time through facenet-pytorch's MTCNN, then its
    InceptionResnetV1 as the original built it (batch norm unfolded, default memory format) in
    fp32 batches of 64, with ``embedder``'s weights."""
    import torch
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    mtcnn = MTCNN(image_size=160, device=device)
    net = InceptionResnetV1().eval().to(device)
    net.load_state_dict({k: v.float() for k, v in embedder.state_dict().items()})

    def run():
        faces = []
        for p in paths:
            face = mtcnn(Image.open(p).convert("RGB"))
            if face is not None:
                faces.append(face)
        with torch.inference_mode():
            for s in range(0, len(faces), 64):
                net(torch.stack(faces[s : s + 64]).to(device)).cpu()

    return len(paths) / timed(run, device)


def image_batches(imgs: list, batch: int, device: str) -> list:
    from facerec.image_batch import ImageBatch

    batches = [ImageBatch(imgs[s : s + batch], device) for s in range(0, len(imgs), batch)]
    for b in batches:
        b.tensor  # noqa: B018  (on the device before timing, as decoding leaves them)
    return batches


def detect_stage(pipe, imgs: list, batch: int, device: str):
    """Detection + alignment alone, on images already decoded onto the device: (img/s, crops)."""
    import numpy as np
    import torch

    batches = image_batches(imgs, batch, device)
    pipe.detect_and_crop(batches[0].subset(list(range(min(8, len(batches[0]))))), subject_only=True)  # warm-up
    crops = []

    def run():
        for b in batches:
            crops.append(pipe.detect_and_crop(b, subject_only=True)[1])

    rate = len(imgs) / timed(run, device)
    # host croppers (five-point warps) give uint8 (M, S, S, 3); the embedding stage takes tensors
    crops = [  # float (M, 3, S, S) from the margin crop (numpy on a CPU), uint8 (M, S, S, 3) from dlib's chip
        c
        if isinstance(c, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(c)).float()
        if c.dtype != np.uint8
        else torch.from_numpy(c).permute(0, 3, 1, 2).float()
        for c in crops
    ]
    return rate, torch.cat(crops).to(device)


def embed_stage(embedder, crops, n: int, batch: int, device: str) -> float:
    """Embedding alone: at least n crops (the detected ones, repeated), in whole batches of
    ``batch`` (one input shape: kernels are planned once, in the warm-up)."""
    n = max(batch, -(-n // batch) * batch)
    feed = crops.repeat(-(-n // len(crops)), 1, 1, 1)[:n]
    for _ in range(2):  # warm-up (cuDNN / oneDNN plans; a compiled model's first calls)
        embedder.embed_tensor(feed[:batch])

    def run():
        for s in range(0, len(feed), batch):
            embedder.embed_tensor(feed[s : s + batch])

    return len(feed) / timed(run, device)


def profile_detection(pipe, imgs: list, batch: int, path: str) -> None:
    """Where detection's time goes: torch.profiler over two batches, top operators by device time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    batches = image_batches(imgs[: 2 * batch], batch, pipe.device)
    with profile(activities=acts) as prof:
        for b in batches:
            pipe.detect_and_crop(b, subject_only=True)
        sync(pipe.device)
    key = "self_cuda_time_total" if len(acts) > 1 else "self_cpu_time_total"
    Path(path).write_text(prof.key_averages().table(sort_by=key, row_limit=40))
    print(f"detection profile -> {path}", flush=True)


def embed_only(args, precisions: list[str], batch: int) -> dict:
    """Embedding throughput alone on random crops (the same compute as faces), per precision, with
    ``--compile``'s first-call cost: {"stages": {...}, "compile_s": {...}}. The JSON is rewritten
    after each precision, so a run stopped by a timeout keeps what it measured."""
    import torch

    torch.manual_seed(0)
    crops = torch.rand(batch, 3, 160, 160, device=args.device) * 255
    stages, compile_s = {}, {}
    for p in precisions:
        embedder, _ = make_embedder(args.embedder, args.device, p, args.compile, args.weights)
        tag = f"embed_{p}" + ("_compiled" if args.compile else "")
        if args.compile:
            compile_s[p] = timed(partial(embedder.embed_tensor, crops), args.device)
            print(f"torch.compile ({p}): first call {compile_s[p]:.0f} s", flush=True)
        stages[tag] = embed_stage(embedder, crops, max(args.min_images, 8 * batch), batch, args.device)
        print(f"{tag}: {stages[tag]:,.0f} img/s", flush=True)
        del embedder
        write_json(
            args.json,
            {
                "device": args.device,
                "machine": machine(),
                "embed_batch": batch,
                "compile": args.compile,
                "stages": stages,
                "compile_s": compile_s,
            },
        )
    return {"stages": stages, "compile_s": compile_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=0, help="first N LFW images (0 = all 13,233)")
    ap.add_argument(
        "--baseline-limit",
        type=int,
        default=1000,
        help="images the baseline runs on (a prefix of the same images; 0 = all)",
    )
    ap.add_argument("--lfw-dir", default=None)
    ap.add_argument(
        "--min-images",
        type=int,
        default=0,
        help="repeat the image list up to N (for a carried subset of LFW: same compute per image)",
    )
    ap.add_argument("--embedder", default="facenet-casia")
    ap.add_argument(
        "--detector", "--align", default="mtcnn", help="the pipeline's detector (the baseline is always MTCNN's)"
    )
    ap.add_argument("--alignment", default="box", help="box or five-point (the detector's landmarks)")
    ap.add_argument("--weights", default=None, help="the embedder's weights file (else its default source)")
    ap.add_argument(
        "--precision",
        default="auto",
        help="fp32, bf16, fp16, int8 (CPU), fp32-torch (PyTorch's fp32 on a CPU); auto = bf16 where the hardware runs it natively (CUDA, AMX-BF16 CPUs), else fp32",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile the embedder (compile time is reported)")
    ap.add_argument("--batch-size", type=int, default=0, help="detection batch (0 = 512 on CUDA, 64 on CPU)")
    ap.add_argument("--embed-batch", type=int, default=0, help="embedding-only batch (0 = 2048 CUDA, 64 CPU)")
    ap.add_argument("--workers", type=int, default=0, help="decode threads (0 = 6 on CUDA, else the CPU count)")
    ap.add_argument("--decoder", default="auto", help="pil or nvjpeg (auto = nvjpeg on CUDA)")
    ap.add_argument(
        "--embed-precisions",
        default="",
        help="also time embedding alone in these precisions (comma-separated, e.g. fp32,fp16)",
    )
    ap.add_argument(
        "--embed-only",
        action="store_true",
        help="only embedding throughput, on random crops, in --embed-precisions (or --precision); "
        "with --compile, states compilation's cost",
    )
    ap.add_argument("--profile", default=None, help="write a torch.profiler table of two detection batches here")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from facerec.datasets import Sample
    from facerec.pipeline import Pipeline
    from facerec.pipeline.core import GPU_DECODE_THREADS

    cuda = args.device.startswith("cuda")
    from facerec.runtime.device import fast_bf16

    # auto: bf16 where the hardware runs it natively (a GPU, or a CPU with AMX-BF16), else fp32
    precision = args.precision if args.precision != "auto" else ("bf16" if fast_bf16(args.device) else "fp32")
    batch = args.batch_size or (512 if cuda else 64)
    embed_batch = args.embed_batch or (2048 if cuda else 64)
    workers = args.workers or (min(GPU_DECODE_THREADS, os.cpu_count() or 6) if cuda else os.cpu_count() or 2)
    decoder = args.decoder if args.decoder != "auto" else ("nvjpeg" if cuda else "pil")
    extra = [p for p in args.embed_precisions.split(",") if p]
    if args.embed_only:
        r = embed_only(args, extra or [precision], embed_batch)
        print_table([{"stage": k, "img_s": v} for k, v in r["stages"].items()], ["stage", "img_s"])
        return 0
    paths = lfw_paths(args.lfw_dir, args.limit)
    distinct = len(paths)
    if args.min_images > len(paths):
        paths = (paths * (args.min_images // len(paths) + 1))[: args.min_images]
    base_paths = paths[: args.baseline_limit] if args.baseline_limit else paths
    print(
        f"{len(paths)} LFW images on {args.device} ({machine().get('gpu') or machine()['cpu']}); "
        f"{args.detector} ({args.alignment}), precision {precision}, detection batch {batch}, decoder {decoder}, {workers} workers",
        flush=True,
    )

    ref_embedder, weights = make_embedder(args.embedder, args.device, "fp32", False, args.weights)
    baseline(base_paths[:8], args.device, ref_embedder)  # warm-up: first calls allocate and plan
    base = baseline(base_paths, args.device, ref_embedder)
    print(f"baseline (original's way, {len(base_paths)} images): {base:.1f} img/s", flush=True)

    embedder, _ = make_embedder(args.embedder, args.device, precision, args.compile, args.weights)
    pipe = Pipeline.create(
        embedder=embedder,
        detector=args.detector,
        alignment=args.alignment,
        device=args.device,
        batch_size=batch,
        workers=workers,
        decoder=decoder,
    )
    samples = [Sample(p, p) for p in paths]

    def decode(items, pool, decoder=None):
        dec = (
            pipe.decoder
            if decoder is None
            else type(pipe.decoder)(decoder, device=pipe.device, max_pixels=pipe.max_pixels)
        )
        return dec.decode(items, pool, lambda key: None)

    compile_s = None
    if args.compile:
        x = torch.rand(embed_batch, 3, 160, 160, device=args.device) * 255
        compile_s = timed(lambda: pipe.embedder.embed_tensor(x), args.device)
        print(f"torch.compile: first call {compile_s:.0f} s", flush=True)

    stages = {}
    with ThreadPoolExecutor(workers) as pool:
        decode(samples[:64], pool)  # warm-up
        t = time.perf_counter()
        decoded = []
        for s in range(0, len(paths), batch):
            decoded += decode(samples[s : s + batch], pool)
        sync(args.device)
        stages[f"decode_{decoder}"] = len(paths) / (time.perf_counter() - t)
        if decoder != "pil":
            stages["decode_pil"] = len(paths) / timed(lambda: decode(samples, pool, decoder="pil"), args.device)
            # nvJPEG's two halves: reading and checking files on CPU threads, decoding on the GPU
            t = time.perf_counter()

            def read_check(path):
                data = Path(path).read_bytes()
                return torch.frombuffer(bytearray(data), dtype=torch.uint8) if pipe.decoder._nvjpeg_can(data) else None

            raw = [r for s in range(0, len(paths), batch) for r in pool.map(read_check, paths[s : s + batch])]
            stages["read_check"] = len(paths) / (time.perf_counter() - t)
            raw = [r for r in raw if r is not None]  # the files nvJPEG takes (all of LFW)
            from torchvision.io import ImageReadMode, decode_jpeg

            stages["decode_gpu_only"] = len(raw) / timed(
                lambda: [
                    decode_jpeg(raw[s : s + batch], mode=ImageReadMode.RGB, device=args.device)
                    for s in range(0, len(raw), batch)
                ],
                args.device,
            )
            del raw

    imgs = [d.image for d in decoded if d.image is not None]
    stages["detect_align"], crops = detect_stage(pipe, imgs, batch, args.device)
    if args.profile:
        profile_detection(pipe, imgs, batch, args.profile)
    stages[f"embed_{precision}"] = embed_stage(pipe.embedder, crops, len(paths), embed_batch, args.device)
    for p in extra:
        if p != precision:
            other, _ = make_embedder(args.embedder, args.device, p, False, args.weights)
            stages[f"embed_{p}"] = embed_stage(other, crops, len(paths), embed_batch, args.device)
            del other
    del crops, decoded, imgs

    pipe.run(paths[:batch], subject_only=True)  # warm-up
    t = time.perf_counter()
    result = pipe.run(paths, subject_only=True)  # as train and evaluate run it: each image's subject
    sync(args.device)
    e2e = len(paths) / (time.perf_counter() - t)
    found = sum(1 for r in result if r.faces)
    unreadable = sum(1 for r in result if r.error)
    stages["end_to_end"] = e2e

    rows = [{"stage": k, "img_s": v} for k, v in stages.items()] + [{"stage": "baseline (original)", "img_s": base}]
    print()
    print_table(rows, ["stage", "img_s"])
    print(
        f"\nend to end {e2e:.1f} img/s = {e2e / base:.2f}x the original's way; faces found in "
        f"{found}/{len(paths)} images, {unreadable} unreadable"
    )
    write_json(
        args.json,
        {
            "device": args.device,
            "machine": machine(),
            "images": len(paths),
            "distinct_images": distinct,
            "baseline_images": len(base_paths),
            "baseline_img_s": base,
            "img_s": e2e,
            "speedup": e2e / base,
            "stages": stages,
            "precision": precision,
            "weights": weights,
            "detector": args.detector,
            "alignment": args.alignment,
            "detection_batch": batch,
            "embed_batch": embed_batch,
            "decoder": decoder,
            "workers": workers,
            "compile_s": compile_s,
            "faces_found": found,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
