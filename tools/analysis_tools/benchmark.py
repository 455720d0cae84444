"""Benchmark our segmentors: the command lines of the single tool this once was,
each forwarded to its script in ``benchmarks/`` (see ``benchmarks/__init__.py``).

    benchmark.py [FLAGS]                   -> python -m benchmarks.peers [FLAGS]
    benchmark.py --slide [FLAGS]           -> python -m benchmarks.slide [FLAGS]
    benchmark.py --scan [FLAGS]            -> python -m benchmarks.scan [FLAGS]
    benchmark.py --overlaps F ... [FLAGS]  -> python -m benchmarks.window_overlap --overlaps F ...
    benchmark.py CONFIG CHECKPOINT [FLAGS] -> python -m benchmarks.fps CONFIG CHECKPOINT [FLAGS]

Examples::

    python tools/analysis_tools/benchmark.py --encoders convnext_tiny --out bench.md
    python tools/analysis_tools/benchmark.py --device cuda --amp
    python tools/analysis_tools/benchmark.py --slide --encoders convnext_tiny
    python tools/analysis_tools/benchmark.py --scan --slide-batch-sizes 1 4
    python tools/analysis_tools/benchmark.py --overlaps 0 0.25 0.5 --scan-model WORK_DIR
    python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT --work-dir DIR
"""
import importlib
import sys
from pathlib import Path
from typing import List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is not installed
MODE_FLAGS = {'--scan': 'scan', '--slide': 'slide'}  # in this order of precedence


def _has_flag(argv: List[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + '=') for arg in argv)


def script_for(argv: List[str]) -> Tuple[str, List[str]]:
    """The ``benchmarks`` script an old command line means, and its flags."""
    if argv and argv[0].endswith('.py'):  # mmseg's benchmark.py CONFIG CHECKPOINT
        return 'fps', argv
    flags = [arg for arg in argv if arg not in MODE_FLAGS]
    if _has_flag(argv, '--overlaps'):
        return 'window_overlap', flags
    if _has_flag(argv, '--windows'):
        raise SystemExit('--windows sizes the windows of --overlaps; give --overlaps too')
    for flag, script in MODE_FLAGS.items():
        if flag in argv:
            return script, flags
    return 'peers', argv


def main(argv: Optional[List[str]] = None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    script, flags = script_for(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module(f'benchmarks.{script}').main(flags)


if __name__ == '__main__':
    main()
