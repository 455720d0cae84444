"""Serve the pure-PyTorch ``mmcv.ops`` from interpreter start-up, before any import.

Why it exists: ``import artseg_mm`` installs the stand-in ``mmcv.ops``, but mmseg's
own tools (``print_config.py``, ``get_flops.py``, ``confusion_matrix.py``, ...)
import ``mmseg.models`` before they read a config's ``custom_imports``, so on
mmcv-lite they fail with ``No module named 'mmcv._ext'``. The package installs a
``.pth`` file that calls :func:`install` in every interpreter of its environment;
it adds an import finder that answers ``import mmcv.ops`` with
``artseg_mm/compat/mmcv_ops.py`` when mmcv's compiled extension is absent, and
does nothing when it is present. It uses the standard library only and imports
neither torch nor artseg_mm, so start-up stays cheap; the file is loaded by path.
"""
import importlib.abc
import importlib.util
import os.path as osp
import sys

STANDIN_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'mmcv_ops.py')


class PurePytorchOpsFinder(importlib.abc.MetaPathFinder):
    """Finds ``mmcv.ops`` as the stand-in file when ``mmcv._ext`` is absent."""

    serves_pure_pytorch_ops = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'mmcv.ops':
            return None
        if importlib.util.find_spec('mmcv._ext') is not None:
            return None  # full mmcv: its own ops
        return importlib.util.spec_from_file_location('mmcv.ops', STANDIN_FILE)


def install() -> None:
    """Put the finder first on ``sys.meta_path``, once: a venv's site-packages is
    often read twice (``lib`` and its ``lib64`` link), each time with a fresh copy
    of this file, so the check is by attribute, not by class."""
    if not any(getattr(f, 'serves_pure_pytorch_ops', False) for f in sys.meta_path):
        sys.meta_path.insert(0, PurePytorchOpsFinder())
