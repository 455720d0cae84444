"""Where an encoder's ImageNet weights come from: timm's hub, or a folder of them
written on a machine with internet (``tools/misc/fetch_pretrained.py``).

Why it exists: compute nodes of clusters usually have no internet, and timm
fails there deep inside huggingface_hub after the data and model were built. A
weights folder holds one ``.safetensors`` file per timm model and an index
(``pretrained_index.json``: model -> file, sha256, source); the backbone's
``pretrained_dir`` reads it and checks the sha256. :func:`weights_source` tells,
without building the model, where the weights would come from or why they
cannot, so the tools stop with one message before any work.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Optional

from ...checkpoints.atomic_io import AtomicLocalBackend
from ...utils.errors import error_summary
from ...utils.hashing import sha256_of

INDEX_FILE = 'pretrained_index.json'
INDEX_FORMAT = 1
# the names timm's hub releases use, in the order timm tries them
HUB_FILENAMES = ('model.safetensors', 'pytorch_model.bin')
FETCH_COMMAND = 'python tools/misc/fetch_pretrained.py --out DIR'


class PretrainedWeightsUnavailable(RuntimeError):
    """The ImageNet weights a config asks for can be read from nowhere."""


@dataclass
class WeightsSource:
    """Where a backbone's weights come from: ``kind`` is 'none' (random init),
    'file' (``checkpoint_path``), 'folder' (``pretrained_dir``), 'hub-cache', 'hub'
    or 'url' (a timm model whose weights are a plain download, not checked ahead);
    ``location`` the file, the hub repository or the URL."""
    kind: str
    location: Optional[str] = None


def hub_repository(model_name: str) -> str:
    """The hub repository (or URL) timm fetches ``model_name``'s weights from."""
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(model_name)
    if cfg is None:
        raise ValueError(f'timm has no pretrained weights for {model_name!r}')
    return cfg.hf_hub_id or cfg.url


def read_index(folder: str) -> dict:
    path = osp.join(folder, INDEX_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'pretrained_dir {folder}: no {INDEX_FILE} (a folder written '
                                f'by `{FETCH_COMMAND}`)')
    with open(path) as file:
        try:
            index = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not JSON: {error}') from error
    if index.get('format') != INDEX_FORMAT or not isinstance(index.get('weights'), dict):
        raise ValueError(f'{path}: not a weights index of format {INDEX_FORMAT}')
    return index


def weights_in_folder(folder: str, model_name: str) -> str:
    """The file of ``model_name`` in a weights folder, after checking its sha256."""
    held = read_index(folder)['weights']
    entry = held.get(model_name)
    if entry is None:
        raise PretrainedWeightsUnavailable(
            f'pretrained_dir {folder} holds no weights for {model_name} (it holds: '
            f"{', '.join(sorted(held)) or 'none'}); fetch them with "
            f'`{FETCH_COMMAND} CONFIG`')
    path = osp.join(folder, entry['file'])
    if not osp.isfile(path):
        raise FileNotFoundError(f'pretrained_dir {folder}: {entry["file"]} for {model_name} '
                                'is listed in the index but missing')
    actual = sha256_of(path)
    if actual != entry['sha256']:
        raise ValueError(f'{path}: sha256 {actual} differs from the index '
                         f'({entry["sha256"]}): the file changed or is incomplete; '
                         'fetch it again')
    return path


def unavailable_message(model_name: str, reason: str) -> str:
    """The one message for weights that can be read from nowhere."""
    return (f'the config asks for ImageNet weights of {model_name} ({hub_repository(model_name)} '
            f'on the timm hub), which cannot be read here: {reason}. Either fetch them on a '
            f'machine with internet with `{FETCH_COMMAND} CONFIG` and train with '
            '`--cfg-options model.backbone.pretrained_dir=DIR`, or give a local file with '
            '`--cfg-options model.backbone.checkpoint_path=FILE` (.pth or .safetensors).')


def _hub_filenames(model_name: str) -> tuple:
    """The files of the model's hub release timm reads: its own, else the usual two."""
    from timm.models import get_pretrained_cfg
    own = get_pretrained_cfg(model_name).hf_hub_filename
    return (own,) if own else HUB_FILENAMES


def _hub_cached(repo: str, filenames: tuple) -> Optional[str]:
    from huggingface_hub import try_to_load_from_cache
    for filename in filenames:
        path = try_to_load_from_cache(repo, filename)
        if isinstance(path, str):
            return path
    return None


def _hub_unreachable_reason(repo: str, filenames: tuple) -> Optional[str]:
    """None when the hub answers for ``repo``'s weights, else why not (offline
    mode, or the request's error)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    if constants.HF_HUB_OFFLINE:
        return 'HF_HUB_OFFLINE is set and they are not in the local hub cache'
    error = None
    for filename in filenames:  # a release may hold either of the usual two
        try:
            get_hf_file_metadata(hf_hub_url(repo, filename), timeout=10)
            return None
        except Exception as failure:  # no answer, whatever the HTTP client raises (it
            # changed between huggingface_hub releases: requests' OSErrors, then httpx's)
            error = failure
    return ('they are not in the local hub cache and the hub did not answer '
            f'({error_summary(error)})')


def weights_source(backbone_cfg: dict, check_hub: bool = True) -> WeightsSource:
    """Where the backbone of ``backbone_cfg`` (a TimmFeatureBackbone config) takes
    its weights from; raises :class:`PretrainedWeightsUnavailable` (or the folder's
    FileNotFoundError / ValueError) when that source cannot be read."""
    pretrained = backbone_cfg.get('pretrained', False)
    checkpoint_path = backbone_cfg.get('checkpoint_path')
    if isinstance(pretrained, str):
        checkpoint_path, pretrained = pretrained, False
    if checkpoint_path:
        if not osp.isfile(checkpoint_path):
            raise FileNotFoundError(f'model.backbone.checkpoint_path={checkpoint_path}: no such '
                                    'file')
        return WeightsSource('file', checkpoint_path)
    if not pretrained:
        return WeightsSource('none')
    model_name = backbone_cfg['model_name']
    folder = backbone_cfg.get('pretrained_dir')
    if folder:
        return WeightsSource('folder', weights_in_folder(folder, model_name))
    repo = hub_repository(model_name)
    if '://' in repo:
        return WeightsSource('url', repo)
    filenames = _hub_filenames(model_name)
    cached = _hub_cached(repo, filenames)
    if cached:
        return WeightsSource('hub-cache', cached)
    if check_hub:
        reason = _hub_unreachable_reason(repo, filenames)
        if reason:
            raise PretrainedWeightsUnavailable(unavailable_message(model_name, reason))
    return WeightsSource('hub', repo)


def write_index(folder: str, weights: dict) -> str:
    """Write ``pretrained_index.json`` (atomically) for ``weights``: model name ->
    dict(file, sha256, source, configs)."""
    path = osp.join(folder, INDEX_FILE)
    AtomicLocalBackend().put_text(
        json.dumps(dict(format=INDEX_FORMAT, weights=weights), indent=2, sort_keys=True), path)
    return path
