#!/bin/bash
# One prepared device session (one NVIDIA H200): fine-tune the shipped x8, x4 and x2 CPU-size weights, all
# three at once on the one GPU within a wall-time budget; export fp16 weights and the logs to $OUT.
#   MODE=stage3 (default): clean protocol, each given a 32x32 refine stage (--refine-blocks 2); the shipped
#     jasr-cpu, jasr-cpu-x4 and jasr-cpu-x2 came from this.
#   MODE=robust: the jasr-cpu-robust recipe (models/README.md) on each: CCTV degradations on 70 % of the faces
#     (the H.264 step needs PyAV: .gpu/av.tar.xz, the av wheel's files with their shared objects stripped,
#     unpacked onto PYTHONPATH), rotation +-45 deg, crop jitter. Made with:
#       pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl av==18.1.0
#       mkdir /tmp/av && unzip -q .whl/av-*.whl -d /tmp/av && find /tmp/av -name '*.so*' -exec strip --strip-unneeded {} \;
#       tar cJf .gpu/av.tar.xz -C /tmp/av .
# The data travel packed (scripts/pack_device_data.py):
#   python scripts/pack_device_data.py ../shared/data/faces68/train .gpu/data/faces68-train --side 200
#   python scripts/pack_device_data.py ../shared/data/faces-utk/train .gpu/data/utk-train --side 112
#     (MODE=robust, beside PyAV within the 64 MiB upload: add --max-faces 5000 --quality 80)
#   (cd .gpu && tar czf data.tar.gz data && rm -r data)
# and the call carries .gpu. Evaluation runs afterwards on the CPU machine (jasr-eval, sizebench).
set -u
PY=${PY:-python3}
DEV=${DEV:-cuda}
MODE=${MODE:-stage3}
BUDGET=${BUDGET:-7.2}   # minutes of training per run (cosine lr over it)
LIMIT=${LIMIT:-520}     # hard stop per run, seconds
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-4}
THREADS=${THREADS:-0}   # torch CPU threads per run (0 = torch default)
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/jasr-out}
T0=$(date +%s)
W=/tmp/jasr; rm -rf $W; mkdir -p $W $OUT
tar xzf .gpu/data.tar.gz -C $W || exit 1
COMMON="--data $W/data/faces68-train --extra-data $W/data/utk-train --data-repeat 3
  --device $DEV --amp --quiet --epochs 100000 --time-budget $BUDGET --checkpoint-minutes 2 --val-every-steps 400
  --batch-size $BATCH --lr 2e-4 --warmup-steps 200 --workers $WORKERS --threads $THREADS"
case $MODE in
  stage3) COMMON="$COMMON --refine-blocks 2" ;;
  robust)
    mkdir -p $W/site && tar xJf .gpu/av.tar.xz -C $W/site || exit 1
    export PYTHONPATH=$W/site${PYTHONPATH:+:$PYTHONPATH}
    COMMON="$COMMON --degrade 0.7 --rotation 45 --rotation-upright 0.4 --aug-shift 0.07 --aug-scale 0.12" ;;
  *) echo "MODE must be stage3 or robust, not $MODE"; exit 2 ;;
esac
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $W/gpu.txt 2>&1
nproc >> $W/gpu.txt
$PY -c "import torch, cv2, numpy; print(torch.__version__, cv2.__version__, numpy.__version__)" | tee $W/versions.txt
if [ $MODE = robust ]; then
  $PY -c "import av; from jasr_video.model.degradations import h264_frame as h; import numpy as n
print('av', av.__version__, h(n.zeros((32, 64, 3), n.uint8), 30).shape)" | tee -a $W/versions.txt || exit 1
fi
run() {
  local name=$1; shift
  timeout $LIMIT $PY -m jasr_video.model.train --out $W/$name $COMMON "$@" > $W/train-$name.log 2>&1
  echo "$name exit $? at $(( $(date +%s) - T0 )) s"
}
run x8 --init models/jasr-cpu.pt &
run x4 --init models/jasr-cpu-x4.pt --sr-factor 4 --lr-sizes 20 46 &
run x2 --init models/jasr-cpu-x2.pt --sr-factor 2 --lr-sizes 42 96 &
sleep 60; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | tee -a $W/gpu.txt; uptime | tee -a $W/gpu.txt
wait
echo "training done at $(( $(date +%s) - T0 )) s"
EXP="from jasr_video.model.export import export_main as e; import sys; sys.exit(e(sys.argv[1:]))"
for r in x8 x4 x2; do
  tail -2 $W/train-$r.log
  grep '"val"' $W/$r/log.jsonl | tail -2 | cut -c1-300
  for c in best last; do
    [ -f $W/$r/$c.pt ] && $PY -c "$EXP" $W/$r/$c.pt $OUT/$r-$c.pt
  done
  cp $W/$r/log.jsonl $W/$r-log.jsonl 2>/dev/null
done
(cd $W && tar cf $OUT/logs.tar gpu.txt versions.txt train-*.log *-log.jsonl 2>/dev/null)
echo "all done at $(( $(date +%s) - T0 )) s"; ls -la $OUT
