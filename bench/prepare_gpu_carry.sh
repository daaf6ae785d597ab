#!/usr/bin/env bash
# Build .gpu/ (git-ignored) for bench/gpu_check.sh on a machine with no network: the wheels the
# GPU image lacks, the CASIA FaceNet weights stored as fp16 (47 MB: the accuracy check computes
# in fp32, bf16 and fp16 from the same weights), LFW's pairs.txt with the images of its first
# fold, and more LFW images up to the device tool's 64 MiB transfer.
# Usage: bench/prepare_gpu_carry.sh [LFW_DIR] [MAX_MB]
#   MAX_MB (default 10): LFW images in all; fold 1's 807 pair images (6.8 MiB) always go, first
set -euo pipefail
cd "$(dirname "$0")/.."
LFW="${1:-../shared/data/lfw_home/lfw_funneled}"
MAX_MB="${2:-10}"
PY="${PYTHON:-.venv/bin/python}"
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/lfw
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels facenet-pytorch==2.5.3
"$PY" - <<'PY'
import sys
import torch
sys.path.insert(0, "src")
from facerec.embed import create_embedder
embedder = create_embedder("facenet-casia", device="cpu")
torch.save({k: v.half() for k, v in embedder.state_dict().items()}, ".gpu/casia_fp16.pt")
PY
cp "$(dirname "$LFW")/pairs.txt" .gpu/pairs.txt
# YuNet's model file (230 KB) and its graph converted to PyTorch (240 KB) for gpu_check.sh's yunet
# step, so the GPU machine needs no onnx package
mkdir -p .gpu/models .gpu/home
cp ../shared/models/yunet/face_detection_yunet_2026may.onnx .gpu/models/ 2>/dev/null || echo "no YuNet model file in ../shared/models/yunet"
FACEREC_HOME=.gpu/home "$PY" -c "import sys; sys.path.insert(0, 'src')
from facerec.detect.yunet_net import torch_network
from facerec.pipeline.detectors import YUNET
torch_network('.gpu/models/' + YUNET.filename, YUNET.sha256, 'cpu')" || echo "YuNet not converted: gpu_check.sh will convert it if the GPU machine has onnx"
# the street clip (2.4 MB) for the video step, which also needs PyAV and OpenCV there
cp ../shared/data/video/video.mp4 .gpu/video.mp4 2>/dev/null || echo "no ../shared/data/video/video.mp4"
# fold 1's pair images first, then every k-th person folder until the byte budget is spent
"$PY" - "$LFW" "$MAX_MB" <<'PY'
import shutil, sys
from pathlib import Path
sys.path.insert(0, "src")
from facerec.evaluate.pairs import read_pairs
src, budget = Path(sys.argv[1]), float(sys.argv[2]) * 2**20
used = 0
for pair in read_pairs(".gpu/pairs.txt", src):
    if pair.fold == 0:
        for f in (Path(pair.a), Path(pair.b)):
            dest = Path(".gpu/lfw") / f.parent.name / f.name
            if not dest.exists():
                dest.parent.mkdir(exist_ok=True)
                shutil.copy(f, dest)
                used += f.stat().st_size
people = sorted(p for p in src.iterdir() if p.is_dir() and not (Path(".gpu/lfw") / p.name).exists())
for person in people[::2] + people[1::2]:
    files = sorted(person.glob("*.jpg"))
    size = sum(f.stat().st_size for f in files)
    if used + size > budget:
        continue
    (Path(".gpu/lfw") / person.name).mkdir()
    for f in files:
        shutil.copy(f, Path(".gpu/lfw") / person.name / f.name)
    used += size
print(f".gpu/lfw: {sum(1 for _ in Path('.gpu/lfw').glob('*/*.jpg'))} images, {used / 2**20:.1f} MiB")
PY
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
du -sh .gpu
