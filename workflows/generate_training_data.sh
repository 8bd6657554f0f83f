#!/usr/bin/env bash
# Reference data for the interpolators and the forecaster: 2 × 50 ps of ethanol for training
# (the recipes inputs/train-ethanol-*.yaml use both) and 10 ps from a third seed (held-out test),
# every 0.5 fs step, with the shipped sGDML model. About 10 minutes on 2 cores.
# Outputs: runs/ethanol-sgdml-300k{,-b,-test}/ (resumable with --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
for input in inputs/ethanol-sgdml-300k.yaml inputs/ethanol-sgdml-300k-b.yaml \
        inputs/ethanol-sgdml-300k-test.yaml; do
    .venv/bin/hybridmd simulate "$input" "$@"
done
