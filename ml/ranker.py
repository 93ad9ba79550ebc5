"""LightGBM lambdarank re-ranker over the model's merged candidates."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from ml.model import FEATURE_NAMES, RecommenderModel
from ml.model.state import stored_state
from ml.sparse_utils import csr_gather


@dataclass
class RankerParams:
    """LightGBM settings; ``max_rows`` caps the training frame (shoppers are sampled)."""

    n_estimators: int = 60
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_child_samples: int = 40
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_rows: int = 250_000

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> RankerParams:
        kinds = {f: type(v) for f, v in asdict(cls()).items()}
        return cls(**{k: kinds[k](v) for k, v in data.items() if k in kinds})


def training_frame(
    model: RecommenderModel,
    users: np.ndarray,
    truth: sp.csr_matrix,
    *,
    exclude_seen: bool,
    as_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, binary labels and group sizes for ``users`` (model row indices), computed as
    of ``as_of`` (unix seconds per shopper, their prediction time; default: the model's
    reference time) through the serving path's :func:`~ml.model.state.stored_state`.

    ``truth`` rows align with ``users`` (columns = model item indices; extra columns for
    unknown items are ignored). Shoppers whose candidates hold no positive, or only positives,
    teach lambdarank nothing and are dropped.
    """
    xs, ys, groups = [], [], []
    width = model.pool_width(exclude_seen)
    batch = max(1, model.serving.batch_cells // width)
    truth = sp.csr_matrix(truth)
    truth.sort_indices()
    for start in range(0, len(users), batch):
        u = users[start : start + batch]
        state = stored_state(model, u, None if as_of is None else as_of[start : start + batch])
        cands, als_rank = model.candidates(state, exclude_seen)
        x = model.features(state, cands, als_rank)
        local = np.broadcast_to(np.arange(start, start + len(u))[:, None], cands.shape)
        y = csr_gather(
            truth.indptr,
            truth.indices,
            np.ones(truth.nnz),
            truth.shape[1],
            local.ravel(),
            cands.ravel(),
        ).reshape(cands.shape)
        valid = cands >= 0
        pos = ((y > 0) & valid).sum(axis=1)
        n_valid = valid.sum(axis=1)
        useful = (pos > 0) & (pos < n_valid)
        for r in np.flatnonzero(useful):
            keep = valid[r]
            xs.append(x.reshape(len(u), cands.shape[1], -1)[r][keep])
            ys.append((y[r][keep] > 0).astype(np.int32))
            groups.append(int(keep.sum()))
    if not groups:
        return (
            np.zeros((0, len(FEATURE_NAMES)), np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )
    return np.concatenate(xs), np.concatenate(ys), np.array(groups, dtype=np.int64)


def fit_ranker(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    params: RankerParams,
    *,
    k: int = 10,
    random_state: int = 0,
    num_threads: int = 1,
) -> lgb.Booster:
    """Train an ``LGBMRanker`` (lambdarank, NDCG@k) and return its booster.

    One thread by default: the frame is small (<= ``max_rows``) and a second OpenMP thread buys
    little, while on a busy machine it can make training several times slower.
    """
    ranker = lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        num_leaves=params.num_leaves,
        min_child_samples=params.min_child_samples,
        subsample=params.subsample,
        subsample_freq=1,
        colsample_bytree=params.colsample_bytree,
        reg_lambda=params.reg_lambda,
        random_state=random_state,
        n_jobs=num_threads,
        verbose=-1,
        lambdarank_truncation_level=max(2 * k, 20),
    )
    ranker.fit(x, y, group=groups, feature_name=list(FEATURE_NAMES))
    return ranker.booster_
