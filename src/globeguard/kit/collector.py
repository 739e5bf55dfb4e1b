"""The cycle collector during bulk jobs.

Python's collector runs after every few hundred allocations and, now and then, walks every
live object. A bulk job allocates millions of short-lived rows, dicts and tuples that are
freed by reference counting alone, while holding a large live heap (the app's modules, a
GeoIP cache of 100k results): measured on the demo seeder, they took a quarter of its
CPU time. So the job freezes what was live before it started (never walked again), turns
the automatic collector off and collects itself between batches, when little is live.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def collecting_between_batches() -> Iterator[Callable[[], None]]:
    """Yields the function to call after each batch. The collector's state is restored on
    the way out."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield _collect
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def _collect() -> None:
    gc.collect()
