#!/usr/bin/env bash
# The device checks of a session that has a GPU machine, as one prepared script
# (such a session has about 15 minutes of device time in all, start-up included).
#
#   bash benchmarks/gpu_session.sh [RESULTS_DIR]
#
# Each stage has its own time limit and writes its table into RESULTS_DIR
# (default benchmarks/results) as soon as it ends, so a stage that fails or runs
# out of time costs only itself. Stages, most important first:
#   cuda-check.md          graph, compiled, compiled+graph and bf16 training agree
#                          with eager float32 (ntm, dnc); graph and bf16 for the rest
#   speed-cuda.md          training-step speed, eager and graph, every memory
#   speed-cuda-compiled.md compiled and compiled+graph, ntm and dnc, batch 64
#   cuda-cli.md            `nma run` on CUDA (graph, bf16, compile) and under torchrun
#   memory-footprint-cuda.md  peak step memory with and without recompute_chunk
set -u
PYTHON=${PYTHON:-python3}
RESULTS=${1:-benchmarks/results}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 COLUMNS=200
status=0

stage() {  # stage SECONDS NAME COMMAND...
    local limit=$1 name=$2 start=$SECONDS
    shift 2
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@" || { echo "=== $name FAILED ($?)"; status=1; }
    echo "=== $name: $((SECONDS - start)) s"
}

stage 120 check-ntm-dnc "$PYTHON" benchmarks/cuda_check.py --memories ntm dnc --batch 64 \
    --modes graph compiled compiled-graph bf16 --record cuda-check --results "$RESULTS"
stage 50 check-others "$PYTHON" benchmarks/cuda_check.py --memories sam sdnc kv lrua \
    --batch 64 --modes graph bf16 --record cuda-check-others --results "$RESULTS"
stage 110 speed "$PYTHON" benchmarks/speed.py --device cuda --batch 64 16 1 --modes eager graph \
    --repeats 10 --record speed-cuda --results "$RESULTS"
stage 90 speed-compiled "$PYTHON" benchmarks/speed.py --device cuda --memories ntm dnc \
    --batch 64 --modes compiled compiled-graph --repeats 10 --record speed-cuda-compiled \
    --results "$RESULTS"

summary() { echo "$1" | tr '\n' ' ' | grep -o 'Held-out evaluation[^|]*Run' | head -c 150; }

cli() {  # the CLI on CUDA: wall time of 200 training steps of the DNC on copy, batch 64
    local log="$RESULTS/cuda-cli.md" flags
    {
        echo "# nma run on CUDA"
        echo
        echo "200 steps, dnc + lstm on copy, batch 64 (python -m nma run ... --steps 200)."
        echo
        echo "| flags | wall s | exit | final line |"
        echo "| --- | --- | --- | --- |"
    } >"$log"
    for flags in "" "--cuda-graph" "--cuda-graph --precision bf16" "--compile --cuda-graph"; do
        local start=$SECONDS out
        out=$(timeout 45 "$PYTHON" -m nma run --memory dnc --controller lstm --task copy \
            --device cuda --steps 200 --set train.batch_size=64 --no-progress \
            --out "/tmp/runs/$RANDOM" $flags 2>&1)
        local rc=$?
        echo "| ${flags:-(eager)} | $((SECONDS - start)) | $rc | $(summary "$out") |" >>"$log"
        [ $rc -eq 0 ] || { echo "$out" | tail -20; status=1; }
    done
    local start=$SECONDS out
    out=$(timeout 45 "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node 1 -m nma run --memory ntm \
        --controller lstm --task copy --device cuda --steps 100 --no-progress \
        --out /tmp/runs/torchrun 2>&1)
    local rc=$?
    echo "| torchrun (NCCL), ntm, 100 steps | $((SECONDS - start)) | $rc | $(summary "$out") |" >>"$log"
    [ $rc -eq 0 ] || { echo "$out" | tail -20; status=1; }
    cat "$log"
}
echo "=== cli"
cli

stage 40 footprint "$PYTHON" benchmarks/memory_footprint.py --device cuda \
    --record memory-footprint-cuda --results "$RESULTS"
exit $status
