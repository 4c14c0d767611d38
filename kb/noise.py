"""What a pasted error message says, without what only identifies one occurrence of it.

Agents paste log lines and exceptions as they are: request and correlation ids, GUIDs,
timestamps, addresses, URLs with tenant names, stack frames.  None of that is in any article, yet
each such token would count as a query word (and a GUID's hex parts match random codes).  The
error's name, its code and the words around them are what an article shares with it, so those stay.

>>> strip_noise("2024-05-01T10:22:03.123Z ERROR AADSTS50076 Trace ID: 0b5a7c3e-1f2d-4c7e-9a8b-6d5e4f3a2b1c")
'ERROR AADSTS50076 Trace ID:'
"""

from __future__ import annotations

import re

_PATTERNS = [
    # GUIDs, with or without braces
    r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?",
    # dates and times: 2024-05-01T10:22:03.123Z, 2024/05/01, 05/01/2024, 10:22:03, 10:22 PM
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?",
    r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}",
    r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:\s?[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?",
    # URLs and e-mail addresses (their host names are the customer's, not the product's)
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+",
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    # IPv4 addresses (with a port or a prefix length) and IPv6 ones
    r"\b\d{1,3}(?:\.\d{1,3}){3}(?:[:/]\d+)?\b",
    r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b",
    # memory addresses and long hex ids (a 0x code of up to 8 digits, 0xC000021A, stays)
    r"\b0x[0-9a-fA-F]{9,}\b",
    r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b",
    # long numbers: request ids, epoch times, line numbers of generated code
    r"\b\d{7,}\b",
    # random tokens (base64 ids, tokens): long runs mixing letters and digits without vowels' rhythm
    r"\b(?=\w*\d)(?=\w*[A-Za-z])[A-Za-z0-9_+/=-]{24,}",
    # Windows and Unix paths: keep the last segment (a file or module name can matter)
    r"(?:[A-Za-z]:)?(?:[\\/][\w.$~-]+){2,}(?=[\\/][\w.$~-]+)",
    r"\bline \d+\b",
]
_NOISE = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))
_SPACE = re.compile(r"\s+")


def strip_noise(text: str) -> str:
    """``text`` without ids, GUIDs, timestamps, addresses, URLs and paths; words kept in order."""
    return _SPACE.sub(" ", _NOISE.sub(" ", text)).strip()
