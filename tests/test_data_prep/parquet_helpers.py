"""Tiny ARTeFACT parquet sources written with the published schema (PNG bytes in
``{bytes, path}`` structs), and readers of what the converter writes from them."""
import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from artseg_mm.data_prep.converter import convert_artefact
from artseg_mm.datasets.layout import SPLITS

IMAGE_STRUCT = pa.struct([('bytes', pa.binary()), ('path', pa.string())])
SCHEMA = pa.schema([
    ('id', pa.string()),
    ('image', IMAGE_STRUCT),
    ('annotation', IMAGE_STRUCT),
    ('annotation_rgb', IMAGE_STRUCT),
    ('material', pa.string()),
    ('content', pa.string()),
    ('type', pa.string()),
    ('damage_description', pa.string()),
    ('llava_description', pa.string()),
    ('verified_description', pa.string()),
])
MATERIALS = ('Film', 'Glass', 'Parchment')


def png_bytes(array, mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format='PNG')
    return buf.getvalue()


def make_sample(i, h=20, w=30, material='Film'):
    """RGB image, full-id mask (ids 0..15 and 255) and their PNG bytes."""
    rng = np.random.RandomState(i)
    image = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 0, 0, 1, 3, 9, 15, 255], np.uint8),
                      size=(h, w))
    return dict(
        id=f'art_{i:03d}', image_array=image, mask_array=mask,
        image=dict(bytes=png_bytes(image), path=f'art_{i:03d}.png'),
        annotation=dict(bytes=png_bytes(mask, 'L'),
                        path=f'art_{i:03d}_ann.png'),
        annotation_rgb=dict(bytes=png_bytes(image), path=None),
        material=material, content='Artistic depiction', type='Photograph',
        damage_description='dust', llava_description='a photo',
        verified_description='yes')


def write_shards(folder, samples, per_shard=4):
    folder = Path(folder)
    (folder / 'data').mkdir(parents=True, exist_ok=True)
    for k in range(0, len(samples), per_shard):
        chunk = samples[k:k + per_shard]
        table = pa.Table.from_pylist(
            [{name: s[name] for name in SCHEMA.names} for s in chunk],
            schema=SCHEMA)
        path = folder / 'data' / f'train-{k // per_shard:05d}.parquet'
        pq.write_table(table, path, row_group_size=2)
    return folder


def samples_for(materials_counts, **kwargs):
    samples, i = [], 0
    for material, count in materials_counts:
        for _ in range(count):
            samples.append(make_sample(i, material=material, **kwargs))
            i += 1
    return samples


def convert(src, out, **kwargs):
    kwargs.setdefault('progress', False)
    return convert_artefact(str(src), str(out), **kwargs)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def split_of(out):
    result = {}
    for split in SPLITS:
        for rec in read_csv(Path(out) / 'meta' / f'{split}.csv'):
            result[rec['id']] = split
    return result


def tree_hashes(folder):
    folder = Path(folder)
    return {p.relative_to(folder).as_posix():
            hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture
def source(tmp_path):
    """Ten rows (4 Film, 3 Glass, 3 Parchment) in three shards: (folder, samples)."""
    samples = samples_for([('Film', 4), ('Glass', 3), ('Parchment', 3)])
    return write_shards(tmp_path / 'raw', samples), samples
