"""A tiny work dir ready to package: the apis work dir on the tiny demo data, with
pretrained-weight settings a shared config must lose, and test tables written by
``ArtSegMetric`` as ``tools/test.py`` writes them to its ``--work-dir``."""
from pathlib import Path

import torch

from apis_helpers import write_work_dir


def data_root_options(data_root: Path) -> dict:
    return {f'{split}_dataloader.dataset.data_root': str(data_root)
            for split in ('train', 'val', 'test')}


def write_test_tables(out_dir: Path, checkpoint: Path, n_images: int = 4,
                      seed: int = 0) -> Path:
    """metrics.json, per_class.csv, per_group.csv, per_image.json of ``n_images``
    16 px binary predictions of ``checkpoint``, 80% of their pixels right."""
    from artseg_mm.evaluation import ArtSegMetric
    metric = ArtSegMetric(table_dir=str(out_dir), checkpoint=str(checkpoint), n_boot=200)
    metric.dataset_meta = dict(classes=('Clean', 'Damage'))
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n_images):
        gt = torch.randint(0, 2, (1, 16, 16), generator=gen)
        pred = torch.where(torch.rand(1, 16, 16, generator=gen) < 0.8, gt, 1 - gt)
        samples.append(dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt),
                            img_path=f'img_{i}.png'))
    metric.process([], samples)
    metric.compute_metrics(metric.results)
    return out_dir


def write_packable_work_dir(root: Path, data_root: Path) -> Path:
    """``write_work_dir`` on ``data_root``, its backbone set to fetch hub weights
    and read a local file (never done: loaders clear both), with ``test/`` tables."""
    options = dict(data_root_options(data_root), **{
        'model.backbone.pretrained': True,
        'model.backbone.checkpoint_path': '/nowhere/convnext_atto.pth'})
    work_dir = write_work_dir(root, cfg_options=options)
    write_test_tables(work_dir / 'test', work_dir / 'best_mIoU_epoch_1.pth')
    return work_dir
