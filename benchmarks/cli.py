"""What the benchmark scripts share on the command line: the flags several of them
take, the start of a run (threads, a usable device) and the report's header
(torch, device, CPU, threads: what every number depends on).
"""
import argparse
from typing import List

import torch

from .timing import cpu_features


def add_encoders(parser: argparse.ArgumentParser) -> None:
    from .study_configs import study_models
    encoders = list(study_models())
    parser.add_argument('--encoders', nargs='+', default=encoders, choices=encoders)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")


def add_amp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--amp', action='store_true',
                        help='autocast only: float16 + GradScaler on CUDA, '
                        'bfloat16 on CPU; applied to every model alike')


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--threads', type=int, default=2)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides for OUR configs, e.g. '
                        'model.channels_last=True model.test_cfg.fuse_conv_bn=True')


def add_slide_batch_sizes(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument('--slide-batch-sizes', type=int, nargs='+', default=[1, 2, 4],
                        help=help)


def add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', help='write the markdown table here too')


def start(settings: argparse.Namespace) -> torch.device:
    """Set torch's threads; the device of ``--device`` (cpu without one), refused
    with one line where it is not there."""
    torch.set_num_threads(settings.threads)
    device = torch.device(getattr(settings, 'device', 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but torch.cuda.is_available() is False')
    return device


def header_lines(settings: argparse.Namespace, device: torch.device) -> List[str]:
    """torch, device, CPU features, threads, and our config overrides if any."""
    lines = [f'torch {torch.__version__}, device {device}'
             + (f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''),
             'CPU: ' + cpu_features(),
             f'threads: torch.get_num_threads()={torch.get_num_threads()} '
             f'(--threads {settings.threads})']
    if getattr(settings, 'cfg_options', None):
        lines.append(f'our config overrides: {" ".join(settings.cfg_options)}')
    return lines


def command(script: str, argv: List[str]) -> str:
    """The command line that reruns ``benchmarks.<script>`` with ``argv``."""
    return ' '.join(['python -m benchmarks.' + script, *argv])
