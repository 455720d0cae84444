"""Resident memory of this process (Linux ``/proc``), for the tools' reports.

``resource.getrusage``'s ``ru_maxrss`` cannot serve: Linux carries it over from
the parent across fork+exec, so a child would report its parent's peak.
"""
from typing import Optional


def proc_status_mib(field: str) -> Optional[float]:
    """A ``/proc/self/status`` field (kB) in MiB, None where unavailable."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def rss_mib() -> float:
    """Current resident memory in MiB (NaN where /proc is absent)."""
    value = proc_status_mib('VmRSS')
    return float('nan') if value is None else value


def peak_rss_mib() -> float:
    """Peak resident memory (high-water mark) in MiB (NaN where unavailable)."""
    value = proc_status_mib('VmHWM')
    return float('nan') if value is None else value


def reset_peak_rss() -> float:
    """Reset the kernel's RSS high-water mark (Linux ``clear_refs`` 5) and
    return the current RSS in MiB, or the new mark where that is lower: the
    kernel's mark is approximate (per-thread counters), and a baseline above
    it would make a later peak read below the baseline."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError as exc:
        raise RuntimeError('peak-memory measurement needs Linux /proc/self/clear_refs '
                           f'({exc}); pass --no-memory') from exc
    return min(rss_mib(), peak_rss_mib())
