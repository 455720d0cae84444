#!/usr/bin/env bash
# Usage: bash tools/dist_run.sh TOOL NUM_PROCESSES [TOOL arguments]
# tools/TOOL under torchrun, one process per GPU; without a GPU, NUM_PROCESSES CPU
# processes (gloo). dist_train.sh and dist_test.sh call it. Across nodes: run it on
# each node with the same NNODES, MASTER_ADDR (node 0's address) and PORT, and
# NODE_RANK 0..NNODES-1 (e.g. NNODES=2 NODE_RANK=1).
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    $(dirname "$0")/$TOOL \
    "${@:3}"
