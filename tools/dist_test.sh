#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# Across nodes: run it on each node with the same NNODES, MASTER_ADDR (node 0's
# address) and PORT, and NODE_RANK 0..NNODES-1 (e.g. NNODES=2 NODE_RANK=1).
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
