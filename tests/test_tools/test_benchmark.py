"""tools/analysis_tools/benchmark.py (artseg_mm.analysis.speed): like for like.

Timings are not asserted (they are the script's output, not a test's); these
check that the models are the study configs', that ours and smp's UPerNet count
the same FLOPs in compare's convention (NNPACK convs included), that ours is
timed with the optimizer its config builds and the peer with PyTorch's default
AdamW, and that one training and inference step runs.
"""
import os

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from artseg_mm.analysis import speed as bench
from artseg_mm.analysis import timing
from artseg_mm.analysis.flops import gflops
from conftest import REPO, STUDY_CONFIGS


def test_ours_and_smp_count_the_same_flops_and_run_a_step():
    args = bench.build_parser().parse_args(['--encoders', 'convnext_tiny', '--infer-size', '256',
                             '--train-size', '64', '--train-batch', '2'])
    ours, smp = bench.candidates('convnext_tiny', args)
    device = torch.device('cpu')
    models = [ours.build(256).eval(), smp.build(256).eval()]
    # at 256 the fusion conv's input is 64x64: NNPACK's path, counted as a conv
    fusion = models[0].decode_head.fpn_bottleneck.conv
    assert fusion.uses_nnpack(torch.zeros(1, 1024, 64, 64))
    flops = [gflops(m, 'cpu', (256, 256)) for m in models]
    assert flops[0] == pytest.approx(flops[1], rel=1e-3)
    # one FLOP per multiply-add: half of what torch's FlopCounterMode counts
    # (2 per multiply-add, convolutions and matrix products only)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        models[0](torch.randn(1, 3, 256, 256))
    assert flops[0] == pytest.approx(counter.get_total_flops() / 2e9, rel=0.01)
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


def test_models_and_their_facts_come_from_the_study_configs():
    models = bench.study_models()
    assert sorted(os.path.basename(p)[:-len('_artefact.py')] for p in models.values()) \
        == STUDY_CONFIGS
    # the encoder names --encoders takes (the configs' names less the decoder)
    assert sorted(models) == ['coat_lite_small', 'convnext_tiny', 'resnet50', 'swin_tiny']
    assert bench.build_parser().parse_args([]).encoders == list(models)
    # built for one input size (timm's fixed_input_size): Swin and CoaT
    sizes = {}
    for encoder in models:
        cfg = bench.our_cfg(encoder, 64, [])
        assert cfg.model.backbone.pretrained is False
        sizes[encoder] = cfg.model.backbone.get('img_size')
    assert sizes == dict(coat_lite_small=64, convnext_tiny=None, resnet50=None, swin_tiny=64)
    # without a size: the config's sliding window
    assert bench.our_cfg('swin_tiny', None, []).model.backbone.img_size == 512
    args = bench.build_parser().parse_args([])
    names = {encoder: [c.name for c in bench.candidates(encoder, args)] for encoder in models}
    assert names['resnet50'] == ['ours (resnet50_unet_artefact.py)', 'smp Unet resnet50']
    assert names['convnext_tiny'] == ['ours (convnext_tiny_upernet_artefact.py)',
                                      'smp UPerNet tu-convnext_tiny']
    reference = 'configs/reference/swin_tiny_upernet_mmseg_artefact.py'
    assert (REPO / reference).is_file()
    assert names['swin_tiny'][2] == f'mmseg native ({reference})'
    assert len(names['coat_lite_small']) == 2  # no mmseg twin in configs/reference


def test_the_mmseg_native_peer_runs_a_step():
    args = bench.build_parser().parse_args(['--encoders', 'swin_tiny', '--infer-size', '64',
                                            '--train-size', '64', '--train-batch', '2'])
    peer = bench.candidates('swin_tiny', args)[2]
    device = torch.device('cpu')
    model = peer.build(64)
    assert type(model).__name__ == 'EncoderDecoder'  # mmseg's own segmentor
    assert type(model.backbone).__name__ == 'SwinTransformer'
    assert bench.InferStep(peer, model, args, device)().shape == (1, 2, 64, 64)
    assert torch.isfinite(bench.TrainStep(peer, peer.build(64), args, device)())


def test_precisions_timed_follow_the_cpu_and_the_flags():
    from artseg_mm.engine import cpu_supports_bf16
    cpu = torch.device('cpu')
    parse = bench.build_parser().parse_args
    assert timing.step_precisions(parse([]), cpu) == (
        ['fp32', 'bf16'] if cpu_supports_bf16() else ['fp32'])
    assert timing.step_precisions(parse(['--fp32-only']), cpu) == ['fp32']
    assert timing.step_precisions(parse(['--amp']), cpu) == ['bf16']
    assert timing.step_precisions(parse(['--amp']), torch.device('cuda')) == ['fp16']
    features = timing.cpu_features()
    assert 'oneDNN bf16 kernels: ' + ('yes' if cpu_supports_bf16() else 'no') in features
    assert torch.backends.cpu.get_cpu_capability() in features


def test_header_gives_the_models_settings_only_above_the_models_table():
    parse, cpu = bench.build_parser().parse_args, torch.device('cpu')
    models = bench.header(parse(['--same-optimizer']), cpu)
    assert models[1] == 'CPU: ' + timing.cpu_features()
    assert any(line.startswith('optimizers: AdamW') for line in models)
    assert any('repeats 4 interleaved' in line for line in models)
    for mode in (['--scan'], ['--slide'], ['--overlaps', '0.25']):
        lines = bench.header(parse(mode), cpu)
        assert lines == models[:3], mode


def test_logit_agreement_counts_changed_classes():
    reference = torch.tensor([[[[2.0, 0.0], [1.0, 3.0]], [[0.0, 1.0], [0.5, 0.0]]]])
    other = reference.clone()
    other[0, 0, 0, 1] = 1.5  # that pixel now argmaxes to class 0
    agreement = timing.logit_agreement(reference, other)
    assert agreement == dict(max_diff=1.5, changed=25.0)


def test_bf16_inference_of_each_upernet_keeps_its_classes():
    """The bf16 rows' lever: each study UPerNet's logits under CPU bf16 autocast
    against its own fp32 logits (random weights, 256 px). Differences stay at
    bf16's rounding (2% of the logits' range), a class flips only where the fp32
    logits nearly tie, and few flip: 0.5% of pixels, except on the untrained
    CoaT, whose logits reach about 60 with many near-ties (1.5%; 0.1% with
    another seed)."""
    args = bench.build_parser().parse_args(['--infer-size', '256'])
    device = torch.device('cpu')
    for encoder, share in (('convnext_tiny', 0.5), ('swin_tiny', 0.5), ('coat_lite_small', 1.5)):
        ours = bench.candidates(encoder, args)[0]
        model = timing.seeded(ours.build, 256).eval()
        fp32 = bench.InferStep(ours, model, args, device, 'fp32')()
        bf16 = bench.InferStep(ours, model, args, device, 'bf16')()
        agreement = timing.logit_agreement(fp32, bf16)
        assert agreement['max_diff'] <= 0.02 * float(fp32.abs().max()), (encoder, agreement)
        top2 = fp32.topk(2, dim=1).values
        flipped = fp32.argmax(1) != bf16.float().argmax(1)
        margin = (top2[:, 0] - top2[:, 1])[flipped]
        assert bool((margin <= 2 * agreement['max_diff']).all()), encoder
        assert agreement['changed'] <= share, (encoder, agreement)


def test_busy_processes_run_only_inside_the_block():
    with timing.busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
