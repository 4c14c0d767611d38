"""kb's gunicorn worker: gevent, so a slow client costs a greenlet instead of a whole worker.

With sync workers, two clients trickling a header line every two seconds held both workers until
gunicorn's timeout and every other request queued behind them.  Here each connection is a greenlet
that waits on its socket cooperatively; gunicorn bounds the time to receive a request head by
``keepalive`` seconds (``timeout_ctx``), after which the connection is dropped.

Searches are CPU-bound and take milliseconds, so greenlets never yield inside one: the search
engine sees one request at a time per worker, as with sync workers.  Threads are deliberately not
patched: the index watcher stays an OS thread and opens a new generation beside the requests
instead of stopping the event loop while it does.

The worker also answers gunicorn's own errors (malformed requests, request line or headers too
large) in the app's JSON error shape with its security headers, and lets request lines up to
:data:`REQUEST_LINE_LIMIT` reach the app, which names the parameter that is too long.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import gunicorn
from gevent import monkey, socket
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers.ggevent import GeventWorker

from .api import error_code
from .web import SECURITY_HEADERS

# BoundedRequest relies on the bytearray buffer of gunicorn 27's Request.read_line; tests/
# test_hostile_http.py checks the limits and error answers through a real server.
if gunicorn.version_info < (27,):
    raise ImportError(f"kb's server needs gunicorn >= 27, not {gunicorn.__version__}")

#: Longest request line read (bytes).  gunicorn's own limit stops at 8,190, below a 20,000
#: character ``q`` or a page of facet values that the app should answer itself; anything longer
#: than this is over every bound the app has (``q`` <= 500 characters, facet values <= 200).
REQUEST_LINE_LIMIT = 64 * 1024

#: Status and reason of gunicorn's client errors; other parse errors are 400s, anything else 500.
_CLIENT_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.InvalidResponseHeader, 500, "Internal Server Error"),  # the app's fault
    (http_errors.InvalidResponseHeaderName, 500, "Internal Server Error"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error"),
    (http_errors.LimitRequestLine, 414, "URI Too Long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Bad Request"),
)


class RequestLineTooLong(http_errors.LimitRequestLine):
    """A request line over :data:`REQUEST_LINE_LIMIT`, with the parameter that made it so."""

    def __init__(self, size: int, limit: int, parameter: str | None):
        super().__init__(size, limit)
        self.parameter = parameter


class BoundedRequest(Request):
    """gunicorn's request, with the request line bounded by :data:`REQUEST_LINE_LIMIT`.

    gunicorn takes ``limit_request_line = 0`` as "unlimited" and reads the line into one growing
    buffer; this keeps the bound, and names the query parameter being read when it is crossed.
    """

    def read_line(self, unreader, buf, limit=0):
        try:
            return super().read_line(unreader, buf, limit or REQUEST_LINE_LIMIT)
        except http_errors.LimitRequestLine as exc:
            if limit:
                raise
            raise RequestLineTooLong(len(buf), REQUEST_LINE_LIMIT, parameter_at_end(bytes(buf))) from exc


def parameter_at_end(line: bytes) -> str | None:
    """The name of the query parameter whose value runs to the end of a (cut) request line."""
    target = line.split(b" ", 2)[1] if line.count(b" ") >= 1 else b""
    if b"?" not in target:
        return None
    last = target.split(b"?", 1)[1].split(b"&")[-1]
    name = unquote_plus(last.split(b"=", 1)[0].decode("latin-1"))
    return name[:100] or None


def error_response(status: int, reason: str, message: str, parameter: str | None) -> bytes:
    """A complete HTTP response in the app's error shape, with its security headers."""
    body = json.dumps({"status": status, "error": reason, "code": error_code(None, status), "message": message,
                       "parameter": parameter}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close", "Content-Type: application/json",
            "Cache-Control: no-store", f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in SECURITY_HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _message(exc: BaseException, status: int) -> str:
    if status == 414:
        return (f"the request line is longer than {REQUEST_LINE_LIMIT} bytes; q may have at most 500 "
                "characters and each service or tag value 200")
    if status == 431:
        return "the request headers are too large"
    if status >= 500:
        return "Something went wrong on our side. Please try again."
    detail = str(exc)
    return "malformed HTTP request: " + (detail if len(detail) <= 200 else detail[:200] + "…")


class OneWriteResponse(wsgi.Response):
    """gunicorn's response writer, except that the status line and headers leave in the same
    write as the first body bytes (a search answer is one body of a few KB: one write in all).

    A replica killed mid-answer (SIGKILL, a machine dying) then leaves its balancer either
    nothing, which nginx retries on another replica, or the whole answer, never a head without
    its body: nginx has passed a head on to the client before the body arrives, and cannot
    retry after that, so the client would get a truncated answer.
    """

    _head = b""

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        tosend = self.default_headers()
        tosend.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        self._head = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")
        self.headers_sent = True

    def _emit_body(self, data: bytes) -> None:
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        head, self._head = self._head, b""
        self.sock.sendall(head + data)

    def can_sendfile(self) -> bool:
        return False  # file bodies (kb's few static files) go through write() and the rule above

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        if self._head:  # no body at all (HEAD, 304)
            head, self._head = self._head, b""
            self.sock.sendall(head)
        super().close()


class KbWorker(GeventWorker):
    """gunicorn's gevent worker with threads left unpatched and errors in kb's shape."""

    def patch(self) -> None:
        # As GeventWorker.patch, except for thread=False (see the module docstring).
        monkey.patch_all(thread=False)
        self.sockets = [socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach()) for s in self.sockets]

    def init_process(self) -> None:
        # The one hook gunicorn's parser offers: the class of the messages it reads.
        RequestParser.mesg_class = BoundedRequest
        # and of the responses it writes: wsgi.create() looks the class up here for each request
        wsgi.Response = OneWriteResponse
        super().init_process()

    def handle_exit(self, sig, frame) -> None:
        # SIGTERM: gunicorn stops accepting and lets the requests under way finish (within
        # graceful_timeout); /readyz answers 503 from now on, to a balancer polling this worker
        # on a connection it keeps alive.
        super().handle_exit(sig, frame)
        extensions = getattr(self.wsgi, "extensions", None)
        if extensions is not None:
            extensions["kb_stopping"] = True

    def handle_error(self, req, client, addr, exc) -> None:
        status, reason = 500, "Internal Server Error"
        for cls, code, name in _CLIENT_ERRORS:
            if isinstance(exc, cls):
                status, reason = code, name
                break
        if status >= 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], str(exc)[:200])
        parameter = getattr(exc, "parameter", None)
        try:
            client.sendall(error_response(status, reason, _message(exc, status), parameter))
            _linger(client)
        except OSError:
            self.log.debug("Failed to send error message.")


def _linger(client, seconds: float = 2.0, max_bytes: int = 1 << 20) -> None:
    """Read (and drop) what the client is still sending before the connection closes.

    Closing a socket with unread data sends a reset, and a client still sending its over-long
    request would lose the answer it was sent; a greenlet waiting here costs nothing.
    """
    client.shutdown(socket.SHUT_WR)
    client.settimeout(seconds)
    drained = 0
    while drained < max_bytes:
        chunk = client.recv(65536)
        if not chunk:
            return
        drained += len(chunk)
