"""The launch scripts pass what they are given on: dist_*.sh to torchrun (also
across nodes), slurm_*.sh to srun; train.py --launcher slurm on CPU."""
import os
import textwrap

import pytest
import torch
from mmengine.config import Config

from artseg_mm.checkpoints import load_checkpoint_file
from artseg_mm.engine import prepare_cpu_distributed
from conftest import (PY, REPO, SMALL_MODEL_OPTIONS, dist_run_options, free_port,
                      run_tool)

CONFIG = REPO / 'configs/demo/convnext_tiny_upernet_demo.py'

# stand-ins for srun, scontrol and the interpreter: each records its arguments
FAKE_SRUN = textwrap.dedent('''\
    #!/usr/bin/env bash
    # srun: record the arguments and PYTHONPATH; with FAKE_SRUN_EXEC=1 run the
    # command as the single task of a one-node job step
    printf '%s\\n' "$@" > "$FAKE_LOG"
    printf '%s\\n' "$PYTHONPATH" > "$FAKE_LOG.pythonpath"
    [ "$FAKE_SRUN_EXEC" = 1 ] || exit 0
    while [ $# -gt 0 ]; do
        case "$1" in
            -p) shift 2 ;;
            -*) shift ;;
            *) break ;;
        esac
    done
    SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=1 SLURM_NODELIST=localhost exec "$@"
''')
FAKE_SCONTROL = textwrap.dedent('''\
    #!/usr/bin/env bash
    # scontrol show hostname LIST: record the call, answer this host
    printf '%s\\n' "$*" >> "$FAKE_SCONTROL_LOG"
    echo localhost
''')
FAKE_PYTHON = textwrap.dedent('''\
    #!/usr/bin/env bash
    # the interpreter dist_*.sh runs torchrun with: record its arguments
    printf '%s\\n' "$@" > "$FAKE_LOG"
''')


def fake_bin(tmp_path, **scripts):
    """A folder holding the given executables, to put first on PATH."""
    folder = tmp_path / 'bin'
    folder.mkdir(exist_ok=True)
    for name, text in scripts.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o755)
    return folder


def recorded(log):
    return log.read_text().splitlines()


@pytest.mark.parametrize('script, positional, tool', [
    pytest.param('dist_train.sh', ['CFG.py'], 'train.py', id='train'),
    pytest.param('dist_test.sh', ['CFG.py', 'CKPT.pth'], 'test.py', id='test'),
])
def test_dist_scripts_pass_the_node_settings_to_torchrun(script, positional, tool,
                                                         tmp_path):
    log = tmp_path / 'argv'
    fake_python = fake_bin(tmp_path, python=FAKE_PYTHON) / 'python'
    run_tool(['bash', REPO / 'tools' / script, *positional, '3', '--work-dir', 'W'],
             env_extra=dict(PYTHON=str(fake_python), FAKE_LOG=str(log), NNODES='2',
                            NODE_RANK='1', MASTER_ADDR='10.1.2.3', PORT='29633'))
    assert recorded(log) == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.1.2.3', '--nproc_per_node=3', '--master_port=29633',
        f'{REPO}/tools/{tool}', *positional, '--launcher', 'pytorch', '--work-dir', 'W']


SRUN_DEFAULTS = ['--gres=gpu:4', '--ntasks=4', '--ntasks-per-node=4',
                 '--cpus-per-task=5', '--kill-on-bad-exit=1']


@pytest.mark.parametrize('script, args, env, srun_options, command', [
    pytest.param('slurm_train.sh', ['gpu', 'seg', 'CFG.py', '--work-dir', 'W'], {},
                 SRUN_DEFAULTS, ['train.py', 'CFG.py', '--launcher=slurm', '--work-dir', 'W'],
                 id='train-defaults'),
    pytest.param('slurm_train.sh', ['gpu', 'seg', 'CFG.py'],
                 dict(GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='3',
                      SRUN_ARGS='--time=1:00:00 --exclusive'),
                 ['--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=3',
                  '--kill-on-bad-exit=1', '--time=1:00:00', '--exclusive'],
                 ['train.py', 'CFG.py', '--launcher=slurm'], id='train-two-nodes'),
    pytest.param('slurm_test.sh', ['gpu', 'seg', 'CFG.py', 'CKPT.pth', '--out', 'O'], {},
                 SRUN_DEFAULTS,
                 ['test.py', 'CFG.py', 'CKPT.pth', '--launcher=slurm', '--out', 'O'],
                 id='test-defaults'),
])
def test_slurm_scripts_pass_their_options_to_srun(script, args, env, srun_options,
                                                  command, tmp_path):
    log = tmp_path / 'argv'
    path = fake_bin(tmp_path, srun=FAKE_SRUN)
    run_tool(['bash', REPO / 'tools' / script, *args],
             env_extra=dict(env, PATH=f'{path}{os.pathsep}{os.environ["PATH"]}',
                            FAKE_LOG=str(log), PYTHON='/opt/venv/bin/python'))
    tool, *rest = command
    assert recorded(log) == ['-p', 'gpu', '--job-name=seg', *srun_options,
                             '/opt/venv/bin/python', '-u', f'{REPO}/tools/{tool}', *rest]
    # the repo first on the tasks' import path, as mmseg's scripts do
    assert recorded(log.with_name('argv.pythonpath'))[0].startswith(f'{REPO}/tools/..:')


def test_slurm_train_runs_a_one_task_job_step_on_cpu(tiny_demo_root, tmp_path,
                                                     monkeypatch):
    """slurm_train.sh -> srun (a stand-in that runs the one task) -> train.py
    --launcher slurm: rank, world size and master from the SLURM variables."""
    for key in ('MASTER_ADDR', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    path = fake_bin(tmp_path, srun=FAKE_SRUN, scontrol=FAKE_SCONTROL)
    scontrol_log = tmp_path / 'scontrol'
    work_dir = tmp_path / 'slurm'
    proc = run_tool(
        ['bash', REPO / 'tools/slurm_train.sh', 'cpu', 'tiny', CONFIG,
         '--work-dir', work_dir, '--cfg-options', *dist_run_options(tiny_demo_root),
         *SMALL_MODEL_OPTIONS],
        env_extra=dict(PATH=f'{path}{os.pathsep}{os.environ["PATH"]}', PYTHON=PY,
                       GPUS='1', GPUS_PER_NODE='1', FAKE_SRUN_EXEC='1',
                       FAKE_LOG=str(tmp_path / 'argv'),
                       FAKE_SCONTROL_LOG=str(scontrol_log),
                       MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
                       CUDA_VISIBLE_DEVICES=''))  # the CPU path, also on a GPU host
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: slurm' in log
    assert 'Distributed training: True' in log
    # the master host comes from the job's node list
    assert recorded(scontrol_log) == ['show hostname localhost']
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    assert checkpoint['meta']['iter'] == 2  # 4 images, one task, batch 2


def test_slurm_launcher_without_srun_variables_names_them(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for key in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(key, raising=False)
    cfg = Config(dict(launcher='slurm', model=dict()))
    with pytest.raises(RuntimeError, match=r"SLURM_PROCID', 'SLURM_NTASKS', "
                       r"'SLURM_NODELIST'.*tools/slurm_train.sh"):
        prepare_cpu_distributed(cfg)
