"""Reads of the recommendations app: model versions, experiments and their results, and the
attribution of clicks and purchases to served lists. The request-time recommendation lists
are in the `serving` package."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.catalog.validation import EVENT_VALUE_MAX
from apps.core.errors import ApplicationError
from apps.recommendations.model_store import artifact_dir
from apps.recommendations.models import Experiment, ModelVersion
from apps.recommendations.services.common import API_KEY_LABEL_PREFIX
from ml.model import RecommenderModel

METRIC_COLUMNS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-number")


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_active_readable() -> bool:
    """True when the store has no active model or this engine can load its artifact (one an
    older engine wrote, with another format or feature set, cannot be served)."""
    active = model_version_active()
    if active is None or not active.artifact_path:
        return True
    try:
        RecommenderModel.load(artifact_dir(active.artifact_path))
    except (OSError, ValueError, KeyError):
        return False
    return True


def model_version_get(*, number: int) -> ModelVersion:
    version = ModelVersion.objects.filter(number=number).first()
    if version is None:
        raise ApplicationError(f"No model version v{number}.", code="not_found", status_code=404)
    return version


def metrics_table(versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """One row per version and evaluated model (popularity / als / reranker / final), for the
    `evaluate_models` command and the dashboard."""
    rows = []
    for version in versions:
        for model in ("popularity", "als", "reranker", "final"):
            values = version.metrics.get(model)
            if not values:
                continue
            rows.append(
                {
                    "version": version.label,
                    "status": version.status,
                    "model": model
                    if model != "final"
                    else f"final ({values.get('strategy', version.strategy)})",
                    **{column: values.get(column) for column in METRIC_COLUMNS},
                    "shoppers": values.get("users"),
                }
            )
    return rows


def experiment_get(*, experiment_id: int) -> Experiment:
    experiment = Experiment.objects.filter(pk=experiment_id).prefetch_related("arms").first()
    if experiment is None:
        raise ApplicationError("No such experiment.", code="not_found", status_code=404)
    return experiment


def experiment_list() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related("arms__model_version").order_by("-id")


# --- Outcomes of served lists: the one definition ----------------------------------------------
# Used by the analytics API, the dashboard and experiment results alike (README, "Analytics").
# - A list is served when its impression is logged (recommendations_impression, `served_at`).
# - A click or purchase event is attributed to a list when it carries the list's
#   recommendation_id, its item was in the list, it is the shopper the list was served to (lists
#   served without a shopper — similar, bought-together, trending — accept any shopper), it
#   belongs to the session a session list was served to (`impression.session_id`), and its
#   timestamp is within ATTRIBUTION_WINDOW_DAYS after serving. Timestamps come from the store's
#   clock: up to ATTRIBUTION_CLOCK_SKEW_MINUTES before serving still count (event validation
#   accepts the same skew ahead of ours).
# - A list is clicked / converted when at least one click / purchase is attributed to it: CTR and
#   conversion rate count lists, never events, so neither can pass 100% of the lists served.
# - Revenue: each attributed purchase's `value` when the store sent one, else the item's catalog
#   price stored with the event when it was ingested (catalog_event.item_price). A `value` beyond
#   EVENT_VALUE_MAX (refused since; some stores hold older ones) counts as not sent: one 1e27
#   made the summary's cents overflow Decimal's 28 digits, a 500 for every window.
# - A purchase whose (order_id, item_id) has a `refund` event is not attributed: no conversion,
#   no revenue (README, "One purchase rule").
ATTRIBUTION_WINDOW_DAYS = 7
ATTRIBUTION_CLOCK_SKEW_MINUTES = 5
ANALYTICS_MAX_DAYS = 90

# The conditions tying an event `e` to a served list `i` (the definition above, in SQL).
_ATTRIBUTION = f"""
  e.type IN ('click', 'purchase')
  AND e.item_id = ANY(i.item_ids)
  -- a refunded order line (a `refund` event of its order_id and item) is no purchase at all
  AND NOT (e.type = 'purchase' AND e.order_id IS NOT NULL AND EXISTS (
      SELECT 1 FROM catalog_event r
      WHERE r.order_id = e.order_id AND r.item_id = e.item_id AND r.type = 'refund'))
  AND (i.user_id = '' OR e.user_id = i.user_id)
  AND (i.session_id = '' OR e.session_id = i.session_id)
  AND e."timestamp" >= i.served_at - interval '{ATTRIBUTION_CLOCK_SKEW_MINUTES} minutes'
  AND e."timestamp" < i.served_at + interval '{ATTRIBUTION_WINDOW_DAYS} days'
"""
_REVENUE = f"""
CASE WHEN e.type = 'purchase'
     THEN COALESCE(CASE WHEN abs(e.value) <= {EVENT_VALUE_MAX:.0f} THEN e.value::numeric END,
                   e.item_price, 0)
     ELSE 0 END"""

_ATTRIBUTED_SQL = f"""
SELECT i.id AS list_id, e.type, e."timestamp", {_REVENUE} AS revenue
FROM {{lists}} i
JOIN catalog_event e ON e.recommendation_id = i.recommendation_id
WHERE {_ATTRIBUTION}
"""

# Lists served, clicked and converted per group (experiment arms, surfaces).
_OUTCOMES_SQL = f"""
WITH lists AS (
    SELECT i.id, i.recommendation_id, i.user_id, i.session_id, i.item_ids, i.served_at, {{group}}
    FROM recommendations_impression i WHERE {{where}}
), attributed AS ({_ATTRIBUTED_SQL.format(lists="lists")}),
outcomes AS (
    SELECT list_id, bool_or(type = 'click') AS clicked, bool_or(type = 'purchase') AS converted
    FROM attributed GROUP BY list_id
)
SELECT {{group_columns}}, count(*) AS impressions,
       count(*) FILTER (WHERE o.clicked) AS clicks,
       count(*) FILTER (WHERE o.converted) AS conversions
FROM lists l LEFT JOIN outcomes o ON o.list_id = l.id
GROUP BY {{group_columns}}
"""

# Per (UTC day a list was served, UTC day of an outcome) since the widest window's start: lists
# served (outcome day = serving day), lists clicked and converted (by the day of their first
# attributed click / purchase) and revenue (by purchase day). Any window ending today is a sum
# of these cells over the serving days in it, so one pass answers the 7- and 30-day windows.
# The attribution is driven from the events that can be attributed (click or purchase with a
# recommendation_id, since the start less the clock skew): one index probe per event into the
# lists (impression_rec_id), not a pass over every list served with its item ids (seconds at
# a million lists). Lists served per day are counted from the served_at index alone.
_SUMMARY_SQL = f"""
WITH attributed AS (
    SELECT i.id AS list_id, i.served_day, e.type, e."timestamp", {_REVENUE} AS revenue
    FROM catalog_event e
    CROSS JOIN LATERAL (
        SELECT i.id, (i.served_at AT TIME ZONE 'UTC')::date AS served_day
        FROM recommendations_impression i
        WHERE i.recommendation_id = e.recommendation_id AND i.served_at >= %(start)s
          AND {_ATTRIBUTION}
    ) i
    WHERE e.recommendation_id IS NOT NULL AND e.type IN ('click', 'purchase')
      AND e."timestamp" >= %(start)s - interval '{ATTRIBUTION_CLOCK_SKEW_MINUTES} minutes'
), firsts AS (
    SELECT served_day,
           min("timestamp") FILTER (WHERE type = 'click') AS first_click,
           min("timestamp") FILTER (WHERE type = 'purchase') AS first_purchase
    FROM attributed GROUP BY list_id, served_day
)
SELECT served_day, day, sum(served)::int, sum(clicked)::int, sum(converted)::int, sum(revenue)
FROM (
    SELECT (served_at AT TIME ZONE 'UTC')::date AS served_day,
           (served_at AT TIME ZONE 'UTC')::date AS day, count(*) AS served, 0 AS clicked,
           0 AS converted, 0::numeric AS revenue
    FROM recommendations_impression WHERE served_at >= %(start)s GROUP BY 1, 2
    UNION ALL
    SELECT served_day, (first_click AT TIME ZONE 'UTC')::date, 0, count(*), 0, 0
    FROM firsts WHERE first_click IS NOT NULL GROUP BY 1, 2
    UNION ALL
    SELECT served_day, (first_purchase AT TIME ZONE 'UTC')::date, 0, 0, count(*), 0
    FROM firsts WHERE first_purchase IS NOT NULL GROUP BY 1, 2
    UNION ALL
    SELECT served_day, ("timestamp" AT TIME ZONE 'UTC')::date, 0, 0, 0, sum(revenue)
    FROM attributed WHERE type = 'purchase' GROUP BY 1, 2
) cells
WHERE day <= %(today)s
GROUP BY served_day, day
"""


def two_proportion_z_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> tuple[float | None, float | None]:
    """(z, two-sided p) of H0 "both proportions equal", pooled variance. (None, None) when a
    side has no trials or the pooled proportion is 0 or 1 (no variance to test against)."""
    if trials_a == 0 or trials_b == 0:
        return None, None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return None, None
    z = (successes_b / trials_b - successes_a / trials_a) / math.sqrt(variance)
    return z, math.erfc(abs(z) / math.sqrt(2))


def _rate(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def experiment_results(*, experiment: Experiment, alpha: float = 0.05) -> dict[str, Any]:
    """Per arm: impressions, clicks, conversions, CTR and conversion rate; for every arm after
    the first (the control), two-proportion z-tests of CTR and conversion against the control."""
    with connection.cursor() as cursor:
        cursor.execute(
            _OUTCOMES_SQL.format(
                group="i.arm_id", group_columns="l.arm_id", where="i.experiment_id = %s"
            ),
            [experiment.pk],
        )
        outcomes = {arm_id: (n, c, p) for arm_id, n, c, p in cursor.fetchall()}
    arms = list(experiment.arms.select_related("model_version").order_by("position"))
    results = []
    control = None
    for arm in arms:
        impressions, clicks, conversions = outcomes.get(arm.pk, (0, 0, 0))
        row: dict[str, Any] = {
            "arm": arm.name,
            "model_version": arm.model_version.label if arm.model_version else None,
            "strategy": arm.strategy,
            "traffic_percent": arm.traffic_percent,
            "impressions": impressions,
            "clicks": clicks,
            "conversions": conversions,
            "ctr": _rate(clicks, impressions),
            "conversion_rate": _rate(conversions, impressions),
        }
        if control is None:
            control = row
            row["control"] = True
        else:
            row["control"] = False
            for metric, count in (("ctr", "clicks"), ("conversion_rate", "conversions")):
                z, p = two_proportion_z_test(
                    control[count], control["impressions"], row[count], row["impressions"]
                )
                row[f"{metric}_test"] = {
                    "z": round(z, 4) if z is not None else None,
                    "p_value": round(p, 6) if p is not None else None,
                    "significant": p is not None and p < alpha,
                }
        results.append(row)
    return {
        "experiment_id": experiment.pk,
        "name": experiment.name,
        "status": experiment.status,
        "created_at": experiment.created_at.isoformat(),
        "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
        "alpha": alpha,
        "arms": results,
    }


def _money(amount: Decimal | None) -> Decimal:
    return (amount or Decimal("0")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _days_checked(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= ANALYTICS_MAX_DAYS:
        raise ApplicationError(
            f"days must be a whole number from 1 to {ANALYTICS_MAX_DAYS}.",
            fields={"days": [f"1 to {ANALYTICS_MAX_DAYS}"]},
        )
    return days


def analytics_summaries(
    *, windows: Iterable[int], currency: str, today: date | None = None
) -> dict[int, dict[str, Any]]:
    """`analytics_summary` for several windows (days) at once, in one query: {days: summary}.
    Raises ApplicationError 400 naming `days` unless every window is 1..ANALYTICS_MAX_DAYS."""
    windows = sorted({_days_checked(days) for days in windows})
    today = today or timezone.now().date()
    widest = today - timedelta(days=windows[-1] - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            _SUMMARY_SQL,
            {"start": datetime.combine(widest, time.min, tzinfo=UTC), "today": today},
        )
        cells = cursor.fetchall()
    summaries = {}
    for days in windows:
        first = today - timedelta(days=days - 1)
        found: dict[date, list] = {}
        for served_day, day, served, clicked, converted, revenue in cells:
            if served_day < first:
                continue  # a list served before the window: none of its outcomes count
            row = found.setdefault(day, [0, 0, 0, Decimal("0")])
            row[0] += served
            row[1] += clicked
            row[2] += converted
            row[3] += revenue or 0
        summaries[days] = _summary(days, first, found, currency)
    return summaries


def _summary(days: int, first: date, found: dict[date, list], currency: str) -> dict[str, Any]:
    by_day = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        served, clicked, converted, revenue = found.get(day, (0, 0, 0, None))
        by_day.append(
            {
                "date": day.isoformat(),
                "lists_served": served,
                "clicks": clicked,
                "ctr": _rate(clicked, served),
                "conversions": converted,
                "conversion_rate": _rate(converted, served),
                "revenue": _money(revenue),
            }
        )
    served = sum(row["lists_served"] for row in by_day)
    clicked = sum(row["clicks"] for row in by_day)
    converted = sum(row["conversions"] for row in by_day)
    return {
        "days": days,
        "lists_served": served,
        "clicks": clicked,
        "ctr": _rate(clicked, served),
        "conversions": converted,
        "conversion_rate": _rate(converted, served),
        "revenue": _money(sum((row["revenue"] for row in by_day), Decimal("0"))),
        "currency": currency,
        "by_day": by_day,
    }


def analytics_summary(*, days: int, currency: str, today: date | None = None) -> dict[str, Any]:
    """The store's recommendation outcomes over the last `days` UTC days (today included), in
    one query: lists served, lists clicked ("clicks"), CTR, lists converted ("conversions"),
    conversion rate and attributed revenue, in total and per day ("by_day", oldest first, every
    day present). Lists served before the window do not count; clicks and conversions are dated
    by a list's first attributed click / purchase, revenue by each purchase. Totals are the
    sums of the days. Rates are 0.0 without lists served. `currency` is echoed (the store's).

    Raises ApplicationError 400 naming `days` unless 1 <= days <= ANALYTICS_MAX_DAYS."""
    days = _days_checked(days)
    return analytics_summaries(windows=[days], currency=currency, today=today)[days]


def trainings_started_today_count() -> int:
    """Trainings started today (UTC) that count against the plan's trainings a day: those of
    members and API keys; the demo seed, staff commands and the nightly schedule do not."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        ModelVersion.objects.filter(created_at__gte=midnight)
        .filter(
            Q(started_by_id__isnull=False) | Q(started_by_label__startswith=API_KEY_LABEL_PREFIX)
        )
        .count()
    )
