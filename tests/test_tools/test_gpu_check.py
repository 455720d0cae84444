"""tools/misc/gpu_check.sh on a machine without a GPU: says so, runs nothing."""
import shutil

import pytest

from conftest import PY, REPO, run_tool

FAKE_NVIDIA_SMI = '#!/bin/sh\necho "GPU 0: a driver whose device is hidden"\n'


@pytest.mark.parametrize('driver, reason', [
    ('absent', 'nvidia-smi not found'),
    ('device hidden', 'torch.cuda.is_available() is False'),
])
def test_gpu_check_without_a_gpu_says_so_and_fails(driver, reason, tmp_path):
    # PATH: only the tools the script needs before its GPU check (no nvidia-smi)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('dirname', 'timeout'):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if driver == 'device hidden':  # nvidia-smi answers, torch sees no device
        (bin_dir / 'nvidia-smi').write_text(FAKE_NVIDIA_SMI)
        (bin_dir / 'nvidia-smi').chmod(0o755)
    out = tmp_path / 'out'
    proc = run_tool([shutil.which('bash'), REPO / 'tools/misc/gpu_check.sh', out],
                    env_extra=dict(PATH=str(bin_dir), CUDA_VISIBLE_DEVICES='',
                                   PYTHON=PY), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'no GPU present' in proc.stderr
    assert reason in proc.stderr
    assert not out.exists()  # nothing was run or written
