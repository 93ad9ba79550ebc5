"""Where a webhook delivery may connect: never through a redirect, only to the address checked
at send time (no second DNS lookup), never to a private address a host resolves to after the
endpoint was created. Real local HTTP(S) servers; DNS answers are faked per hostname."""

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django_tenants.utils import tenant_context

from apps.notifications.models import WebhookDelivery
from apps.notifications.services import webhook_delivery_attempt, webhook_endpoint_create
from apps.notifications.services import webhooks as webhook_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]

REAL_GETADDRINFO = socket.getaddrinfo


class Server:
    """HTTP server on `host` answering every request with `status` and `headers`, recording
    (method, path, headers)."""

    def __init__(self, host="127.0.0.1", port=0, status=200, headers=None, tls=None):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.requests.append((self.command, self.path, self.headers))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    started = []

    def start(**options):
        server = Server(**options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def fake_dns(monkeypatch):
    """`fake_dns(name, [ip, ip, ...])`: the n-th lookup of `name` answers the n-th ip (the last
    one from then on); other names (and IP literals) resolve for real. Returns the lookups."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        lookups.append(host)
        queue = answers[host]
        ip = queue.pop(0) if len(queue) > 1 else queue[0]
        if ip is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def set_answers(name, ips):
        answers[name] = list(ips)
        return lookups

    return set_answers


@pytest.fixture
def hook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_BACKOFF_SECONDS = 0.5
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    return settings


def _delivery_to(tenant, url):
    with tenant_context(tenant):
        endpoint, _ = webhook_endpoint_create(url=url, kinds=["training.finished"])
        return WebhookDelivery.objects.create(
            endpoint=endpoint, kind="training.finished", body='{"kind": "training.finished"}'
        ).pk


def _attempt(tenant, delivery_id, *, manual=False):
    with tenant_context(tenant):
        delay = webhook_delivery_attempt(delivery_id=delivery_id, manual=manual)
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        log = [(a.status_code, a.error) for a in delivery.log.order_by("number")]
    return delay, delivery, log


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_and_is_a_failed_attempt(alpha, hook_settings, servers, status):
    internal = servers()
    internal_url = f"http://127.0.0.1:{internal.port}/latest/meta-data/"
    outside = servers(status=status, headers={"Location": internal_url})
    delivery_id = _delivery_to(alpha, f"http://127.0.0.1:{outside.port}/hook")

    delay, delivery, log = _attempt(alpha, delivery_id)

    assert [(method, path) for method, path, _ in outside.requests] == [("POST", "/hook")]
    assert internal.requests == []
    assert log == [(status, f"refused: redirects are not followed ({status} to {internal_url})")]
    # An ordinary failure: retried with the usual backoff.
    assert delay == 0.5
    assert delivery.status == WebhookDelivery.Status.RETRYING
    assert delivery.last_status_code == status
    assert delivery.delivered_at is None


def test_the_connection_goes_to_the_address_that_was_checked(
    alpha, hook_settings, servers, fake_dns, monkeypatch
):
    """DNS rebinding: the name answers a public address to the check, then an internal one."""
    hook_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    # In this test 127.0.0.1 stands for a public address and 127.0.0.2 for an internal one.
    monkeypatch.setattr(webhook_services, "_address_is_internal", lambda ip: ip == "127.0.0.2")
    checked = servers(host="127.0.0.1")
    rebound = servers(host="127.0.0.2", port=checked.port)
    lookups = fake_dns("hooks.rebind.test", ["127.0.0.1"])
    delivery_id = _delivery_to(alpha, f"http://hooks.rebind.test:{checked.port}/hook?x=1")
    lookups.clear()
    fake_dns("hooks.rebind.test", ["127.0.0.1", "127.0.0.2"])

    delay, delivery, log = _attempt(alpha, delivery_id)

    assert lookups == ["hooks.rebind.test"]
    assert rebound.requests == []
    ((method, path, headers),) = checked.requests
    assert (method, path) == ("POST", "/hook?x=1")
    assert headers["Host"] == f"hooks.rebind.test:{checked.port}"
    assert headers["ShelfSense-Delivery"] == str(delivery_id)
    assert headers["ShelfSense-Signature"].startswith("t=")
    assert (delay, delivery.status, log) == (None, WebhookDelivery.Status.SUCCEEDED, [(200, "")])


def test_a_host_that_now_resolves_privately_is_refused_without_connecting(
    alpha, hook_settings, servers, fake_dns, monkeypatch
):
    hook_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    internal = servers()
    fake_dns("hooks.rebind.test", ["93.184.215.14"])
    delivery_id = _delivery_to(alpha, f"http://hooks.rebind.test:{internal.port}/hook")
    fake_dns("hooks.rebind.test", ["127.0.0.1"])
    connects = []
    real_create_connection = socket.create_connection
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *args, **kwargs: connects.append(args) or real_create_connection(*args, **kwargs),
    )

    delay, delivery, log = _attempt(alpha, delivery_id)

    assert connects == []
    assert internal.requests == []
    assert log == [(None, "refused: the URL resolves to a private or local address")]
    assert (delay, delivery.status) == (0.5, WebhookDelivery.Status.RETRYING)


def test_a_host_that_does_not_resolve_is_a_failed_attempt(alpha, hook_settings, fake_dns):
    hook_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    # Creation lets an unresolvable name through; delivery must not.
    fake_dns("hooks.gone.test", [None])
    delivery_id = _delivery_to(alpha, "https://hooks.gone.test/hook")

    delay, delivery, log = _attempt(alpha, delivery_id, manual=True)

    ((status_code, error),) = log
    assert status_code is None
    assert error.startswith("refused: the host could not be resolved (gaierror:")
    assert (delay, delivery.status) == (None, WebhookDelivery.Status.FAILED)


def _self_signed(tmp_path, hostname):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_connects_to_the_checked_address_and_verifies_the_hostname(
    alpha, hook_settings, servers, fake_dns, monkeypatch, tmp_path
):
    cert_path, key_path = _self_signed(tmp_path, "hooks.tls.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    sni = []
    tls.sni_callback = lambda sock, name, context: sni.append(name)
    server = servers(tls=tls)
    lookups = fake_dns("hooks.tls.test", ["127.0.0.1"])
    good = _delivery_to(alpha, f"https://hooks.tls.test:{server.port}/hook")
    wrong_name = _delivery_to(alpha, f"https://127.0.0.1:{server.port}/hook")
    lookups.clear()

    delay, delivery, log = _attempt(alpha, good)
    _, refused, refused_log = _attempt(alpha, wrong_name, manual=True)

    assert lookups == ["hooks.tls.test"]
    assert sni[0] == "hooks.tls.test"
    assert [(method, path) for method, path, _ in server.requests] == [("POST", "/hook")]
    assert (delay, delivery.status, log) == (None, WebhookDelivery.Status.SUCCEEDED, [(200, "")])
    # The certificate names hooks.tls.test, not the address: verification still applies.
    ((status_code, error),) = refused_log
    assert status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in error or "IP address mismatch" in error
    assert refused.status == WebhookDelivery.Status.FAILED
