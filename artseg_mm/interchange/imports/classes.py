"""The model's classes, and the label names of annotation files matched to them.

Why it exists: a conservator names labels as the tool let them ('material LOSS',
'background'); the masks must hold the model's class ids, and the data root only the binary
or full ARTeFACT ids. This says which classes the masks are for (from a model, a config or a
list), how a label finds its class (by name, ignoring case; CVAT's 'background' is Clean) and
which ids are written on disk.
"""
import json
import os
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ...datasets.artefact_classes import BINARY_CLASSES, CLEAN_ID, FULL_CLASSES, IGNORE_INDEX
from ..exports import CVAT_BACKGROUND_LABEL
from .errors import AnnotationImportError, ImportUsageError

CLEAN = FULL_CLASSES[CLEAN_ID]
BACKGROUND_LABEL = CVAT_BACKGROUND_LABEL  # CVAT's label of unlabelled pixels: Clean


def resolve_classes(spec: Optional[Union[str, Sequence[str]]] = None) -> List[str]:
    """The model's class names from ``spec``: a list of names, a JSON list (text, or a
    ``.json`` file holding one or a model folder's ``classes.json``), a model folder, a
    training work dir or a config (``.py``, or ``.json`` as a model folder carries). None:
    the binary classes, the study's setting."""
    if spec is None:
        classes = list(BINARY_CLASSES)
    elif not isinstance(spec, str):
        classes = list(spec)
    elif spec.lstrip().startswith('['):
        classes = _json_list(spec, '--classes')
    else:
        classes = _classes_of_path(spec)
    return _checked_classes(classes, spec)


def _json_list(text: str, where: str) -> list:
    """A JSON list of class names, given as text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportUsageError(f'{where} {text!r} is not a JSON list ({error})') from error
    if not isinstance(data, list):
        raise ImportUsageError(f'{where} {text!r} is not a JSON list of class names')
    return data


def _classes_of_path(path: str) -> list:
    """Class names from a file or folder: a JSON list or ``classes.json``, a model folder,
    a work dir or a config. The model modules are imported only here, because they load
    torch, which reading annotations does not need."""
    from ...apis.config_data import read_config_json
    from ...apis.model_folder import (ModelFolderError, is_model_folder,
                                      looks_like_model_folder, open_model_folder)
    from ...apis.model_loader import config_dataset_meta, find_config_dump
    from mmengine.config import Config
    try:
        if is_model_folder(path):
            return list(open_model_folder(path).dataset_meta['classes'])
        if looks_like_model_folder(path):
            raise ModelFolderError(f'{path} holds model folder files but no manifest: an '
                                   'incomplete copy; copy the whole folder')
        if os.path.isdir(path):
            cfg = Config.fromfile(find_config_dump(path))
        elif os.path.isfile(path) and path.endswith('.json'):
            data = json.loads(Path(path).read_text(encoding='utf-8'))
            if isinstance(data, list):
                return data
            if isinstance(data, dict) and 'classes' in data and 'model' not in data:
                return data['classes']
            cfg = read_config_json(path)
        elif os.path.isfile(path):
            cfg = Config.fromfile(path)
        else:
            raise FileNotFoundError('no such model folder, work dir, config or JSON file')
    except (OSError, ValueError) as error:  # the message says what the path is not
        raise ImportUsageError(f'--classes {path}: {error}') from error
    meta = config_dataset_meta(cfg)
    if not meta:
        raise ImportUsageError(f'--classes {path}: the config names no classes (no test '
                               'dataset with classes); give them as a JSON list')
    return list(meta['classes'])


def _checked_classes(classes: list, spec) -> List[str]:
    """Class names that a mask of uint8 ids can hold and a name can be matched to: unique
    (ignoring case, as labels are matched), fewer than the ignore index, Clean among them
    (the class of every pixel no region covers)."""
    if not classes or not all(isinstance(c, str) and c.strip() for c in classes):
        raise ImportUsageError(f'--classes {spec}: expected a non-empty list of class names, '
                               f'got {classes!r}')
    folded = Counter(c.casefold() for c in classes)
    twice = [c for c in classes if folded[c.casefold()] > 1]
    if twice:
        raise ImportUsageError(f'--classes {spec}: class names must differ (ignoring case, '
                               f'as labels are matched): {twice}')
    if len(classes) >= IGNORE_INDEX:
        raise ImportUsageError(f'--classes {spec}: {len(classes)} classes; a mask holds at '
                               f'most {IGNORE_INDEX}')
    if CLEAN not in classes:
        raise ImportUsageError(f'--classes {spec}: {classes} has no {CLEAN!r}, the class of '
                               'the pixels no annotation covers')
    return list(classes)


def disk_ids(classes: Sequence[str]) -> Tuple[str, np.ndarray]:
    """The label set the masks are written in and the model id -> id on disk table.

    A data root holds binary or full ARTeFACT ids (``layout.CLASSES_ON_DISK``): the binary
    classes are written as they are; classes among the full ones (all 16, or the subset a
    model picked with ``metainfo``) as their full ids, which the dataset maps back.
    """
    if list(classes) == list(BINARY_CLASSES):
        return 'binary', np.arange(len(classes), dtype=np.uint8)
    others = [c for c in classes if c not in FULL_CLASSES]
    if others:
        raise ImportUsageError(
            f'classes {others} are neither ARTeFACT classes {list(FULL_CLASSES)} nor the '
            f'binary {list(BINARY_CLASSES)}: a data root holds only those label sets')
    return 'full', np.array([FULL_CLASSES.index(c) for c in classes], dtype=np.uint8)


class LabelNames:
    """Label names of an annotation file -> the model's class ids, by name."""

    def __init__(self, classes: Sequence[str]):
        self.classes = list(classes)
        self._ids = {name.casefold(): idx for idx, name in enumerate(self.classes)}
        # CVAT calls unlabelled pixels 'background': the Clean pixels
        self._ids.setdefault(BACKGROUND_LABEL, self.classes.index(CLEAN))

    def id_of(self, label, where: str) -> int:
        """The class id of ``label``; an error naming it and the known classes."""
        idx = self._ids.get(str(label).strip().casefold()) if isinstance(label, str) else None
        if idx is None:
            raise AnnotationImportError(
                f'{where}: label {label!r} is not one of the classes {self.classes} (names '
                f"match ignoring case; {BACKGROUND_LABEL!r} is {CLEAN!r}). Rename the label "
                'in the annotation tool, or give the model these annotations are for with '
                '--classes')
        return idx
