"""Progress bars: tqdm's, without the monitor thread tqdm starts for each bar, shown or not, which would outlive
the call that made it."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBar(tqdm):
    monitor_interval = 0  # no monitor thread (tqdm's own class keeps its setting)
