#!/usr/bin/env bash
# Usage: [GPUS=4 GPUS_PER_NODE=4 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# mmseg's slurm_train.sh: srun starts GPUS tasks, GPUS_PER_NODE per node, one
# per GPU; train.py --launcher slurm reads the rank from srun's SLURM_* variables.
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --launcher=slurm "${@:4}"
