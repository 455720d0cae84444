"""Checkpoints cross devices: written on CUDA, loaded on a CPU, and the reverse,
through the strict loader of ``artseg_mm.apis.init_model``."""
import pytest
import torch

from conftest import study_config
from cuda_helpers import cuda_model

pytestmark = pytest.mark.cuda

CONFIG = 'convnext_tiny_upernet'


def save(model, path):
    """A checkpoint as the Runner writes one, tensors left on their device."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # an optimizer state on the model's device, as in training
    weights = model.state_dict()
    torch.save(dict(meta=dict(epoch=1, iter=1), state_dict=weights,
                    optimizer=optimizer.state_dict()), path)
    return {k: v.detach().cpu().clone() for k, v in weights.items()}


def assert_loaded(model, weights, device):
    state = model.state_dict()
    assert set(state) == set(weights)
    for key, value in state.items():
        assert value.device.type == device, key
        assert torch.equal(value.cpu(), weights[key]), key


def test_checkpoint_written_on_cuda_loads_on_cpu(tmp_path):
    from artseg_mm.apis import init_model
    path = tmp_path / 'cuda.pth'
    weights = save(cuda_model(CONFIG), path)
    raw = torch.load(path, map_location=None, weights_only=True)
    assert raw['state_dict']['decode_head.conv_seg.weight'].is_cuda
    torch.manual_seed(1)  # other initial weights than the saved ones
    model = init_model(study_config(CONFIG), str(path), device='cpu', optimize=False)
    assert_loaded(model, weights, 'cpu')


def test_checkpoint_written_on_cpu_loads_on_cuda(tmp_path):
    from artseg_mm.apis import init_model
    path = tmp_path / 'cpu.pth'
    weights = save(cuda_model(CONFIG).cpu(), path)
    torch.manual_seed(1)
    model = init_model(study_config(CONFIG), str(path), device='cuda', optimize=False)
    assert_loaded(model, weights, 'cuda')
