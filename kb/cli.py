"""The ``kb`` command line: a thin click layer over kb's library functions."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import click

from . import config
from .config import sample_root

INDEX_OPTION = click.option(
    "--index",
    "index_dir",
    envvar="KB_INDEX",
    default=config.DEFAULT_INDEX,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Index directory (also from the KB_INDEX environment variable).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kb")
def cli():
    """kb: a searchable knowledge base of support troubleshooting articles."""


@cli.command("index")
@click.argument("articles_dir", required=False, type=click.Path())
@INDEX_OPTION
@click.option("--full", is_flag=True, help="Rebuild from scratch instead of updating what changed.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Parser processes (default: CPU count).")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option("--allow-empty", is_flag=True,
              help="Build even when ARTICLES_DIR has no markdown file, emptying the index.")
def index_cmd(articles_dir, index_dir, full, workers, as_json, allow_empty):
    """Index the articles under ARTICLES_DIR (default: the bundled sample knowledge base).

    Only added, changed and deleted articles are touched unless --full is given.

    Example: kb index ./selfhelp --index ./index
    """
    from .generations import BuildLocked
    from .index import EmptySource, build

    if articles_dir is None:
        articles_dir = str(sample_root())
        click.echo(f"Indexing the bundled sample knowledge base ({articles_dir})", err=True)
    if not os.path.isdir(articles_dir):
        raise click.ClickException(f"ARTICLES_DIR {articles_dir!r} is not a directory")
    if not os.access(articles_dir, os.R_OK | os.X_OK):
        raise click.ClickException(f"ARTICLES_DIR {articles_dir!r} is not readable")

    interactive = sys.stderr.isatty() and not as_json
    bar = None
    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=total, label="Indexing", file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        report = build(articles_dir, index_dir, full=full, workers=workers, allow_empty=allow_empty,
                       progress=progress if interactive else None)
    except BuildLocked as exc:
        raise click.ClickException(f"{exc}; try again when it has finished") from None
    except EmptySource as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        # a full disk, a read-only or misplaced index directory: the served index is untouched
        where = f" ({exc.filename})" if exc.filename else ""
        raise click.ClickException(f"could not write the index in {index_dir}: {exc.strerror or exc}{where}; "
                                   f"the served index was not changed") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report, index_dir)


def _print_report(report, index_dir: str) -> None:
    from .articles import display_path

    mode = {"full": "full build", "incremental": "incremental update", "unchanged": "nothing changed"}[report.mode]
    click.echo(f"{mode}: {report.indexed} articles indexed from {report.files} files "
               f"in {report.seconds:.1f} s -> {index_dir} ({report.generation})")
    if report.mode != "full":
        click.echo(f"  added {report.added}, changed {report.changed}, deleted {report.deleted}, "
                   f"unchanged {report.unchanged}")
    if report.warnings:
        click.echo("  warnings: " + ", ".join(f"{k} {v}" for k, v in sorted(report.warnings.items())))
    if report.skipped:
        reasons = Counter(s.reason for s in report.skipped)
        click.echo(f"  skipped {len(report.skipped)} files: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        for s in report.skipped:
            click.echo(f"    {display_path(s.path)}: {s.reason}" + (f" ({s.detail})" if s.detail else ""))


def _api_get(index_dir: str, path: str, params: list[tuple[str, object]] | None = None) -> dict:
    """The JSON that ``GET path`` answers for this index: the CLI prints the API's own answer, so
    scripts and bots see one format, and its errors become one-line messages."""
    from .web import create_app

    # the CLI records its own searches (source "cli"), so the app it asks records nothing
    app = create_app({"KB_INDEX": index_dir, "KB_RESULT_CACHE_MB": 0, "KB_ANALYTICS": 0})
    response = app.test_client().get(path, query_string=params or [])
    data = response.get_json(silent=True) or {}
    if response.status_code != 200:
        raise click.ClickException(data.get("message") or f"HTTP {response.status_code}")
    return data


def _engine(index_dir: str):
    from .search import IndexMissing, SearchEngine

    engine = SearchEngine(index_dir)
    try:
        engine.generation()
    except IndexMissing as exc:
        raise click.ClickException(str(exc)) from None
    return engine


@cli.command("search")
@click.argument("query")
@click.option("--service", "services", multiple=True, help="Only this service (repeatable: OR).")
@click.option("--tag", "tags", multiple=True, help="Only this resource tag (repeatable: OR).")
@click.option("--type", "types", multiple=True, help="Only this article type, e.g. generic (repeatable: OR).")
@click.option("--cloud", "clouds", multiple=True, help="Only this cloud, e.g. public (repeatable: OR).")
@click.option("--limit", type=click.IntRange(1, config.MAX_PER_PAGE), default=10, show_default=True)
@click.option("--page", type=click.IntRange(1, config.MAX_PAGE), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of GET /api/search.")
@INDEX_OPTION
def search_cmd(query, services, tags, types, clouds, limit, page, as_json, index_dir):
    """Search the index for QUERY, a customer's symptom or an error code.

    Example: kb search "vm stuck on starting windows" --service microsoft.compute

    A facet option given "(none)" selects the articles without a value for it.
    """
    from .query import MAX_QUERY_CHARS

    if len(query) > MAX_QUERY_CHARS:
        raise click.BadParameter(f"must be at most {MAX_QUERY_CHARS} characters", param_hint="QUERY")
    facets = [*(("service", s) for s in services), *(("tag", t) for t in tags),
              *(("type", t) for t in types), *(("cloud", c) for c in clouds)]
    params = [("q", query), *facets, ("page", page), ("per_page", limit)]
    result = _api_get(index_dir, "/api/search", params)
    try:
        _print_search(result, page, limit, as_json)
    finally:  # after the answer is out: an unavailable store delays nothing the user waits for
        _record_search(index_dir, query, facets, page, limit, result)


def _print_search(result: dict, page: int, limit: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"{result['total']} results ({result['took_ms']:.1f} ms)")
    if result.get("suggestion"):
        click.echo(f"Did you mean: {result['suggestion']}")
    first = (page - 1) * limit
    for n, r in enumerate(result["results"], first + 1):
        tags_txt = ", ".join(r["tags"])
        click.echo(f"{n:3}. {click.style(r['title'], bold=True)}  [{r['service'] or '-'}{'; ' + tags_txt if tags_txt else ''}]")
        click.echo(f"     {r['id']}")
        summary = r["info"] or r["description"]
        if summary:
            click.echo(f"     {summary[:160]}")


def recorder_config(index_dir: str) -> dict:
    """The settings (environment included) of the analytics store for ``index_dir``."""
    return {**config.defaults(), "KB_INDEX": index_dir}


def _record_search(index_dir: str, query: str, facets: list[tuple[str, str]], page: int, limit: int,
                   result: dict) -> None:
    """Record a CLI search for the insights; a store that is away costs a warning, never the search."""
    from werkzeug.datastructures import MultiDict

    from . import analytics
    from .api import SearchParams, _facet_values

    recorder = analytics.recorder_for(recorder_config(index_dir))
    if recorder is None:
        return
    args = MultiDict(facets)
    params = SearchParams(q=analytics.clean_text(query, len(query)), services=_facet_values(args, "service"),
                          tags=_facet_values(args, "tag"), types=_facet_values(args, "type"),
                          clouds=_facet_values(args, "cloud"), page=page, per_page=limit)
    analytics.note_search(recorder, params, result, "cli")
    recorder.close(timeout=5.0)
    if recorder.dropped:
        click.echo(f"kb: warning: the search was not recorded for the insights: the store "
                   f"{analytics.describe(analytics.store_target(recorder_config(index_dir)))!r} is unavailable", err=True)


@cli.command("report")
@click.option("--since", default="7d", show_default=True, help="Period: a number of days or hours (7d, 24h).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of GET /api/v1/insights.")
@click.option("--csv", "as_csv", is_flag=True, help="Print every table as CSV (each after a '# name' line).")
@INDEX_OPTION
def report_cmd(since, as_json, as_csv, index_dir):
    """Search insights: searches per day, top queries, queries that found nothing (with the words
    the index does not know and a synonyms-file line to copy), rarely opened results, most opened
    and unhelpful articles, and articles never shown.  The store is KB_ANALYTICS_URL,
    KB_ANALYTICS_DB or the SQLite file beside the index.

    Example: kb report --since 30d --index ./index
    """
    from . import analytics, insights
    from .search import IndexMissing, SearchEngine

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    try:
        insights.parse_since(since)
    except insights.BadSince as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        store = analytics.Store(analytics.store_target(recorder_config(index_dir)))
    except analytics.StoreError as exc:
        raise click.ClickException(str(exc)) from None
    engine = SearchEngine(index_dir)
    try:
        engine.generation()
    except IndexMissing:
        engine = None
    try:
        data = insights.report(store, since, engine=engine)
    finally:
        store.close()
        if engine is not None:
            engine.close()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif as_csv:
        click.echo(insights.to_csv(data), nl=False)
    else:
        click.echo(insights.to_text(data))


@cli.command("show")
@click.argument("article_id")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of GET /api/articles/ID.")
@INDEX_OPTION
def show_cmd(article_id, as_json, index_dir):
    """Show one article by its id (as printed by kb search).

    Example: kb show articles~microsoft.storage~storage-403
    """
    from urllib.parse import quote

    article = _api_get(index_dir, f"/api/articles/{quote(article_id, safe='')}")
    if as_json:
        click.echo(json.dumps(article, indent=2, ensure_ascii=False))
        return
    click.echo(click.style(article["title"], bold=True))
    click.echo(f"{article['path']}  service={article['service'] or '-'}  tags={', '.join(article['tags']) or '-'}")
    for label, key in (("Info", "info"), ("Description", "description"), ("Issue", "issue")):
        if article.get(key):
            click.echo(f"\n{label}: {article[key]}")
    if article["steps"]:
        click.echo("\nRecommended steps:")
        for n, step in enumerate(article["steps"], 1):
            click.echo(f"  {n}. {step}")
    if article["documents"]:
        click.echo("\nRecommended documents:")
        for d in article["documents"]:
            click.echo(f"  - {d['title']}: {d['url']}")


@cli.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print all figures and per-query ranks as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List the queries whose best answer is not first.")
@INDEX_OPTION
def eval_cmd(queries, as_json, verbose, index_dir):
    """Measure relevance: MRR@10 and recall@5 of a query file, overall and per kind.

    QUERIES is a JSON list of {"q", "relevant": [paths], "kind", "service"?, "split"?}; a query's
    service is applied as a facet filter, as GET /api/search?service= would.  With splits (tune,
    test) each is shown per kind, with the gap between them.

    Example: kb eval ../shared/eval/dev-queries.json --index ./index
    """
    from .evaluate import evaluate, load_queries, table

    try:
        items = load_queries(queries)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERIES") from None
    report = evaluate(_engine(index_dir), items)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in table(report):
        click.echo(line)
    if verbose:
        for row in report["queries"]:
            if row["rank"] != 1:
                click.echo(f"  rank {row['rank'] or '-':>4}  {row['kind']:<16} {row['q']}")


@cli.command("sync")
@click.option("--git", "url", required=True, help="URL of the articles repository (anything git clones).")
@click.option("--branch", default="main", show_default=True, help="Branch to follow.")
@click.option("--every", default="30s", show_default=True, help="Time between fetches: 30s, 5m, 1h or seconds.")
@INDEX_OPTION
@click.option("--clone", "clone_dir", type=click.Path(file_okay=False), default=None,
              help="Local clone of the repository (default: <index>.articles, beside the index).")
@click.option("--subdir", default="", help="The articles' folder inside the repository (default: all of it).")
@click.option("--once", is_flag=True, help="Fetch and index once, then exit (status 1 when that failed).")
@click.option("--allow-empty", is_flag=True, help="Index a commit without any markdown file, emptying the index.")
def sync_cmd(url, branch, every, index_dir, clone_dir, subdir, once, allow_empty):
    """Keep the index built from the articles of a git repository.

    Each cycle fetches BRANCH into a local clone, resets it to the fetched commit, and indexes
    it incrementally (as kb index) when the served index was built from another commit.  A failed
    fetch or build leaves the served index as it was; each cycle logs one line and writes
    <index>.sync.json, which /healthz reports.  SIGTERM or Ctrl+C stops between cycles.

    Example: kb sync --git https://github.com/org/articles.git --every 5m --index ./index
    """
    from .sync import Syncer, SyncError, parse_interval, stop_on_signals

    try:
        seconds = parse_interval(every)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from None
    try:
        syncer = Syncer(url=url, index_dir=index_dir, branch=branch, clone_dir=clone_dir, subdir=subdir,
                        allow_empty=allow_empty, every=seconds, log=lambda line: click.echo(line, err=True))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--clone") from None
    try:
        syncer.lock()
    except SyncError as exc:
        click.echo(f"kb sync: {exc}", err=True)
        sys.exit(1)
    if once:
        sys.exit(0 if syncer.cycle() else 1)
    syncer.run(stop_on_signals())


@cli.command("serve")
@INDEX_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all of them).")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="TCP port (0 picks a free one).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--debug", is_flag=True, help="Run Flask's development server with the debugger instead (local use only).")
def serve_cmd(index_dir, host, port, workers, debug):
    """Serve the search page and the JSON API (/api/search, /api/articles/ID) with gunicorn.

    When the index directory has no index yet, the bundled sample knowledge base is indexed first.

    Example: kb serve --index ./index --port 8080 --workers 4
    """
    from .generations import BuildLocked
    from .serve import IndexUnusable, serve

    try:
        serve(index_dir, host=host, port=port, workers=workers, debug=debug, echo=click.echo)
    except BuildLocked as exc:
        raise click.ClickException(f"{exc}; try again when it has finished") from None
    except IndexUnusable as exc:
        raise click.ClickException(str(exc)) from None
