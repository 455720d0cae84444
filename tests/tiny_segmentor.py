"""A tiny segmentor (two-level conv backbone + UPerHead or FCNHead) for fast
model tests: ``tiny_cfg`` -> ``build`` (seeded, BN statistics randomised, eval)."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule

import artseg_mm  # noqa: F401
from mmseg.registry import MODELS


@MODELS.register_module(name='_TestTinyBackbone', force=True)
class _TestTinyBackbone(BaseModule):
    """Two-level test backbone exposing ``out_channels`` like TimmFeatureBackbone.

    ``pointwise=True``: 1x1 convs at stride 1 (each output pixel depends on its
    input pixel only, so sliding windows reproduce whole-image logits);
    otherwise 3x3 convs at strides 2 and 4.
    """

    def __init__(self, out_channels=(8, 16), pointwise=False, init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = list(out_channels)
        self.model_name = 'tiny_test_net'
        k, s, p = (1, 1, 0) if pointwise else (3, 2, 1)
        c0, c1 = out_channels
        self.stage0 = nn.Sequential(nn.Conv2d(3, c0, k, s, p, bias=False),
                                    nn.BatchNorm2d(c0), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(c0, c1, k, s, p, bias=False),
                                    nn.BatchNorm2d(c1), nn.ReLU())

    def forward(self, x):
        x0 = self.stage0(x)
        return x0, self.stage1(x0)


def randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * .1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * .1)


def tiny_cfg(pointwise=False, head_in=(8, 16), test_cfg=None, aux=None, **kw):
    if pointwise:
        head = dict(type='FCNHead', in_channels=head_in[1], in_index=1,
                    channels=8, num_convs=1, kernel_size=1, concat_input=False,
                    num_classes=3, norm_cfg=dict(type='BN'))
    else:
        head = dict(type='UPerHead', in_channels=list(head_in),
                    in_index=[0, 1], channels=8, pool_scales=(1, 2),
                    num_classes=3, norm_cfg=dict(type='BN'))
    return dict(type='ArtSegEncoderDecoder',
                backbone=dict(type='_TestTinyBackbone', pointwise=pointwise),
                decode_head=head, auxiliary_head=aux,
                test_cfg=test_cfg or dict(mode='whole'), **kw)


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    randomize_bn(model)
    return model.eval()


def metas(x):
    return [dict(ori_shape=x.shape[2:], img_shape=x.shape[2:],
                 pad_shape=x.shape[2:], padding_size=[0, 0, 0, 0])
            for _ in range(x.shape[0])]
