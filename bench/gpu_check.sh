#!/usr/bin/env bash
# Every GPU figure the performance issue asks for, in one run on a bare H100/H200 with PyTorch.
# Installs nothing from the network. Budget: under 8 minutes (each step has its own timeout, and
# the optional torch.compile step runs only in the time left).
#
# What it needs beside PyTorch (carried, see bench/prepare_gpu_carry.sh):
#   .gpu/wheels/   facenet-pytorch 2.5.3 (MTCNN weights, InceptionResnetV1), --no-deps
#   .gpu/lfw/      LFW images (person/person_NNNN.jpg), as many as fit the transfer limit
#   .gpu/casia_fp16.pt  CASIA FaceNet weights (fp16-stored); without them the speed figures use
#                  random weights (same compute, same speed; the JSON says which) and the accuracy
#                  check is skipped
#   .gpu/pairs.txt LFW pairs; the carried images hold every image of its first fold
# Results: $OUT (or bench/results/gpu) gets gpu_check.log, gpu_check.json (every step's JSON, by
# name: bench/split_gpu_results.py files them), detect_profile.txt and parts.tgz.
# Smoke test on a CPU: DEVICE=cpu SMOKE=1 bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
BUDGET="${BUDGET_S:-470}"
OUT_DIR="${OUT:-bench/results/gpu}"
PARTS="$(mktemp -d)"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
PY="${PYTHON:-python3}"
DEV="${DEVICE:-cuda}"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# smoke: the same steps on a few images, to check the script itself where there is no GPU
if [ -n "${SMOKE:-}" ]; then N=0; LIMIT=96; BASE=16; SIZES=20000; Q=2000; PRECS="fp32"; T_PAIRS=300; AGREE=20
else N=13233; LIMIT=0; BASE=500; SIZES=1000000; Q=100000; PRECS="fp32 bf16 fp16"; T_PAIRS=75; AGREE=0; fi
left() { echo $((BUDGET - (SECONDS - START))); }
# a step's timeout: its own, or what is left of the budget (less 15 s to gather results), if less
cap() { local l=$(( $(left) - 15 )); [ "$l" -lt 10 ] && l=10; [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
STEPS="${STEPS:-pipeline yunet search pairs agreement variants ingest video compile}"  # a subset reruns only those
want() { [[ " $STEPS " == *" $1 "* ]]; }

if [ -d .gpu/wheels ] && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
fi
LFW="${LFW_DIR:-.gpu/lfw}"
[ -d "$LFW" ] || LFW="../shared/data/lfw_home/lfw_funneled"
VIDEO="${VIDEO:-.gpu/video.mp4}"  # bench/prepare_gpu_carry.sh copies the clip there (2.4 MB)
[ -f "$VIDEO" ] || VIDEO="../shared/data/video/video.mp4"
WEIGHTS=()
[ -f .gpu/casia_fp16.pt ] && WEIGHTS=(--weights .gpu/casia_fp16.pt)
# YuNet's model file, and (on a GPU, where it runs converted to PyTorch) the conversion
# prepare_gpu_carry.sh made, so that no onnx package is needed here; without it onnx makes one
export FACEREC_MODELS="${FACEREC_MODELS:-$PWD/.gpu/models:$PWD/../shared/models/yunet}"
YUNET_HOME=()
[ -d .gpu/home/weights ] && YUNET_HOME=(env FACEREC_HOME="$PWD/.gpu/home")

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
  if want pipeline; then
    echo "== pipeline: $N LFW images, per stage and end to end, against the original's way =="
    timeout "$(cap 200)" "$PY" bench/pipeline.py --device "$DEV" --lfw-dir "$LFW" --limit "$LIMIT" --min-images "$N" --baseline-limit "$BASE" \
      ${WEIGHTS[@]+"${WEIGHTS[@]}"} --embed-precisions fp32,fp16 --profile "$OUT_DIR/detect_profile.txt" --json "$PARTS/pipeline_$DEV.json"
  fi
  if want yunet; then  # issue 14: end to end with YuNet, batched on the GPU (its graph converted to PyTorch)
    echo "== pipeline with --align yunet: $N LFW images; $(left) s left =="
    timeout "$(cap 150)" ${YUNET_HOME[@]+"${YUNET_HOME[@]}"} "$PY" bench/pipeline.py --device "$DEV" --align yunet --lfw-dir "$LFW" \
      --limit "$LIMIT" --min-images "$N" --baseline-limit 64 ${WEIGHTS[@]+"${WEIGHTS[@]}"} --json "$PARTS/pipeline_${DEV}_yunet.json"
    echo "== detection alone: YuNet against the batched MTCNN; $(left) s left =="
    timeout "$(cap 90)" ${YUNET_HOME[@]+"${YUNET_HOME[@]}"} "$PY" bench/detectors.py --device "$DEV" --lfw-dir "$LFW" \
      --limit "$((N > 0 ? 4000 : 64))" --batch-size 256 --detectors mtcnn,yunet --json "$PARTS/detectors_$DEV.json"
  fi
  if want variants; then  # end to end with fewer decoding threads, and with bigger detection batches
    for v in "6 512" "16 1024"; do
      set -- $v
      echo "== pipeline variant: $1 decoding threads, detection batch $2; $(left) s left =="
      timeout "$(cap 120)" "$PY" bench/pipeline.py --device "$DEV" --lfw-dir "$LFW" --limit "$LIMIT" --min-images "$N" \
        --baseline-limit 64 --workers "$1" --batch-size "$2" ${WEIGHTS[@]+"${WEIGHTS[@]}"} --json "$PARTS/pipeline_${DEV}_w$1_b$2.json"
    done
  fi
  if want ingest; then  # issue 15: one Ray GPU actor against the single-process pipeline (target >= 90%)
    if "$PY" -c "import ray, milvus_lite" 2>/dev/null; then
      echo "== ingest: Ray Data, one GPU actor, against the single-process pipeline; $(left) s left =="
      timeout "$(cap 180)" "$PY" bench/ingest.py --lfw-dir "$LFW" --images "$((N > 0 ? 4000 : 64))" \
        --device "$DEV" --gpus-per-worker 1 --batch-size 256 --json "$PARTS/ingest_$DEV.json"
    else
      echo "== ingest not run: this machine has no ray or milvus-lite (ray's wheel alone is over the 64 MiB carry limit) =="
    fi
  fi
  if want video; then  # issue 17: frames/s at 720p and 1080p, --every 1 and 5, on the GPU
    if "$PY" -c "import av, cv2" 2>/dev/null && [ -f "$VIDEO" ]; then
      echo "== video: bench/video.py on the GPU; $(left) s left =="
      timeout "$(cap 240)" ${YUNET_HOME[@]+"${YUNET_HOME[@]}"} "$PY" bench/video.py --device "$DEV" --video "$VIDEO" --lfw-dir "$LFW" --no-baseline \
        --json "$PARTS/video_$DEV.json"
    else
      echo "== video not run: this machine lacks PyAV, OpenCV or ../shared/data/video =="
    fi
  fi
  want search && echo "== search: batched exact, 10^6 x 512 (fp32 and fp16), $(left) s left =="
  want search && timeout "$(cap 120)" "$PY" bench/search.py --sizes "$SIZES" --backends exact,exact-fp16 --device "$DEV" --queries "$Q" \
    --single 200 --single-budget 8 --json "$PARTS/search_$DEV.json"
  if want pairs && [ -f .gpu/casia_fp16.pt ] && [ -f .gpu/pairs.txt ]; then
    echo "== LFW pairs, fold 1 (600 pairs), the batched pipeline: the same accuracy in fp32, bf16 and fp16? $(left) s left =="
    for prec in $PRECS; do
      timeout "$(cap "$T_PAIRS")" "$PY" -m facerec evaluate pairs --lfw-dir "$LFW" --pairs .gpu/pairs.txt --folds 1 \
        --precision "$prec" --device "$DEV" --embedder facenet-casia ${WEIGHTS[@]+"${WEIGHTS[@]}"} --batch_size 512 \
        --quiet --json "$PARTS/pairs_fold1_$prec.json"
    done
  fi
  want agreement && echo "== same faces as facenet-pytorch (box IoU >= 0.9), every carried image; $(left) s left =="
  want agreement && timeout "$(cap 90)" "$PY" bench/mtcnn_agreement.py --device "$DEV" --lfw-dir "$LFW" --limit "$AGREE" --ref-batch 64 \
    --json "$PARTS/mtcnn_agreement_$DEV.json"
  # torch.compile last: its compile time is the figure most likely to overrun, so it gets what is left
  if want compile && [ "$(left)" -gt 90 ]; then
    echo "== torch.compile: embedding alone, fp16 and bf16, compile cost stated; $(left) s left =="
    timeout "$(cap 600)" "$PY" bench/pipeline.py --device "$DEV" --embed-only --compile --embed-precisions fp16,bf16 \
      ${WEIGHTS[@]+"${WEIGHTS[@]}"} --json "$PARTS/embed_compile_$DEV.json"
  else
    echo "== torch.compile not run (not in STEPS, or $(left) s left) =="
  fi
  echo "== done in $((SECONDS - START)) s =="
} 2>&1 | tee "$LOG"
# few files come back from a device run: every JSON in one, and all of them as a tarball too
"$PY" - "$PARTS" "$OUT_DIR/gpu_check.json" <<'PY'
import json, sys
from pathlib import Path
parts = {p.name: json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.json"))}
Path(sys.argv[2]).write_text(json.dumps(parts, indent=1))
print(f"{sys.argv[2]}: {', '.join(parts) or 'no results'}")
PY
tar czf "$OUT_DIR/parts.tgz" -C "$PARTS" .
