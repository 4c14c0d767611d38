"""The insights views: /insights (HTML), /api/v1/insights (JSON) and the "Was this helpful?" form.

Both insights views are off (404) unless ``KB_INSIGHTS_TOKEN`` is set, and then every request
must carry the token, as ``Authorization: Bearer <token>`` or as the password of HTTP Basic
authentication (what a browser asks for); it is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, Unauthorized

from . import analytics, charts, insights
from .api import ARTICLE_ID_RE, BadParameter, engine
from .search import IndexMissing

bp = Blueprint("insights", __name__)

#: Largest feedback form accepted (bytes): a vote and a short comment.
MAX_FEEDBACK_BYTES = 8192


class NeedsToken(Unauthorized):
    """A 401 that asks a browser for the token (as the password of HTTP Basic authentication)."""

    def get_headers(self, environ=None, scope=None):
        challenge = 'Basic realm="kb insights", charset="UTF-8"'
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", challenge)]


def recorder() -> analytics.Recorder | None:
    """The app's analytics recorder, None when recording is off."""
    return current_app.extensions.get("kb_analytics")


def _given_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def _require_token() -> None:
    token = str(current_app.config.get("KB_INSIGHTS_TOKEN") or "")
    if not token:
        abort(404)
    if not hmac.compare_digest(_given_token().encode(), token.encode()):
        raise NeedsToken("the insights need the token (KB_INSIGHTS_TOKEN) as a Bearer token or Basic password")


def _report() -> dict:
    allowed = {"since"}
    for name in request.args:
        if name not in allowed:
            raise BadParameter(name[:100], f"unknown parameter {name[:40]!r}; expected since")
    values = request.args.getlist("since")
    if len(values) > 1:
        raise BadParameter("since", "since must be given at most once")
    since = values[0] if values else "7d"
    try:
        insights.parse_since(since)
    except insights.BadSince as exc:
        raise BadParameter("since", str(exc)) from None
    try:
        store = analytics.Store(analytics.store_target(current_app.config))
    except analytics.StoreError as exc:
        current_app.logger.warning("%s", exc)
        abort(503, "the analytics store is unavailable")
    try:
        eng = engine()
        try:
            eng.generation()
        except IndexMissing:
            eng = None
        return insights.report(store, since, engine=eng)
    finally:
        store.close()


@bp.get("/insights")
def insights_page():
    """Search insights for authors (token required)."""
    _require_token()
    data = _report()
    days = [d["day"] for d in data["per_day"]]
    found = [d["searches"] - d["zero_result"] for d in data["per_day"]]
    nothing = [d["zero_result"] for d in data["per_day"]]
    chart_searches = charts.bar_chart("chart-searches", "Searches per day", days,
                                      [("found results", found), ("found nothing", nothing)])
    chart_zero = charts.bar_chart("chart-zero", "Share of searches that found nothing, per day", days,
                                  [("found nothing", [d["zero_share"] for d in data["per_day"]])], percent=True)
    return render_template("insights.html", data=data, chart_searches=chart_searches, chart_zero=chart_zero,
                           periods=("24h", "7d", "30d", "90d"))


@bp.get("/api/v1/insights")
def api_insights():
    """The insights as JSON (token required)."""
    _require_token()
    return jsonify(_report())


@bp.post("/feedback")
def feedback():
    """A "Was this helpful?" vote from an article page; back to the article with thanks."""
    rec = recorder()
    if rec is None:
        abort(404)
    if (request.content_length or 0) > MAX_FEEDBACK_BYTES:
        raise RequestEntityTooLarge()
    form = request.form
    article = form.get("article", "")
    helpful = form.get("helpful", "")
    if helpful not in ("yes", "no"):
        raise BadParameter("helpful", "helpful must be yes or no")
    try:
        found = engine().article(article) if ARTICLE_ID_RE.fullmatch(article) else None
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - no index: nothing to vote on
        found = None
    if found is None:
        raise BadParameter("article", "article must be the id of an article")
    rec.record_feedback(article=found["id"], helpful=helpful == "yes", comment=form.get("comment", ""),
                        query=form.get("q", ""))
    return redirect(f"{found['url']}?feedback=thanks", code=303)


def note_open(article_id: str) -> None:
    """Record an article opened from a results page (its link carries ``q`` and ``pos``)."""
    rec = recorder()
    raw = request.args.get("pos", "")
    if rec is None or not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        return
    rec.record_open(query=request.args.get("q", ""), article=article_id, position=int(raw))
