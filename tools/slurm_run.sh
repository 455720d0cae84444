#!/usr/bin/env bash
# Usage: [GPUS=4 GPUS_PER_NODE=4 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     bash tools/slurm_run.sh PARTITION JOB_NAME TOOL [TOOL arguments]
# mmseg's SLURM launch: srun starts GPUS tasks of tools/TOOL, GPUS_PER_NODE per node,
# one per GPU; slurm_train.sh and slurm_test.sh call it.

set -x

PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u $(dirname "$0")/$TOOL "${@:4}"
