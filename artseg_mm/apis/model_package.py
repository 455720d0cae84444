"""Write a model folder (see ``model_folder``) from a training work dir.

Why it exists: to hand a trained model on without its work dir. The folder gets
the run's config with pretrained-weight settings cleared, the strictly loaded
weights as safetensors, the classes, what the data root says about the training
data, the test tables ``tools/test.py`` writes to its ``--work-dir`` and a model
card; the manifest is written last, into a temporary sibling that replaces the
folder only when complete.
"""
import copy
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Union

from mmengine.config import Config

from ..datasets.data_summary import training_data_summary
from ..checkpoints.matching import read_checkpoint
from ..checkpoints.selection import find_test_checkpoint
from .config_data import config_to_json
from .model_card import model_card, model_facts
from .model_folder import (CARD, CLASSES, CONFIG, DATA_SUMMARY, MANIFEST, WEIGHTS,
                           ModelFolderError, is_model_folder, manifest_record, read_manifest)
from .model_loader import init_model, without_pretrained_weights

# the tables tools/test.py writes to its --work-dir -> their names in the model folder
TEST_TABLES = {'metrics.json': 'test_metrics.json', 'per_class.csv': 'test_per_class.csv'}
OPTIONAL_TEST_TABLES = {'per_group.csv': 'test_per_group.csv'}


def shareable_config(cfg: Config) -> Config:
    """The run's config with nothing to fetch or resume from: the backbone's
    pretrained / ``checkpoint_path`` / ``init_cfg`` cleared, no ``load_from``;
    data paths as they were."""
    cfg = copy.deepcopy(cfg)
    cfg.model = without_pretrained_weights(cfg.model)
    cfg.load_from = None
    cfg.resume = False
    return cfg


def same_checkpoint(recorded: str, packaged: str) -> bool:
    """Whether the tables' recorded checkpoint is the packaged one: the same file
    while it exists, else (a work dir moved since) the same file name."""
    if osp.isfile(recorded):
        return osp.samefile(recorded, packaged)
    return osp.basename(recorded) == osp.basename(packaged)


def read_test_tables(metrics_dir: str, classes, checkpoint: str) -> Optional[dict]:
    """``metrics.json`` of ``tools/test.py`` in ``metrics_dir``, checked against the
    model's classes and, where it records one, the checkpoint; None when there is
    none. ``per_class.csv`` must come with it."""
    path = osp.join(metrics_dir, 'metrics.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        try:
            tables = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid JSON ({error})') from error
    for key in ('metrics', 'n_images', 'classes', 'per_class'):
        if key not in tables:
            raise ValueError(f'{path}: no {key!r}; not the metrics.json tools/test.py '
                             'writes')
    if list(tables['classes']) != list(classes):
        raise ValueError(f'{path} is for the classes {tables["classes"]}, the model has '
                         f'{list(classes)}: the test tables of another model?')
    recorded = tables.get('checkpoint')
    if recorded and not same_checkpoint(recorded, checkpoint):
        raise ValueError(f'{path} holds the test of {recorded}, not of the packaged '
                         f'{checkpoint}; pass --checkpoint {recorded}, or --metrics with '
                         'the tables of this checkpoint')
    for name in TEST_TABLES:
        if not osp.isfile(osp.join(metrics_dir, name)):
            raise FileNotFoundError(f'{metrics_dir} has metrics.json but no {name}; run '
                                    'tools/test.py again')
    tables['source'] = metrics_dir
    return tables


def check_output(out: Path, force: bool) -> None:
    """Refuse a non-empty ``out`` unless ``force`` and it is a model folder whose
    every file its manifest lists (so nothing else is lost)."""
    if out.is_symlink():
        raise FileExistsError(f'--out {out} is a symbolic link (to {os.readlink(out)}): the '
                              'model folder is replaced as a whole, which would replace the '
                              'link and leave its target empty; give the target folder itself')
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a folder')
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise FileExistsError(f'{out} is not empty; choose another --out, or pass --force to '
                              'replace a model folder package_model.py wrote')
    if not is_model_folder(out):
        raise FileExistsError(f'--force replaces only a model folder package_model.py wrote; '
                              f'{out} has no {MANIFEST}')
    try:
        listed = set(read_manifest(out)['files']) | {MANIFEST}
    except ModelFolderError as error:
        raise FileExistsError(f'--force: {error}') from error
    others = sorted(p.relative_to(out).as_posix() for p in out.rglob('*')
                    if p.is_file() and p.relative_to(out).as_posix() not in listed)
    if others:
        raise FileExistsError(f'--force: {out} holds files package_model.py did not write '
                              f'({", ".join(others[:10])}); move them away first')


def _dump_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + '\n', encoding='utf-8')


def _write_folder(folder: Path, name: str, model, cfg: Config, checkpoint: str,
                  tables: Optional[dict], metrics_dir: str, work_dir: str) -> list:
    """Write every file but the manifest into ``folder`` (to become the folder
    ``name``); returns their names."""
    from safetensors.torch import save_file
    (folder / CONFIG).write_text(config_to_json(shareable_config(cfg)) + '\n',
                                 encoding='utf-8')
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(folder / WEIGHTS), metadata={'format': 'pt'})
    classes = dict(classes=list(model.dataset_meta['classes']),
                   palette=[[int(v) for v in c] for c in model.dataset_meta['palette']])
    _dump_json(folder / CLASSES, classes)
    data = training_data_summary(cfg)
    _dump_json(folder / DATA_SUMMARY, data)
    files = [CONFIG, WEIGHTS, CLASSES, DATA_SUMMARY]
    if tables is not None:
        tables_to_copy = dict(TEST_TABLES)
        tables_to_copy.update({k: v for k, v in OPTIONAL_TEST_TABLES.items()
                               if osp.isfile(osp.join(metrics_dir, k))})
        for source, target in tables_to_copy.items():
            shutil.copyfile(osp.join(metrics_dir, source), folder / target)
            files.append(target)
        tables = dict(tables, copied=list(tables_to_copy.values()))
    meta = read_checkpoint(checkpoint).get('meta') or {}
    facts = model_facts(model, cfg, checkpoint, meta, work_dir, name)
    (folder / CARD).write_text(model_card(facts, classes, data, tables, metrics_dir),
                               encoding='utf-8')
    return files + [CARD]


def _share_permissions(folder: Path) -> None:
    """The umask's usual modes (the temporary folder and some writers use 0o700/0o600),
    so whoever may read the parent folder may read the model."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def package_model(work_dir: Union[str, Path], out: Union[str, Path],
                  checkpoint: Optional[str] = None, metrics_dir: Optional[str] = None,
                  force: bool = False) -> dict:
    """Write the model folder ``out`` for a training work dir; returns its manifest.

    Args:
        work_dir: the run's work dir (its config dump and checkpoints).
        out: the model folder to write.
        checkpoint: the weights (default: the work dir's best, else last).
        metrics_dir: where ``tools/test.py --work-dir`` wrote the test tables
            (default ``work_dir/test``); their absence is said in the card.
        force: replace ``out`` if it is a model folder this function wrote.
    """
    work_dir, out = str(work_dir), Path(out)
    check_output(out, force)
    checkpoint = str(checkpoint) if checkpoint else find_test_checkpoint(work_dir)
    model = init_model(work_dir, checkpoint, optimize=False)
    metrics_dir = str(metrics_dir) if metrics_dir else osp.join(work_dir, 'test')
    tables = read_test_tables(metrics_dir, model.dataset_meta['classes'], checkpoint)
    if tables is None:
        print(f'package_model: no test tables in {metrics_dir} (metrics.json); the model '
              'card says so', file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.partial-', dir=out.parent))
    try:
        files = _write_folder(tmp, out.name, model, model.cfg, checkpoint, tables,
                              metrics_dir, work_dir)
        manifest = manifest_record(tmp, files, packaged_from=dict(
            work_dir=work_dir, checkpoint=checkpoint,
            test_tables=metrics_dir if tables is not None else None))
        _dump_json(tmp / MANIFEST, manifest)
        _share_permissions(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}.old-', dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest

