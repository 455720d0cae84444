"""One measurement of a benchmark in a fresh process, whose peak memory is then its
own (a process's peak RSS cannot be reset, and CUDA's allocator keeps its cache).

The parent calls :func:`run_in_child`; it runs
``python -m benchmarks.child SCRIPT SPEC SETTINGS`` from the repository root,
where SCRIPT is the benchmark (``peers``, ``slide``, ``scan`` or ``int8``), SPEC the
measurement and SETTINGS the parent's parsed flags, both as JSON. The child sets
the same torch threads, calls ``benchmarks.SCRIPT.measure_in_child(spec,
settings)`` and prints its result as one ``CHILD_RESULT <json>`` line (the
model build may print other lines before it).
"""
import argparse
import importlib
import json
import subprocess
import sys
from typing import List, Optional

from .study_configs import REPO_ROOT

SCRIPTS = ('peers', 'slide', 'scan', 'int8')
RESULT_PREFIX = 'CHILD_RESULT '


def run_in_child(script: str, spec: dict, settings: argparse.Namespace) -> dict:
    """The result of ``benchmarks.<script>.measure_in_child(spec, settings)``,
    run in a fresh Python process; raises with the child's stderr if it fails."""
    cmd = [sys.executable, '-m', 'benchmarks.child', script, json.dumps(spec),
           json.dumps(vars(settings))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'benchmark subprocess {script} {spec} failed (rc '
                           f'{proc.returncode}):\n{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in SCRIPTS:
        raise SystemExit('usage: python -m benchmarks.child {%s} SPEC_JSON SETTINGS_JSON '
                         '(started by the benchmarks themselves)' % ','.join(SCRIPTS))
    import torch
    script, spec, settings = argv[0], json.loads(argv[1]), json.loads(argv[2])
    settings = argparse.Namespace(**settings)
    torch.set_num_threads(settings.threads)
    module = importlib.import_module(f'benchmarks.{script}')
    result = module.measure_in_child(spec, settings)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
