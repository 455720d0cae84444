"""Time the demo training for dataloader workers x intra-op threads: the old command
line of ``python -m benchmarks.demo_training`` (same flags; see that module).

Example::

    python tools/analysis_tools/time_demo_training.py --workers 0 1 2 --threads 1 2
"""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is not installed


def main(argv=None):
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import demo_training
    return demo_training.main(argv)


if __name__ == '__main__':
    main()
