"""benchmarks.timing: the precisions timed, the CPU facts in the header, logit
agreement between precisions, and busy neighbour processes."""
import sys

import pytest
import torch

from conftest import REPO

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks import peers, timing  # noqa: E402

pytestmark = pytest.mark.bench


def test_precisions_timed_follow_the_cpu_and_the_flags():
    from artseg_mm.engine import cpu_supports_bf16
    cpu = torch.device('cpu')
    parse = peers.build_parser().parse_args
    assert timing.step_precisions(parse([]), cpu) == (
        ['fp32', 'bf16'] if cpu_supports_bf16() else ['fp32'])
    assert timing.step_precisions(parse(['--fp32-only']), cpu) == ['fp32']
    assert timing.step_precisions(parse(['--amp']), cpu) == ['bf16']
    assert timing.step_precisions(parse(['--amp']), torch.device('cuda')) == ['fp16']
    features = timing.cpu_features()
    assert 'oneDNN bf16 kernels: ' + ('yes' if cpu_supports_bf16() else 'no') in features
    assert torch.backends.cpu.get_cpu_capability() in features


def test_logit_agreement_counts_changed_classes():
    reference = torch.tensor([[[[2.0, 0.0], [1.0, 3.0]], [[0.0, 1.0], [0.5, 0.0]]]])
    other = reference.clone()
    other[0, 0, 0, 1] = 1.5  # that pixel now argmaxes to class 0
    agreement = timing.logit_agreement(reference, other)
    assert agreement == dict(max_diff=1.5, changed=25.0)


def test_busy_processes_run_only_inside_the_block():
    with timing.busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
