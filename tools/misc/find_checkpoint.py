"""Print the checkpoint a work dir offers for testing: the best by mIoU, else the last.

Used by the Makefile's evaluate/cam/attention targets. Exits non-zero with a
message when the work dir holds no checkpoint (train first).
"""
import argparse
import sys

from artseg_mm.checkpoints import find_test_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dir')
    args = parser.parse_args()
    try:
        print(find_test_checkpoint(args.work_dir))
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
