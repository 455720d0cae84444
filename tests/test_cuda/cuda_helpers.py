"""Helpers of the CUDA tests: study models on a GPU, exact fp32, error measures."""
import contextlib

import torch

from conftest import build_study_model, study_config


def cuda_model(name_or_cfg, mode: str = 'whole') -> torch.nn.Module:
    """A study model (pretrained off) with BN for SyncBN, as one-GPU training
    and inference build it, in eval mode on CUDA with ``test_cfg.mode``."""
    from mmengine.model import revert_sync_batchnorm
    cfg = study_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_study_model(cfg))
    model.test_cfg.mode = mode
    return model.cuda().eval()


@contextlib.contextmanager
def exact_fp32():
    """fp32 without TF32 (PyTorch allows TF32 for cuDNN convolutions by
    default) and deterministic cuDNN, for comparisons at fp32 tolerances."""
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False,
                                        deterministic=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref|: the largest error as a share of the logits' scale."""
    out, ref = out.float().cpu(), ref.float().cpu()
    assert torch.isfinite(out).all(), 'non-finite values'
    return ((out - ref).abs().max() / ref.abs().max()).item()


def metas(inputs: torch.Tensor) -> list:
    """The image metas inference needs, one per image of an N x C x H x W batch."""
    shape = tuple(inputs.shape[2:])
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape)] * inputs.shape[0]
