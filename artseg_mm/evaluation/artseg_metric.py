"""mmseg's IoU metric with per-image confusions, bootstrap CIs and metadata breakdowns."""
import csv
import json
import math
import os
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from PIL import Image
from prettytable import PrettyTable

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from ..datasets.artefact_classes import BINARY_CLASSES, DAMAGE_CLASS_INDEX_BINARY
from .functional import (class_iou, confusion_matrix, mean_iou, metrics_from_confusion,
                         present_classes)
from .statistics import bootstrap_ci, per_class_intervals, subset_note

PER_CLASS_METRICS = ('IoU', 'Dice', 'Precision', 'Recall')
SUMMARY_METRICS = ('aAcc', 'mIoU', 'mDice', 'mPrecision', 'mRecall', 'mIoU_mmseg')


def percent(value) -> float:
    """Fraction -> percent as a plain Python float rounded to 2 decimals (NaN kept)."""
    value = float(value)
    return value if math.isnan(value) else round(value * 100, 2)


def _json_float(value: float) -> Optional[float]:
    """NaN -> None so the JSON files are standard JSON."""
    return None if isinstance(value, float) and math.isnan(value) else value


def is_binary_damage(classes: Sequence[str]) -> bool:
    """True for the binary clean/damage class set, which gets a 'damage_IoU'."""
    return tuple(classes) == tuple(BINARY_CLASSES)


def load_per_image(path: str) -> dict:
    """Read a ``per_image.json`` written by :class:`ArtSegMetric`, checked.

    Returns a dict with 'classes', 'ignore_index', 'images' (list of dicts with
    'img_path', 'material', 'content') and 'confusions' ((N, C, C) int64).
    """
    with open(path, encoding='utf-8') as f:
        return checked_per_image(json.load(f), path)


def checked_per_image(data: dict, source: str) -> dict:
    """A per-image record (``ArtSegMetric.per_image_record``) checked, with its
    confusion matrices stacked as 'confusions'; ``source`` names it in errors."""
    for key in ('classes', 'images'):
        if key not in data:
            raise ValueError(f'{source}: not a per_image.json of ArtSegMetric (no {key!r} key)')
    num_classes = len(data['classes'])
    confs = np.asarray([image['confusion'] for image in data['images']], dtype=np.int64)
    if confs.ndim != 3 or confs.shape[1:] != (num_classes, num_classes):
        raise ValueError(f'{source}: confusion matrices of shape {confs.shape[1:]}, expected '
                         f'({num_classes}, {num_classes}) for classes {data["classes"]}')
    data['confusions'] = confs
    return data


@METRICS.register_module()
class ArtSegMetric(IoUMetric):
    """mmseg's ``IoUMetric`` with per-image confusions, bootstrap CIs and breakdowns.

    Why its own results and compute: ``IoUMetric`` keeps per-image
    intersect/union/pred/label areas, which do not say which class a wrong pixel
    was called (the confusion ``tools/analysis_tools/compare.py`` plots and
    ``per_image.json`` holds). This metric stores one confusion matrix per image
    (with its ``img_path``, ``material`` and ``content`` from the sample's
    metainfo; None where absent); its diagonal, column and row sums are
    ``IoUMetric``'s areas. The results are in percent: ``aAcc``, ``mIoU``,
    ``mDice``, ``mPrecision``, ``mRecall`` (mmseg's ``mAcc``) averaged over the
    classes with ground truth in the split (configs keep ``save_best='mIoU'``),
    ``mIoU_mmseg`` (mmseg ``IoUMetric``'s mIoU, which also averages in, as 0, a
    class predicted but absent from the ground truth), ``IoU.<class>`` and
    ``Dice.<class>`` (NaN, null in the JSON files, for a class absent from the
    ground truth: it cannot be scored), ``damage_IoU`` for the binary
    clean/damage classes, and, with ``bootstrap``, the 95% expanded percentile
    bootstrap interval over images ``mIoU_ci_low``/``mIoU_ci_high`` (and
    ``damage_IoU_ci_low``/``_high``): about this checkpoint on images like these.
    Metric definitions and NaN rules:
    :func:`artseg_mm.evaluation.functional.metrics_from_confusion`; intervals:
    :mod:`artseg_mm.evaluation.statistics`.

    It prints a per-class table and one table per metadata key present. With
    ``table_dir`` it writes ``metrics.json``, ``per_class.csv``,
    ``per_group.csv`` and ``per_image.json`` there (read by
    ``tools/analysis_tools/compare.py``). ``output_dir`` is ``IoUMetric``'s: the
    predicted masks as ``<image name>.png`` and nothing else (what mmseg's
    ``tools/test.py --out`` and ``confusion_matrix.py`` expect). With
    ``format_only`` it is ``IoUMetric``: the masks go to ``output_dir``, no
    ground truth is read, no metric computed.

    Args:
        ignore_index (int): Label ignored in evaluation. Defaults to 255.
        bootstrap (bool): Compute the bootstrap intervals. Defaults to True.
        n_boot (int): Bootstrap resamples. Defaults to 10000.
        alpha (float): 1 - confidence level. Defaults to 0.05.
        seed (int): Seed of the resampling. Defaults to 0.
        group_keys (Sequence[str]): Metainfo keys to break results down by.
            Defaults to ('material', 'content').
        output_dir (str, optional): Folder for the predicted masks.
        keep_results (bool): mmseg's flag for ``tools/test.py --out``; needs
            ``output_dir``. Defaults to False.
        table_dir (str, optional): Folder for the result tables.
        checkpoint (str, optional): The weights evaluated, recorded in
            ``metrics.json`` so a later comparison can tell whether the tables
            belong to the checkpoint it compares.
        format_only (bool): Only write the predicted masks to ``output_dir``
            (test images without labels), as ``IoUMetric``. Defaults to False.
        collect_device (str): 'cpu' or 'gpu', for distributed evaluation.
        prefix (str, optional): Prefix of the metric names.
    """
    # no prefix: the keys stay mmseg's ('mIoU' for save_best), without mmengine's
    # "prefix is not set" warning
    default_prefix = ''

    def __init__(self,
                 ignore_index: int = 255,
                 bootstrap: bool = True,
                 n_boot: int = 10000,
                 alpha: float = 0.05,
                 seed: int = 0,
                 group_keys: Sequence[str] = ('material', 'content'),
                 output_dir: Optional[str] = None,
                 keep_results: bool = False,
                 format_only: bool = False,
                 table_dir: Optional[str] = None,
                 checkpoint: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        for flag, value in (('keep_results', keep_results), ('format_only', format_only)):
            if value and output_dir is None:
                raise ValueError(f'ArtSegMetric: {flag}=True needs an output_dir to '
                                 'write the predicted masks to')
        if n_boot < 1:
            raise ValueError(f'ArtSegMetric: n_boot must be >= 1, got {n_boot}')
        if not 0 < alpha < 1:
            raise ValueError(f'ArtSegMetric: alpha must be in (0, 1), got {alpha}')
        super().__init__(ignore_index=ignore_index, iou_metrics=['mIoU', 'mDice', 'mFscore'],
                         collect_device=collect_device, output_dir=output_dir,
                         format_only=format_only, prefix=prefix)
        self.bootstrap = bootstrap
        self.n_boot = n_boot
        self.alpha = alpha
        self.seed = seed
        self.group_keys = tuple(group_keys)
        self.keep_results = keep_results
        self.table_dir = table_dir
        self.checkpoint = checkpoint

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store each image's confusion matrix and metadata (with ``format_only``:
        ``IoUMetric`` writes the masks)."""
        samples = [sample.to_dict() if isinstance(sample, BaseDataElement) else sample
                   for sample in data_samples]
        required = ('pred_sem_seg',) if self.format_only else ('pred_sem_seg', 'gt_sem_seg')
        for sample in samples:
            for key in required:
                if key not in sample:
                    raise KeyError(f"ArtSegMetric: data sample of {sample.get('img_path')} "
                                   f'has no {key!r}; the test pipeline must load annotations '
                                   '(LoadAnnotations) and the model must predict')
        if self.format_only:
            super().process(data_batch, samples)
            return
        num_classes = len(self.dataset_meta['classes'])
        for sample in samples:
            img_path = sample.get('img_path')
            pred = sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            label = sample['gt_sem_seg']['data'].squeeze().cpu().numpy()
            try:
                conf = confusion_matrix(pred, label, num_classes, self.ignore_index)
            except ValueError as error:
                raise ValueError(f'ArtSegMetric: image {img_path}: {error}') from error
            self.results.append(dict(
                confusion=conf, img_path=img_path,
                **{key: sample.get(key) for key in self.group_keys}))
            if self.output_dir is not None:
                self._save_mask(pred, img_path, sample.get('reduce_zero_label', False))

    def _save_mask(self, pred: np.ndarray, img_path: Optional[str],
                   reduce_zero_label: bool) -> None:
        """``IoUMetric``'s mask file; ours since ``IoUMetric.process`` would also
        store its own per-image areas beside our confusions."""
        if img_path is None:
            raise KeyError('ArtSegMetric: output_dir needs img_path in the sample metainfo')
        os.makedirs(self.output_dir, exist_ok=True)
        mask = pred + 1 if reduce_zero_label else pred
        name = osp.splitext(osp.basename(img_path))[0] + '.png'
        Image.fromarray(mask.astype(np.uint8)).save(osp.join(self.output_dir, name))

    # ------------------------------------------------------------------ compute

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Metrics in percent (plain floats), tables logged, files written; with
        ``format_only``, ``IoUMetric``'s log line and no metrics."""
        if self.format_only:
            return super().compute_metrics(results)
        logger: MMLogger = MMLogger.get_current_instance()
        classes = list(self.dataset_meta['classes'])
        confs = np.stack([r['confusion'] for r in results]).astype(np.int64)
        if confs.shape[1:] != (len(classes), len(classes)):
            raise ValueError(f'ArtSegMetric: confusion matrices of shape {confs.shape[1:]} '
                             f'for {len(classes)} classes')
        total = metrics_from_confusion(confs.sum(axis=0))
        binary = is_binary_damage(classes)

        metrics: Dict[str, float] = OrderedDict(
            (name, percent(total[name])) for name in SUMMARY_METRICS)
        if binary:
            metrics['damage_IoU'] = percent(total['IoU'][DAMAGE_CLASS_INDEX_BINARY])
        cis = {}
        if self.bootstrap:
            cis['mIoU'] = bootstrap_ci(confs, mean_iou, self.n_boot, self.seed, self.alpha)
            if binary:
                cis['damage_IoU'] = bootstrap_ci(
                    confs, class_iou(DAMAGE_CLASS_INDEX_BINARY), self.n_boot, self.seed,
                    self.alpha)
            for name, ci in cis.items():
                metrics[f'{name}_ci_low'] = percent(ci['low'])
                metrics[f'{name}_ci_high'] = percent(ci['high'])
        for name in ('IoU', 'Dice'):
            for cls, value in zip(classes, total[name]):
                metrics[f'{name}.{cls}'] = percent(value)

        class_rows = self._class_rows(classes, confs, total)
        group_rows = self._group_rows(results, classes, binary, present_classes(confs))
        self._log_tables(class_rows, group_rows, metrics, logger)
        if self.table_dir is not None:
            self._write_files(metrics, cis, class_rows, group_rows, results, classes)
        return metrics

    def _class_rows(self, classes: List[str], confs: np.ndarray, total: dict) -> List[dict]:
        """Per class: the metrics, with bootstrap intervals of IoU and Dice, pixel and
        image counts; a class without ground truth in the split is NaN, with the reason."""
        conf = confs.sum(axis=0)
        intervals = per_class_intervals(confs, self.n_boot if self.bootstrap else 1,
                                        self.seed, self.alpha)
        rows = []
        for idx, cls in enumerate(classes):
            info = intervals[idx]
            row = OrderedDict(Class=cls)
            for name in PER_CLASS_METRICS:
                row[name] = percent(total[name][idx])
                if name in ('IoU', 'Dice') and self.bootstrap:
                    row[f'{name}_ci_low'] = percent(info[f'{name}_ci_low'])
                    row[f'{name}_ci_high'] = percent(info[f'{name}_ci_high'])
            row['gt_pixels'] = info['gt_pixels']
            row['gt_images'] = info['gt_images']
            row['pred_pixels'] = int(conf[:, idx].sum())
            row['note'] = info['note']
            rows.append(row)
        return rows

    def _group_rows(self, results: List[dict], classes: List[str], binary: bool,
                    split_classes: np.ndarray) -> List[dict]:
        """One row per (metadata key, value); images without the value form '(none)'.

        The means are over the split's class set; a group lacking the ground truth
        of one of its classes has them undefined (NaN), and its note says why.
        """
        rows = []
        for key in self.group_keys:
            values = [r.get(key) for r in results]
            if all(v is None for v in values):
                continue
            groups: Dict[str, list] = defaultdict(list)
            for value, r in zip(values, results):
                groups['(none)' if value is None else str(value)].append(r['confusion'])
            for value in sorted(groups):
                stacked = np.stack(groups[value])
                m = metrics_from_confusion(stacked.sum(axis=0), split_classes)
                row = OrderedDict(key=key, value=value, n_images=len(stacked),
                                  aAcc=percent(m['aAcc']), mIoU=percent(m['mIoU']),
                                  mDice=percent(m['mDice']))
                if binary:
                    row['damage_IoU'] = percent(m['IoU'][DAMAGE_CLASS_INDEX_BINARY])
                row['note'] = subset_note(stacked, classes, split_classes)
                rows.append(row)
        return rows

    def _log_tables(self, class_rows, group_rows, metrics, logger) -> None:
        table = PrettyTable()
        for column in class_rows[0]:
            table.add_column(column, [row[column] for row in class_rows])
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)
        if self.bootstrap:
            level = round(100 * (1 - self.alpha))
            line = (f"mIoU {metrics['mIoU']} [{level}% CI {metrics['mIoU_ci_low']}, "
                    f"{metrics['mIoU_ci_high']}]")
            if 'damage_IoU' in metrics:
                line += (f"; damage IoU {metrics['damage_IoU']} [{metrics['damage_IoU_ci_low']}"
                         f", {metrics['damage_IoU_ci_high']}]")
            print_log(f'{line} (expanded percentile bootstrap over images, {self.n_boot} '
                      'resamples: about this checkpoint on images like these; retraining '
                      'can move it further)', logger)
        for key in self.group_keys:
            rows = [row for row in group_rows if row['key'] == key]
            if not rows:
                print_log(f"no '{key}' metadata in the data samples: no per-{key} table",
                          logger)
                continue
            table = PrettyTable()
            for column in list(rows[0])[1:]:
                table.add_column(key if column == 'value' else column,
                                 [row[column] for row in rows])
            print_log(f'per {key} results:', logger)
            print_log('\n' + table.get_string(), logger=logger)

    def per_image_record(self, results: List[dict]) -> dict:
        """What ``per_image.json`` holds: the classes and each image's metadata
        and confusion matrix."""
        return dict(
            classes=list(self.dataset_meta['classes']), ignore_index=self.ignore_index,
            images=[dict(img_path=r['img_path'],
                         **{key: r.get(key) for key in self.group_keys},
                         confusion=np.asarray(r['confusion']).tolist()) for r in results])

    def _write_files(self, metrics, cis, class_rows, group_rows, results, classes) -> None:
        os.makedirs(self.table_dir, exist_ok=True)
        summary = dict(
            metrics={k: _json_float(v) for k, v in metrics.items()},
            n_images=len(results),
            checkpoint=self.checkpoint,
            classes=classes,
            mIoU_classes=[cls for cls, kept in zip(classes, present_classes(
                np.stack([r['confusion'] for r in results]))) if kept],
            bootstrap=dict(n_boot=self.n_boot, alpha=self.alpha, seed=self.seed,
                           intervals={name: {k: _json_float(v) for k, v in ci.items()}
                                      for name, ci in cis.items()}) if self.bootstrap else None,
            per_class=[{k: _json_float(v) for k, v in row.items()} for row in class_rows])
        with open(osp.join(self.table_dir, 'metrics.json'), 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)
        self._write_csv(osp.join(self.table_dir, 'per_class.csv'), class_rows,
                        list(class_rows[0]))
        group_fields = ['key', 'value', 'n_images', 'aAcc', 'mIoU', 'mDice']
        if is_binary_damage(classes):
            group_fields.append('damage_IoU')
        group_fields.append('note')
        self._write_csv(osp.join(self.table_dir, 'per_group.csv'), group_rows, group_fields)
        with open(osp.join(self.table_dir, 'per_image.json'), 'w', encoding='utf-8') as f:
            json.dump(self.per_image_record(results), f)
        print_log(f'ArtSegMetric: result tables written to {self.table_dir}', 'current')

    @staticmethod
    def _write_csv(path: str, rows: List[dict], fields: List[str]) -> None:
        with open(path, 'w', newline='', encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
