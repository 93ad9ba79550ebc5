"""A local fake of the few Stripe endpoints ShelfSense calls, served over real HTTP on
127.0.0.1 (a random port) so the real `stripe` library does the talking.

Implements: customers (create, retrieve), checkout sessions (create), billing portal sessions
(create), subscriptions (retrieve, list), invoices (retrieve, list) and billing meter events
(create, with Stripe's idempotency-key replay and per-identifier bookkeeping). Requests are
form-encoded like Stripe's; every request is logged with its flattened parameters. Tests
seed objects (`add_subscription`, `add_invoice`) and inject failures (`fail_next`).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_fake_shelfsense"


@dataclass
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    stripe_version: str | None


@dataclass
class FakeStripeState:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: list[dict[str, Any]] = field(default_factory=list)
    portal_sessions: list[dict[str, Any]] = field(default_factory=list)
    # Meter events Stripe accepted (an idempotent replay is not a second event).
    meter_events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[LoggedRequest] = field(default_factory=list)
    idempotent_responses: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # (method, path) → list of statuses to answer with before behaving normally again.
    failures: dict[tuple[str, str], list[int]] = field(default_factory=dict)


class FakeStripe:
    def __init__(self) -> None:
        self.state = FakeStripeState()
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            stripe = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self.lock:
            self.state = FakeStripeState()

    # --- seeding and inspection -------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def add_customer(self, customer_id: str | None = None, **fields: Any) -> dict[str, Any]:
        customer = {"id": customer_id or self.new_id("cus"), "object": "customer", **fields}
        with self.lock:
            self.state.customers[customer["id"]] = customer
        return customer

    def add_subscription(
        self,
        *,
        customer: str,
        price: str,
        status: str = "active",
        subscription_id: str | None = None,
        period_start: int = 1_780_000_000,
        period_end: int = 1_782_592_000,
        cancel_at_period_end: bool = False,
        trial_end: int | None = None,
        created: int = 1_780_000_000,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A subscription in the basil+ shape: the period lives on the items."""
        sub_id = subscription_id or self.new_id("sub")
        subscription = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "created": created,
            "cancel_at_period_end": cancel_at_period_end,
            "trial_end": trial_end,
            "metadata": metadata or {},
            "items": {
                "object": "list",
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
                "data": [
                    {
                        "id": self.new_id("si"),
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price"},
                        "current_period_start": period_start,
                        "current_period_end": period_end,
                    }
                ],
            },
        }
        with self.lock:
            self.state.subscriptions[sub_id] = subscription
        return subscription

    def add_invoice(
        self,
        *,
        customer: str,
        status: str = "open",
        total: int = 4900,
        invoice_id: str | None = None,
        created: int = 1_780_000_000,
        number: str = "",
    ) -> dict[str, Any]:
        invoice_id = invoice_id or self.new_id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "status": status,
            "total": total,
            "amount_paid": total if status == "paid" else 0,
            "currency": "usd",
            "created": created,
            "number": number or invoice_id.upper(),
            "attempt_count": 1,
            "hosted_invoice_url": f"https://invoice.stripe.test/{invoice_id}",
        }
        with self.lock:
            self.state.invoices[invoice_id] = invoice
        return invoice

    def fail_next(self, method: str, path: str, *statuses: int) -> None:
        with self.lock:
            self.state.failures[(method, path)] = list(statuses)

    def requests_to(self, method: str, path: str) -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.state.requests if r.method == method and r.path == path]

    # --- request handling (server threads) --------------------------------------------------
    def handle(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        idempotency_key = headers.get("idempotency-key")
        with self.lock:
            self.state.requests.append(
                LoggedRequest(method, path, params, idempotency_key, headers.get("stripe-version"))
            )
            if headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, _error("invalid_request_error", "Invalid API Key provided.")
            pending = self.state.failures.get((method, path))
            if pending:
                status = pending.pop(0)
                return status, _error("api_error", "Injected failure.")
            if method == "POST" and idempotency_key in self.state.idempotent_responses:
                return self.state.idempotent_responses[idempotency_key]
            status, body = self._route(method, path, params)
            if method == "POST" and idempotency_key and status < 500:
                self.state.idempotent_responses[idempotency_key] = (status, body)
            return status, body

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            customer = {
                "id": self.new_id("cus"),
                "object": "customer",
                "email": params.get("email"),
                "name": params.get("name"),
                "metadata": _sub_dict(params, "metadata"),
            }
            self.state.customers[customer["id"]] = customer
            return 200, customer
        if method == "GET" and parts[:2] == ["v1", "customers"] and len(parts) == 3:
            return _found(self.state.customers.get(parts[2]), parts[2])
        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = self.new_id("cs_test")
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": params.get("mode"),
                "customer": params.get("customer"),
                "client_reference_id": params.get("client_reference_id"),
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                "params": params,
            }
            self.state.checkout_sessions.append(session)
            return 200, session
        if method == "POST" and path == "/v1/billing_portal/sessions":
            session_id = self.new_id("bps")
            session = {
                "id": session_id,
                "object": "billing_portal.session",
                "customer": params.get("customer"),
                "return_url": params.get("return_url"),
                "url": f"https://billing.stripe.test/p/session/{session_id}",
            }
            self.state.portal_sessions.append(session)
            return 200, session
        if method == "GET" and path == "/v1/subscriptions":
            subs = [
                s
                for s in self.state.subscriptions.values()
                if s["customer"] == params.get("customer")
                and (params.get("status") == "all" or s["status"] not in ("canceled",))
            ]
            return 200, _list("/v1/subscriptions", sorted(subs, key=lambda s: -s["created"]))
        if method == "GET" and parts[:2] == ["v1", "subscriptions"] and len(parts) == 3:
            return _found(self.state.subscriptions.get(parts[2]), parts[2])
        if method == "GET" and path == "/v1/invoices":
            invoices = [
                i for i in self.state.invoices.values() if i["customer"] == params.get("customer")
            ]
            limit = int(params.get("limit", "10"))
            invoices = sorted(invoices, key=lambda i: -i["created"])[:limit]
            return 200, _list("/v1/invoices", invoices)
        if method == "GET" and parts[:2] == ["v1", "invoices"] and len(parts) == 3:
            return _found(self.state.invoices.get(parts[2]), parts[2])
        if method == "POST" and path == "/v1/billing/meter_events":
            event = {
                "object": "billing.meter_event",
                "event_name": params.get("event_name"),
                "identifier": params.get("identifier"),
                "timestamp": int(params.get("timestamp", "0")),
                "payload": _sub_dict(params, "payload"),
                "livemode": False,
                "created": 1_780_000_000,
            }
            self.state.meter_events.append(event)
            return 200, event
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path}).")


def _sub_dict(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {
        key[len(prefix) : -1]: value
        for key, value in params.items()
        if key.startswith(prefix) and key.endswith("]") and "][" not in key
    }


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


def _found(obj: dict[str, Any] | None, object_id: str) -> tuple[int, dict[str, Any]]:
    if obj is None:
        return 404, _error(
            "invalid_request_error", f"No such object: '{object_id}'", "resource_missing"
        )
    return 200, obj


def _list(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "url": url, "has_more": False, "data": data}


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, payload = self.stripe.handle(method, split.path, params, headers)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_fake")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
