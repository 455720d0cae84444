"""A shareable model folder: what it holds, its manifest, and reading it back.

Why it exists: a work dir is the only thing a trained model lives in
(checkpoints with optimizer state, logs, a config that may fetch pretrained
weights). A model folder is what one hands on or pushes to a model hub:
``config.json`` (the config as data: loading it runs nothing, and it fetches
nothing), ``model.safetensors`` (the segmentor's weights, no pickle),
``classes.json`` (class names and palette), a model card and the data and test
summaries. ``artseg_model.json`` marks the folder as one
``tools/misc/package_model.py`` wrote: format version and every file with its
sha256. Reading checks the files the model is built from against it. Version 1
folders carried a Python ``config.py``; they are refused, not run.
"""
import json
import os.path as osp
from pathlib import Path
from typing import Dict, List, NamedTuple, Union

from ..utils.hashing import sha256_of

MANIFEST = 'artseg_model.json'
FORMAT = 'artseg-mm model folder'
FORMAT_VERSION = 2
CONFIG = 'config.json'
WEIGHTS = 'model.safetensors'
CLASSES = 'classes.json'
DATA_SUMMARY = 'data_summary.json'  # the training data, as the run's config named it
CARD = 'README.md'
# the files a model is built from: checked against the manifest on every load
MODEL_FILES = (CONFIG, WEIGHTS, CLASSES)


class ModelFolderError(ValueError):
    """A model folder whose manifest or files are not what the manifest says."""


class ModelFolder(NamedTuple):
    """The files of a checked model folder and its class names and palette."""
    path: str
    config: str
    weights: str
    dataset_meta: dict


def manifest_record(folder: Union[str, Path], files: List[str], **extra) -> dict:
    """The manifest of ``folder`` listing ``files`` (relative names) with their sha256."""
    return dict(format=FORMAT, format_version=FORMAT_VERSION, **extra,
                files={name: sha256_of(Path(folder) / name) for name in sorted(files)})


def is_model_folder(path: Union[str, Path]) -> bool:
    """True for a folder holding a model-folder manifest."""
    return osp.isdir(str(path)) and osp.isfile(osp.join(str(path), MANIFEST))


def read_manifest(folder: Union[str, Path]) -> dict:
    """The folder's manifest, checked for format, version and a file list."""
    path = osp.join(str(folder), MANIFEST)
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
    except json.JSONDecodeError as error:
        raise ModelFolderError(f'{path} is not valid JSON ({error})') from error
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise ModelFolderError(f'{path}: not a model folder manifest (format is not '
                               f'{FORMAT!r})')
    if manifest.get('format_version') == 1:
        raise ModelFolderError(f'{path}: a version 1 model folder, whose config is Python '
                               '(config.py): loading it would run that code, so it is not '
                               'read. Package the model again from its work dir '
                               '(tools/misc/package_model.py)')
    if manifest.get('format_version') != FORMAT_VERSION:
        raise ModelFolderError(f'{path}: format_version {manifest.get("format_version")!r}; '
                               f'this artseg-mm reads version {FORMAT_VERSION}')
    if not isinstance(manifest.get('files'), dict):
        raise ModelFolderError(f'{path}: no "files" table of names and sha256')
    return manifest


def check_files(folder: Union[str, Path], manifest: dict, names=MODEL_FILES) -> None:
    """Each of ``names`` is listed in the manifest, present and has its sha256."""
    for name in names:
        path = osp.join(str(folder), name)
        expected = manifest['files'].get(name)
        if expected is None:
            raise ModelFolderError(f'{osp.join(str(folder), MANIFEST)} does not list {name}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'model folder {folder}: {name} is missing ({path})')
        actual = sha256_of(path)
        if actual != expected:
            raise ModelFolderError(
                f'{path} differs from the file the model folder was written with (sha256 '
                f'{actual[:12]}..., the manifest says {expected[:12]}...): it was changed or '
                'only partly copied; copy the folder again or package the model again')


def read_classes(path: Union[str, Path]) -> Dict[str, list]:
    """``classes.json``: ``{'classes': [names], 'palette': [[r, g, b], ...]}``, checked."""
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ModelFolderError(f'{path} is not valid JSON ({error})') from error
    if not isinstance(data, dict):
        raise ModelFolderError(f'{path}: expected a JSON object with "classes" and "palette"')
    classes, palette = data.get('classes'), data.get('palette')
    if not (isinstance(classes, list) and classes
            and all(isinstance(c, str) for c in classes)):
        raise ModelFolderError(f'{path}: "classes" must be a non-empty list of names')
    if not (isinstance(palette, list) and len(palette) == len(classes) and all(
            isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255
                                                        for v in c) for c in palette)):
        raise ModelFolderError(f'{path}: "palette" must hold one [r, g, b] (0-255) per class '
                               f'({len(classes)} classes)')
    return dict(classes=classes, palette=palette)


def looks_like_model_folder(path: Union[str, Path]) -> bool:
    """A folder with a model folder's files (weights, classes, config.json) but no
    manifest: an incomplete copy, to be refused rather than read as a work dir."""
    return osp.isdir(str(path)) and any(osp.exists(osp.join(str(path), name))
                                        for name in MODEL_FILES)


def open_model_folder(path: Union[str, Path]) -> ModelFolder:
    """The checked config, weights and classes of a model folder."""
    folder = str(path)
    check_files(folder, read_manifest(folder))
    return ModelFolder(path=folder, config=osp.join(folder, CONFIG),
                       weights=osp.join(folder, WEIGHTS),
                       dataset_meta=read_classes(osp.join(folder, CLASSES)))
