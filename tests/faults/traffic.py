"""HTTP traffic for the fault suite: keep-alive clients that record every answer, and event
batches whose ids say which batch they belong to."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

HOST = "127.0.0.1"


@dataclass
class Answer:
    method: str
    path: str
    status: int  # 0: no HTTP answer at all (connection refused or reset)
    headers: dict[str, str]  # names lowercased
    body: bytes
    tag: str = ""  # the batch id of an ingestion request

    def json(self):
        return json.loads(self.body)

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.body[:300]!r}"


class Client:
    """One keep-alive connection to a server; reconnects after a failure."""

    def __init__(self, port: int, headers: dict[str, str], timeout: float = 30) -> None:
        self.port = port
        self.headers = headers
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, tag: str = "") -> Answer:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            answer = Answer(method, path, response.status, headers, data, tag)
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return answer
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(method, path, 0, {}, repr(exc).encode(), tag)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_batches = count(1)


def event_batch(run: str, size: int, *, users: int = 40, items: list[str]) -> tuple[str, bytes]:
    """(batch tag, body) of `size` view events with unique ids `<tag>-<n>`."""
    tag = f"{run}-b{next(_batches)}"
    stamp = datetime.now(UTC).isoformat()
    rows = [
        {
            "event_id": f"{tag}-{n}",
            "user_id": f"s{n % users}",
            "item_id": items[n % len(items)],
            "type": "view",
            "timestamp": stamp,
        }
        for n in range(size)
    ]
    return tag, json.dumps(rows).encode()


@dataclass
class Traffic:
    """Client threads running `step(client)` in a loop until stopped; every answer kept."""

    answers: list[Answer] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client: Client, step: Callable[[Client], Answer]) -> None:
        def loop():
            while not self.stop_event.is_set():
                answer = step(client)
                with self.lock:
                    self.answers.append(answer)
                if answer.status == 0:
                    time.sleep(0.05)  # the server is gone: do not spin
            client.close()

        thread = threading.Thread(target=loop, daemon=True)
        self.threads.append(thread)
        thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def stop(self) -> list[Answer]:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return list(self.answers)


def cycle(values: list) -> Iterator:
    while True:
        yield from values
