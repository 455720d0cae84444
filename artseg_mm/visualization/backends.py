"""TensorBoard beside the local scalar logs, switched on for one run.

Why it exists: mmengine's ``--cfg-options`` parser cannot write a list of dicts
(``visualizer.vis_backends=[dict(...),dict(...)]`` is rejected), and replacing
``vis_backends.0`` drops ``LocalVisBackend``, whose ``vis_data/scalars.json`` the
comparison reads for training time. :func:`add_tensorboard` appends mmengine's
``TensorboardVisBackend`` and keeps every backend already configured.
"""
import importlib.util

from mmengine.config import Config

TENSORBOARD_BACKEND = 'TensorboardVisBackend'


def add_tensorboard(cfg: Config) -> Config:
    """Append ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends`` (once);
    the events go to ``<work_dir>/<timestamp>/vis_data/``."""
    if importlib.util.find_spec('tensorboard') is None:
        raise ModuleNotFoundError(
            'TensorBoard logging needs the tensorboard package: '
            'pip install -e ".[tensorboard]" (or pip install tensorboard)', name='tensorboard')
    visualizer = cfg.get('visualizer')
    if visualizer is None:
        raise KeyError('the config has no visualizer to add the TensorBoard backend to')
    backends = list(visualizer.get('vis_backends') or [])
    if not any(backend.get('type') == TENSORBOARD_BACKEND for backend in backends):
        backends.append(dict(type=TENSORBOARD_BACKEND))
    visualizer['vis_backends'] = backends
    return cfg
