"""The sha256 of a file, read in blocks: what manifests and weight indexes record."""
import hashlib
from pathlib import Path
from typing import Union


def sha256_of(path: Union[str, Path], block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(block), b''):
            digest.update(chunk)
    return digest.hexdigest()
