"""Search insights: recording (kb.analytics), the reports (kb.insights) and their three renderings.

Real SQLite files, real indexes, Flask's test client and real ``kb serve`` processes; the
PostgreSQL store has its own file (test_insights_postgres.py).
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from test_serve import Server

from kb import analytics, insights
from kb.cli import cli
from kb.search import SearchEngine
from kb.web import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: A query of words no sample article has, and no close word either.
NOTHING = "zqxjv wqpfz"


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "analytics.sqlite")


@pytest.fixture
def app(sample_index, db):
    app = create_app({"KB_INDEX": str(sample_index), "KB_ANALYTICS_DB": db, "KB_INSIGHTS_TOKEN": TOKEN,
                      "TESTING": True})
    yield app
    app.extensions["kb_analytics"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def flush(app) -> None:
    assert app.extensions["kb_analytics"].flush(10)


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


# -- recording --------------------------------------------------------------------------------


def test_a_page_search_is_recorded_with_what_the_issue_lists(client, app, db):
    client.get("/?q=%20%20VM%20Stuck%20&service=microsoft.compute&page=1")
    flush(app)
    (row,) = rows(db, "SELECT query, norm, filters, page, total, zero, took_ms, source, day FROM kb_searches")
    query, norm, filters, page, total, zero, took_ms, source, day = row
    assert (query, norm, page, zero, source) == ("VM Stuck", "vm stuck", 1, 0, "page")
    assert json.loads(filters) == {"service": ["microsoft.compute"]}
    assert total > 0 and took_ms >= 0 and day == analytics.day_of(time.time())
    # no IP address, user agent or cookie anywhere in the schema
    columns = {c[1] for t in ("kb_searches", "kb_opens", "kb_feedback", "kb_shown")
               for c in rows(db, f"PRAGMA table_info({t})")}
    assert not {c for c in columns if any(w in c for w in ("ip", "agent", "cookie", "addr", "session"))}


def test_api_and_cli_searches_are_recorded_with_their_source(client, app, db, sample_index, monkeypatch):
    client.get(f"/api/search?q={NOTHING.replace(' ', '+')}")
    flush(app)
    monkeypatch.setenv("KB_ANALYTICS_DB", db)
    result = CliRunner().invoke(cli, ["search", "blue screen", "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(rows(db, "SELECT source, norm, zero FROM kb_searches")) == [
        ("api", NOTHING, 1), ("cli", "blue screen", 0)]


def test_the_bare_search_page_and_a_second_internal_search_are_not_searches(client, app, db):
    client.get("/")
    # a zero-result filtered search runs a second, unfiltered search for its help text
    client.get(f"/?q={NOTHING}&service=microsoft.compute")
    flush(app)
    assert rows(db, "SELECT COUNT(*) FROM kb_searches") == [(1,)]


def test_keystroke_searches_are_not_recorded_but_the_page_marks_its_own(client, app, db):
    """A bot searching as it types (prefix=1) records the search it settles on, not each
    keystroke; the page's own typing requests say "X-KB-Record: no", its settled search does not."""
    for typed in ("blu", "blue scr"):
        client.get(f"/api/v1/search?q={typed.replace(' ', '+')}&prefix=1")
        client.get(f"/?q={typed.replace(' ', '+')}&prefix=1", headers={"X-KB-Record": "no"})
    client.get("/api/v1/search?q=blue+screen")
    client.head("/?q=blue+scr&prefix=1")  # the page: typing settled on "blue scr"
    flush(app)
    assert sorted(rows(db, "SELECT source, norm FROM kb_searches")) == [("api", "blue screen"), ("page", "blue scr")]


def test_the_query_is_capped_and_control_characters_dropped(client, app, db):
    assert client.get("/api/search?q=" + "a%07bc+" * 99).status_code == 200
    flush(app)
    (query,) = rows(db, "SELECT query FROM kb_searches")[0]
    assert len(query) == analytics.MAX_QUERY and "\x07" not in query


def test_recording_off_records_nothing_and_offers_no_vote(sample_index, db):
    app = create_app({"KB_INDEX": str(sample_index), "KB_ANALYTICS_DB": db, "KB_ANALYTICS": 0})
    assert app.extensions["kb_analytics"] is None
    client = app.test_client()
    page = client.get("/?q=vm")
    href = BeautifulSoup(page.text, "html.parser").select_one(".card-title a")["href"]
    assert "pos=" not in href
    assert b"Was this helpful" not in client.get(href).data
    assert client.post("/feedback", data={"article": href.rsplit("/", 1)[1], "helpful": "no"}).status_code == 404


def test_an_opened_result_and_a_not_helpful_vote_reach_the_report(client, app):
    page = BeautifulSoup(client.get("/?q=blue+screen").text, "html.parser")
    links = [a["href"] for a in page.select(".card-title a")]
    second = links[1]
    assert parse_qs(urlsplit(second).query) == {"q": ["blue screen"], "pos": ["2"]}
    article = BeautifulSoup(client.get(second).text, "html.parser")
    form = article.select_one("form.feedback-form")
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    assert fields["q"] == "blue screen"
    answer = client.post(form["action"], data={**fields, "helpful": "no", "comment": "Wrong <b>OS</b>\x00 version"})
    assert answer.status_code == 303
    thanks = client.get(answer.headers["Location"])
    assert b"Thank you for your feedback" in thanks.data
    flush(app)
    data = client.get("/api/v1/insights?since=1d", headers=AUTH).get_json()
    article_id = urlsplit(second).path.rsplit("/", 1)[1]
    assert data["totals"]["opens"] == 1 and data["totals"]["not_helpful"] == 1
    assert data["most_opened"][0] | {} == {**data["most_opened"][0], "article": article_id, "opens": 1,
                                          "mean_position": 2.0}
    (bad,) = data["unhelpful"]
    assert (bad["article"], bad["not_helpful"], bad["helpful"]) == (article_id, 1, 0)
    assert bad["comments"][0]["comment"] == "Wrong <b>OS</b> version"  # kept as text, escaped on the page
    assert bad["comments"][0]["query"] == "blue screen"
    assert data["top_queries"][0]["opens"] == 1
    html = client.get("/insights?since=1d", headers=AUTH).text
    assert "Wrong &lt;b&gt;OS&lt;/b&gt; version" in html and "<b>OS</b>" not in html


@pytest.mark.parametrize("form, parameter", [
    ({"helpful": "maybe"}, "helpful"),
    ({"helpful": "no", "article": "no-such-article"}, "article"),
    ({"helpful": "no", "article": "../etc/passwd"}, "article"),
])
def test_a_bad_vote_is_a_400_naming_the_field(client, form, parameter):
    answer = client.post("/feedback", data=form)
    assert answer.status_code == 400 and parameter in answer.text


def test_a_huge_vote_is_refused(client):
    assert client.post("/feedback", data={"helpful": "no", "comment": "x" * 20_000}).status_code == 413


# -- the recorder -------------------------------------------------------------------------------


def test_an_unavailable_store_drops_events_with_a_counted_warning(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    target = str(blocker / "analytics.sqlite")  # its parent is a file: the store cannot open
    rec = analytics.Recorder(lambda: analytics.Store(target), flush_seconds=0.05)
    with caplog.at_level(logging.WARNING, logger="kb.analytics"):
        for i in range(5):
            rec.record_search(query=f"q{i}", filters={}, page=1, total=0, took_ms=1.0, source="api")
        assert rec.flush(10)
        rec.close()
    assert (rec.written, rec.dropped) == (0, 5)
    assert "dropped" in caplog.text and "5 events dropped in all" in caplog.text


def test_the_buffer_is_bounded_while_the_writer_is_stuck(tmp_path):
    release = threading.Event()

    def slow_store():
        release.wait(10)
        return analytics.Store(str(tmp_path / "a.sqlite"))

    rec = analytics.Recorder(slow_store, max_pending=100, flush_seconds=0.01)
    started = time.perf_counter()
    for i in range(1000):
        rec.record_search(query=f"q{i}", filters={}, page=1, total=1, took_ms=1.0, source="api")
    assert time.perf_counter() - started < 5  # never waits for the store
    release.set()
    rec.close()
    assert rec.written + rec.dropped == 1000 and rec.dropped >= 800
    assert rows(str(tmp_path / "a.sqlite"), "SELECT COUNT(*) FROM kb_searches") == [(rec.written,)]


def test_the_writer_reconnects_after_the_store_comes_back(tmp_path):
    target = tmp_path / "later" / "a.sqlite"
    attempts = []

    def flaky_store():
        attempts.append(1)
        if len(attempts) == 1:
            raise analytics.StoreError("not yet")
        return analytics.Store(str(target))

    rec = analytics.Recorder(flaky_store, flush_seconds=0.01, log=logging.getLogger("test"))
    rec.record_open(query="a", article="x", position=1)
    assert rec.flush(10)
    rec.record_open(query="b", article="y", position=2)
    rec.close()
    assert (rec.written, rec.dropped) == (1, 1)
    assert rows(str(target), "SELECT query FROM kb_opens") == [("b",)]


def test_schema_is_created_once_and_versioned(tmp_path):
    # several workers opening a new store at once; switching a new database to WAL once failed
    # with "database is locked" in about one round in twenty
    for round_ in range(200):
        target = str(tmp_path / f"a{round_}.sqlite")
        with ThreadPoolExecutor(8) as pool:
            stores = list(pool.map(lambda _, t=target: analytics.Store(t), range(8)))
        for s in stores:
            s.close()
        assert rows(target, "SELECT value FROM kb_analytics_meta WHERE key = 'schema'") == \
            [(str(len(analytics.MIGRATIONS)),)]
        assert rows(target, "PRAGMA journal_mode") == [("wal",)]


def test_old_rows_are_purged(tmp_path):
    store = analytics.Store(str(tmp_path / "a.sqlite"))
    rec = analytics.Recorder(lambda: store, days=90, flush_seconds=0.01)
    now = time.time()
    rec.record_search(query="old", filters={}, page=1, total=0, took_ms=1, source="api", now=now - 91 * 86400,
                      shown=["x"])
    rec.record_search(query="new", filters={}, page=1, total=0, took_ms=1, source="api", now=now)
    assert rec.flush(10)
    store.purge(90)
    assert store.query("SELECT query FROM kb_searches") == [("new",)]
    assert store.query("SELECT COUNT(*) FROM kb_shown") == [(0,)]
    rec.close()


# -- the report ---------------------------------------------------------------------------------


def _recorded(tmp_path, events) -> analytics.Store:
    store = analytics.Store(str(tmp_path / "r.sqlite"))
    store.write(events)
    return store


def test_report_tables_from_known_rows(tmp_path, sample_index):
    now = time.time()
    day = analytics.day_of(now)
    ev = []
    for i, (q, total, source) in enumerate([("VM stuck", 5, "page"), ("vm  stuck", 5, "page"), ("vm stuck", 5, "page"),
                                            ("blue screen", 3, "page"), (NOTHING, 0, "api"), (NOTHING, 0, "page")]):
        ev.append(("search", (now - i, day, q, analytics.normalise(q), "{}", 1, total, int(total == 0), 3.0, source)))
    engine = SearchEngine(sample_index)
    shown = insights.all_article_ids(engine)[:3]
    ev.append(("shown", (day, tuple(shown))))
    ev.append(("open", (now, day, "blue screen", "blue screen", shown[0], 1)))
    store = _recorded(tmp_path, ev)
    data = insights.report(store, "1d", engine=engine, now=now + 1)
    assert data["totals"] == {"searches": 6, "zero_result": 2, "zero_share": 0.3333, "opens": 1,
                              "helpful": 0, "not_helpful": 0}
    assert [(r["norm"], r["searches"], r["zero_result"]) for r in data["top_queries"]] == [
        ("vm stuck", 3, 0), (NOTHING, 2, 2), ("blue screen", 1, 0)]
    assert [(r["query"], r["searches"]) for r in data["zero_result_queries"]] == [(NOTHING, 2)]
    assert data["zero_result_queries"][0]["unknown_words"] == NOTHING.split()
    # only "vm stuck" was searched often enough on the page; none of its results was opened
    assert [(r["norm"], r["open_rate"]) for r in data["rarely_opened"]] == [("vm stuck", 0.0)]
    assert data["per_day"][-1]["searches"] == 6
    assert data["never_shown"]["count"] == len(insights.all_article_ids(engine)) - 3
    assert not {a["article"] for a in data["never_shown"]["articles"]} & set(shown)
    engine.close()


def test_zero_result_words_get_a_synonyms_line_and_nearest_articles(tmp_path, sample_index):
    engine = SearchEngine(sample_index)
    # "screan" is not in the index, "screen" is; the engine itself finds nothing for it alone
    assert not engine.generation().queries.known("screan")
    out = insights.close_the_loop(engine, "screan")
    assert out["unknown_words"] == ["screan"]
    assert out["synonym_lines"] == ["screan => screen"]
    assert out["nearest"] and all(n["url"].startswith("/articles/") for n in out["nearest"])
    engine.close()


def test_text_and_csv_have_every_table(tmp_path):
    now = time.time()
    store = _recorded(tmp_path, [("search", (now, analytics.day_of(now), "a, b", "a, b", "{}", 1, 0, 1, 1.0, "cli"))])
    data = insights.report(store, "24h", now=now + 1)
    text = insights.to_text(data)
    csv_text = insights.to_csv(data)
    for name in insights.TABLES:
        assert f"# {name}\n" in csv_text
        assert name.replace("_", " ").capitalize() in text
    assert '"a, b",1,,,' in csv_text  # a comma in a query is quoted, not a new column


@pytest.mark.parametrize("since", ["", "7", "7w", "0d", "99999d", "-1d", "7d7d"])
def test_bad_periods_are_refused(since):
    with pytest.raises(insights.BadSince):
        insights.parse_since(since)


# -- the token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/insights", "/api/v1/insights"])
def test_insights_are_off_without_a_configured_token(sample_index, db, path):
    app = create_app({"KB_INDEX": str(sample_index), "KB_ANALYTICS_DB": db})
    answer = app.test_client().get(path, headers=AUTH)
    assert answer.status_code == 404 and b"searches" not in answer.data


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
    {"Authorization": "Basic " + base64.b64encode(b"u:wrong").decode()}, {"Authorization": "Basic %%%"},
])
@pytest.mark.parametrize("path", ["/insights", "/api/v1/insights?since=7d"])
def test_insights_need_the_token(client, headers, path):
    answer = client.get(path, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert b"top_queries" not in answer.data and b"Top queries" not in answer.data


def test_basic_authentication_with_the_token_as_password_opens_the_page(client):
    basic = {"Authorization": "Basic " + base64.b64encode(f"author:{TOKEN}".encode()).decode()}
    assert client.get("/insights", headers=basic).status_code == 200


@pytest.mark.parametrize("qs, parameter", [("since=7w", "since"), ("since=1d&since=2d", "since"), ("limit=3", "limit")])
def test_api_insights_bad_parameters(client, qs, parameter):
    answer = client.get(f"/api/v1/insights?{qs}", headers=AUTH)
    assert answer.status_code == 400 and answer.get_json()["parameter"] == parameter


def test_the_page_shows_the_tables_charts_and_their_json_twin(client, app):
    for q in ("vm stuck", "vm stuck", NOTHING):
        client.get(f"/?q={q}")
    flush(app)
    data = client.get("/api/v1/insights?since=7d", headers=AUTH).get_json()
    soup = BeautifulSoup(client.get("/insights?since=7d", headers=AUTH).text, "html.parser")
    for svg_id in ("chart-searches", "chart-zero"):
        svg = soup.find("svg", id=svg_id)
        assert svg["role"] == "img" and svg.find("title").text and svg.find("desc").text
    per_day = [[c.text for c in tr.find_all(["th", "td"])] for tr in soup.select("#table-per-day tbody tr")]
    assert [r[0] for r in per_day] == [d["day"] for d in data["per_day"]]
    assert per_day[-1][1:3] == ["3", "1"]
    top = [[c.text.strip() for c in tr.find_all(["th", "td"])] for tr in soup.select("#table-top-queries tbody tr")]
    assert top == [[r["query"], str(r["searches"]), str(r["zero_result"]), str(r["opens"])] for r in data["top_queries"]]
    zero = soup.select_one("#table-zero-queries tbody tr")
    assert zero.find("a")["href"] == f"/?q={NOTHING.replace(' ', '+')}"
    assert soup.find("link", rel="alternate")["href"] == "/api/v1/insights?since=7d"


def test_kb_report_prints_the_same_tables(sample_index, db, monkeypatch):
    monkeypatch.setenv("KB_ANALYTICS_DB", db)
    runner = CliRunner()
    for q in ("vm stuck", NOTHING):
        runner.invoke(cli, ["search", q, "--index", str(sample_index)], catch_exceptions=False)
    as_json = json.loads(runner.invoke(cli, ["report", "--json", "--index", str(sample_index)],
                                       catch_exceptions=False).output)
    assert as_json["totals"]["searches"] == 2
    assert [(r["query"], r["searches"]) for r in as_json["zero_result_queries"]] == [(NOTHING, 1)]
    as_csv = runner.invoke(cli, ["report", "--csv", "--since", "24h", "--index", str(sample_index)]).output
    assert f"{NOTHING},1," in as_csv
    text = runner.invoke(cli, ["report", "--index", str(sample_index)]).output
    assert "2 searches, 1 found nothing" in text
    bad = runner.invoke(cli, ["report", "--since", "week", "--index", str(sample_index)])
    assert bad.exit_code == 2 and "--since" in bad.output


# -- acceptance: a real server under load -------------------------------------------------------


def _load(server: Server, queries: list[str], clients: int = 8) -> list[int]:
    from urllib.parse import quote_plus

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda q: server.get(f"/api/search?q={quote_plus(q)}")[0], queries))


def load_queries(n: int = 1000) -> tuple[list[str], dict[str, int]]:
    """``n`` queries, every tenth one finding nothing (in 4 distinct forms)."""
    words = ["vm stuck", "blue screen", "storage 403", "ssh permission denied", "sas token expired"]
    queries, zero = [], {}
    for i in range(n):
        if i % 10 == 0:
            q = f"zqxjv{'kmnp'[(i // 10) % 4]} wqpfz"
            zero[q] = zero.get(q, 0) + 1
        else:
            q = words[i % len(words)]
        queries.append(q)
    return queries, zero


def test_a_thousand_searches_over_two_workers_are_all_recorded(sample_index, tmp_path, monkeypatch):
    db = str(tmp_path / "load.sqlite")
    monkeypatch.setenv("KB_ANALYTICS_DB", db)
    queries, zero = load_queries()
    with Server("--index", str(sample_index), "--workers", "2") as server:
        assert set(_load(server, queries)) == {200}
    # the workers wrote what was pending when gunicorn stopped them
    result = CliRunner().invoke(cli, ["report", "--json", "--index", str(sample_index)], catch_exceptions=False)
    data = json.loads(result.output)
    assert data["totals"]["searches"] == 1000
    assert {r["query"]: r["searches"] for r in data["zero_result_queries"]} == zero


def test_kb_search_answers_when_the_store_is_unavailable(sample_index, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KB_ANALYTICS_DB", str(blocker / "a.sqlite"))
    result = CliRunner().invoke(cli, ["search", "blue screen", "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "results (" in result.stdout
    assert "the search was not recorded for the insights" in result.stderr
