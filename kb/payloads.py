"""Machine content inside articles, cut out before the markdown is read.

Articles carry more than prose: JSON payloads between ``---`` lines (problem-scoping forms,
advisor metadata) whose labels and hints are worth indexing but whose keys and ids are not;
``<!--issueDescription-->`` sections that become the article's ``issue`` field; template
placeholders (``<!--$vmname-->[vmname]<!--/$vmname-->``); and ``<script>``, ``<style>``,
``<template>`` and ``<insight>`` widgets, which are not prose and must not reach a rendered page.
These are corpus conventions rather than markdown, so they are handled on the raw text, in one
linear pass each, before markdown-it sees it.
"""

from __future__ import annotations

import json
import re

#: At most this many ``---`` delimited blocks are tried as JSON (real articles have one).
MAX_JSON_BLOCKS = 20
#: Lenient JSON reading stops after this many characters of strings.
MAX_STRINGS = 200_000

# JSON keys whose string values are meant for people (matched at the end of the key, so
# ``displayLabel``, ``watermarkText``, ``infoBalloonText`` and ``longDescription`` qualify while
# ``textProperty``, ``bladeName`` and ``recommendationTypeId`` do not).
JSON_TEXT_KEYS = re.compile(
    r"(label|text|title|description|hint|message|question|summary|content|caption|placeholder|"
    r"tooltip|benefits|tip|implication|tags|info|linkname\d*|offeringname|displayname|category)$",
    re.I,
)
#: Keys that end like text keys but hold machine values.
JSON_MACHINE_KEYS = frozenset({"querytext", "textproperty", "texttemplate"})
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Each pattern is linear-time on any input (tests/test_hostile_parse.py).
PLACEHOLDER_MARK_RE = re.compile(r"<!--[ \t]*(?:/[ \t]*)?\$[\w.-]*[ \t]*-->")
ISSUE_OPEN_RE = re.compile(r"<!--[ \t]*issueDescription[ \t]*-->", re.I)
ISSUE_CLOSE_RE = re.compile(r"<!--[ \t]*/[ \t]*issueDescription[ \t]*-->", re.I)
ELEMENT_OPEN_RE = re.compile(r"<(script|style|template|insight)(?![\w-])[^<>]*>", re.I)
COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
DASHES_RE = re.compile(r"-{3,}[ \t]*$")
JSON_START_RE = re.compile(r"^-{3,}[ \t]*\n[ \t\n]*[\[{]", re.M)
# "key": "value" or key: "value", for payloads json rejects; (?<!...) starts keys only at word starts
JSON_PAIR_RE = re.compile(
    r'(?:"((?:[^"\\\n]|\\.)*)"|(?<![\w$])([A-Za-z_$][\w$]*))[ \t]*:[ \t]*"((?:[^"\\\n]|\\.)*)"'
)


def drop_placeholder_marks(text: str) -> str:
    """``<!--$vmname-->[vmname]<!--/$vmname-->`` becomes ``[vmname]``."""
    return PLACEHOLDER_MARK_RE.sub("", text) if "<!--" in text else text


def drop_comments(text: str) -> str:
    """HTML comments removed (an unclosed one runs to the end)."""
    return COMMENT_RE.sub("", text) if "<!--" in text else text


def drop_elements(text: str) -> str:
    """Remove ``<script>``, ``<style>``, ``<template>`` and ``<insight>`` elements with their content.

    An opening tag that is never closed is removed alone: a stray ``<script>`` in prose must not
    take the rest of the article with it.  Linear: each search starts where the previous one
    ended, and a closing tag found missing once is not looked for again.  (BeautifulSoup drops
    the same elements again inside HTML fragments; this pass also keeps them out of the
    article's markdown, which is rendered on its page.)
    """
    if "<" not in text:
        return text
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    while True:
        m = ELEMENT_OPEN_RE.search(text, pos)
        if m is None:
            break
        out.append(text[pos:m.start()])
        name = m.group(1).lower()
        close = None if name in unclosed else re.compile(rf"</{name}[ \t]*>", re.I).search(text, m.end())
        if close is None:
            unclosed.add(name)
            pos = m.end()
        else:
            pos = close.end()
        out.append("\n")
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def split_issue(text: str) -> tuple[list[str], str]:
    """Cut the ``<!--issueDescription-->`` sections out of ``text``: (their texts, the rest)."""
    if "<!--" not in text:
        return [], text
    issues: list[str] = []
    out: list[str] = []
    pos = 0
    while True:
        m = ISSUE_OPEN_RE.search(text, pos)
        if m is None:
            break
        out.append(text[pos:m.start()])
        close = ISSUE_CLOSE_RE.search(text, m.end())
        end = close.start() if close else len(text)
        issues.append(text[m.end():end])
        pos = close.end() if close else len(text)
    if not issues:
        return [], text
    out.append(text[pos:])
    return issues, "".join(out)


# --- JSON payloads ----------------------------------------------------------------------------

_TEXT_KEY_CACHE: dict[str, bool] = {}


def _json_key_is_text(key: str) -> bool:
    found = _TEXT_KEY_CACHE.get(key)
    if found is None:
        found = bool(JSON_TEXT_KEYS.search(key)) and key.lower() not in JSON_MACHINE_KEYS
        if len(_TEXT_KEY_CACHE) < 10_000:
            _TEXT_KEY_CACHE[key] = found
    return found


def _json_value_is_text(value: str) -> bool:
    return bool(value) and not value.startswith(("http://", "https://", "{", "$", "/")) and not (
        len(value) == 36 and GUID_RE.fullmatch(value)
    )


def _walk_json(value, is_text: bool, out: list[str]) -> None:
    if type(value) is dict:
        items = [(v, _json_key_is_text(k)) for k, v in value.items()]
    elif type(value) is list:
        items = [(v, is_text) for v in value]
    else:
        return
    for v, text in items:
        if type(v) is str:
            if text:
                v = v.strip()
                if _json_value_is_text(v):
                    out.append(v)
        elif type(v) in (dict, list):
            _walk_json(v, text, out)


def json_strings(value, key: str = "") -> list[str]:
    """Human-readable strings of a JSON payload: labels, descriptions, hints; never keys or ids.

    Raises RecursionError for payloads nested deeper than Python's recursion limit.
    """
    out: list[str] = []
    if type(value) is str:
        _walk_json([value], _json_key_is_text(key), out)
    else:
        _walk_json(value, _json_key_is_text(key), out)
    return out


def _lenient_json_strings(payload: str) -> list[str]:
    """Strings of a payload ``json`` rejects (unquoted keys, trailing commas), pair by pair."""
    out: list[str] = []
    size = 0
    for m in JSON_PAIR_RE.finditer(payload):
        if size > MAX_STRINGS or len(out) > 10_000:  # the body is cut there anyway
            break
        key = m.group(1) if m.group(1) is not None else m.group(2)
        if not _json_key_is_text(key):
            continue
        value = m.group(3)
        if "\\" in value:
            try:
                value = json.loads(f'"{value}"', strict=False)
            except ValueError:
                pass
        value = value.strip()
        if _json_value_is_text(value):
            out.append(value)
            size += len(value)
    return out


def _lower_keys(value) -> dict:
    return {k.lower(): v for k, v in value.items()} if type(value) is dict else {}


def _string(value, limit: int = 2000) -> str:
    return " ".join(value.split())[:limit] if type(value) is str else ""


def _texts(items) -> list[str]:
    """The ``text`` of each option or hint (or the string itself), blanks dropped."""
    out: list[str] = []
    for item in items if type(items) is list else ():
        text = _string(item) if type(item) is str else _string(_lower_keys(item).get("text"))
        if text and len(out) < 200:
            out.append(text)
    return out


def readable_payload(value) -> dict:
    """What a page shows of a JSON payload: its form's ``questions`` (label, kind, required,
    options, hints, example, info; in form order) and its support ``topics`` (title,
    description, category, tags).  Either list is empty when the payload has none."""
    top = _lower_keys(value)
    questions: list[dict] = []
    elements = [e for e in top.get("formelements") or () if type(e) is dict] if type(top.get("formelements")) is list else []
    ordered = sorted(elements, key=lambda e: o if type(o := _lower_keys(e).get("order")) in (int, float) else 0)
    for element in ordered[:500]:
        e = _lower_keys(element)
        label = _string(e.get("displaylabel"))
        if not label:
            continue
        questions.append({
            "label": label,
            "kind": _string(e.get("controltype"), 100).lower(),
            "required": e.get("required") is True or str(e.get("required")).lower() == "true",
            "options": _texts(e.get("dropdownoptions") or e.get("radiobuttonoptions") or e.get("defaultdropdownoptions")),
            "hints": _texts(e.get("hints")),
            "example": _string(e.get("watermarktext")),
            "info": _string(e.get("infoballoontext") or e.get("infoballontext")),
        })
    topics: list[dict] = []
    for item in top.get("supporttopics") or () if type(top.get("supporttopics")) is list else ():
        t = _lower_keys(item)
        title = _string(t.get("shortdescription"))
        if title and len(topics) < 500:
            tags = _string(t.get("searchtags"))
            topics.append({"title": title, "description": _string(t.get("longdescription")),
                           "category": _string(t.get("category"), 200),
                           "tags": [x.strip() for x in tags.split(";") if x.strip()][:50]})
    return {"questions": questions, "topics": topics}


def split_json(text: str, values: list | None = None) -> tuple[str, list[str], list[str]]:
    """Cut JSON payloads (``---`` line, ``{`` or ``[`` ..., ``---`` line) out of ``text``.

    Returns the text without them, their human-readable strings, and warnings.  A payload that
    ``json`` rejects is read leniently; one that yields nothing at all stays in the text.  The
    payloads ``json`` reads are appended to ``values`` when it is given.
    """
    if "---" not in text or not JSON_START_RE.search(text):
        return text, [], []
    lines = text.split("\n")
    dashes = [i for i, line in enumerate(lines) if line.startswith("---") and DASHES_RE.match(line)]
    if not dashes:
        return text, [], []
    strings: list[str] = []
    warns: list[str] = []
    drop: list[tuple[int, int]] = []  # line ranges [start, end) to remove
    k = attempts = 0
    while k < len(dashes) and attempts < MAX_JSON_BLOCKS:
        i = dashes[k]
        first = i + 1
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first >= len(lines) or not lines[first].lstrip().startswith(("{", "[")):
            k += 1
            continue
        j = dashes[k + 1] if k + 1 < len(dashes) else len(lines)
        payload = "\n".join(lines[i + 1:j])
        attempts += 1
        try:
            value = json.loads(payload, strict=False)
            found = json_strings(value)
            if values is not None:
                values.append(value)
        except (ValueError, RecursionError):
            found = _lenient_json_strings(payload)
            warns.append("json-invalid")
            if not found:
                k += 1
                continue
        strings.extend(found)
        drop.append((i, min(j + 1, len(lines))))
        k += 2
    if not drop:
        return text, [], warns
    kept: list[str] = []
    pos = 0
    for a, b in drop:
        kept.extend(lines[pos:a])
        kept.append("")
        pos = b
    kept.extend(lines[pos:])
    return "\n".join(kept), strings, ["json-payload", *warns]
