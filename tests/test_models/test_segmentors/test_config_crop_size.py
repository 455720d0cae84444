"""One crop size per config: the training crop, the batch padding, the sliding
windows (and their stride) and CoaT's input size all follow ``crop_size``, and
editing its one line changes every one of them."""
import re
import shutil

import pytest
from mmengine.config import Config

from conftest import REPO

CONFIGS = sorted(str(p.relative_to(REPO / 'configs')) for pattern in
                 ('*.py', 'demo/*.py', 'reference/*.py')
                 for p in (REPO / 'configs').glob(pattern))
# where each regime writes its crop, and the share of it a window advances
STUDY_CROP = ('_base_/datasets/artefact_binary.py', 'crop_size = (512, 512)', (2, 3))
DEMO_CROP = ('demo/_base_/demo.py', 'demo_crop_size = (128, 128)', (3, 4))


def crop_settings(cfg: Config) -> dict:
    """Every setting that must equal the config's crop_size."""
    crops = [step.crop_size for step in cfg.train_dataloader.dataset.pipeline
             if step.type == 'RandomCrop']
    settings = dict(crop_size=tuple(cfg.crop_size), random_crop=tuple(crops[0]),
                    preprocessor_size=tuple(cfg.model.data_preprocessor.size),
                    window=tuple(cfg.model.test_cfg.crop_size),
                    stride=tuple(cfg.model.test_cfg.stride))
    assert len(crops) == 1, crops
    img_size = cfg.model.backbone.get('img_size')
    if img_size is not None:
        settings['img_size'] = (img_size, img_size)
    return settings


def expected(crop, share) -> dict:
    """All settings for a crop, the stride an independent share of it."""
    num, den = share
    return dict(crop_size=crop, random_crop=crop, preprocessor_size=crop, window=crop,
                stride=tuple(num * s // den for s in crop))


def regime(config: str):
    return DEMO_CROP if config.startswith('demo/') or config.endswith('_demo.py') else STUDY_CROP


@pytest.mark.parametrize('config', CONFIGS)
def test_every_crop_setting_is_the_config_crop_size(config):
    cfg = Config.fromfile(REPO / 'configs' / config)
    settings = crop_settings(cfg)
    crop = (128, 128) if regime(config) is DEMO_CROP else (512, 512)
    want = expected(crop, regime(config)[2])
    if 'coat' in config:  # CoaT is built for one input size: the crop
        want['img_size'] = crop
    assert settings == want
    if regime(config) is STUDY_CROP:
        assert want['stride'] == (341, 341)
    else:
        assert want['stride'] == (96, 96)


@pytest.mark.parametrize('written, new', [(STUDY_CROP, (256, 256)), (DEMO_CROP, (96, 96))],
                         ids=['study', 'demo'])
def test_editing_the_one_crop_line_changes_every_setting(written, new, tmp_path):
    path, line, share = written
    configs = tmp_path / 'configs'
    shutil.copytree(REPO / 'configs', configs)
    literal = re.search(r'\(\d+, \d+\)', line).group()
    holders = [p for p in configs.rglob('*.py') if literal in p.read_text()]
    # the regime's crop is written once, in one file; every config reads it there
    assert holders == [configs / path]
    text = (configs / path).read_text()
    assert text.count(line) == 1
    (configs / path).write_text(text.replace(line, line.replace(literal, str(new))))
    changed = [c for c in CONFIGS if regime(c) is written]
    assert len(changed) >= 9
    for config in changed:
        settings = crop_settings(Config.fromfile(configs / config))
        want = expected(new, share)
        if 'coat' in config:
            want['img_size'] = new
        assert settings == want, config
