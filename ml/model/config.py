"""Constants and the serving budget shared by fitting, serving and item lists."""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_VERSION = 3  # 3: shopper statistics derived at prediction time, order-cycle features
STRATEGIES = ("popularity", "als", "als+rerank")
N_RECENT = 5  # recent items kept per shopper for similarity features and session candidates
MAX_CATS = 3  # categories per item used by category-affinity features
NEIGHBORS = 20
MAX_NEIGHBOR_ITEMS = 50_000  # neighbour tables are O(n^2 d): only the most popular items get one


@dataclass
class Recommendations:
    """A ranked list of ``(item_id, score)`` plus the strategy that produced it.

    Behaves like the list of items for iteration, ``len`` and indexing, so callers that only
    need the items can ignore ``strategy``. ``reasons``, when the ranking gave them, holds one
    reason per item in :meth:`~ml.explain.ListReasons.encoded`'s compact form.
    """

    items: list[tuple[str, float]]
    strategy: str
    reasons: list[list] | None = None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, float]:
        return self.items[i]

    @property
    def item_ids(self) -> list[str]:
        return [item for item, _ in self.items]


@dataclass
class ServingConfig:
    """Candidate budget for re-ranking (also used when training the ranker)."""

    als_candidates: int = 30
    trending_candidates: int = 10
    user_time_candidates: int = 10
    session_items: int = 3
    neighbor_candidates: int = 5
    seen_candidates: int = 40
    rerank_candidates: int = 60
    batch_cells: int = 40_000  # (shoppers x candidates) per vectorised batch
    threads: int = 2

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> ServingConfig:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})
