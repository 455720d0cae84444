"""Write leave-one-group-out split files (one per material or content type) of a data root.

    python tools/misc/make_folds.py data/artefact_demo --holdout material --out data/folds

Writes ``<out>/<holdout>_<group>.json`` = ``{"train": [ids], "val": [ids], "test": [ids]}``
(ids as in the data root's ``meta/<split>.csv``) and ``<out>/folds.json`` listing them.
"""
import argparse
import json
import re
import sys
from pathlib import Path

from artseg_mm.datasets.folds import HOLDOUT_KEYS, make_folds, read_groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='a converted ARTeFACT root (with meta/*.csv)')
    parser.add_argument('--holdout', choices=HOLDOUT_KEYS, default='material')
    parser.add_argument('--val', type=float, default=0.15, help='val share of the rest')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='folder for the split files')
    args = parser.parse_args(argv)
    groups, parents = read_groups(args.data_root, args.holdout)
    folds = make_folds(groups, parents, args.val, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for fold in folds:
        name = f"{args.holdout}_{re.sub(r'[^A-Za-z0-9]+', '_', fold['holdout'])}"
        (out / f'{name}.json').write_text(json.dumps(fold['splits'], indent=2) + '\n')
        index.append(dict(name=name, holdout=fold['holdout'],
                          **{k: len(v) for k, v in fold['splits'].items()}))
        print(f"{name}: test {len(fold['splits']['test'])} ({fold['holdout']}), "
              f"train {len(fold['splits']['train'])}, val {len(fold['splits']['val'])}")
    (out / 'folds.json').write_text(json.dumps(dict(
        data_root=str(args.data_root), holdout=args.holdout, seed=args.seed,
        folds=index), indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
