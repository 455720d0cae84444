"""Which split each source image goes to: drawn (seeded, stratified by material) or read
from a split file. Tiles of one image share its split because the split is decided per
source image, before any tiling."""
import argparse
import csv
import json
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..datasets.layout import SPLITS
from .errors import ConversionError
from .parquet_source import SourceRow

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15

Amount = Union[int, float, None]


def parse_amount(text: str) -> Amount:
    """A split size on the command line: '0.15' -> fraction, '10' -> count."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a fraction (< 1) or a count, got {text!r}')
    if value < 1:
        return value
    if value != int(value):
        raise argparse.ArgumentTypeError(
            f'a value >= 1 is a count and must be whole, got {text!r}')
    return int(value)


def _resolve_amount(amount: Amount, total: int, name: str) -> int:
    if amount is None:
        return 0
    if isinstance(amount, float) and amount < 1:
        if amount < 0:
            raise ConversionError(f'{name} must be >= 0, got {amount}')
        return int(round(amount * total))
    if float(amount) != int(amount) or amount < 0:
        raise ConversionError(
            f'{name} must be a fraction in [0, 1) or a whole count, '
            f'got {amount}')
    return int(amount)


def stratified_assign(groups: Dict[str, List[str]],
                      targets: Sequence[Tuple[str, int]],
                      remainder: str,
                      cover_remainder: bool = True) -> Dict[str, str]:
    """Assign the (already shuffled) ids of each group to named parts.

    Each part of ``targets`` receives exactly its count; ``remainder`` gets
    the rest. A part first takes one id from every group that can spare one
    while still leaving one for each later part, the remainder included if
    ``cover_remainder`` ("every split sees every material where possible"),
    then fills up proportionally to group sizes (largest deficit first).
    Ties break by group name, so the result depends only on the input order
    of ids.
    """
    remaining = {g: list(ids) for g, ids in groups.items()}
    assignment: Dict[str, str] = {}
    total = sum(len(v) for v in remaining.values())
    wanted = sum(count for _, count in targets)
    if wanted > total:
        raise ConversionError(
            f'asked for {wanted} ids in {[n for n, _ in targets]} but only '
            f'{total} are available')
    for k, (part, count) in enumerate(targets):
        later = sum(1 for _, c in targets[k + 1:] if c > 0)
        later += int(cover_remainder)
        pool = sum(len(v) for v in remaining.values())
        taken = {g: 0 for g in remaining}
        picked = 0
        for g in sorted(remaining, key=lambda g: (-len(remaining[g]), g)):
            if picked < count and len(remaining[g]) > later:
                taken[g] = 1
                picked += 1
        while picked < count:
            spare = [g for g in remaining
                     if len(remaining[g]) - taken[g] > later]
            if not spare:
                spare = [g for g in remaining
                         if len(remaining[g]) - taken[g] > 0]
            # largest shortfall against the proportional share first
            best = min(spare, key=lambda g: (
                taken[g] - len(remaining[g]) * count / pool,
                -len(remaining[g]), g))
            taken[best] += 1
            picked += 1
        for g, n in taken.items():
            for item in remaining[g][:n]:
                assignment[item] = part
            remaining[g] = remaining[g][n:]
    for g, ids in remaining.items():
        for item in ids:
            assignment[item] = remainder
    return assignment


def make_splits(rows: Sequence[SourceRow], seed: int,
                num_samples: Optional[int], val: Amount,
                test: Amount) -> Dict[str, str]:
    """out_id -> split, stratified by material and reproducible from seed.

    ``num_samples`` first draws a material-stratified subset; ``val`` and
    ``test`` are fractions (< 1) or counts of the (sub)set; the rest is
    train. Defaults: 15%/15% on the full set, no test split with
    ``num_samples`` (the study's demo: ``--num-samples 50 --val 10``).
    """
    rng = random.Random(seed)
    groups: Dict[str, List[str]] = {}
    for row in sorted(rows, key=lambda r: r.out_id):
        groups.setdefault(row.material or 'unknown', []).append(row.out_id)
    for g in sorted(groups):
        rng.shuffle(groups[g])
    if num_samples is not None:
        if not 0 < num_samples <= len(rows):
            raise ConversionError(
                f'--num-samples must be in 1..{len(rows)} (rows found), '
                f'got {num_samples}')
        chosen = stratified_assign(groups, [('chosen', num_samples)],
                                   'unused', cover_remainder=False)
        groups = {g: [i for i in ids if chosen[i] == 'chosen']
                  for g, ids in groups.items()}
        groups = {g: ids for g, ids in groups.items() if ids}
    total = sum(len(v) for v in groups.values())
    if val is None:
        val = DEFAULT_VAL_FRACTION
    if test is None:
        test = DEFAULT_TEST_FRACTION if num_samples is None else 0
    n_val = _resolve_amount(val, total, 'val')
    n_test = _resolve_amount(test, total, 'test')
    if n_val + n_test >= total:
        raise ConversionError(
            f'val ({n_val}) + test ({n_test}) leave no training images out '
            f'of {total}')
    return stratified_assign(groups, [('val', n_val), ('test', n_test)],
                             'train')


def read_split_file(path: str) -> Dict[str, str]:
    """Read id -> split from JSON ({id: split} or {split: [ids]}) or CSV
    (columns id,split)."""
    if not osp.isfile(path):
        raise ConversionError(f'split file {path} does not exist')
    mapping: Dict[str, str] = {}
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ConversionError(
                    f'split file {path} is not valid JSON: {err}') from err
        if not isinstance(data, dict):
            raise ConversionError(
                f'split file {path} must hold a JSON object')
        if data and all(k in SPLITS and isinstance(v, list)
                        for k, v in data.items()):
            for split, ids in data.items():
                for i in ids:
                    _add_split(mapping, str(i), split, path)
        else:
            for i, split in data.items():
                _add_split(mapping, str(i), split, path)
    elif path.endswith('.csv'):
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {'id', 'split'} <= set(
                    reader.fieldnames):
                raise ConversionError(
                    f'split file {path} needs the CSV columns id,split '
                    f'(found {reader.fieldnames})')
            for rec in reader:
                _add_split(mapping, rec['id'], rec['split'], path)
    else:
        raise ConversionError(
            f'split file {path} must end in .json or .csv')
    return mapping


def _add_split(mapping: Dict[str, str], row_id: str, split, path: str):
    if split not in SPLITS:
        raise ConversionError(
            f'split file {path}: id {row_id!r} has split {split!r}, '
            f'expected one of {SPLITS}')
    if row_id in mapping and mapping[row_id] != split:
        raise ConversionError(
            f'split file {path}: id {row_id!r} is listed in both '
            f'{mapping[row_id]!r} and {split!r}')
    mapping[row_id] = split


def splits_from_file(rows: Sequence[SourceRow], path: str
                     ) -> Tuple[Dict[str, str], List[str]]:
    """Returns (out_id -> split, source ids not listed in the file)."""
    mapping = read_split_file(path)
    by_source = {r.source_id: r for r in rows}
    unknown = sorted(set(mapping) - set(by_source))
    if unknown:
        raise ConversionError(
            f'split file {path} names {len(unknown)} id(s) not in the '
            f'source: {unknown[:10]}')
    splits = {by_source[i].out_id: s for i, s in mapping.items()}
    excluded = sorted(r.source_id for r in rows if r.source_id not in mapping)
    return splits, excluded
