"""Settings: one table of (name, default, help); the app factory and the CLI read it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DEFAULT_INDEX = "index"
MAX_PER_PAGE = 100
MAX_PAGE = 1000

def sample_root() -> Path:
    """The bundled sample knowledge base that ships inside the package."""
    return Path(str(resources.files("kb.sample") / "articles"))


#: name -> (default, help).  ``create_app(config)`` overrides any of them.
SETTINGS: dict[str, tuple[object, str]] = {
    "KB_INDEX": (DEFAULT_INDEX, "Index directory to serve."),
    "KB_PER_PAGE": (10, "Results per page when the request does not say."),
    "KB_MAX_PER_PAGE": (MAX_PER_PAGE, "Largest per_page a request may ask for."),
    "KB_MAX_PAGE": (MAX_PAGE, "Largest page number a request may ask for."),
    "KB_SEARCH_TIMEOUT": (10.0, "Seconds a search may run before it is stopped with a 503 (0: no limit)."),
    "KB_FACET_LIMIT": (30, "Values listed per facet (selected values always are)."),
    "KB_RESULT_CACHE_MB": (16.0, "Megabytes of search answers kept per index generation for repeated searches (0: off)."),
    "KB_POSTINGS_CACHE_MB": (32.0, "Megabytes of decoded postings kept per index generation (0: off)."),
    "KB_ANALYTICS": (1, "Record searches, opened results and helpful votes for the insights (0: off)."),
    "KB_ANALYTICS_DB": ("", "SQLite file of the analytics (default: <index>.analytics.sqlite beside the index)."),
    "KB_ANALYTICS_URL": ("", "postgresql://... to keep the analytics in PostgreSQL instead (several servers)."),
    "KB_ANALYTICS_DAYS": (90, "Days of analytics kept; older rows are purged."),
    "KB_INSIGHTS_TOKEN": ("", "Token that /insights and /api/v1/insights require (unset: both are off)."),
    "KB_CACHE_MAX_AGE": (0, "Seconds caches may reuse an API answer unasked (0: revalidate each time, a cheap 304)."),
    "KB_CORS_ORIGINS": ("", "Origins (comma-separated, or *) whose pages may call the JSON API; empty: no CORS."),
}


def defaults() -> dict:
    """The default settings, each overridden by an environment variable of its name when set."""
    values = {name: default for name, (default, _help) in SETTINGS.items()}
    for name, default in list(values.items()):
        raw = os.environ.get(name)
        if raw:  # the environment overrides a default, in the default's type
            values[name] = type(default)(raw)
    return values
