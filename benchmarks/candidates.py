"""The models the peers benchmark times for one encoder: ours as its study config
builds it, segmentation-models-pytorch's model with our decoder on the same timm
encoder, and mmseg's native twin where ``configs/reference/`` has one.

Each :class:`Candidate` says how to build the model for an input size, run its
inference and its loss, and which optimizer it trains with, so that the timed
steps (:mod:`benchmarks.steps`) treat every model alike.
"""
import logging
import os
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.nn as nn

from .study_configs import (REPO_ROOT, build_mm_model, built_for_one_size, image_metas,
                            mmseg_reference, our_cfg, study_models)


@dataclass
class Candidate:
    """One model to time: how to build it for a phase, run it, and its loss."""
    name: str
    kind: str  # 'ours' | 'peer'
    num_classes: int
    build: Callable[[int], nn.Module]  # input size -> model
    infer: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: Optional[Callable[[nn.Module], torch.optim.Optimizer]] = None


def default_adamw(model: nn.Module) -> torch.optim.Optimizer:
    """What a peer's user writes: AdamW over all parameters, PyTorch's defaults."""
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)


def describe_optimizer(opt: torch.optim.Optimizer) -> str:
    """``AdamW(fused=True), 3 param groups``: the optimizer's type, its fused or
    foreach kernels, and its parameter groups."""
    flags = [k for k in ('fused', 'foreach') if opt.defaults.get(k)]
    return (f'{type(opt).__name__}({", ".join(f"{k}=True" for k in flags)}), '
            f'{len(opt.param_groups)} param groups')


def _samples(labels: torch.Tensor):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for label in labels:
        shape = tuple(label.shape)
        s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                        pad_shape=shape, img_path='<random>'))
        s.gt_sem_seg = PixelData(data=label[None])
        out.append(s)
    return out


def _mm_infer(model, x):
    return model.inference(x, image_metas(x))


def _mm_loss(model, x, y):
    losses = model.loss(x, _samples(y))
    return sum(v for k, v in losses.items() if 'loss' in k)


def candidates(encoder: str, args) -> List[Candidate]:
    """Ours, the segmentation-models-pytorch model with our decoder on the same
    timm encoder, and mmseg's native twin where configs/reference/ has one."""
    import segmentation_models_pytorch as smp

    # our config as trained (size-independent parts: optimizer, loss)
    train_cfg = our_cfg(encoder, args.train_size, args.cfg_options)
    timm_name = train_cfg.model.backbone.model_name
    fixed = built_for_one_size(timm_name)
    head = train_cfg.model.decode_head
    num_classes = head.num_classes

    def ours(size):
        cfg = our_cfg(encoder, size, args.cfg_options)
        if args.device == 'cpu':  # as the CPU demo configs train: NNPACK decoder convs
            cfg.model.decode_head.conv_cfg = dict(type='WinogradConv2d')
        model = build_mm_model(cfg.model)
        model.test_cfg['mode'] = 'whole'  # one 512 image: one window anyway
        return model

    def our_optimizer(model):
        """The torch optimizer our config's ``optim_wrapper`` builds (type,
        options, paramwise groups); autocast and loss scaling stay the
        benchmark's, alike for every model."""
        import artseg_mm  # noqa: F401  (registers the wrapper and constructor)
        from mmengine.logging import MMLogger
        from mmengine.optim import build_optim_wrapper
        from mmengine.registry import DefaultScope
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # not a line per parameter group
        try:
            with DefaultScope.overwrite_default_scope('mmseg'):
                return build_optim_wrapper(model, train_cfg.optim_wrapper).optimizer
        finally:
            logger.setLevel(level)

    # the same loss module for the smp peers as our config uses
    loss_cfg = train_cfg.model.decode_head.loss_decode
    loss_holder = {}

    def peer_loss(model, x, y):
        if 'fn' not in loss_holder:
            import artseg_mm  # noqa: F401
            from mmseg.registry import MODELS
            loss_holder['fn'] = MODELS.build(loss_cfg).to(x.device)
        return loss_holder['fn'](model(x), y, ignore_index=255)

    def peer_infer(model, x):
        return model(x)

    path = study_models()[encoder]
    out = [Candidate(f'ours ({os.path.basename(path)})', 'ours', num_classes,
                     ours, _mm_infer, _mm_loss,
                     default_adamw if args.same_optimizer else our_optimizer)]
    if head.type == 'UNetHead':  # smp's own encoder of the same name (ResNet-50)
        out.append(Candidate(f'smp Unet {timm_name}', 'peer', num_classes,
                             lambda size: smp.Unet(timm_name, encoder_weights=None,
                                                   classes=num_classes),
                             peer_infer, peer_loss))
    elif head.type == 'UPerFeatureHead':
        def smp_upernet(size):
            kw = dict(img_size=size) if fixed else {}
            return smp.UPerNet(f'tu-{timm_name}', encoder_weights=None,
                               decoder_channels=head.channels, classes=num_classes, **kw)
        out.append(Candidate(f'smp UPerNet tu-{timm_name}', 'peer', num_classes,
                             smp_upernet, peer_infer, peer_loss))
    else:
        raise ValueError(f'{path}: no segmentation-models-pytorch peer for decode head '
                         f'{head.type!r} (UPerFeatureHead and UNetHead have one)')
    reference = mmseg_reference(path)
    if reference is not None:
        def mmseg_native(size):
            from mmengine.config import Config
            cfg = Config.fromfile(reference)
            cfg.model.backbone.init_cfg = None  # no network; timing needs no weights
            cfg.model.pop('data_preprocessor')  # inputs are already normalised
            model = build_mm_model(cfg.model)
            model.test_cfg['mode'] = 'whole'  # as ours
            return model
        out.append(Candidate(f'mmseg native ({os.path.relpath(reference, REPO_ROOT)})',
                             'peer', num_classes, mmseg_native, _mm_infer, _mm_loss))
    return out
