#!/usr/bin/env bash
# The device checks of a session that has a GPU machine, as one prepared script
# (such a session has about 15 minutes of device time in all, start-up included).
# Writes benchmarks/results/cuda-check.md and benchmarks/results/speed-cuda.md.
set -u
PYTHON=${PYTHON:-python}
status=0
timeout 240 "$PYTHON" benchmarks/cuda_check.py --steps 6 --record cuda-check || status=1
timeout 300 "$PYTHON" benchmarks/speed.py --device cuda --memories ntm dnc --batch 64 16 1 \
    --modes eager graph compiled --repeats 10 --record speed-cuda || status=1
exit $status
