#!/usr/bin/env bash
# Build .gpu/ (git-ignored) for bench/gpu_check.sh on a machine with no network: the wheels the
# GPU image lacks, and as many LFW images as fit the device tool's 64 MiB transfer.
# Usage: bench/prepare_gpu_carry.sh [LFW_DIR] [MAX_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
LFW="${1:-../shared/data/lfw_home/lfw_funneled}"
MAX_MB="${2:-48}"
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/lfw
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels facenet-pytorch==2.5.3
# every k-th person folder until the byte budget is spent, so the subset spans LFW
python3 - "$LFW" "$MAX_MB" <<'PY'
import shutil, sys
from pathlib import Path
src, budget = Path(sys.argv[1]), float(sys.argv[2]) * 2**20
people = sorted(p for p in src.iterdir() if p.is_dir())
used = 0
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
