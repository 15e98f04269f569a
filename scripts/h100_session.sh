#!/bin/bash
# One prepared device session: train paper-size JASRNet (and fine-tune the CPU-size one) within a
# wall-time budget, export fp16 weights, then benchmark model throughput. Outputs go to $OUT.
# Used for the shipped weights and GPU figures (models/README.md, docs/benchmarks.md): the training
# folder was a copy of ../shared/data/faces68/train (TRAIN), FACES 16 faces of faces68/test.
set -u
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
DEV=${DEV:-cuda}; BUDGET=${BUDGET:-5.0}; PAPER=${PAPER:-paper}; W1=${W1:-8}; W2=${W2:-5}
BATCHES=${BATCHES:-1 32 128 512}; SECS=${SECS:-1}; CTIME=${CTIME:-90}
T0=$(date +%s)
W=/tmp/jasr; mkdir -p $W; rm -rf $W/*
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > $W/gpu.txt 2>&1
$PY -c "import torch, cv2, numpy, rich; print(torch.__version__, cv2.__version__, numpy.__version__)" | tee $W/versions.txt
TR="$PY -m jasr_video.model.train --data ${TRAIN:-.gpu/data/train} --device $DEV --amp --quiet --epochs 100000 --val-every 5 --checkpoint-minutes 2 --time-budget $BUDGET"
$TR --out $W/cpu --init models/jasr-cpu.pt --lr 1.5e-4 --batch-size 16 --workers $W2 > $W/train-cpu.log 2>&1 &
CPUPID=$!
$TR --out $W/paper --preset $PAPER --lr 1.5e-4 --batch-size 32 --workers $W1 > $W/train-paper.log 2>&1
wait $CPUPID
echo "training done at $(( $(date +%s) - T0 )) s"
EXP="from jasr_video.model.export import export_main as e; import sys; sys.exit(e(sys.argv[1:]))"
$PY -c "$EXP" $W/paper/best.pt $W/jasr-paper.pt
$PY -c "$EXP" $W/cpu/best.pt $OUT/jasr-cpu-gpu.pt
(cd $W && split -b 15M -d jasr-paper.pt $OUT/jasr-paper.pt.part)
for r in cpu paper; do grep '"val"' $W/$r/log.jsonl | tail -3 | cut -c1-400; done
$PY -m jasr_video.model.bench --device $DEV --models $W/jasr-paper.pt $OUT/jasr-cpu-gpu.pt --batch-sizes $BATCHES --seconds $SECS --data ${FACES:-.gpu/data/test16} --json $W/bench.json > $W/bench.txt 2>&1
cat $W/bench.txt
echo "bench done at $(( $(date +%s) - T0 )) s"
timeout $CTIME $PY -m jasr_video.model.bench --device $DEV --models $W/jasr-paper.pt --precisions bf16 --batch-sizes ${BATCHES##* } --seconds $SECS --compile --json $W/bench-compiled.json > $W/bench-compiled.txt 2>&1
tail -12 $W/bench-compiled.txt
cp $W/cpu/log.jsonl $W/cpu-log.jsonl; cp $W/paper/log.jsonl $W/paper-log.jsonl
(cd $W && tar cf $OUT/logs.tar gpu.txt versions.txt train-cpu.log train-paper.log cpu-log.jsonl paper-log.jsonl bench.json bench.txt bench-compiled.txt bench-compiled.json 2>/dev/null)
echo "all done at $(( $(date +%s) - T0 )) s"; ls -la $OUT
