"""Replica health for load balancers: /healthz, /readyz, and a graceful stop on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from urllib.parse import urlsplit

from test_serve import Server

from kb.generations import current_generation
from kb.sync import status_path
from kb.web import create_app


def test_healthz_without_sync(client, sample_index):
    res = client.get("/healthz")
    body = res.get_json()
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    assert body["generation"] == current_generation(sample_index).name and body["articles"] > 0
    assert (body["status"], body["commit"], body["commit_time"], body["sync"], body["warnings"]) == \
        ("ok", None, None, None, [])
    assert isinstance(body["age_seconds"], int) and 0 <= body["age_seconds"] < 24 * 3600


def test_healthz_reports_the_sync_status_file(tmp_path, sample_dir):
    from kb.index import build

    index = tmp_path / "index"
    build(sample_dir, index, commit_info={"sha": "a" * 40, "time": "2026-01-02T03:04:05+00:00"})
    status = {"ok": False, "error": "git fetch failed: could not resolve host", "served": "a" * 40}
    status_path(index).write_text(json.dumps(status))
    body = create_app({"KB_INDEX": str(index), "TESTING": True}).test_client().get("/healthz").get_json()
    assert (body["commit"], body["commit_time"]) == ("a" * 40, "2026-01-02T03:04:05+00:00")
    # a status without a live process or a recent cycle is marked for monitors
    assert body["sync"] == {**status, "running": False, "stale": True}
    status_path(index).write_text("{not json")  # half a file never reaches a balancer as a 500
    assert create_app({"KB_INDEX": str(index), "TESTING": True}).test_client().get("/healthz").get_json()["sync"] is None


def test_readyz(client):
    res = client.get("/readyz")
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    assert res.get_json()["status"] == "ready" and res.get_json()["articles"] > 0


def test_no_index_is_neither_healthy_nor_ready(tmp_path):
    empty = create_app({"KB_INDEX": str(tmp_path / "none"), "TESTING": True}).test_client()
    for path in ("/healthz", "/readyz"):
        res = empty.get(path)
        body = res.get_json()
        assert (res.status_code, body["status"], body["code"]) == (503, 503, "index_missing"), path
        assert "kb index" in body["message"]


def _head_only(url: str, path: str) -> socket.socket:
    """A connection that has sent all of a GET request but its final empty line."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n".encode())
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_sigterm_finishes_requests_under_way_and_turns_readyz_off(sample_index):
    """A replica told to stop (SIGTERM to gunicorn's master, as systemd and docker do) answers the
    request it is receiving, says "not ready" on a kept-alive connection, and exits 0."""
    srv = Server("--index", str(sample_index), "--workers", "1")
    parts = urlsplit(srv.url)
    kept = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    slow = None
    try:
        kept.request("GET", "/readyz")
        res = kept.getresponse()
        assert (res.status, json.loads(res.read())["status"]) == (200, "ready")
        slow = _head_only(srv.url, "/api/v1/search?q=vm+stuck+on+starting+windows")
        time.sleep(0.5)  # the worker has accepted it and is reading its head
        os.kill(srv.proc.pid, signal.SIGTERM)
        time.sleep(1.0)  # the worker has been told to stop
        kept.request("GET", "/readyz")
        res = kept.getresponse()
        body = json.loads(res.read())
        assert (res.status, body["code"]) == (503, "stopping")
        assert res.getheader("Connection") == "close"
        assert srv.proc.poll() is None  # still finishing the slow request
        slow.sendall(b"\r\n")
        answer = _read_all(slow)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer[:500]
        assert json.loads(payload)["results"]
        assert srv.proc.wait(30) == 0
    finally:
        kept.close()
        if slow is not None:
            slow.close()
        srv.stop()
    assert "Worker graceful timeout" not in srv.output
