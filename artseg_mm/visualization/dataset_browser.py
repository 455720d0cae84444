"""Pictures of what the training pipeline feeds the model: image | ground truth.

Why it exists: mmseg 1.2.2's ``browse_dataset.py`` hands OpenCV 5 a
non-contiguous array (``Layout of the output array img is incompatible``), and
it saves nothing when ``--output-dir`` is missing. Here each sample of the
config's training dataset, after its pipeline (crops, flips, rotations, colour
jitter), is drawn as the test overlays are: augmented image | ground truth.
"""
import os
import os.path as osp
from typing import Iterator, Optional, Tuple

import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS, VISUALIZERS
from .overlay_hook import draw_panels


def browse_samples(cfg: Config, split: str = 'train'
                   ) -> Tuple[int, Iterator[Tuple[str, np.ndarray]]]:
    """The number of samples of the ``split`` dataloader's dataset and an iterator
    of ``(image name, RGB picture)``, each sample after the dataset's pipeline."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    # drawing only: no backend writes anything
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='dataset_browser',
                                        vis_backends=None))
    visualizer.dataset_meta = dataset.metainfo

    def pictures():
        for item in dataset:
            sample = item['data_samples']
            image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB
            yield osp.basename(sample.img_path), draw_panels(visualizer, image, sample)
    return len(dataset), pictures()


def browse_dataset(cfg: Config, output_dir: Optional[str], show: bool = False,
                   wait_time: float = 2, progress: bool = True) -> int:
    """Write (and/or show) one picture per training sample; returns the count."""
    from tqdm import tqdm
    if output_dir is None and not show:
        raise ValueError('nothing to do: give an output dir, or show the pictures')
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    count = 0
    visualizer = None
    total, pictures = browse_samples(cfg)
    for name, picture in tqdm(pictures, total=total, desc='samples', unit='img',
                              disable=not progress):
        if output_dir is not None:
            stem = osp.splitext(name)[0]
            mmcv.imwrite(mmcv.rgb2bgr(picture), osp.join(output_dir, f'{stem}.png'))
        if show:
            visualizer = visualizer or VISUALIZERS.get_instance('dataset_browser')
            visualizer.show(picture, win_name=name, wait_time=wait_time)
        count += 1
    return count
