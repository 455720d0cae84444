#!/usr/bin/env bash
# Usage: [GPUS=4 GPUS_PER_NODE=4 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
# mmseg's slurm_test.sh: srun starts GPUS tasks, GPUS_PER_NODE per node.
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" --launcher=slurm "${@:5}"
