"""A local file backend whose writes are atomic.

Why it exists: mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and
writes into it, so a job killed during a checkpoint save leaves a truncated
``epoch_N.pth``. Here the bytes go to a temporary file in the same folder, are
flushed to disk, and replace the target with ``os.replace`` (atomic on POSIX):
a reader sees the old file or the complete new one, never a partial one.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with write-to-temporary-then-rename ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        filepath = str(filepath)
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(
            prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, filepath)
        except BaseException:
            # Not silent: the original error propagates once the partial
            # temporary file is gone.
            if osp.exists(tmp_path):
                os.remove(tmp_path)
            raise

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
