"""Facet value labels and merged twins: data the knowledge-base team edits, loaded at start.

Format (``kb/facet_labels.txt``; ``KB_FACET_LABELS`` points at another file), one rule per line,
``#`` starts a comment, a ``[facet]`` line opens the rules of that facet::

    [service]
    microsoft.keyvault = Key Vault                          # label shown for a raw value
    microsoft.containerservices => microsoft.containerservice   # a twin counted as that value

A value without a label is shown as it is.  A twin (``=>``) is merged at query time: its
articles count under the value it names, and selecting either selects both, so the facet lists
one entry where the corpus spells one service two ways.  Values are matched lower-cased.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def default_path() -> Path:
    """``KB_FACET_LABELS`` from the environment, else the file bundled with kb."""
    env = os.environ.get("KB_FACET_LABELS")
    return Path(env) if env else Path(str(resources.files("kb") / "facet_labels.txt"))


class FacetLabels:
    """Per facet: raw value -> label, and twin value -> the value it is merged into."""

    def __init__(self, labels: dict[str, dict[str, str]] | None = None,
                 twins: dict[str, dict[str, str]] | None = None):
        self.labels = labels or {}
        self.twins = twins or {}

    @classmethod
    def parse(cls, text: str) -> FacetLabels:
        """Read the rules of ``text`` (see the module's docstring); malformed lines are skipped."""
        labels: dict[str, dict[str, str]] = {}
        twins: dict[str, dict[str, str]] = {}
        facet = ""
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("[") and line.endswith("]"):
                facet = line[1:-1].strip().lower()
            elif facet and "=>" in line:
                left, right = (s.strip().lower() for s in line.split("=>", 1))
                if left and right and left != right:
                    twins.setdefault(facet, {})[left] = right
            elif facet and "=" in line:
                left, right = (s.strip() for s in line.split("=", 1))
                if left and right:
                    labels.setdefault(facet, {})[left.lower()] = right
        # a chain (a => b, b => c) resolves to its end; a cycle keeps its first step
        for table in twins.values():
            for value in list(table):
                seen = {value}
                target = table[value]
                while target in table and target not in seen:
                    seen.add(target)
                    target = table[target]
                table[value] = target
        return cls(labels, twins)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> FacetLabels:
        path = Path(path) if path is not None else default_path()
        return cls.parse(path.read_text(encoding="utf-8"))

    def label(self, facet: str, value: str) -> str:
        """The label shown for ``value`` of ``facet`` (the value itself when it has none)."""
        return self.labels.get(facet, {}).get(value, value)

    def canonical(self, facet: str, value: str) -> str:
        """The value ``value`` is counted and selected as (itself unless it is a twin)."""
        return self.twins.get(facet, {}).get(value, value)

    def twins_of(self, facet: str, value: str) -> list[str]:
        """The raw values merged into ``value`` (not counting itself)."""
        return sorted(v for v, c in self.twins.get(facet, {}).items() if c == value)
