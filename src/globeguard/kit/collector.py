"""The cycle collector: of a serving process, and during bulk jobs.

A full collection walks every live object while the event loop waits. A started server holds
~200,000 of them that live as long as the process (modules, classes, SQLAlchemy metadata,
FastAPI routes, pydantic schemas): measured under wrk, each full collection took 140-170 ms
of CPU to free under 1,500 objects, and one ran every 1.5-3 s while login events poured in,
the longest stop of the loop by far. Frozen after start-up, they are never walked again, and
a full collection costs 6-25 ms.

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

_startup_frozen = False


def freeze_startup_heap() -> None:
    """Once per process, when start-up is done: what is live now is never walked again. Its
    cycles that die later are never freed, which is why this happens once, after a collection,
    and not at every start-up of an app in the same process (tests start hundreds)."""
    global _startup_frozen
    # A flag, not gc.get_freeze_count(): that walks the whole frozen heap (~27 ms for a
    # test process's), at every app start-up.
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


@contextmanager
def collecting_between_batches() -> Iterator[Callable[[], None]]:
    """Yields the function to call after each batch. The collector's state is restored on
    the way out, the start-up heap staying frozen if it was (unfreezing takes all or none)."""
    was_enabled = gc.isenabled()
    was_frozen = gc.get_freeze_count() > 0
    if not was_frozen:
        gc.freeze()
    gc.disable()
    try:
        yield _collect
    finally:
        if not was_frozen:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def _collect() -> None:
    gc.collect()
