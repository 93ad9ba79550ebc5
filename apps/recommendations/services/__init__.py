"""Writes of the recommendations app, one module per subject (as Zulip's `zerver/actions/`):

- `training`: starting and running a training, its restart cap, and its outcome;
- `activation`: activating a version, rolling back, and the swap training shares;
- `precompute`: the shopper lists cached in Redis (precompute, a shopper's erasure);
- `schedules`: the store's nightly training;
- `experiments`: starting and stopping an A/B test;
- `metering`: persisting queued impressions and metering them;
- `common`: the store-schema guard and constants the others share.

Every function works on the current connection schema (the store's). The public services are
re-exported here, so callers write `from apps.recommendations import services` and
`services.model_version_start(...)`."""

from apps.recommendations.services.activation import model_version_activate, model_version_rollback
from apps.recommendations.services.common import API_KEY_LABEL_PREFIX, MODELS_LINK
from apps.recommendations.services.experiments import experiment_create, experiment_stop
from apps.recommendations.services.metering import impressions_persist_and_meter
from apps.recommendations.services.precompute import (
    PRECOMPUTE_BATCH,
    Precompute,
    PrecomputeReport,
    recommendations_precompute,
    shopper_recommendations_forget,
)
from apps.recommendations.services.schedules import NIGHTLY_TASK, training_schedule_ensure
from apps.recommendations.services.training import (
    TRAINING_MAX_STARTS,
    default_training_config,
    model_version_start,
    model_version_train,
    model_version_train_task_run,
    training_running,
)

__all__ = [
    "API_KEY_LABEL_PREFIX",
    "MODELS_LINK",
    "NIGHTLY_TASK",
    "PRECOMPUTE_BATCH",
    "TRAINING_MAX_STARTS",
    "Precompute",
    "PrecomputeReport",
    "default_training_config",
    "experiment_create",
    "experiment_stop",
    "impressions_persist_and_meter",
    "model_version_activate",
    "model_version_rollback",
    "model_version_start",
    "model_version_train",
    "model_version_train_task_run",
    "recommendations_precompute",
    "shopper_recommendations_forget",
    "training_running",
    "training_schedule_ensure",
]
