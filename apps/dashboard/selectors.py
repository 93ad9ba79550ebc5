"""Reads for the store's dashboard (the connection's store schema)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from apps.apikeys.models import ApiKey
from apps.audit.selectors import audit_event_list
from apps.catalog.models import Event, Item, Shopper
from apps.catalog.selectors import event_counters
from apps.dashboard.models import EventDayCount
from apps.merchandising.explain import reason_text
from apps.merchandising.placing import explained_list
from apps.recommendations.models import ExperimentArm, Impression, ModelVersion
from apps.recommendations.selectors import (
    analytics_summaries,
    model_version_active,
    model_version_list,
)
from apps.recommendations.serving import Filters, recommend_for_item

RECENT_ITEMS_SHOWN = 5
CHART_DAYS = 30
ANOMALY_LOOKBACK = timedelta(hours=24)


def store_snapshot() -> dict[str, Any]:
    """Headline figures of the current store (the connection's tenant schema)."""
    visible = Item.objects.listed()
    return {
        "items": visible.count(),
        "recent_items": list(
            visible.order_by("-updated_at", "-id").values_list("title", flat=True)[
                :RECENT_ITEMS_SHOWN
            ]
        ),
    }


def live_snapshot() -> dict[str, Any]:
    """What a dashboard socket receives on connect: the headline figures and today's event
    counters (the same shape as the catalog's live `counters` pushes)."""
    today = timezone.now().date()
    return {
        **store_snapshot(),
        "date": today.isoformat(),
        "events_today": event_counters(day=today),
    }


def onboarding_steps() -> list[dict[str, Any]]:
    """The overview's "Get started" checklist, in the order an integration happens: each step
    {"key", "label", "done"}; done is read from what the store holds, not from clicks."""
    trained = ModelVersion.objects.exclude(
        status__in=[ModelVersion.Status.TRAINING, ModelVersion.Status.FAILED]
    )
    steps = [
        ("key", "Create an API key", ApiKey.objects.filter(revoked_at__isnull=True).exists()),
        ("items", "Send your catalog", Item.objects.filter(is_stub=False).exists()),
        ("events", "Send shopper events", Event.objects.exists()),
        ("train", "Train a model", trained.exists()),
        ("recommend", "Fetch a first recommendation", Impression.objects.exists()),
    ]
    return [{"key": key, "label": label, "done": done} for key, label, done in steps]


def recommendations_ready() -> bool:
    """Whether the recommendations app is part of this deployment's store schemas."""
    return "apps.recommendations" in settings.TENANT_APPS


def _days(end: date, count: int) -> list[date]:
    return [end - timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def events_per_day(*, days: int = CHART_DAYS) -> dict[str, Any]:
    """Events per UTC day and type over the last `days` days (today included), chart-ready:
    {"labels": [iso dates], "series": {type: [counts]}}. Read from the rollup the event
    triggers keep (EventDayCount): a few rows a day, whatever the store's traffic."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        EventDayCount.objects.filter(day__gte=start, day__lte=today)
        .values("day", "type")
        .annotate(n=Sum("count"))
        .order_by()
    )
    labels = _days(today, days)
    series = {kind: [0] * days for kind in Event.Type.values}
    index = {day: position for position, day in enumerate(labels)}
    for row in rows:
        if row["type"] in series:
            series[row["type"]][index[row["day"]]] = row["n"]
    return {"labels": [day.isoformat() for day in labels], "series": series}


# The overview's funnel is computed from a month of served lists and the events attributed to
# them: about a second at a million lists a month. Kept per store (and currency) this long, so
# a busy store's dashboard computes it once a minute, not on every view; the analytics API
# (GET /api/v1/analytics/summary) always answers from the data itself.
FUNNEL_TTL_SECONDS = 60
FUNNEL_WINDOWS = (7, 30)


def overview_funnels(*, currency: str) -> dict[int, dict[str, Any]]:
    """{7: summary, 30: summary} of apps.recommendations.selectors.analytics_summaries for
    the current store, at most FUNNEL_TTL_SECONDS old (the cache key is the store's, through
    django-tenants' key function, and names the day: a new UTC day is computed afresh)."""
    key = _funnels_key(currency)
    funnels = cache.get(key)
    if funnels is None:
        funnels = analytics_summaries(windows=FUNNEL_WINDOWS, currency=currency)
        cache.set(key, funnels, FUNNEL_TTL_SECONDS)
    return funnels


def overview_funnels_forget(*, currency: str) -> None:
    """Drop the current store's kept funnels: the next overview computes them."""
    cache.delete(_funnels_key(currency))


def _funnels_key(currency: str) -> str:
    return f"overview-funnels:{currency}:{timezone.now().date().isoformat()}"


def ctr_chart(*, summary: dict[str, Any]) -> dict[str, Any]:
    """The CTR-per-day chart from an analytics summary
    (apps.recommendations.selectors.analytics_summary, the one definition of CTR): labels,
    lists served, lists clicked and CTR per day, CTR None on days without lists served."""
    days = summary["by_day"]
    return {
        "labels": [day["date"] for day in days],
        "served": [day["lists_served"] for day in days],
        "clicks": [day["clicks"] for day in days],
        "ctr": [day["ctr"] if day["lists_served"] else None for day in days],
    }


def recent_anomalies(*, limit: int = 5) -> list[dict[str, Any]]:
    """Usage anomalies flagged in the last day (from the store's audit trail)."""
    events = audit_event_list(
        since=timezone.now() - ANOMALY_LOOKBACK, action="usage.anomaly_flagged"
    ).order_by("-occurred_at", "-id")[:limit]
    return [
        {"occurred_at": event.occurred_at, "rule": event.target_id, **event.details}
        for event in events
    ]


def shopper_search(*, query: str = "") -> QuerySet[Shopper]:
    """Shoppers whose id contains `query`, most recently seen first."""
    shoppers = Shopper.objects.all()
    if query:
        shoppers = shoppers.filter(user_id__icontains=query)
    return shoppers.order_by(F("last_seen_at").desc(nulls_last=True), "-id")


def shopper_profile(*, user_id: str) -> Shopper | None:
    return Shopper.objects.filter(user_id=user_id).first()


# (metrics key, label) of the offline metrics the dashboard compares with the baseline.
COMPARED_METRICS = (
    ("ndcg@10", "NDCG@10"),
    ("precision@10", "P@10"),
    ("recall@10", "R@10"),
    ("coverage", "Coverage"),
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def model_comparison(version) -> list[dict[str, Any]]:
    """The version's delivered model ("final") against the popularity baseline trained and
    evaluated on the same split, one row per metric both have: {metric, label, model,
    baseline, lift (model / baseline - 1, None without a baseline)}."""
    final = version.metrics.get("final") or {}
    baseline = version.metrics.get("popularity") or {}
    labels = dict(COMPARED_METRICS)
    names = [name for name, _ in COMPARED_METRICS] + sorted(
        name for name in final if name not in labels
    )
    rows = []
    for name in names:
        model, base = _number(final.get(name)), _number(baseline.get(name))
        if model is None or base is None or name == "users":
            continue
        rows.append(
            {
                "metric": name,
                "label": labels.get(name, name),
                "model": model,
                "baseline": base,
                "lift": (model / base - 1) if base else None,
            }
        )
    return rows


def model_summary() -> dict[str, Any]:
    """The active model version with its offline metrics against the popularity baseline it
    was trained alongside, and the latest training run."""
    active = model_version_active()
    last_training = model_version_list().first()
    return {
        "active_model": active,
        "last_training": last_training,
        "comparison": model_comparison(active) if active is not None else [],
    }


MODELS_SHOWN = 50


def model_versions_page(*, limit: int = MODELS_SHOWN) -> dict[str, Any]:
    """The models page: the newest `limit` versions, each with its metrics against the
    baseline, the running training (if any), whether an earlier active version exists to roll
    back to, and the NDCG@10 chart (oldest first, evaluated versions only)."""
    versions = list(model_version_list()[:limit])
    rows = [
        {
            "version": version,
            "metrics": {row["metric"]: row for row in model_comparison(version)},
            "activatable": version.status
            in (ModelVersion.Status.READY, ModelVersion.Status.RETIRED),
        }
        for version in versions
    ]
    evaluated = [row for row in reversed(rows) if "ndcg@10" in row["metrics"]]
    return {
        "versions": rows,
        "metric_columns": COMPARED_METRICS,
        "training": next((v for v in versions if v.status == ModelVersion.Status.TRAINING), None),
        "active_model": next((v for v in versions if v.status == ModelVersion.Status.ACTIVE), None),
        "rollback_available": ModelVersion.objects.filter(
            status=ModelVersion.Status.RETIRED, activated_at__isnull=False
        ).exists(),
        "chart": {
            "labels": [row["version"].label for row in evaluated],
            "datasets": [
                {
                    "label": "Model NDCG@10",
                    "data": [row["metrics"]["ndcg@10"]["model"] for row in evaluated],
                },
                {
                    "label": "Popularity baseline NDCG@10",
                    "data": [row["metrics"]["ndcg@10"]["baseline"] for row in evaluated],
                },
            ],
        },
    }


def experiment_version_choices() -> list[tuple[str, str]]:
    """What an experiment arm may serve, as form choices: a strategy of the active model, or
    one trained version (`version:<number>`)."""
    choices = [(f"strategy:{value}", label) for value, label in ExperimentArm.Strategy.choices]
    versions = ModelVersion.objects.filter(
        status__in=[
            ModelVersion.Status.READY,
            ModelVersion.Status.ACTIVE,
            ModelVersion.Status.RETIRED,
        ]
    ).order_by("-number")
    choices += [
        (f"version:{v.number}", f"Model {v.label} ({v.get_status_display().lower()})")
        for v in versions
    ]
    return choices


def item_titles(item_ids) -> dict[str, str]:
    """item id -> title of the items among `item_ids` that have one."""
    return dict(
        Item.objects.filter(item_id__in=set(item_ids))
        .exclude(title="")
        .values_list("item_id", "title")
    )


def _with_titles(items: list[tuple[str, float]]) -> list[dict[str, Any]]:
    titles = dict(
        Item.objects.filter(item_id__in=[item for item, _ in items]).values_list("item_id", "title")
    )
    return [
        {"item_id": item, "title": titles.get(item, ""), "score": score} for item, score in items
    ]


PREVIEW_SIZE = 10


def item_recommendations(*, item_id: str) -> dict[str, Any]:
    """What GET /api/v1/items/<id>/similar and /bought-together return now (the serving code
    itself, with `log=False`: a preview is not an impression and never counts in CTR)."""
    filters = Filters(k=PREVIEW_SIZE)
    similar = recommend_for_item(item_id=item_id, kind="similar", filters=filters, log=False)
    together = recommend_for_item(
        item_id=item_id, kind="bought_together", filters=filters, log=False
    )
    return {
        "similar": _with_titles(similar.items),
        "similar_source": f"{similar.model_version} · {similar.strategy}",
        "bought_together": _with_titles(together.items),
        "bought_together_source": f"{together.model_version} · {together.strategy}",
        # Said out loud: otherwise the two lists look like the same list shown twice.
        "bought_together_borrowed": bool(together.items)
        and not together.strategy.startswith("cooccurrence"),
    }


def shopper_recommendations(*, user_id: str) -> dict[str, Any]:
    """The shopper's current list as the API serves it (not logged as an impression), with
    the model version and strategy that produced it: the "why did they see this" view."""
    body = explained_list(scenario="personal", subject=user_id, k=PREVIEW_SIZE)
    items = _with_titles([(row["item_id"], row["score"]) for row in body["items"]])
    for item, row in zip(items, body["items"], strict=True):
        item["reason"] = reason_text(row["reason"])
    return {
        "recommendations": items,
        "recommendations_source": (
            f"Served by model {body['model_version']} with strategy {body['strategy']!r}."
        ),
    }
