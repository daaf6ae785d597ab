#!/usr/bin/env bash
# Every GPU figure the performance issue asks for, in one run on a bare H100/H200 with PyTorch.
# Installs nothing from the network. Budget: under 8 minutes.
#
# What it needs beside PyTorch (carried, see bench/prepare_gpu_carry.sh):
#   .gpu/wheels/   facenet-pytorch 2.5.3 (MTCNN weights, InceptionResnetV1), --no-deps
#   .gpu/lfw/      LFW images (person/person_NNNN.jpg), as many as fit the transfer limit
#   .gpu/casia_fp16.pt  CASIA FaceNet weights (fp16-stored); without them the speed figures use
#                  random weights (same compute, same speed; the JSON says which) and the accuracy
#                  check is skipped
#   .gpu/pairs.txt LFW pairs; the carried images hold every image of its first fold
# Results land in $OUT (or bench/results/gpu) as JSON, with the log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-bench/results/gpu}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if [ -d .gpu/wheels ] && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
fi
LFW="${LFW_DIR:-.gpu/lfw}"
[ -d "$LFW" ] || LFW="../shared/data/lfw_home/lfw_funneled"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name(0))"
  echo "== search: batched exact on the GPU, 10^6 x 512 (fp32 and fp16) =="
  timeout 150 "$PY" bench/search.py --sizes 1000000 --backends exact,exact-fp16 --device cuda --queries 100000 \
    --single 200 --single-budget 10 --json "$OUT_DIR/search_gpu.json"
  echo "== pipeline: LFW on the GPU, against the original's way =="
  timeout 180 "$PY" bench/pipeline.py --device cuda --lfw-dir "$LFW" --min-images 13233 --baseline-limit 500 \
    --json "$OUT_DIR/pipeline_cuda.json"
  if [ -f .gpu/casia_fp16.pt ] && [ -f .gpu/pairs.txt ]; then
    echo "== LFW pairs, fold 1 (600 pairs), fast path: the same accuracy in fp32, bf16 and fp16? =="
    for prec in fp32 bf16 fp16; do
      timeout 60 "$PY" -m facerec evaluate pairs --lfw-dir "$LFW" --pairs .gpu/pairs.txt --folds 1 --fast \
        --precision "$prec" --device cuda --embedder facenet-casia --weights .gpu/casia_fp16.pt --batch_size 512 \
        --quiet --json "$OUT_DIR/pairs_fold1_$prec.json"
    done
  fi
  echo "== same faces as facenet-pytorch on the GPU (box IoU >= 0.9), every carried image =="
  timeout 120 "$PY" bench/mtcnn_agreement.py --device cuda --lfw-dir "$LFW" --limit 0 --ref-batch 64 \
    --json "$OUT_DIR/mtcnn_agreement_cuda.json"
} 2>&1 | tee "$LOG"
