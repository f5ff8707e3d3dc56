"""What a long run shows while it works: a timestamped line per event, and a bar per long step.

Bars are drawn only on a terminal. In CI and in cron logs, where a redrawn bar is noise, the same
run prints the lines alone, and each step ends with one line saying how much it did and how long
it took.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Reports events (`progress("message")`) and the advance of the current step."""

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self._bar: tqdm | None = None  # advances are coarse (an extract, a batch, a dbt node): draw each

    def __call__(self, message: str) -> None:
        line = f"  {time.strftime('%H:%M:%S')} {message}"
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    @contextmanager
    def step(
        self, name: str, total: int | None = None, unit: str = "it", bar: bool = False
    ) -> Iterator[None]:
        """A step of `total` units; `advance` moves its bar. Steps do not nest.

        A step has a bar when its total is known, or (`bar`) will be told with the first advance.
        """
        self(f"{name} ...")
        started = time.perf_counter()
        if self.bars and (total is not None or bar):
            self._bar = tqdm(total=total, desc=f"  {name}", unit=unit, unit_scale=unit == "B", file=self.stream,
                             leave=False, dynamic_ncols=True, mininterval=0, miniters=1)  # fmt: skip
        try:
            yield
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        self(f"{name}: done in {time.perf_counter() - started:.1f} s")

    def advance(self, amount: int = 1, total: int | None = None) -> None:
        """Move the current step's bar; `total` sets its length when only now known (dbt's nodes)."""
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.update(amount)
