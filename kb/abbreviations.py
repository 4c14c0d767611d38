"""Abbreviations the knowledge base defines itself: "Azure Kubernetes Service (AKS)".

Authors spell an abbreviation out the first time they use it.  Collected over the whole corpus
at index time, these definitions teach the query side that "aks" also means "azure kubernetes
service" without anyone editing ``kb/synonyms.txt``, and they grow with the articles.

The match is the usual one for definitions in running text (after Schwartz and Hearst, 2003):
the abbreviation in parentheses, and right before it the fewest words whose initials spell it
("Network Security Group (NSG)", "Azure Virtual Desktop (AVD)", "Point-to-Site (P2S)" is left
out: its letters are not all initials).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

#: "(AKS)", "(NSGs)", "(VMSS)", "(SQL MI)" is not one: a single token of 2-8 letters/digits,
#: right after a word.
_ABBR = re.compile(r"(?<=[A-Za-z])[ \t]+\(([A-Z][A-Za-z0-9]{1,7})\)")
#: The words before it (at most 8, on the same line).
_WORDS_BEFORE = re.compile(r"(?:[A-Za-z][\w'-]*[ \t]+){0,7}[A-Za-z][\w'-]*$")
#: Small words a long form may hold without giving the abbreviation a letter ("Quality of Service").
_GLUE = frozenset({"of", "for", "and", "the", "to", "in", "on", "a", "an", "&"})
#: The file of a generation that holds the abbreviations its articles define.
FILE = "abbreviations.json"
#: An abbreviation must be defined this often, and one long form must have this share of its
#: definitions, before kb believes it.
MIN_COUNT = 2
MIN_SHARE = 0.2
MAX_FORMS = 3


def _initials(word: str) -> str:
    # "PowerShell" gives "PS", "Point-to-Site" "PTS", "Kubernetes" "K"
    pieces = [p for p in re.split(r"[-']", word) if p]
    out = ""
    for p in pieces:
        caps = re.findall(r"[A-Z]", p[1:])
        out += p[0] + "".join(caps)
    return out.lower()


def definitions(text: str) -> list[tuple[str, str]]:
    """The (abbreviation, long form) pairs defined in ``text``, both lower case."""
    found = []
    for m in _ABBR.finditer(text):
        abbr = m.group(1)
        before = _WORDS_BEFORE.search(text, max(0, m.start() - 120), m.start())
        if before is None:
            continue
        letters = abbr.lower().rstrip("s") if abbr.endswith("s") and abbr[:-1].isupper() else abbr.lower()
        if not letters.isalpha() or len(letters) < 2:
            continue
        words = before.group(0).split()
        # the fewest trailing words whose initials spell the abbreviation (glue words skipped)
        for start in range(len(words) - 1, -1, -1):
            span = words[start:]
            if span[0].lower() in _GLUE:
                continue
            initials = "".join(_initials(w) if w.lower() not in _GLUE else "" for w in span)
            simple = "".join(w[0].lower() for w in span if w.lower() not in _GLUE)
            if letters in (initials, simple):
                long_form = " ".join(span).lower()
                if long_form != letters:
                    found.append((letters, long_form))
                break
            if len(simple) > len(letters):
                break
    return found


class AbbreviationMiner:
    """Counts definitions over many texts; :meth:`rules` keeps the ones the corpus agrees on."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, text: str) -> None:
        self.counts.update(definitions(text))

    def merge(self, counts: dict[tuple[str, str], int] | Counter) -> None:
        self.counts.update(counts)

    def rules(self) -> dict[str, list[str]]:
        """abbreviation -> its long forms, most used first."""
        by_abbr: dict[str, list[tuple[int, str]]] = {}
        for (abbr, long_form), n in self.counts.items():
            by_abbr.setdefault(abbr, []).append((n, long_form))
        out: dict[str, list[str]] = {}
        for abbr, forms in sorted(by_abbr.items()):
            total = sum(n for n, _ in forms)
            kept = [f for n, f in sorted(forms, key=lambda x: (-x[0], x[1]))
                    if n >= MIN_COUNT and n >= MIN_SHARE * total][:MAX_FORMS]
            if kept:
                out[abbr] = kept
        return out


def write_abbreviations(gen: Path, per_file: dict[str, list]) -> dict[str, list[str]]:
    """Write the rules the files of a generation agree on into ``gen``; returns them.

    Written to a new file and renamed over the name: an incremental build's generation starts
    as hard links to the previous one's files, which must not change.
    """
    miner = AbbreviationMiner()
    for found in per_file.values():
        miner.merge(Counter(tuple(pair) for pair in found))
    rules = miner.rules()
    tmp = gen / f".{FILE}.tmp"
    tmp.write_text(json.dumps(rules, ensure_ascii=False, sort_keys=True))
    os.replace(tmp, gen / FILE)
    return rules


def read_abbreviations(gen: Path) -> dict[str, list[str]]:
    """The rules written by :func:`write_abbreviations` ({} for a generation without them)."""
    try:
        data = json.loads((gen / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(f) for f in v] for k, v in data.items() if isinstance(v, list)}
