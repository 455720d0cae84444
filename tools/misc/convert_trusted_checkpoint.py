"""Rewrite a checkpoint you trust so that it loads with ``weights_only=True``.

A checkpoint written by stock mmengine (or an old mmseg model zoo file) may
hold pickled objects -- mmengine's ``HistoryBuffer``, numpy scalars -- that
torch's safe loader refuses, because unpickling arbitrary objects can run
arbitrary code. This tool unpickles the file fully, which is only safe for a
file from a source you trust, so it refuses to run without
``--i-trust-this-file``. It then writes a copy whose ``message_hub``/``meta``
hold plain Python values (as artseg_mm's own checkpoints do) and checks that
the copy loads with ``weights_only=True``.

Usage: python tools/misc/convert_trusted_checkpoint.py IN.pth OUT.pth --i-trust-this-file
"""
import argparse
import sys

import torch

from artseg_mm.checkpoints import load_checkpoint_file, make_weights_only_safe


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='checkpoint to convert (trusted source only)')
    parser.add_argument('dst', help='where to write the weights_only-safe copy')
    parser.add_argument('--i-trust-this-file', action='store_true',
                        help='confirm that unpickling SRC fully is acceptable')
    args = parser.parse_args()
    if not args.i_trust_this_file:
        print(f'Not converting {args.src}: loading it fully runs whatever code '
              'its pickles contain. Re-run with --i-trust-this-file if you '
              'trust where it comes from.', file=sys.stderr)
        return 2
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict):
        print(f'{args.src} holds a {type(checkpoint).__name__}, not a checkpoint '
              'dict.', file=sys.stderr)
        return 1
    if 'state_dict' not in checkpoint and all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        checkpoint = dict(state_dict=checkpoint)
    make_weights_only_safe(checkpoint)
    # anything else outside state_dict/optimizer: plain Python or dropped loudly
    for key in list(checkpoint):
        if key in ('state_dict', 'optimizer', 'param_schedulers', 'message_hub', 'meta'):
            continue
        print(f'dropping top-level key {key!r} (not needed to load or resume)')
        del checkpoint[key]
    torch.save(checkpoint, args.dst)
    load_checkpoint_file(args.dst, map_location='cpu')
    print(f'wrote {args.dst}; it loads with weights_only=True')
    return 0


if __name__ == '__main__':
    sys.exit(main())
