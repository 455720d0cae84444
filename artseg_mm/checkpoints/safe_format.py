"""Checkpoints that load under torch's ``weights_only=True``, without unsafe globals.

Why it exists: torch >= 2.6 loads with ``weights_only=True``; a stock mmengine
checkpoint then fails with ``Unsupported global: ...HistoryBuffer``. Its
``message_hub`` pickles ``HistoryBuffer`` objects (numpy arrays, and a dict of
functions reached through ``builtins.getattr``) and numpy scalars. Allow-listing
``getattr`` would reopen the door that ``weights_only`` closes, so instead our
checkpoints are written free of such objects (``make_weights_only_safe``, called by
``SafeCheckpointHook`` before every save): each ``HistoryBuffer`` becomes a plain dict
(marked ``HISTORY_BUFFER_KEY``) of Python lists, numpy scalars become Python numbers.
The files then load with plain ``torch.load(path, weights_only=True)`` anywhere, with
or without this package; ``restore_history_buffers`` turns the dicts back into
buffers when a run is resumed. Files of earlier versions hold ``PlainHistoryBuffer``
objects: that one class stays allow-listed so they still load.
"""
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader


class PlainHistoryBuffer(HistoryBuffer):
    """A ``HistoryBuffer`` that pickles as plain Python lists and ints: what
    checkpoints of earlier versions hold (still loaded; no longer written).

    It unpickles into a working buffer (numpy arrays rebuilt, statistics
    methods restored from the class), so ``MessageHub.load_state_dict`` resumes
    it like any other.
    """

    def __getstate__(self) -> dict:
        return dict(
            max_length=int(self.max_length),
            log_history=np.asarray(self._log_history).tolist(),
            count_history=np.asarray(self._count_history).tolist())

    def __setstate__(self, state: dict) -> None:
        self.__init__(state['log_history'], state['count_history'],
                      state['max_length'])


HISTORY_BUFFER_KEY = '__history_buffer__'


def history_as_dict(buffer: HistoryBuffer) -> dict:
    """A ``HistoryBuffer`` as a dict of Python lists (see ``restore_history_buffers``)."""
    log_history, count_history = buffer.data
    return {HISTORY_BUFFER_KEY: 1, 'log_history': np.asarray(log_history).tolist(),
            'count_history': np.asarray(count_history).tolist(),
            'max_length': int(buffer.max_length)}


def restore_history_buffers(checkpoint: dict) -> dict:
    """Turn the history dicts of ``message_hub.log_scalars`` back into buffers, in place."""
    scalars = (checkpoint.get('message_hub') or {}).get('log_scalars') or {}
    for key, value in scalars.items():
        if isinstance(value, dict) and value.get(HISTORY_BUFFER_KEY):
            scalars[key] = HistoryBuffer(value['log_history'], value['count_history'],
                                         value['max_length'])
    return checkpoint


def to_plain_python(value: Any) -> Any:
    """Numpy scalars/arrays -> Python numbers/lists, history buffers -> dicts,
    recursively through containers."""
    if isinstance(value, HistoryBuffer):
        return history_as_dict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, OrderedDict):
        return OrderedDict((k, to_plain_python(v)) for k, v in value.items())
    if isinstance(value, dict):
        return {k: to_plain_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain_python(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_plain_python(v) for v in value)
    return value


def make_weights_only_safe(checkpoint: dict) -> dict:
    """Rewrite, in place, what mmengine put outside ``state_dict``/``optimizer``.

    Tensors are left alone; ``message_hub`` and ``meta`` become plain Python.
    """
    for key in ('message_hub', 'meta'):
        if key in checkpoint:
            checkpoint[key] = to_plain_python(checkpoint[key])
    return checkpoint


SAFE_GLOBALS = (PlainHistoryBuffer, )


def register_safe_globals() -> None:
    """Allow-list the project's checkpoint classes for ``torch.load(weights_only=True)``."""
    torch.serialization.add_safe_globals(list(SAFE_GLOBALS))


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that ``weights_only=True`` refuses."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read at all: empty, truncated or not a checkpoint."""


def load_checkpoint_file(filename: str, map_location=None) -> Any:
    """``torch.load(filename, weights_only=True)``, with clear refusals.

    A file that needs a global outside the allow-list is refused with the
    global's name and the command that converts a *trusted* file once; an empty
    or truncated file (an interrupted save) with its name and size.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    size = osp.getsize(filename)
    if size == 0:
        raise CorruptCheckpointError(f'checkpoint {filename} is empty (0 bytes): an '
                                     'interrupted save? Use an earlier checkpoint.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (EOFError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and 'PytorchStreamReader' not in str(error):
            raise  # e.g. a CUDA checkpoint without CUDA: torch's message says so
        raise CorruptCheckpointError(
            f'checkpoint {filename} ({size} bytes) cannot be read: {error}. It is '
            'truncated (an interrupted save or copy?) or not a PyTorch checkpoint; '
            'use an earlier checkpoint.') from error
    except pickle.UnpicklingError as error:
        found = re.search(r'unsupported global:?\s+(?:GLOBAL\s+)?([\w.]+)', str(error),
                          flags=re.IGNORECASE)
        culprit = found.group(1) if found else 'an object outside the allow-list'
        raise UnsafeCheckpointError(
            f'Refusing to load {filename}: it holds the pickled global '
            f'{culprit}, which weights_only loading does not allow because '
            'unpickling it could run arbitrary code. If you trust where the '
            'file comes from, convert it once: python '
            f'tools/misc/convert_trusted_checkpoint.py {filename} OUT.pth '
            '--i-trust-this-file') from error


def load_checkpoint_url(url: str, map_location=None, model_dir=None,
                        progress: bool = False) -> Any:
    """A checkpoint URL downloaded into torch's hub cache (or ``model_dir``), then
    read by :func:`load_checkpoint_file`; in a distributed run rank 0 downloads
    first, as mmengine's ``load_from_http`` does."""
    from urllib.parse import urlparse
    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()

    def download():
        if not osp.isfile(path):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(url, path, progress=progress)
    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        if rank > 0:  # on another node, with a cache of its own
            download()
    return load_checkpoint_file(path, map_location)


def install_weights_only_loader() -> None:
    """Route mmengine's checkpoint loading of local files and http(s) URLs through
    :func:`load_checkpoint_file`.

    mmengine's ``load_from_local`` retries with ``weights_only=False`` when
    ``weights_only=True`` refuses a file (onedl-mmengine 0.10.12,
    ``runner/checkpoint.py::_safe_torch_load``: "Falling back to
    weights_only=False"), and its ``load_from_http`` reads downloads with
    ``torch.hub.load_state_dict_from_url``, whose default is ``weights_only=False``:
    a crafted checkpoint would run its code in every tool (resume, ``load_from``,
    test, CAM, compare, a config's ``pretrained`` URL). Registered through
    mmengine's own extension point for these schemes; the refusal names the file
    and what it holds. mmengine's other schemes (``open-mmlab://``,
    ``torchvision://``, ``s3://``, ...) keep its own loaders; no config here uses them.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_checkpoint_url, force=True)
