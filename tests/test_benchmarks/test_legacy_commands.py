"""tools/analysis_tools/benchmark.py: the old command lines of each mode reach the
script in benchmarks/ that now does that work, with the same flags."""
import importlib.util

import pytest

from conftest import REPO

pytestmark = pytest.mark.bench


@pytest.fixture(scope='module')
def dispatcher():
    path = REPO / 'tools' / 'analysis_tools' / 'benchmark.py'
    spec = importlib.util.spec_from_file_location('benchmark_dispatcher', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('argv, script, flags', [
    ([], 'peers', []),
    (['--encoders', 'convnext_tiny', '--out', 'b.md'], 'peers',
     ['--encoders', 'convnext_tiny', '--out', 'b.md']),
    (['--device', 'cuda', '--amp'], 'peers', ['--device', 'cuda', '--amp']),
    (['--slide', '--encoders', 'convnext_tiny'], 'slide', ['--encoders', 'convnext_tiny']),
    (['--scan', '--slide-batch-sizes', '1', '4'], 'scan', ['--slide-batch-sizes', '1', '4']),
    (['--scan', '--slide', '--scan-size', '64'], 'scan', ['--scan-size', '64']),
    (['--overlaps', '0', '0.5', '--scan-model', 'W'], 'window_overlap',
     ['--overlaps', '0', '0.5', '--scan-model', 'W']),
    (['--scan-model', 'W', '--overlaps=0.25', '--windows', '96'], 'window_overlap',
     ['--scan-model', 'W', '--overlaps=0.25', '--windows', '96']),
    (['c.py', 'c.pth', '--work-dir', 'D'], 'fps', ['c.py', 'c.pth', '--work-dir', 'D']),
])
def test_each_mode_goes_to_its_script(dispatcher, argv, script, flags):
    assert dispatcher.script_for(argv) == (script, flags)


def test_windows_without_overlaps_is_refused_in_one_line(dispatcher):
    with pytest.raises(SystemExit, match='--windows sizes the windows of --overlaps; '
                       'give --overlaps too'):
        dispatcher.script_for(['--windows', '96'])


def test_every_script_takes_the_flags_it_is_given(dispatcher):
    """Each script's parser accepts the flags its mode had."""
    import sys
    if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
        sys.path.append(str(REPO))
    from benchmarks import fps, peers, scan, slide, window_overlap
    parsers = dict(peers=peers, slide=slide, scan=scan, window_overlap=window_overlap, fps=fps)
    for argv in (['--encoders', 'convnext_tiny', '--threads', '1', '--amp', '--fp32-only',
                  '--background-load', '1', '--warmup', '1', '--repeats', '2',
                  '--train-batch', '2', '--train-size', '64', '--infer-size', '64',
                  '--clock', 'cpu', '--no-memory', '--same-optimizer',
                  '--cfg-options', 'model.channels_last=True', '--out', 'x.md'],
                 ['--slide', '--encoders', 'swin_tiny', '--device', 'cpu', '--amp',
                  '--threads', '1', '--cfg-options', 'a=1', '--slide-size', '512',
                  '--slide-batch-sizes', '1', '2', '--no-slide-stock', '--out', 'x.md'],
                 ['--scan', '--device', 'cpu', '--threads', '1', '--scan-model', 'W',
                  '--scan-checkpoint', 'c.pth', '--scan-size', '512',
                  '--slide-batch-sizes', '4', '--out', 'x.md'],
                 ['--overlaps', '0', '0.25', '--scan-model', 'W', '--threads', '1',
                  '--overlap-scan-size', '256', '--windows', '96', '128',
                  '--slide-batch-sizes', '4', '--out', 'x.md'],
                 ['c.py', 'c.pth', '--log-interval', '10', '--work-dir', 'D',
                  '--repeat-times', '2']):
        script, flags = dispatcher.script_for(argv)
        parsers[script].build_parser().parse_args(flags)
