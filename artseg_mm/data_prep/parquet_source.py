"""The ARTeFACT release as the converter reads it: parquet shards, their rows, one at a time.

ARTeFACT (Hugging Face ``danielaivanova/damaged-media``) ships as parquet shards whose
``image`` and ``annotation`` columns hold PNG files as ``{bytes, path}`` structs (as the
``datasets`` library stores images). :func:`read_index` reads every row's id and metadata
without image bytes; :func:`shard_records` then streams the rows with pyarrow, so at most one
parquet row group of encoded bytes and one decoded row are held.
"""
import os.path as osp
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConversionError

HUB_REPO_ID = 'danielaivanova/damaged-media'
DEFAULT_DOWNLOAD_DIR = osp.join('data', 'raw', 'damaged-media')
REQUIRED_COLUMNS = ('id', 'image', 'annotation')
OPTIONAL_COLUMNS = ('material', 'content', 'type')
_SAFE_ID = re.compile(r'[^A-Za-z0-9._-]')
_HUB_NAME = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')


@dataclass
class SourceRow:
    """Metadata of one parquet row, read before any image is decoded."""
    source_id: str
    out_id: str
    material: Optional[str]
    content: Optional[str]
    type: Optional[str]
    shard: str
    row_index: int


def resolve_source(source: str,
                   download_dir: str = DEFAULT_DOWNLOAD_DIR
                   ) -> Tuple[Path, List[Path]]:
    """Return (root, sorted parquet shard paths) for a folder, file or hub
    dataset name. A hub name is downloaded with ``huggingface_hub`` into
    ``download_dir`` (the same files ``huggingface-cli download`` leaves)."""
    path = Path(source)
    if path.is_file():
        if path.suffix != '.parquet':
            raise ConversionError(f'{source} is not a .parquet file')
        return path.parent, [path]
    if path.is_dir():
        shards = sorted(path.glob('**/*.parquet'),
                        key=lambda p: p.relative_to(path).as_posix())
        if not shards:
            raise ConversionError(
                f'no *.parquet files found under {source} (expected the '
                f'shards of {HUB_REPO_ID}, e.g. from `huggingface-cli '
                f'download --repo-type dataset {HUB_REPO_ID} --local-dir '
                f'{DEFAULT_DOWNLOAD_DIR}`)')
        return path, shards
    if not _HUB_NAME.match(source):
        raise ConversionError(
            f'source {source!r} is neither an existing folder or .parquet '
            f'file nor a hub dataset name like {HUB_REPO_ID!r}')
    return resolve_source(download_from_hub(source, download_dir))


def download_from_hub(repo_id: str, download_dir: str) -> str:
    """Download the parquet shards of a hub dataset; returns the folder."""
    try:
        import huggingface_hub
    except ImportError as err:
        raise ConversionError(
            f'{repo_id!r} is not a local folder and huggingface_hub is not '
            f'installed to download it: `pip install huggingface_hub`, or '
            f'download the shards elsewhere and pass the folder') from err
    print(f'{repo_id!r} is not a local folder: downloading the hub dataset '
          f'into {download_dir}')
    try:
        return huggingface_hub.snapshot_download(
            repo_id=repo_id,
            repo_type='dataset',
            local_dir=download_dir,
            allow_patterns=['*.parquet', '**/*.parquet'])
    except Exception as err:  # offline, unknown repo, HTTP errors: re-raised
        raise ConversionError(
            f'could not download hub dataset {repo_id!r} into '
            f'{download_dir} ({type(err).__name__}: {err}); it is not a '
            f'local path either. Without network, copy the parquet shards '
            f'to a folder and pass that folder'
        ) from err


def _safe_id(source_id: str) -> str:
    safe = _SAFE_ID.sub('_', source_id)
    if not safe.strip('._'):
        safe = 'id_' + safe
    return safe


def read_index(shards: Sequence[Path], root: Path) -> List[SourceRow]:
    """Read id/material/content/type of every row (no image bytes)."""
    rows: List[SourceRow] = []
    seen: Dict[str, SourceRow] = {}
    for shard in shards:
        shard_name = shard.relative_to(root).as_posix()
        try:
            pfile = pq.ParquetFile(shard)
        except (OSError, ValueError) as err:
            raise ConversionError(
                f'cannot read parquet file {shard}: {err}') from err
        names = pfile.schema_arrow.names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ConversionError(
                f'{shard} lacks column(s) {missing}; expected the '
                f'{HUB_REPO_ID} schema with {list(REQUIRED_COLUMNS)}')
        columns = ['id'] + [c for c in OPTIONAL_COLUMNS if c in names]
        table = pfile.read(columns=columns)
        data = {c: table.column(c).to_pylist() for c in columns}
        for i, source_id in enumerate(data['id']):
            if source_id is None:
                raise ConversionError(f'{shard} row {i} has no id')
            source_id = str(source_id)
            out_id = _safe_id(source_id)
            if out_id in seen:
                other = seen[out_id]
                raise ConversionError(
                    f'duplicate id {source_id!r}: {shard_name} row {i} and '
                    f'{other.shard} row {other.row_index} (as file name '
                    f'{out_id!r})')
            row = SourceRow(
                source_id=source_id,
                out_id=out_id,
                material=_opt_str(data, 'material', i),
                content=_opt_str(data, 'content', i),
                type=_opt_str(data, 'type', i),
                shard=shard_name,
                row_index=i)
            seen[out_id] = row
            rows.append(row)
    return rows


def _opt_str(data: dict, column: str, i: int) -> Optional[str]:
    value = data[column][i] if column in data else None
    return None if value is None else str(value)


class UnreadableRowGroup(NamedTuple):
    """Stands for a row of a row group pyarrow could not decode (``--skip-bad``)."""
    reason: str


def shard_records(shards: Sequence[Path], skip_bad: bool) -> Iterator[tuple]:
    """``(shard, row group, row index in the shard, record)`` for every row, one row in
    memory at a time. A row group that cannot be decoded (e.g. a corrupt page: pyarrow's
    "Couldn't deserialize thrift") stops the conversion with the shard and row group
    named; with ``skip_bad`` its rows not read yet come as :class:`UnreadableRowGroup`."""
    for shard in shards:
        pfile = pq.ParquetFile(shard)
        first = 0
        for group in range(pfile.num_row_groups):
            n_rows = pfile.metadata.row_group(group).num_rows
            done = 0
            try:
                for batch in pfile.iter_batches(batch_size=1, row_groups=[group],
                                                columns=list(REQUIRED_COLUMNS)):
                    for record in batch.to_pylist():
                        yield shard, group, first + done, record
                        done += 1
            except (OSError, pa.ArrowException) as err:
                reason = ' '.join(str(err).split())  # pyarrow's message spans lines
                if not skip_bad:
                    raise ConversionError(
                        f'{shard} row group {group} (rows {first}-{first + n_rows - 1}) '
                        f'cannot be read: {reason} The file is damaged: download it again, '
                        'or pass --skip-bad to skip the rows that cannot be read') from err
                for index in range(first + done, first + n_rows):
                    yield shard, group, index, UnreadableRowGroup(reason)
            first += n_rows
