"""The on-disk layout's helpers: writing a root atomically, sidecars and meta.json."""
import pytest

from artseg_mm.datasets import layout


class RefusedError(RuntimeError):
    """Stands for a writer's own error type."""


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file())


def test_a_completed_block_replaces_the_output_and_leaves_nothing_else(tmp_path):
    out = tmp_path / 'root'
    out.mkdir()
    (out / 'old.txt').write_text('old')
    with layout.written_atomically(out, 'this test') as tmp:
        assert tmp == tmp_path / 'root.partial'
        assert (tmp / layout.PARTIAL_MARKER).is_file()  # marks it as ours while incomplete
        (tmp / 'new.txt').write_text('new')
        assert (out / 'old.txt').read_text() == 'old'  # untouched until the block ends
    assert files_under(out) == ['new.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['root']


def test_a_failing_block_keeps_the_previous_output_and_removes_the_partial(tmp_path):
    out = tmp_path / 'root'
    out.mkdir()
    (out / 'old.txt').write_text('old')
    with pytest.raises(KeyboardInterrupt):
        with layout.written_atomically(out, 'this test') as tmp:
            (tmp / 'half.txt').write_text('half')
            raise KeyboardInterrupt
    assert files_under(out) == ['old.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['root']


def test_leftovers_ours_are_removed_others_are_refused_by_name(tmp_path):
    out = tmp_path / 'root'
    partial = tmp_path / 'root.partial'
    partial.mkdir()
    (partial / layout.PARTIAL_MARKER).write_text('x')
    (partial / 'stale.png').write_text('x')
    with layout.written_atomically(out, 'this test') as tmp:
        assert files_under(tmp) == [layout.PARTIAL_MARKER]  # the stale file is gone
    partial.mkdir()
    (partial / 'theirs.txt').write_text('x')
    with pytest.raises(RefusedError, match=r'root\.partial exists and was not written by '
                                           r'this test; move it away'):
        with layout.written_atomically(out, 'this test', RefusedError):
            pytest.fail('the block ran')
    assert files_under(partial) == ['theirs.txt']
    partial.rename(tmp_path / 'root.replaced')
    with pytest.raises(FileExistsError, match=r'root\.replaced exists \(it is where the '
                                              r'previous output is moved'):
        with layout.written_atomically(out, 'this test'):
            pytest.fail('the block ran')


def test_sidecar_round_trip_and_a_repeated_id(tmp_path):
    root = tmp_path / 'root'
    layout.make_split_folders(root, ('train',))
    rows = [dict(zip(layout.SIDECAR_COLUMNS, [f'a{i}', 'paper', 'line art', 'drawing', 8, 6,
                                              'none', 1.0, '', '', f'a{i}'])) for i in range(2)]
    written = layout.write_sidecar(root, 'train', rows)
    path = root / 'meta' / 'train.csv'
    assert path.read_bytes() == written
    assert written.decode().splitlines()[0] == ','.join(layout.SIDECAR_COLUMNS)
    read = layout.read_sidecar(path)
    assert list(read) == ['a0', 'a1'] and read['a1']['material'] == 'paper'
    assert read['a1']['source_width'] == '8' and read['a1']['tile_x'] == ''
    path.write_bytes(written + written.splitlines(keepends=True)[1])
    with pytest.raises(ValueError, match=r"train.csv line 4: id 'a0' appears twice"):
        layout.read_sidecar(path)


def test_meta_json_label_mode_and_bad_files_named(tmp_path):
    assert layout.label_mode_on_disk(tmp_path) == 'full'  # no meta.json: full ids
    layout.write_json(tmp_path / 'meta.json', layout.meta_record('binary', seed=3))
    assert layout.read_meta(tmp_path) == dict(label_mode_on_disk='binary',
                                              classes=['Clean', 'Damage'], ignore_index=255,
                                              seed=3)
    assert layout.label_mode_on_disk(tmp_path) == 'binary'
    assert (tmp_path / 'meta.json').read_text().endswith('}\n')
    with pytest.raises(ValueError, match="must be one of \\('full', 'binary'\\), got 'multi'"):
        layout.meta_record('multi')
    (tmp_path / 'meta.json').write_text('{"label_mode_on_disk": ')
    with pytest.raises(ValueError, match=r'meta.json is not valid JSON'):
        layout.read_meta(tmp_path)
    (tmp_path / 'meta.json').write_text('[1, 2]')
    with pytest.raises(ValueError, match=r'meta.json holds a list, not a JSON object'):
        layout.read_meta(tmp_path)
