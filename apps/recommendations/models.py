"""A store's trained models, A/B experiments and the log of served recommendation lists."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """One training run of the store's recommender and, when it succeeded, its artifact.

    At most one version is `training` and at most one is `active` at a time (partial unique
    constraints, so two concurrent starts or activations cannot both succeed).
    """

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        RETIRED = "retired", "Retired"

    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    # ml.pipeline.TrainingConfig.to_dict() this version was trained with.
    config = models.JSONField(default=dict, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    # {"events", "shoppers", "items"} read from the store for this training.
    counts = models.JSONField(default=dict, blank=True)
    # ml.pipeline.train() metrics: "popularity", "als", "reranker", "final", timings, ...
    metrics = models.JSONField(default=dict, blank=True)
    strategy = models.CharField(max_length=32, blank=True)
    # Folder of the artifact in Django's default storage: models/<schema>/<number>.
    artifact_path = models.CharField(max_length=255, blank=True)
    # A user of the public schema; a plain id so the version survives the user's removal.
    started_by_id = models.BigIntegerField(null=True, blank=True)
    started_by_label = models.CharField(max_length=255, blank=True)
    # Why training failed, or why a ready version was not activated.
    error = models.TextField(blank=True)
    activation_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="training"), name="one_training_version"
            ),
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_version"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.number} ({self.status})"

    @property
    def label(self) -> str:
        """The public name of the version, as served in `model_version`."""
        return f"v{self.number}"

    @property
    def ndcg(self) -> float | None:
        """NDCG@10 of the delivered model on the held-out test split (None: not evaluated)."""
        value = (self.metrics.get("final") or {}).get("ndcg@10")
        return float(value) if value is not None else None


class Experiment(models.Model):
    """An A/B test between arms; shoppers are bucketed by hash(experiment, shopper). At most
    one experiment runs at a time per store."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    created_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="one_running_experiment"
            )
        ]

    def __str__(self) -> str:
        return self.name


class ExperimentArm(models.Model):
    """One arm: a model version, or a strategy of the active model (`model`, `trending`,
    `popularity`). The first arm (lowest position) is the control of the z-tests."""

    class Strategy(models.TextChoices):
        MODEL = "model", "Active model"
        TRENDING = "trending", "Trending"
        POPULARITY = "popularity", "Popularity"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=50)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.MODEL)
    traffic_percent = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["experiment_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name"),
            models.UniqueConstraint(fields=["experiment", "position"], name="arm_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.name}"


class Impression(models.Model):
    """One served list. Written in batches off the request path (see impressions.py); click
    and purchase events carrying the same recommendation_id are attributed to it."""

    recommendation_id = models.CharField(max_length=64)
    surface = models.CharField(max_length=16)
    user_id = models.CharField(max_length=128, blank=True)
    # The browsing session a session list was served to ("" for other lists): only that
    # session's events are attributed to it (selectors._ATTRIBUTED_SQL). An opaque visitor id:
    # once a shopper's linked sessions are erased, nothing ties it to them.
    session_id = models.CharField(max_length=128, blank=True, default="")
    model_version_number = models.PositiveIntegerField(null=True, blank=True)
    strategy = models.CharField(max_length=32)
    # Plain ids: the log is append-only and written by COPY; experiments are never deleted.
    experiment_id = models.BigIntegerField(null=True, blank=True)
    arm_id = models.BigIntegerField(null=True, blank=True)
    item_ids = ArrayField(models.CharField(max_length=128), default=list)
    served_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["recommendation_id"], name="impression_rec_id"),
            models.Index(fields=["served_at"], name="impression_served_at"),
            models.Index(
                fields=["experiment_id", "arm_id"],
                condition=Q(experiment_id__isnull=False),
                name="impression_experiment_arm",
            ),
        ]

    def __str__(self) -> str:
        return self.recommendation_id
