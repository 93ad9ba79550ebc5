"""Usage counters, quota checks, threshold notifications, hourly rollup and Stripe Billing Meter
reporting (the real `stripe` library against the fake server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django_tenants.utils import schema_context

from apps.audit.models import AuditEvent
from apps.billing.models import Plan, Subscription, UsageRecord
from apps.billing.quotas import quota_check_ingest, usage_record
from apps.billing.selectors import usage_month_to_date
from apps.billing.services import usage_report_to_stripe, usage_rollup
from apps.core.errors import ApplicationError
from tests.factories import MembershipFactory, SubscriptionFactory, UsageRecordFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
FREE_EVENTS = 1_000_000


# --- Counters and quota checks --------------------------------------------------------------------


def test_usage_is_counted_per_store_hour_and_month(alpha, beta):
    usage_record(tenant=alpha, metric="events_ingested", amount=40, now=NOW)
    total = usage_record(tenant=alpha, metric="events_ingested", amount=2, now=NOW)
    usage_record(tenant=alpha, metric="recommendation_requests", amount=1, now=NOW)
    usage_record(tenant=beta, metric="events_ingested", amount=5, now=NOW)

    assert total == 42
    assert usage_month_to_date(alpha, now=NOW) == {
        "events_ingested": 42,
        "recommendation_requests": 1,
    }
    assert usage_month_to_date(beta, now=NOW) == {
        "events_ingested": 5,
        "recommendation_requests": 0,
    }
    # Next month starts from zero.
    assert usage_month_to_date(alpha, now=datetime(2026, 12, 1, tzinfo=UTC)) == {
        "events_ingested": 0,
        "recommendation_requests": 0,
    }


def test_unknown_metric_is_a_programming_error(alpha):
    with pytest.raises(ValueError, match="'pageviews' is not a valid Metric"):
        usage_record(tenant=alpha, metric="pageviews", amount=1, now=NOW)


def test_batch_within_quota_passes_and_batch_past_it_is_refused(alpha):
    usage_record(tenant=alpha, metric="events_ingested", amount=FREE_EVENTS - 10, now=NOW)

    quota_check_ingest(tenant=alpha, amount=10, now=NOW)
    with pytest.raises(ApplicationError) as refused:
        quota_check_ingest(tenant=alpha, amount=11, now=NOW)

    assert (refused.value.code, refused.value.status_code) == ("quota_exceeded", 429)
    assert refused.value.message == (
        "Monthly quota of 1000000 events on the Free plan reached "
        "(999990 used, this batch has 11). Upgrade on the billing page."
    )
    # Retry-After: the seconds until 2026-12-01T00:00Z.
    assert refused.value.headers == {"Retry-After": str(10 * 86400 + 9 * 3600 + 30 * 60)}


def test_quota_of_one_store_is_not_touched_by_another(alpha, beta):
    usage_record(tenant=beta, metric="events_ingested", amount=FREE_EVENTS, now=NOW)

    quota_check_ingest(tenant=alpha, amount=FREE_EVENTS, now=NOW)
    with pytest.raises(ApplicationError):
        quota_check_ingest(tenant=beta, amount=1, now=NOW)


def test_plan_that_bills_overage_never_blocks(alpha, beta):
    SubscriptionFactory(tenant=alpha, plan=Plan.objects.get(code="growth"), status="active")
    for store in (alpha, beta):  # alpha on Growth (overage billed), beta on Free (blocks)
        usage_record(tenant=store, metric="events_ingested", amount=2_000_000, now=NOW)

    passed = quota_check_ingest(tenant=alpha, amount=1_000, now=NOW)
    with pytest.raises(ApplicationError) as refused:
        quota_check_ingest(tenant=beta, amount=1_000, now=NOW)

    assert passed is None  # no error: the batch may be stored
    assert (refused.value.code, refused.value.status_code) == ("quota_exceeded", 429)
    # The check only reads: the month's count is what was recorded.
    assert usage_month_to_date(alpha, now=NOW) == {
        "events_ingested": 2_000_000,
        "recommendation_requests": 0,
    }


def test_quota_follows_a_plan_change_at_once(alpha, fake_stripe, priced_plans):
    from apps.billing.services import subscription_apply_remote

    sub = SubscriptionFactory(tenant=alpha)
    usage_record(tenant=alpha, metric="events_ingested", amount=FREE_EVENTS, now=NOW)
    with pytest.raises(ApplicationError):
        quota_check_ingest(tenant=alpha, amount=1, now=NOW)  # caches the Free state

    subscription_apply_remote(
        sub=sub,
        remote={
            "id": "sub_1",
            "status": "active",
            "items": {"data": [{"price": {"id": "price_starter_monthly"}}]},
        },
        source="test",
    )

    quota_check_ingest(tenant=alpha, amount=1, now=NOW)


# --- Threshold notifications ----------------------------------------------------------------------


def test_crossing_80_and_100_percent_notifies_the_owner_once_each(
    alpha, eager_celery, django_capture_on_commit_callbacks
):
    MembershipFactory(tenant=alpha, user=UserFactory(email="boss@alpha.test"), role="owner")
    MembershipFactory(tenant=alpha, user=UserFactory(email="dev@alpha.test"), role="developer")

    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=799_999, now=NOW)
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=1, now=NOW)  # 800000 = 80%
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=50_000, now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=300_000, now=NOW)  # past 100%
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=300_000, now=NOW)

    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("[Alpha Store] 80% of the monthly events ingested quota used", ["boss@alpha.test"]),
        ("[Alpha Store] 100% of the monthly events ingested quota used", ["boss@alpha.test"]),
    ]
    with schema_context(alpha.schema_name):
        audited = list(
            AuditEvent.objects.filter(action="billing.quota_threshold_reached")
            .order_by("id")
            .values_list("details", flat=True)
        )
    assert audited == [
        {
            "metric": "events_ingested",
            "month": "202611",
            "quota": 1000000,
            "threshold": 80,
            "used": 800000,
        },
        {
            "metric": "events_ingested",
            "month": "202611",
            "quota": 1000000,
            "threshold": 100,
            "used": 1150000,
        },
    ]


# --- Rollup ---------------------------------------------------------------------------------------


def test_rollup_writes_completed_hours_only_and_is_idempotent(alpha, beta):
    usage_record(tenant=alpha, metric="events_ingested", amount=7, now=NOW - timedelta(hours=2))
    usage_record(tenant=alpha, metric="events_ingested", amount=3, now=NOW - timedelta(hours=1))
    usage_record(
        tenant=beta, metric="recommendation_requests", amount=4, now=NOW - timedelta(hours=1)
    )
    usage_record(tenant=alpha, metric="events_ingested", amount=100, now=NOW)  # hour in progress

    assert usage_rollup(now=NOW) == 3
    assert usage_rollup(now=NOW) == 0

    rows = list(
        UsageRecord.objects.order_by("hour", "tenant__slug").values_list(
            "tenant__slug", "metric", "hour", "quantity", "report_status"
        )
    )
    assert rows == [
        ("alpha", "events_ingested", datetime(2026, 11, 20, 12, tzinfo=UTC), 7, "pending"),
        ("alpha", "events_ingested", datetime(2026, 11, 20, 13, tzinfo=UTC), 3, "pending"),
        ("beta", "recommendation_requests", datetime(2026, 11, 20, 13, tzinfo=UTC), 4, "pending"),
    ]


def test_rollup_updates_a_pending_hour_but_never_a_reported_one(alpha):
    hour = NOW - timedelta(hours=1)
    usage_record(tenant=alpha, metric="events_ingested", amount=3, now=hour)
    usage_rollup(now=NOW)
    usage_record(tenant=alpha, metric="events_ingested", amount=2, now=hour)  # a straggler

    assert usage_rollup(now=NOW) == 1
    record = UsageRecord.objects.get()
    assert record.quantity == 5
    record.report_status = UsageRecord.ReportStatus.REPORTED
    record.save()
    usage_record(tenant=alpha, metric="events_ingested", amount=2, now=hour)

    assert usage_rollup(now=NOW) == 0
    assert UsageRecord.objects.get().quantity == 5


# --- Meter reporting ------------------------------------------------------------------------------


@pytest.fixture
def billed_alpha(alpha, fake_stripe):
    customer = fake_stripe.add_customer()
    return SubscriptionFactory(
        tenant=alpha,
        plan=Plan.objects.get(code="growth"),
        status="active",
        stripe_customer_id=customer["id"],
    )


def _hours(n: int) -> list[datetime]:
    return [datetime(2026, 11, 20, 10 + i, tzinfo=UTC) for i in range(n)]


def test_meter_events_carry_deterministic_identifiers_and_are_sent_once(
    alpha, billed_alpha, fake_stripe
):
    for i, hour in enumerate(_hours(3)):
        UsageRecordFactory(tenant=alpha, hour=hour, quantity=10 * (i + 1))

    assert usage_report_to_stripe(now=NOW) == {"reported": 3, "not_billable": 0, "failed": 0}
    assert usage_report_to_stripe(now=NOW) == {"reported": 0, "not_billable": 0, "failed": 0}

    sent = fake_stripe.requests_to("POST", "/v1/billing/meter_events")
    assert [(r.params["identifier"], r.idempotency_key) for r in sent] == [
        (
            "store_alpha:events_ingested:20261120T10",
            "meter-store_alpha:events_ingested:20261120T10",
        ),
        (
            "store_alpha:events_ingested:20261120T11",
            "meter-store_alpha:events_ingested:20261120T11",
        ),
        (
            "store_alpha:events_ingested:20261120T12",
            "meter-store_alpha:events_ingested:20261120T12",
        ),
    ]
    assert sent[0].params == {
        "event_name": "shelfsense_events",
        "identifier": "store_alpha:events_ingested:20261120T10",
        "timestamp": str(int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp())),
        "payload[stripe_customer_id]": billed_alpha.stripe_customer_id,
        "payload[value]": "10",
    }
    assert sent[0].stripe_version == "2026-10-28.endive"
    assert set(UsageRecord.objects.values_list("report_status", flat=True)) == {"reported"}


def test_retried_reporting_after_a_failure_sends_no_duplicate_identifier(
    alpha, billed_alpha, fake_stripe
):
    for hour in _hours(3):
        UsageRecordFactory(tenant=alpha, hour=hour, quantity=5)
    # The second meter request of the first run fails (Stripe answers 500).
    original = fake_stripe.handle
    calls = []

    def handle(method, path, params, headers):
        if path == "/v1/billing/meter_events":
            calls.append(params["identifier"])
            if len(calls) == 2:
                fake_stripe.fail_next(method, path, 500)
        return original(method, path, params, headers)

    fake_stripe.handle = handle
    try:
        first = usage_report_to_stripe(now=NOW)
        second = usage_report_to_stripe(now=NOW)
        third = usage_report_to_stripe(now=NOW)
    finally:
        fake_stripe.handle = original

    assert (first, second, third) == (
        {"reported": 2, "not_billable": 0, "failed": 1},
        {"reported": 1, "not_billable": 0, "failed": 0},
        {"reported": 0, "not_billable": 0, "failed": 0},
    )
    accepted = [e["identifier"] for e in fake_stripe.state.meter_events]
    assert sorted(accepted) == [
        "store_alpha:events_ingested:20261120T10",
        "store_alpha:events_ingested:20261120T11",
        "store_alpha:events_ingested:20261120T12",
    ]
    sent = [
        r.params["identifier"] for r in fake_stripe.requests_to("POST", "/v1/billing/meter_events")
    ]
    # Only the failed identifier was sent a second time; nothing accepted was sent again.
    assert sent == [
        "store_alpha:events_ingested:20261120T10",
        "store_alpha:events_ingested:20261120T11",
        "store_alpha:events_ingested:20261120T12",
        "store_alpha:events_ingested:20261120T11",
    ]


def test_a_resend_after_a_lost_acknowledgement_is_deduplicated_by_stripe(
    alpha, billed_alpha, fake_stripe
):
    record = UsageRecordFactory(tenant=alpha, hour=_hours(1)[0], quantity=9)
    usage_report_to_stripe(now=NOW)
    # Our side lost the "reported" mark (say the worker died after Stripe answered).
    UsageRecord.objects.filter(pk=record.pk).update(report_status="pending", reported_at=None)

    assert usage_report_to_stripe(now=NOW)["reported"] == 1

    assert [e["identifier"] for e in fake_stripe.state.meter_events] == [
        "store_alpha:events_ingested:20261120T10"
    ]


def test_usage_of_stores_without_a_stripe_customer_is_not_billable(alpha, beta, fake_stripe):
    UsageRecordFactory(tenant=beta, hour=_hours(1)[0], quantity=9)
    SubscriptionFactory(tenant=alpha)  # Free, never subscribed
    UsageRecordFactory(tenant=alpha, hour=_hours(1)[0], quantity=9)

    assert usage_report_to_stripe(now=NOW) == {"reported": 0, "not_billable": 2, "failed": 0}
    assert fake_stripe.state.requests == []
    assert not Subscription.objects.filter(tenant=beta).exists()
