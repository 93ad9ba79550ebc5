"""A client of the running platform's public surfaces, standard library only: the store API
with an API key, a signed-in person's pages (cookies per host, CSRF, redirects followed) and
the dashboard's websocket.

Every URL names the host the platform sees (`http://demo.localhost:8000/`); the connection
goes to 127.0.0.1 on that URL's port with the URL's host in the Host header, so store hosts
need no name resolution. Used by tests/system/ and bench/soak.py.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def csrf_token(self) -> str:
        match = CSRF_INPUT.search(self.text)
        if match is None:
            raise AssertionError(f"no CSRF token in {self.url} ({self.status})")
        return html.unescape(match.group(1))


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"an http:// URL is needed, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.netloc, parts.port or 80, path


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Response:
    """One HTTP request to 127.0.0.1 on the URL's port, with the URL's host as Host."""
    netloc, port, path = _split(url)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers={"Host": netloc, **(headers or {})})
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    return Response(
        status=answer.status,
        headers={key.lower(): value for key, value in answer.getheaders()},
        body=data,
        url=url,
        seconds=time.perf_counter() - started,
    )


class StoreApi:
    """A store's HTTP API as an integration calls it: `Authorization: Bearer <key>`, JSON."""

    def __init__(self, store_url: str, key: str) -> None:
        self.base = store_url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, payload: Any = None) -> Response:
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        return request(method, self.base + path, body=body, headers=headers)

    def get(self, path: str, *, expect: int = 200) -> Any:
        return _expect(self.call("GET", path), expect)

    def post(self, path: str, payload: Any, *, expect: int = 200) -> Any:
        return _expect(self.call("POST", path, payload), expect)


def _expect(response: Response, status: int) -> Any:
    if response.status != status:
        raise AssertionError(
            f"{response.url}: expected {status}, got {response.status}: {response.text[:500]}"
        )
    return response.json()


@dataclass
class Browser:
    """A person's browser without the rendering: cookies kept per host (host-only, as the
    platform sets them), redirects followed, forms posted with their CSRF token."""

    cookies: dict[str, dict[str, str]] = field(default_factory=dict)

    def _cookie_header(self, host: str) -> dict[str, str]:
        jar = self.cookies.get(host, {})
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}

    def _remember(self, host: str, raw: http.client.HTTPMessage) -> None:
        for header in raw.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            jar = self.cookies.setdefault(host, {})
            if "expires=Thu, 01 Jan 1970" in header or "Max-Age=0" in header:
                jar.pop(name.strip(), None)
            else:
                jar[name.strip()] = value

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]):
        netloc, port, path = _split(url)
        host = urlsplit(url).hostname or ""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(
                method,
                path,
                body=body,
                headers={"Host": netloc, **self._cookie_header(host), **headers},
            )
            answer = connection.getresponse()
            response = Response(
                status=answer.status,
                headers={key.lower(): value for key, value in answer.getheaders()},
                body=answer.read(),
                url=url,
            )
            self._remember(host, answer.msg)
        finally:
            connection.close()
        return response

    def open(self, url: str, *, data: dict | None = None, follow: bool = True) -> Response:
        """GET `url`, or POST `data` to it form-encoded; redirects followed unless asked."""
        method = "GET" if data is None else "POST"
        body = None
        headers: dict[str, str] = {}
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            parts = urlsplit(url)
            headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
            headers["Referer"] = url
        response = self._send(method, url, body, headers)
        hops = 0
        while follow and response.status in (301, 302, 303, 307, 308):
            hops += 1
            if hops > 10:
                raise AssertionError(f"too many redirects from {url}")
            url = urljoin(url, response.headers["location"])
            response = self._send("GET", url, None, {})
        return response

    def get(self, url: str, **kwargs) -> Response:
        return self.open(url, **kwargs)

    def submit(self, form_url: str, data: dict, *, action: str | None = None) -> Response:
        """GET the page holding a form, then POST `data` with its CSRF token to `action`
        (default: the same URL)."""
        page = self.open(form_url)
        if page.status != 200:
            raise AssertionError(f"{form_url}: {page.status} {page.text[:300]}")
        fields = {"csrfmiddlewaretoken": page.csrf_token(), **data}
        return self.open(urljoin(form_url, action) if action else form_url, data=fields)

    def sign_in(self, public_url: str, email: str, password: str) -> Response:
        """Sign in on the platform's site; the response is where the platform landed us (a
        single store's dashboard, through its hand-off link)."""
        return self.submit(
            public_url.rstrip("/") + "/accounts/login/", {"login": email, "password": password}
        )

    def session_cookie(self, host: str) -> str:
        return self._cookie_header(host).get("Cookie", "")


class LiveSocket:
    """The dashboard's websocket (`/ws/dashboard/`) for a signed-in browser, read by a thread
    that keeps every JSON message."""

    def __init__(
        self, ws_url: str, browser: Browser, *, origin: str, port: int | None = None
    ) -> None:
        """`port`: where the websocket server listens when a proxy would route `/ws/` of the
        URL's host to it (default: the URL's port)."""
        from websockets.sync.client import connect

        parts = urlsplit(ws_url)
        sock = socket.create_connection(("127.0.0.1", port or parts.port or 80), timeout=10)
        self.messages: list[dict] = []
        self.closed_code: int | None = None
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self.connection = self._stack.enter_context(
            connect(
                ws_url,
                sock=sock,
                origin=origin,
                additional_headers={"Cookie": browser.session_cookie(parts.hostname or "")},
                open_timeout=10,
            )
        )
        self._thread = threading.Thread(target=self._read, name="live-socket", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self.connection:
                with self._lock:
                    self.messages.append(json.loads(raw))
        except ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd else None

    def received(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [message for message in self.messages if predicate(message)]

    def close(self) -> None:
        self._stack.close()
        self._thread.join(5)
