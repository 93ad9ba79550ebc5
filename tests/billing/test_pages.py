"""The store's billing page (owner only), Checkout and portal sessions, the operators' admin
with its revenue summary, and the `seed_plans` / `sync_stripe` commands."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.audit.models import AuditEvent
from apps.billing.models import Plan, Subscription
from apps.billing.quotas import usage_record
from tests.billing.conftest import GROWTH_METERED_PRICE, GROWTH_PRICE, STARTER_PRICE
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("admin", 403), ("developer", 403), ("analyst", 403)]
)
def test_only_the_owner_opens_the_billing_page(alpha, member_client, fake_stripe, role, status):
    client, _ = member_client(alpha, role)

    response = client.get("/billing/")

    assert response.status_code == status


def test_anonymous_is_sent_to_sign_in_and_another_stores_owner_is_refused(
    alpha, beta, store_client, member_client, fake_stripe
):
    anonymous = store_client(alpha).get("/billing/")
    _, beta_owner = member_client(beta, "owner")
    beta_owner_on_alpha = store_client(alpha)
    beta_owner_on_alpha.force_login(beta_owner)

    assert anonymous.status_code == 302
    assert beta_owner_on_alpha.get("/billing/").status_code == 403
    assert beta_owner_on_alpha.post("/billing/checkout/", {"plan": "starter"}).status_code == 403
    assert fake_stripe.state.requests == []
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize("role", ["admin", "developer", "analyst"])
def test_non_owners_cannot_start_checkout_or_portal(
    alpha, member_client, fake_stripe, priced_plans, role
):
    client, _ = member_client(alpha, role)

    checkout = client.post("/billing/checkout/", {"plan": "starter"})
    portal = client.post("/billing/portal/")

    assert (checkout.status_code, portal.status_code) == (403, 403)
    assert fake_stripe.state.requests == []
    assert Subscription.objects.count() == 0


# --- Page content ---------------------------------------------------------------------------------


def test_page_shows_plan_usage_bars_and_cached_invoices(
    alpha, member_client, fake_stripe, priced_plans
):
    client, _ = member_client(alpha, "owner")
    customer = fake_stripe.add_customer()
    SubscriptionFactory(
        tenant=alpha,
        plan=Plan.objects.get(code="starter"),
        status="active",
        stripe_customer_id=customer["id"],
    )
    fake_stripe.add_invoice(customer=customer["id"], status="paid", total=4900, number="SS-0001")
    usage_record(tenant=alpha, metric="events_ingested", amount=2_500_000)

    first = client.get("/billing/")
    second = client.get("/billing/")

    html = first.content.decode()
    assert 'data-testid="plan-name">Starter<' in html
    assert 'data-testid="plan-status">Active<' in html
    assert "Events ingested:\n      2,500,000 of 5,000,000" in html
    assert '<progress id="usage-bar-events_ingested" max="100" value="50">' in html
    assert "SS-0001" in html
    assert "49.00 USD" in html
    assert 'data-testid="portal-button"' in html
    # A live subscription changes plans in the portal, not through a second Checkout.
    assert 'data-testid="upgrade-growth"' not in html
    assert second.status_code == 200
    assert len(fake_stripe.requests_to("GET", "/v1/invoices")) == 1


def test_page_still_renders_when_stripe_is_down(alpha, member_client, fake_stripe):
    client, _ = member_client(alpha, "owner")
    SubscriptionFactory(tenant=alpha, stripe_customer_id="cus_down")
    fake_stripe.fail_next("GET", "/v1/invoices", 500)

    response = client.get("/billing/")

    assert response.status_code == 200
    assert 'data-testid="invoices-unavailable"' in response.content.decode()


def test_page_renders_and_checkout_answers_503_when_stripe_is_not_configured(
    alpha, member_client, fake_stripe, priced_plans, settings
):
    settings.STRIPE_SECRET_KEY = ""
    client, _ = member_client(alpha, "owner")
    SubscriptionFactory(tenant=alpha, stripe_customer_id="cus_unconfigured")

    page = client.get("/billing/")
    checkout = client.post("/billing/checkout/", {"plan": "starter"})

    assert page.status_code == 200
    assert 'data-testid="invoices-unavailable"' in page.content.decode()
    assert checkout.status_code == 503
    assert checkout.context["error"].code == "billing_unavailable"
    assert fake_stripe.state.requests == []


def test_invoice_cache_is_per_store(alpha, beta, member_client, fake_stripe):
    alpha_client, _ = member_client(alpha, "owner")
    beta_client, _ = member_client(beta, "owner")
    alpha_customer, beta_customer = fake_stripe.add_customer(), fake_stripe.add_customer()
    SubscriptionFactory(tenant=alpha, stripe_customer_id=alpha_customer["id"])
    SubscriptionFactory(tenant=beta, stripe_customer_id=beta_customer["id"])
    fake_stripe.add_invoice(customer=alpha_customer["id"], number="ALPHA-1")
    fake_stripe.add_invoice(customer=beta_customer["id"], number="BETA-1")

    alpha_html = alpha_client.get("/billing/").content.decode()
    beta_html = beta_client.get("/billing/").content.decode()

    assert ("ALPHA-1" in alpha_html, "BETA-1" in alpha_html) == (True, False)
    assert ("BETA-1" in beta_html, "ALPHA-1" in beta_html) == (True, False)


# --- Checkout and portal --------------------------------------------------------------------------


def test_upgrade_starts_a_subscription_checkout_with_one_customer(
    alpha, member_client, fake_stripe, priced_plans
):
    client, owner = member_client(alpha, "owner")

    first = client.post("/billing/checkout/", {"plan": "growth"})
    second = client.post("/billing/checkout/", {"plan": "starter"})

    assert first.status_code == 303
    assert first["Location"] == fake_stripe.state.checkout_sessions[0]["url"]
    assert second.status_code == 303
    sub = Subscription.objects.get(tenant=alpha)
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1
    assert sub.stripe_customer_id == next(iter(fake_stripe.state.customers))
    assert (sub.plan.code, sub.status) == ("free", "none")  # until Stripe confirms
    params = fake_stripe.state.checkout_sessions[0]["params"]
    assert params == {
        "mode": "subscription",
        "customer": sub.stripe_customer_id,
        "client_reference_id": str(alpha.pk),
        "line_items[0][price]": GROWTH_PRICE,
        "line_items[0][quantity]": "1",
        "line_items[1][price]": GROWTH_METERED_PRICE,
        "success_url": "http://alpha.localhost/billing/?checkout=success",
        "cancel_url": "http://alpha.localhost/billing/?checkout=cancelled",
        "metadata[tenant_id]": str(alpha.pk),
        "metadata[schema_name]": "store_alpha",
        "metadata[plan]": "growth",
        "subscription_data[metadata][tenant_id]": str(alpha.pk),
        "subscription_data[metadata][schema_name]": "store_alpha",
    }
    assert fake_stripe.state.checkout_sessions[1]["params"]["line_items[0][price]"] == STARTER_PRICE
    with schema_context(alpha.schema_name):
        created = AuditEvent.objects.get(action="billing.customer_created")
    assert (created.actor_user_id, created.details) == (
        owner.pk,
        {"stripe_customer_id": sub.stripe_customer_id},
    )


@pytest.mark.parametrize(
    ("plan", "status", "code"),
    [
        ("free", 409, "plan_not_purchasable"),
        ("enterprise", 409, "plan_not_purchasable"),
        ("platinum", 400, "invalid"),
    ],
)
def test_plans_that_cannot_be_bought_are_refused_without_calling_stripe(
    alpha, member_client, fake_stripe, priced_plans, plan, status, code
):
    client, _ = member_client(alpha, "owner")

    response = client.post("/billing/checkout/", {"plan": plan})

    assert response.status_code == status
    assert 'data-testid="billing-error"' in response.content.decode()
    assert response.context["error"].code == code
    assert fake_stripe.state.requests == []
    assert Subscription.objects.count() == 0


def test_checkout_is_refused_while_a_subscription_is_live(
    alpha, member_client, fake_stripe, priced_plans
):
    client, _ = member_client(alpha, "owner")
    SubscriptionFactory(
        tenant=alpha,
        plan=Plan.objects.get(code="starter"),
        status="past_due",
        stripe_customer_id="cus_live",
    )
    fake_stripe.add_customer("cus_live")

    response = client.post("/billing/checkout/", {"plan": "growth"})

    assert response.status_code == 409
    assert response.context["error"].code == "subscription_exists"
    assert fake_stripe.requests_to("POST", "/v1/checkout/sessions") == []


def test_portal_opens_for_a_customer_and_is_refused_before_one_exists(
    alpha, member_client, fake_stripe
):
    client, _ = member_client(alpha, "owner")

    refused = client.post("/billing/portal/")
    SubscriptionFactory(tenant=alpha, stripe_customer_id="cus_portal")
    opened = client.post("/billing/portal/")

    assert refused.status_code == 409
    assert refused.context["error"].code == "no_billing_account"
    assert opened.status_code == 303
    assert opened["Location"] == fake_stripe.state.portal_sessions[0]["url"]
    assert fake_stripe.state.portal_sessions[0]["return_url"] == "http://alpha.localhost/billing/"


# --- Admin ----------------------------------------------------------------------------------------


def test_admin_lists_subscriptions_with_the_monthly_recurring_revenue(
    alpha, beta, public_client, priced_plans
):
    operator = UserFactory(email="ops@shelfsense.test", is_staff=True, is_superuser=True)
    public_client.force_login(operator)
    SubscriptionFactory(tenant=alpha, plan=Plan.objects.get(code="growth"), status="active")
    SubscriptionFactory(tenant=beta, plan=Plan.objects.get(code="starter"), status="trialing")

    response = public_client.get("/admin/billing/subscription/")

    assert response.status_code == 200
    mrr = response.context["mrr"]
    assert mrr["total"] == "199.00 USD"
    assert mrr["paying_stores"] == 1
    assert mrr["by_status"] == {"active": 1, "trialing": 1}
    assert 'data-testid="mrr-total">199.00 USD<' in response.content.decode()
    assert public_client.get("/admin/billing/plan/").status_code == 200


# --- Commands -------------------------------------------------------------------------------------


def test_plans_exist_after_migrate_and_seeding_again_changes_nothing(db):
    Plan.objects.filter(code="starter").update(monthly_price_cents=5_900)

    call_command("seed_plans")

    assert list(Plan.objects.values_list("code", "monthly_price_cents")) == [
        ("free", 0),
        ("starter", 5_900),
        ("growth", 19_900),
        ("enterprise", 99_900),
    ]


def test_sync_stripe_rereads_the_subscription(alpha, fake_stripe, priced_plans, capsys):
    customer = fake_stripe.add_customer()
    SubscriptionFactory(tenant=alpha, stripe_customer_id=customer["id"])
    fake_stripe.add_subscription(
        customer=customer["id"], price=STARTER_PRICE, status="canceled", created=1_700_000_000
    )
    live = fake_stripe.add_subscription(
        customer=customer["id"], price=GROWTH_PRICE, cancel_at_period_end=True
    )

    call_command("sync_stripe", "--tenant", "alpha")

    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.plan.code, sub.status, sub.stripe_subscription_id, sub.cancel_at_period_end) == (
        "growth",
        "active",
        live["id"],
        True,
    )
    assert capsys.readouterr().out == "alpha: plan growth, status active, period ends 2026-06-27\n"


def test_sync_stripe_refuses_unknown_stores_and_stores_without_a_customer(alpha, fake_stripe):
    with pytest.raises(CommandError, match="No store with slug 'nope'"):
        call_command("sync_stripe", "--tenant", "nope")
    with pytest.raises(CommandError, match=r"The store alpha has no Stripe customer\."):
        call_command("sync_stripe", "--tenant", "alpha")
    assert fake_stripe.state.requests == []
