"""benchmarks.peers (with benchmarks.candidates and benchmarks.steps): like for like.

Timings are not asserted (they are the script's output, not a test's); these
check that the models are the study configs', that ours and smp's UPerNet count
the same FLOPs in compare's convention (NNPACK convs included), that ours is
timed with the optimizer its config builds and the peer with PyTorch's default
AdamW, that one training and inference step runs, and how the rows are shown.
"""
import os
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from artseg_mm.study.flops import gflops
from conftest import REPO, STUDY_CONFIGS

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks import cli, peers, scan, slide, timing, window_overlap  # noqa: E402
from benchmarks.candidates import candidates, default_adamw, describe_optimizer  # noqa: E402
from benchmarks.steps import InferStep, TrainStep  # noqa: E402
from benchmarks.study_configs import our_cfg, study_models  # noqa: E402

pytestmark = pytest.mark.bench


def parse(argv):
    return peers.build_parser().parse_args(argv)


def test_ours_and_smp_count_the_same_flops_and_run_a_step():
    args = parse(['--encoders', 'convnext_tiny', '--infer-size', '256',
                  '--train-size', '64', '--train-batch', '2'])
    ours, smp = candidates('convnext_tiny', args)
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
        out = InferStep(cand, model, args, device)()
        assert out.shape == (1, 2, 256, 256)
        step = TrainStep(cand, cand.build(64), args, device)
        assert torch.isfinite(step())


def test_ours_uses_its_config_optimizer_unless_told_otherwise():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LayerNorm(4))
    for flags, want in (([], 'AdamW(fused=True)'), (['--same-optimizer'], 'AdamW()')):
        args = parse(['--encoders', 'convnext_tiny', *flags])
        ours, peer = candidates('convnext_tiny', args)
        assert describe_optimizer(ours.optimizer(model)).startswith(want)
        assert peer.optimizer is None  # TrainStep gives peers default_adamw
    assert describe_optimizer(default_adamw(model)) == 'AdamW(), 1 param groups'


def test_models_and_their_facts_come_from_the_study_configs():
    models = study_models()
    assert sorted(os.path.basename(p)[:-len('_artefact.py')] for p in models.values()) \
        == STUDY_CONFIGS
    # the encoder names --encoders takes (the configs' names less the decoder)
    assert sorted(models) == ['coat_lite_small', 'convnext_tiny', 'resnet50', 'swin_tiny']
    assert parse([]).encoders == list(models)
    # built for one input size (timm's fixed_input_size): Swin and CoaT
    sizes = {}
    for encoder in models:
        cfg = our_cfg(encoder, 64, [])
        assert cfg.model.backbone.pretrained is False
        sizes[encoder] = cfg.model.backbone.get('img_size')
    assert sizes == dict(coat_lite_small=64, convnext_tiny=None, resnet50=None, swin_tiny=64)
    # without a size: the config's sliding window
    assert our_cfg('swin_tiny', None, []).model.backbone.img_size == 512
    args = parse([])
    names = {encoder: [c.name for c in candidates(encoder, args)] for encoder in models}
    assert names['resnet50'] == ['ours (resnet50_unet_artefact.py)', 'smp Unet resnet50']
    assert names['convnext_tiny'] == ['ours (convnext_tiny_upernet_artefact.py)',
                                      'smp UPerNet tu-convnext_tiny']
    reference = 'configs/reference/swin_tiny_upernet_mmseg_artefact.py'
    assert (REPO / reference).is_file()
    assert names['swin_tiny'][2] == f'mmseg native ({reference})'
    assert len(names['coat_lite_small']) == 2  # no mmseg twin in configs/reference


def test_the_mmseg_native_peer_runs_a_step():
    args = parse(['--encoders', 'swin_tiny', '--infer-size', '64',
                  '--train-size', '64', '--train-batch', '2'])
    peer = candidates('swin_tiny', args)[2]
    device = torch.device('cpu')
    model = peer.build(64)
    assert type(model).__name__ == 'EncoderDecoder'  # mmseg's own segmentor
    assert type(model.backbone).__name__ == 'SwinTransformer'
    assert InferStep(peer, model, args, device)().shape == (1, 2, 64, 64)
    assert torch.isfinite(TrainStep(peer, peer.build(64), args, device)())


def test_header_gives_the_models_settings_only_above_the_models_table():
    cpu = torch.device('cpu')
    models = peers.header(parse(['--same-optimizer']), cpu)
    assert models[1] == 'CPU: ' + timing.cpu_features()
    assert any(line.startswith('optimizers: AdamW') for line in models)
    assert any('repeats 4 interleaved' in line for line in models)
    for script, flags in ((scan, []), (slide, []),
                          (window_overlap, ['--overlaps', '0.25', '--scan-model', 'DIR'])):
        lines = cli.header_lines(script.build_parser().parse_args(flags), cpu)
        assert lines == models[:3], script.__name__


def test_bf16_inference_of_each_upernet_keeps_its_classes():
    """The bf16 rows' lever: each study UPerNet's logits under CPU bf16 autocast
    against its own fp32 logits (random weights, 256 px). Differences stay at
    bf16's rounding (2% of the logits' range), a class flips only where the fp32
    logits nearly tie, and few flip: 0.5% of pixels, except on the untrained
    CoaT, whose logits reach about 60 with many near-ties (1.5%; 0.1% with
    another seed)."""
    args = parse(['--infer-size', '256'])
    device = torch.device('cpu')
    for encoder, share in (('convnext_tiny', 0.5), ('swin_tiny', 0.5), ('coat_lite_small', 1.5)):
        ours = candidates(encoder, args)[0]
        model = timing.seeded(ours.build, 256).eval()
        fp32 = InferStep(ours, model, args, device, 'fp32')()
        bf16 = InferStep(ours, model, args, device, 'bf16')()
        agreement = timing.logit_agreement(fp32, bf16)
        assert agreement['max_diff'] <= 0.02 * float(fp32.abs().max()), (encoder, agreement)
        top2 = fp32.topk(2, dim=1).values
        flipped = fp32.argmax(1) != bf16.float().argmax(1)
        margin = (top2[:, 0] - top2[:, 1])[flipped]
        assert bool((margin <= 2 * agreement['max_diff']).all()), encoder
        assert agreement['changed'] <= share, (encoder, agreement)


def test_report_shows_each_row_as_the_tables_did():
    """The rows' numbers, formatted as the models, ratio and background-load
    tables print them; a missing value or a model that did not build shows '-'."""
    args = parse(['--fp32-only', '--background-load', '1'])
    cpu = torch.device('cpu')
    result = peers.PeersResult(
        models=[peers.ModelRow('convnext_tiny', 'ours', 'fp32', 28.24, 234.5, 1.84123, 0.81449,
                               is_reference=True, train_memory=peers.Memory(1657.4, 1000.2)),
                peers.ModelRow('convnext_tiny', 'ours', 'bf16', 28.24, None, 1.5, 0.5,
                               max_diff=0.04412, changed_percent=0.0801),
                peers.ModelRow('convnext_tiny', 'smp', error='RuntimeError: no')],
        ratios=[peers.RatioRow('convnext_tiny', 'bf16', 'smp', 'fp32', 0.7, None)],
        loaded=[peers.LoadRow('convnext_tiny', 'smp', 'fp32', 'train', 0.8, 0.9, 3.21)],
        notes=['- a note'])
    lines = peers.report_lines(result, args, cpu)
    assert lines[0].startswith('| encoder | model | precision | params (M) | GFLOPs @512x512')
    assert lines[0].endswith('| train step (s) | inference (s) | logits vs its fp32: max abs '
                             'diff / pixels changed | train peak RSS MiB (above built model) '
                             '| inference peak RSS MiB (above built model) |')
    assert lines[1] == '|---|---|---|---|---|---|---|---|---|---|'
    assert lines[2:5] == [
        '| convnext_tiny | ours | fp32 | 28.2 | 234.5 | 1.841 | 0.814 | (reference) '
        '| 1657 (657) | - |',
        '| convnext_tiny | ours | bf16 | 28.2 | - | 1.500 | 0.500 | 0.0441 / 0.080% | - | - |',
        '| convnext_tiny | smp |  | not buildable: RuntimeError: no | - | - | - | - | - | - |']
    assert lines[5:9] == ['', '| encoder | ours / peer | train step | inference |',
                          '|---|---|---|---|',
                          '| convnext_tiny | ours bf16 / smp fp32 | 0.70x | - |']
    assert lines[9:13] == ['', 'with 1 busy process(es) beside the benchmark (each spins one '
                           'core):', '', '| encoder | peer | precision | phase | ours/peer '
                           'alone | ours/peer loaded | change | ours loaded (s) |']
    assert lines[14] == '| convnext_tiny | smp | fp32 | train | 0.80x | 0.90x | +12.5% | 3.210 |'
    assert lines[15:] == ['', '- a note']


def test_cuda_memory_is_taken_in_process_and_cpu_memory_in_a_fresh_one():
    # a process's peak RSS cannot be reset, the CUDA allocator's peak can: a
    # subprocess per model and phase on a GPU would spend minutes on start-ups
    args = parse(['--encoders', 'convnext_tiny'])
    assert peers.memory_probe(args, torch.device('cpu')).func is peers.run_in_child
    assert peers.memory_probe(args, torch.device('cuda')).func is peers.measure_here
