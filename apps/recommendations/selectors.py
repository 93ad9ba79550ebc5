"""Reads of the recommendations app: model versions, experiments and their results, and the
attribution of clicks and purchases to served lists. The request-time recommendation lists
are in serving.py."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from apps.core.errors import ApplicationError
from apps.recommendations.models import Experiment, ModelVersion

METRIC_COLUMNS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-number")


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


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


# A served list is clicked / converted when an event carrying its recommendation_id is a click
# / purchase of one of the items in the list.
_OUTCOMES_SQL = """
SELECT {group}, count(*) AS impressions,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM catalog_event e
           WHERE e.recommendation_id = i.recommendation_id AND e.type = 'click'
             AND e.item_id = ANY(i.item_ids))) AS clicks,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM catalog_event e
           WHERE e.recommendation_id = i.recommendation_id AND e.type = 'purchase'
             AND e.item_id = ANY(i.item_ids))) AS conversions
FROM recommendations_impression i
WHERE {where}
GROUP BY {group}
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
            _OUTCOMES_SQL.format(group="i.arm_id", where="i.experiment_id = %s"), [experiment.pk]
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


def attribution_summary(*, since: datetime) -> list[dict[str, Any]]:
    """Served lists since `since` by surface and strategy, with clicks and purchases
    attributed through their recommendation_id (dashboard)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _OUTCOMES_SQL.format(group="i.surface, i.strategy", where="i.served_at >= %s"),
            [since],
        )
        rows = cursor.fetchall()
    return [
        {
            "surface": surface,
            "strategy": strategy,
            "impressions": n,
            "clicks": clicks,
            "conversions": conversions,
            "ctr": _rate(clicks, n),
            "conversion_rate": _rate(conversions, n),
        }
        for surface, strategy, n, clicks, conversions in sorted(rows)
    ]
