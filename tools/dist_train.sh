#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# One process per GPU with torchrun; without a GPU, NUM_PROCESSES CPU processes (gloo).
# Across nodes: run it on each node with the same NNODES, MASTER_ADDR (node 0's
# address) and PORT, and NODE_RANK 0..NNODES-1 (e.g. NNODES=2 NODE_RANK=1).
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" --launcher pytorch "${@:3}"
