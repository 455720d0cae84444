"""tools/analysis_tools/benchmark.py (artseg_mm.analysis.speed): like for like.

Timings are not asserted (they are the script's output, not a test's); these
check that ours and smp's UPerNet count the same FLOPs (NNPACK convs included),
that ours is timed with the optimizer its config builds and the peer with
PyTorch's default AdamW, and that one training and inference step runs.
"""
import pytest
import torch

from artseg_mm.analysis import speed as bench


def test_ours_and_smp_count_the_same_flops_and_run_a_step():
    args = bench.build_parser().parse_args(['--encoders', 'convnext_tiny', '--infer-size', '256',
                             '--train-size', '64', '--train-batch', '2'])
    ours, smp = bench.candidates('convnext_tiny', args)
    device = torch.device('cpu')
    models = [ours.build(256), smp.build(256)]
    # at 256 the fusion conv's input is 64x64: NNPACK's path, counted as a conv
    fusion = models[0].decode_head.fpn_bottleneck.conv
    assert fusion.uses_nnpack(torch.zeros(1, 1024, 64, 64))
    flops = [bench.count_flops(c, m, args, device) for c, m in zip((ours, smp), models)]
    assert flops[0] == pytest.approx(flops[1], rel=1e-3)
    assert flops[0] > 30  # GFLOPs of ConvNeXt-T UPerNet at 256x256
    for cand, model in zip((ours, smp), models):
        out = bench.InferStep(cand, model, args, device)()
        assert out.shape == (1, 2, 256, 256)
        step = bench.TrainStep(cand, cand.build(64), args, device)
        assert torch.isfinite(step())


def test_ours_uses_its_config_optimizer_unless_told_otherwise():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LayerNorm(4))
    for flags, want in (([], 'AdamW(fused=True)'), (['--same-optimizer'], 'AdamW()')):
        args = bench.build_parser().parse_args(['--encoders', 'convnext_tiny', *flags])
        ours, peer = bench.candidates('convnext_tiny', args)
        assert bench.describe_optimizer(ours.optimizer(model)).startswith(want)
        assert peer.optimizer is None  # TrainStep gives peers default_adamw
    assert bench.describe_optimizer(bench.default_adamw(model)) == 'AdamW(), 1 param groups'
