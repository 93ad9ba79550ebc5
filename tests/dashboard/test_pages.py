"""Dashboard pages: the role matrix of apps.users.permissions on every page, and no page of one
store for a member of another."""

from urllib.parse import quote

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.notifications.models import WebhookEndpoint
from apps.tenants.models import Tenant
from tests.factories import ROLES, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW_PAGES = [
    "/",
    "/catalog/",
    "/catalog/alpha-only/",
    "/shoppers/",
    "/audit/",
    "/notifications/",
    "/settings/",
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", VIEW_PAGES)
def test_every_member_role_opens_view_pages(alpha, member_client, role, path):
    client, _ = member_client(alpha, role)

    response = client.get(path)

    assert response.status_code == 200


@pytest.mark.parametrize("path", VIEW_PAGES)
def test_anonymous_is_sent_to_login(alpha, store_client, path):
    response = store_client(alpha).get(path)

    # Sign-in happens on the platform's domain, which hands the session back to the store.
    assert response.status_code == 302
    assert response["Location"] == f"http://localhost/stores/alpha/go/?next={quote(path, safe='')}"


@pytest.mark.parametrize("path", VIEW_PAGES)
def test_member_of_alpha_gets_nothing_of_beta(alpha, beta, store_client, path):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    client = store_client(beta)
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 403
    assert "You are not a member of this store." in response.content.decode()
    assert "Beta only item" not in response.content.decode()


def test_catalog_lists_only_the_hosts_items(alpha, beta, member_client):
    client, _ = member_client(alpha, "analyst")

    page = client.get("/catalog/").content.decode()

    assert "Alpha only item" in page
    assert "Beta only item" not in page
    assert client.get("/catalog/beta-only/").status_code == 404


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("owner", True), ("admin", True), ("developer", False), ("analyst", False)],
)
def test_store_rename_follows_manage_members(alpha, member_client, role, allowed):
    client, _ = member_client(alpha, role)
    with tenant_context(alpha):
        audit_before = AuditEvent.objects.count()

    response = client.post("/settings/store/", {"name": "Renamed Alpha"})

    alpha_name = Tenant.objects.get(pk=alpha.pk).name
    with tenant_context(alpha):
        audits = list(
            AuditEvent.objects.filter(action="store.renamed").values_list("details", flat=True)
        )
        audit_after = AuditEvent.objects.count()
    if allowed:
        assert response.status_code == 302
        assert alpha_name == "Renamed Alpha"
        assert audits == [{"from": "Alpha Store", "to": "Renamed Alpha"}]
    else:
        assert response.status_code == 403
        assert alpha_name == "Alpha Store"
        assert audit_after == audit_before


@pytest.mark.usefixtures("growth_stores")
@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("developer", False)])
def test_webhook_creation_follows_manage_members(alpha, member_client, settings, role, allowed):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    client, _ = member_client(alpha, role)

    response = client.post(
        "/settings/webhooks/",
        {
            "url": "https://hooks.example.com/shelfsense",
            "endpoint_format": "shelfsense",
            "kinds": ["training.finished", "usage.anomaly"],
        },
    )

    with tenant_context(alpha):
        endpoints = list(WebhookEndpoint.objects.values_list("url", "kinds"))
    if allowed:
        assert response.status_code == 200
        assert "whsec_" in response.content.decode()
        assert endpoints == [
            ("https://hooks.example.com/shelfsense", ["training.finished", "usage.anomaly"])
        ]
    else:
        assert response.status_code == 403
        assert endpoints == []


@pytest.mark.usefixtures("growth_stores")
def test_webhook_to_a_private_address_is_refused(alpha, member_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    client, _ = member_client(alpha, "owner")

    response = client.post(
        "/settings/webhooks/",
        {
            "url": "http://127.0.0.1:9/hook",
            "endpoint_format": "shelfsense",
            "kinds": ["member.joined"],
        },
    )

    assert response.status_code == 400
    assert "private or local address" in response.content.decode()
    with tenant_context(alpha):
        assert WebhookEndpoint.objects.count() == 0


def test_navigation_hides_pages_the_role_cannot_use(alpha, member_client):
    analyst, _ = member_client(alpha, "analyst")
    owner, _ = member_client(alpha, "owner")

    analyst_page = analyst.get("/").content.decode()
    owner_page = owner.get("/").content.decode()

    assert 'href="/api-keys/"' not in analyst_page
    assert 'href="/billing/"' not in analyst_page
    assert 'href="/api-keys/"' in owner_page
    assert 'href="/billing/"' in owner_page


def test_audit_log_filters_and_exports_csv(alpha, member_client):
    client, _ = member_client(alpha, "admin")
    client.post("/settings/store/", {"name": "Alpha Two"})

    filtered = client.get("/audit/", {"action": "store.renamed"}).content.decode()
    export = client.get("/audit/export.csv", {"action": ""})

    assert filtered.count('data-testid="audit-row"') == 1
    assert export.status_code == 200
    assert export["Content-Type"] == "text/csv"
    lines = export.content.decode().strip().splitlines()
    assert lines[0].startswith("id,occurred_at,action,")
    assert any(",store.renamed," in line for line in lines[1:])


@pytest.mark.parametrize(
    "query",
    [
        {"until": "9999-12-31"},
        {"since": "9999-12-31", "until": "9999-12-31"},
        {"since": "0001-01-01", "until": "9999-12-31"},
    ],
)
def test_audit_filters_at_the_calendars_ends_are_not_an_error(alpha, member_client, query):
    """`until=9999-12-31` raised OverflowError (issue 13): the last day has no next day."""
    client, _ = member_client(alpha, "admin")
    client.post("/settings/store/", {"name": "Alpha Two"})

    page = client.get("/audit/", query | {"action": "store.renamed"})
    export = client.get("/audit/export.csv", query | {"action": "store.renamed"})

    expected_rows = 0 if query.get("since") == "9999-12-31" else 1
    assert page.status_code == 200
    assert page.content.decode().count('data-testid="audit-row"') == expected_rows
    assert export.status_code == 200
    lines = export.content.decode().strip().splitlines()
    assert lines[0].startswith("id,occurred_at,action,")
    assert sum(",store.renamed," in line for line in lines[1:]) == expected_rows


def test_an_audit_date_beyond_the_calendar_is_a_400(alpha, member_client):
    client, _ = member_client(alpha, "admin")

    page = client.get("/audit/", {"until": "10000-01-01"})
    export = client.get("/audit/export.csv", {"until": "10000-01-01"})

    assert page.status_code == 400
    assert export.status_code == 400


def test_shopper_history_names_items_by_title(alpha, member_client):
    from apps.catalog.services import events_ingest
    from tests.factories import event_payload

    with tenant_context(alpha):
        events_ingest(rows=[event_payload(event_id="h-1", user_id="hist-1")])
    client, _ = member_client(alpha, "analyst")

    page = client.get("/shoppers/hist-1/").content.decode()

    assert '<a href="/catalog/alpha-only/">Alpha only item</a>' in page
