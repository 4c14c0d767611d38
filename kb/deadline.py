"""A search's deadline, checked cooperatively by the code that does the work.

A signal that raises at an arbitrary point can interrupt a lock-protected cache update, Whoosh in
the middle of a read, or a generation being opened, and it only works in the main thread.  A
:class:`Deadline` is checked instead at points where stopping is safe: between the terms kb
scores, between the terms a wildcard expands to, and between the documents Whoosh collects.  It
works the same in any thread or greenlet.
"""

from __future__ import annotations

import time


class SearchTimeout(Exception):
    """A search ran past its deadline (the web API answers 503)."""


class Deadline:
    """A point in time after which :meth:`check` raises :class:`SearchTimeout`; ``seconds`` of 0
    or less (or None) means no limit."""

    __slots__ = ("seconds", "_at")

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self._at = time.monotonic() + seconds if seconds and seconds > 0 else None

    def expired(self) -> bool:
        return self._at is not None and time.monotonic() > self._at

    def check(self) -> None:
        """Raise :class:`SearchTimeout` once the deadline has passed."""
        if self._at is not None and time.monotonic() > self._at:
            raise SearchTimeout(f"the search took longer than {self.seconds:g} s")


#: The deadline of a search that has none.
NEVER = Deadline(None)
