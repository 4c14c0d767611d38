"""The synonyms and abbreviations file: data the knowledge-base team edits, loaded at start.

Format (one rule per line, ``#`` starts a comment, matching ignores case)::

    bsod, blue screen, stop error      # equivalent: each finds the others
    rdp => remote desktop              # one way: "rdp" also finds "remote desktop"

Rules apply at query time only, so editing the file needs no reindex; a running server picks the
file up when it reopens the index (after the next build) or on restart.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Longest left-hand side, in words, that a rule may have.
MAX_RULE_WORDS = 4


def default_path() -> Path:
    """``KB_SYNONYMS`` from the environment, else the file bundled with kb."""
    env = os.environ.get("KB_SYNONYMS")
    return Path(env) if env else Path(str(resources.files("kb") / "synonyms.txt"))


class Synonyms:
    """Expansion rules: a phrase (tuple of lower-case words) -> the phrases it also finds."""

    def __init__(self, rules: dict[tuple[str, ...], list[str]] | None = None):
        self.rules = rules or {}

    @classmethod
    def parse(cls, text: str) -> "Synonyms":
        rules: dict[tuple[str, ...], list[str]] = {}

        def add(src: str, targets: list[str]) -> None:
            key = tuple(src.split())
            if not key or len(key) > MAX_RULE_WORDS:
                return
            bucket = rules.setdefault(key, [])
            for t in targets:
                if t != src and t not in bucket:
                    bucket.append(t)

        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip().lower()
            if not line:
                continue
            if "=>" in line:
                left, right = line.split("=>", 1)
                targets = [t.strip() for t in right.split(",") if t.strip()]
                for src in (s.strip() for s in left.split(",")):
                    if src:
                        add(src, targets)
            else:
                group = [t.strip() for t in line.split(",") if t.strip()]
                for src in group:
                    add(src, group)
        return cls(rules)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Synonyms":
        path = Path(path) if path is not None else default_path()
        return cls.parse(path.read_text(encoding="utf-8"))

    def expand(self, words: list[str], i: int) -> list[str]:
        """Phrases that the words starting at position ``i`` of ``words`` also stand for.

        Multi-word rules ("blue screen") are matched at their first word, longest first.
        """
        out: list[str] = []
        for n in range(min(MAX_RULE_WORDS, len(words) - i), 0, -1):
            key = tuple(words[i : i + n])
            for target in self.rules.get(key, ()):
                if target not in out:
                    out.append(target)
        return out

    def with_abbreviations(self, mined: dict[str, list[str]]) -> "Synonyms":
        """These rules plus abbreviations the articles define (:mod:`kb.abbreviations`): "aks"
        also finds "azure kubernetes service" and the long form finds "aks".  The file's own rules
        win: an abbreviation it defines is taken as the file says."""
        rules = {key: list(targets) for key, targets in self.rules.items()}
        for abbr, forms in mined.items():
            if (abbr,) in self.rules:
                continue
            bucket = rules.setdefault((abbr,), [])
            bucket.extend(f for f in forms if f not in bucket)
            for form in forms:
                key = tuple(form.split())
                if 0 < len(key) <= MAX_RULE_WORDS and key not in self.rules:
                    back = rules.setdefault(key, [])
                    if abbr not in back:
                        back.append(abbr)
        return Synonyms(rules)

