"""Write leave-one-group-out folds (one per material or content type) of a data root.

    python tools/misc/make_folds.py data/artefact_demo --holdout material --out DIR

Writes ``DIR/<holdout>_<group>/{train,val,test}.txt`` (mmseg split files: one
``<split folder>/<id>`` per line, relative to the data root's ``img_dir/`` and
``ann_dir/``) and ``DIR/folds.json`` naming each fold's held-out group. Train a fold with
``--cfg-options`` that point the dataloaders at them (``make folds`` does).
"""
import argparse
import sys

from artseg_mm.data_prep.folds import HOLDOUT_KEYS, make_folds, read_groups, write_folds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='a converted ARTeFACT root (with meta/*.csv)')
    parser.add_argument('--holdout', choices=HOLDOUT_KEYS, default='material')
    parser.add_argument('--val', type=float, default=0.15, help='val share of the rest')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='folder for the split files')
    args = parser.parse_args(argv)
    source = read_groups(args.data_root, args.holdout)
    folds = make_folds(source.groups, source.parents, args.val, args.seed)
    index = write_folds(args.out, args.holdout, folds, source.folders,
                        data_root=str(args.data_root), seed=args.seed)
    for entry in index:
        print(f"{entry['name']}: test {entry['test']} ({entry['holdout']}), "
              f"train {entry['train']}, val {entry['val']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
