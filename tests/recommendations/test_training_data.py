"""The training reader's coded events and the training-data export that feeds a bigger job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, SessionLink
from apps.recommendations.training import interactions_read
from ml.data import interactions_import

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _event(user, item, kind, seconds, **extra) -> Event:
    return Event(
        user_id=user, item_id=item, type=kind, timestamp=T0 + timedelta(seconds=seconds), **extra
    )


def _rows(interactions) -> list[tuple]:
    values = [None if v != v else v for v in interactions.values.tolist()]
    return sorted(
        zip(
            interactions.user_ids.tolist(),
            interactions.item_ids.tolist(),
            interactions.event_types.tolist(),
            values,
            interactions.timestamps.tolist(),
            interactions.order_ids.tolist(),
            strict=True,
        )
    )


@pytest.fixture
def events(alpha):
    with tenant_context(alpha):
        Event.objects.bulk_create(
            [
                _event("u1", "a", "view", 0),
                _event("u1", "a", "purchase", 10, order_id="o1"),
                _event("u1", "b", "purchase", 11, order_id="o1"),
                _event("u1", "b", "refund", 20, order_id="o1"),
                _event("u1", "c", "dismiss", 30),
                _event("u2", "b", "add_to_cart", 40),
                _event("u2", "b", "rating", 50, value=4.5),
                _event(None, "c", "click", 60, session_id="s-9"),
                _event(None, "d", "view", 70, session_id="s-unlinked"),
            ]
        )
        SessionLink.objects.create(session_id="s-9", user_id="u3")
    return alpha


def test_the_reader_codes_each_learnable_event_and_leaves_out_the_rest(events):
    with tenant_context(events):
        interactions = interactions_read(since=T0, until=T0 + timedelta(hours=1))

    t = int(T0.timestamp())
    # refunded line, refund, dismissal and the unlinked anonymous view are not training events
    assert _rows(interactions) == [
        ("u1", "a", "purchase", None, t + 10, "o1"),
        ("u1", "a", "view", None, t, ""),
        ("u2", "b", "add_to_cart", None, t + 40, ""),
        ("u2", "b", "rating", 4.5, t + 50, ""),
        ("u3", "c", "click", None, t + 60, ""),
    ]
    codes, vocab = interactions.codes("user_ids")
    assert codes.dtype == np.int32
    assert sorted(vocab.tolist()) == ["u1", "u2", "u3"]
    assert interactions.nbytes() == 5 * 25


def test_export_training_data_writes_what_training_reads(events, tmp_path):
    out = StringIO()

    call_command("export_training_data", tenant="alpha", out=str(tmp_path / "x"), stdout=out)

    with tenant_context(events):
        newest = T0 + timedelta(seconds=70)
        expected = interactions_read(since=newest - timedelta(days=1096), until=newest)
    exported = interactions_import(tmp_path / "x")
    assert _rows(exported) == _rows(expected)
    assert out.getvalue().strip() == (
        f"alpha: 5 events, 3 shoppers, 3 items written to {tmp_path / 'x'}"
    )
