"""Placeholders: where articles name the reader's own resource, and filling them per request.

Articles mark values the portal fills in (``<!--$vmname-->[vmname]<!--/$vmname-->``).  At index
time :func:`bracket_placeholders` keeps each as its label in brackets (``[vmname]``,
``[Virtual machine]``) and records it; the article lists them as ``placeholders``.  A request
may give values (``?vmname=web01``) or an Azure resource ID, which implies the name, resource
group and subscription; :func:`personalise` returns a copy of the article with them filled.
Values are never stored: they exist only in the response they were asked for.  Portal-only
``data-blade:`` links become real portal URLs when a resource ID says which resource they are
about; the others are shown as text marked "opens in the Azure portal".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: ``<!--$name-->label<!--/$name-->`` (linear: the label cannot contain "<!--").
PLACEHOLDER_RE = re.compile(r"<!--[ \t]*\$([\w.-]{1,100})[ \t]*-->((?:(?!<!--)[^\n]){0,200}?)<!--[ \t]*/[ \t]*\$\1[ \t]*-->")
#: At most this many placeholders are listed per article, and filled per request.
MAX_PLACEHOLDERS = 50
#: Longest value a request may give for one placeholder.
MAX_VALUE = 200
PORTAL = "https://portal.azure.com/#@"
RESOURCE_ID_RE = re.compile(
    r"/subscriptions/([^/?#\s]{1,100})/resourceGroups/([^/?#\s]{1,100})"
    r"(?:/providers/([\w.-]{1,100})/([\w.-]{1,100})/([^/?#\s]{1,200})((?:/[\w.-]{1,100}/[^/?#\s]{1,200}){0,4}))?/?",
    re.I,
)
#: Placeholder names a resource ID fills, by resource type (lower case); every type also fills
#: the generic names.
NAME_ALIASES = {
    "virtualmachines": ("vmname", "virtualmachinename", "vm"),
    "servers": ("servername",),
    "storageaccounts": ("storageaccountname", "accountname"),
    "sites": ("sitename", "appname", "webappname"),
    "managedclusters": ("clustername", "aksclustername"),
    "vaults": ("vaultname", "keyvaultname"),
    "databaseaccounts": ("accountname", "cosmosdbaccountname"),
    "storagesyncservices": ("storagesyncservicename",),
    "virtualnetworkgateways": ("gatewayname",),
}
GENERIC_NAMES = ("resourcename", "name")
#: Markdown characters escaped in a value put into markdown, so a value is text, never markup.
_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]()<>#+!|~&-])")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
#: A markdown link to a portal blade: [text](data-blade:...)
BLADE_LINK_RE = re.compile(r"\[([^\[\]\n]{0,500})\]\((data-blade:[^()\s]{0,2000})\)")
BLADE_URI_RE = re.compile(r"\{?\$resourceId(?:Decoded)?\}?((?:/[\w.-]+)*)\s*$", re.I)


def bracket_placeholders(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each marked placeholder as its label in brackets, and the (name, label)
    pairs found, in order, once each."""
    if "<!--" not in text:
        return text, []
    found: dict[tuple[str, str], None] = {}

    def keep(m: re.Match) -> str:
        name = m.group(1)
        label = " ".join(m.group(2).split()).strip("[] ") or name
        shown = f"[{label}]"
        if len(found) < MAX_PLACEHOLDERS:
            found.setdefault((name, shown), None)
        return shown

    return PLACEHOLDER_RE.sub(keep, text), list(found)


def placeholder_list(pairs: list[tuple[str, str]], fields: Mapping[str, str]) -> list[dict]:
    """The article's ``placeholders``: name, label (as shown) and the fields it occurs in."""
    return [{"name": name, "label": label, "where": [f for f, text in fields.items() if label in text]}
            for name, label in pairs]


def parse_resource_id(resource_id: str) -> dict | None:
    """The parts of an Azure resource ID, or None when it is not one."""
    m = RESOURCE_ID_RE.fullmatch(resource_id.strip())
    if m is None:
        return None
    sub, group, namespace, rtype, name, children = m.groups()
    if children:  # .../servers/s1/databases/db1: the innermost resource is the one named
        parts = children.strip("/").split("/")
        rtype, name = parts[-2], parts[-1]
    return {"id": resource_id.strip().rstrip("/"), "subscription": sub, "group": group,
            "namespace": namespace or "", "type": (rtype or "").lower(), "name": name or ""}


def implied_values(resource: dict) -> dict[str, str]:
    """Placeholder values (lower-case names) a resource ID implies."""
    values = {"subscriptionid": resource["subscription"], "subscription": resource["subscription"],
              "resourcegroup": resource["group"], "resourcegroupname": resource["group"],
              "resourceid": resource["id"]}
    if resource["name"]:
        for alias in (*GENERIC_NAMES, *NAME_ALIASES.get(resource["type"], ())):
            values[alias] = resource["name"]
        if resource["type"] == "databases":
            values["databasename"] = resource["name"]
    return values


def clean_value(value: str) -> str:
    """A request's value as text: control characters become spaces, length capped."""
    return " ".join(_CONTROL_RE.sub(" ", value).split())[:MAX_VALUE]


def escape_markdown(value: str) -> str:
    """``value`` as markdown that renders as exactly this text."""
    return _MD_SPECIAL_RE.sub(r"\\\1", value)


def portal_url(blade: str, resource: dict | None) -> str | None:
    """The portal URL of a ``data-blade:`` link for ``resource``, or None if it cannot be told."""
    if resource is None:
        return None
    uri = blade.split("data-blade-uri:", 1)[1] if "data-blade-uri:" in blade else ""
    m = BLADE_URI_RE.search(uri) if uri else None
    if m is not None:
        return f"{PORTAL}/resource{resource['id']}{m.group(1)}"
    if "$resourceid" in blade.lower():
        return f"{PORTAL}/resource{resource['id']}"
    return None


def blade_links(markdown: str, resource: dict | None, mark_unresolved: bool) -> str:
    """``markdown`` with its portal links resolved for ``resource``; the others (with
    ``mark_unresolved``) become their text marked "(opens in the Azure portal)"."""
    if "data-blade:" not in markdown:
        return markdown

    def swap(m: re.Match) -> str:
        url = portal_url(m.group(2), resource)
        if url is not None:
            return f"[{m.group(1)}]({url})"
        return f"{m.group(1)} *(opens in the Azure portal)*" if mark_unresolved else m.group(0)

    return BLADE_LINK_RE.sub(swap, markdown)


def request_values(args: Mapping[str, str], placeholders: list[dict]) -> tuple[dict[str, str], dict | None]:
    """The values a request gives for an article's placeholders (by label), and its resource.

    Raises ValueError naming the parameter when ``resourceId`` is not a resource ID.
    """
    resource = None
    raw = args.get("resourceId") or args.get("resourceid")
    if raw:
        resource = parse_resource_id(raw[:1000])
        if resource is None:
            raise ValueError("resourceId")
    given = {k.lower(): clean_value(v) for k, v in args.items() if isinstance(v, str) and v.strip()}
    implied = implied_values(resource) if resource else {}
    by_label: dict[str, str] = {}
    for p in placeholders[:MAX_PLACEHOLDERS]:
        name = p["name"].lower()
        value = given.get(name) or implied.get(name)
        if value:
            by_label[p["label"]] = value
    return by_label, resource


def _fill(text: str, by_label: dict[str, str], markdown: bool) -> str:
    for label, value in by_label.items():
        if label in text:
            text = text.replace(label, escape_markdown(value) if markdown else value)
    return text


def personalise(article: dict, by_label: dict[str, str], resource: dict | None) -> dict:
    """A copy of ``article`` (the stored dict) with its placeholders filled and its portal links
    resolved for ``resource``: text fields get the values as they are (pages escape them), the
    markdown gets them escaped as markdown.  ``filled`` says which names were filled."""
    if not by_label and resource is None:
        return article
    out = dict(article)
    for key in ("title", "description", "info", "issue", "body"):
        if isinstance(out.get(key), str):
            out[key] = _fill(out[key], by_label, False)
    out["steps"] = [_fill(s, by_label, False) for s in article.get("steps", ())]

    def step(d: dict) -> dict:
        links = [{**x, "url": portal_url(x["url"], resource) or x["url"]} if x["url"].startswith("data-blade:") else x
                 for x in d.get("links", ())]
        return {**d, "text": _fill(d.get("text", ""), by_label, False),
                "markdown": blade_links(_fill(d.get("markdown", ""), by_label, True), resource, False),
                "links": links, "items": [step(i) for i in d.get("items", ())]}

    out["steps_detail"] = [step(d) for d in article.get("steps_detail", ())]
    out["markdown"] = blade_links(_fill(article.get("markdown", ""), by_label, True), resource, False)
    out["filled"] = sorted({p["name"] for p in article.get("placeholders", ()) if p["label"] in by_label})
    return out
