"""What the command-line tools share: mmseg's options (``--cfg-options``,
``--launcher``), the run config they build from them, and the checks they run
before building a Runner, so that failures come early and clear."""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """mmseg's ``--cfg-options key=value ...``."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')


def add_launcher_options(parser: argparse.ArgumentParser) -> None:
    """mmseg's ``--launcher`` and ``--local_rank`` (see :func:`parse_launch_args`)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse, and set ``LOCAL_RANK`` from ``--local_rank`` where the launcher
    (the deprecated ``torch.distributed.launch``) did not, as mmseg's tools do."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def config_with_options(config: str, cfg_options: Optional[dict]) -> Config:
    """``Config.fromfile(config)`` with ``--cfg-options`` merged."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_run_config(config: str, launcher: str, cfg_options: Optional[dict],
                    work_dir: Optional[str]) -> Config:
    """The config of a ``tools/train.py`` / ``test.py`` run, as mmseg's tools build
    it: overrides merged, ``work_dir`` from the flag, else the config's, else
    ``./work_dirs/<config name>``."""
    cfg = config_with_options(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def check_fine_tune_weights(cfg, config_path: str) -> None:
    """A fine-tune config (``require_load_from = True``) without the weights to
    start from would train from random weights under a fine-tune's short
    schedule: refuse it, saying how to give them."""
    if not cfg.get('require_load_from'):
        return
    start = cfg.get('load_from')
    if not start:
        raise ValueError(f'{config_path} fine-tunes trained weights: give them with '
                         '--cfg-options load_from=CHECKPOINT (a work dir\'s best: python '
                         'tools/misc/find_checkpoint.py WORK_DIR; or a model folder\'s '
                         'model.safetensors)')
    if not osp.isfile(start):
        raise FileNotFoundError(f'load_from={start}: no such checkpoint file')


def check_dataset_exists(dataset_cfg: ConfigDict) -> None:
    """Build the dataset once so a missing or broken one fails before the model.

    The model is built first inside ``Runner``, and with ``pretrained=True``
    that means fetching weights; a user without the data would see a network
    error instead of the dataset's message saying how to make the data.
    """
    init_default_scope('mmseg')
    DATASETS.build(dataset_cfg)


def check_pretrained_weights(cfg: Config):
    """Fail before the model is built when the backbone's pretrained weights can be
    read from nowhere (no hub on a cluster node, a wrong folder or file): the
    message names the weights and the two ways out. Returns where they come from
    (a ``WeightsSource``), None for a backbone that is not a timm one."""
    from .models.backbones.pretrained_weights import weights_source
    backbone = cfg.model.get('backbone') or {}
    return weights_source(backbone) if 'model_name' in backbone else None
