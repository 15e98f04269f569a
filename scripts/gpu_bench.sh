#!/bin/bash
# One prepared device session for the GPU figures in docs/benchmarks.md: end to end on the 1080p clip
# (baseline vs pipeline and variants), simultaneous streams, and JASRNet throughput with torch.compile.
# Needs the repo's dependencies importable (on a GPU machine without an install: wheels unpacked onto PYTHONPATH).
# CLIP: the 1080p clip; FACES: a few real test faces (e.g. 16 of ../shared/data/faces68/test).
# Outputs (JSON + one log) go to $OUT. Each step has its own time limit; a failing step does not stop the others.
set -u
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
DEV=${DEV:-cuda}; CLIP=${CLIP:-../shared/data/video/royal_opera_house_1080p25.mp4}; FACES=${FACES:-../shared/data/faces68/test}
FRAMES=${FRAMES:-100}; SFRAMES=${SFRAMES:-150}; STREAMS=${STREAMS:-1 2 4 8}; VSTREAMS=${VSTREAMS:-4}
T1=${T1:-190}; T2=${T2:-140}; T3=${T3:-50}; T4=${T4:-100}; T5=${T5:-60}; OUT=${OUT:-/tmp/gpu-bench-out}
PROCS=${PROCS:-3 4}; PTHREADS=${PTHREADS:-4}; PFRAMES=${PFRAMES:-250}  # one process per stream: how many, torch CPU threads each
PSCAN=${PSCAN:-1}  # full_scan_every for the process step; PSCAN="1 5" also times region detection between full scans
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo "== $1 at $(( $(date +%s) - T0 )) s"; }
step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
$PY -c "import torch, cv2, numpy, av, scipy; print('torch', torch.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__, 'av', av.__version__, 'cpus', __import__('os').cpu_count())"
step "end to end, one stream"
timeout "$T1" $PY -m jasr_video.bench --device "$DEV" --input "$CLIP" --data "$FACES" --frames "$FRAMES" \
    --variants baseline default reference-mtcnn detector-reduced regions threaded-sinks fp32 --model-seconds 1 --json "$OUT/e2e.json"
step "simultaneous streams, JSON out"
timeout "$T2" $PY -m jasr_video.bench --device "$DEV" --input "$CLIP" --frames "$SFRAMES" --variants \
    --streams $STREAMS --model-seconds 0 --json "$OUT/streams.json"
step "simultaneous streams, annotated video out"
timeout "$T3" $PY -m jasr_video.bench --device "$DEV" --input "$CLIP" --frames "$SFRAMES" --variants \
    --streams $VSTREAMS --streams-video --model-seconds 0 --json "$OUT/streams-video.json"
step "one process per stream (JSON out), $PTHREADS CPU threads each"
for k in $PSCAN; do
for n in $PROCS; do
  rm -f /tmp/proc"$n"-*.json
  for i in $(seq "$n"); do
    timeout "$T5" $PY -m jasr_video.bench --device "$DEV" --input "$CLIP" --frames "$PFRAMES" --threads "$PTHREADS" \
        --full-scan-every "$k" --variants --streams 1 --model-seconds 0 --json "/tmp/proc$n-$i.json" > /dev/null 2>&1 &
  done
  wait
  $PY -c "import json, sys; rows = [json.load(open(f))['streams'][0] for f in sys.argv[3:]]; \
print(sys.argv[1], 'processes, full scan every', sys.argv[2], ':', ', '.join(f\"{r['fps_total']:.1f}\" for r in rows), 'fps each')" "$n" "$k" /tmp/proc"$n"-*.json
done
done
step "JASRNet paper size, torch.compile"
timeout "$T4" $PY -m jasr_video.model.bench --device "$DEV" --models preset:paper --precisions bf16 \
    --batch-sizes 512 --seconds 2 --data "$FACES" --compile --compile-mode default --json "$OUT/compile.json"
step done
