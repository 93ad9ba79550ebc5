"""The trained recommender artifact: fitting, serving, explaining, saving and loading.

A :class:`RecommenderModel` holds only numpy arrays, JSON-able metadata and (optionally) a
LightGBM booster, so it persists as ``arrays.npz`` + ``manifest.json`` + ``ranker.txt`` without
pickle. Serving is batched and vectorised: candidates from several generators are merged into a
fixed-width matrix per batch of shoppers, featurised with numpy gathers and re-ranked by
LightGBM in one call.

Strategies (``model.strategy``): ``"popularity"``, ``"als"`` (ALS scores only) and
``"als+rerank"`` (merged candidates re-ranked by LightGBM). Cold shoppers get ``"trending"`` (or
``"session"`` item-to-item when recent items are given).
"""

from ml.model.artifact import RecommenderModel
from ml.model.config import STRATEGIES, Recommendations, ServingConfig
from ml.model.features import FEATURE_NAMES, candidate_features
from ml.model.fit import FitOptions, attach_ranker, fit_model

__all__ = [
    "FEATURE_NAMES",
    "STRATEGIES",
    "FitOptions",
    "Recommendations",
    "RecommenderModel",
    "ServingConfig",
    "attach_ranker",
    "candidate_features",
    "fit_model",
]
