"""Usage anomaly detection on a store's API traffic.

Recording: every /api/ request of a store adds to that store's counters for the current minute
(a Redis hash `api_usage:<minute>` with fields total, 4xx, 401; kept for BASELINE_MINUTES + a
margin). The request path only adds to an in-process buffer (`api_request_count`, no I/O); a
daemon thread per process writes the buffer to Redis every USAGE_FLUSH_SECONDS in one pipeline
for all stores and minutes, so a minute's counts are complete about a second after it ends.
If Redis is unreachable the counts wait in the buffer (minutes older than the baseline window
are dropped).

The rule (evaluated once a minute per store that had API traffic in the last WATCH_SECONDS,
on the last complete minute `x`, against the
BASELINE_MINUTES minutes before it; see README → Usage anomalies):

- Baseline: an exponentially weighted moving average (EWMA, alpha = EWMA_ALPHA) of the
  per-minute value and of its squared deviation, oldest minute first. The spread used for the
  z-score is max(EW standard deviation, sqrt(mean), 1): at least Poisson noise, so a very
  steady series does not turn ordinary jitter into alarms.
- spike: x.total >= SPIKE_MIN_REQUESTS, x.total >= SPIKE_RATIO * mean and z >= Z_THRESHOLD.
- drop: mean >= DROP_MIN_BASELINE, x.total <= DROP_RATIO * mean and z <= -Z_THRESHOLD.
- auth_failures (a leaked or revoked key being tried?): x.401 >= AUTH_MIN_FAILURES, 401s are at
  least AUTH_MIN_RATE of the minute's requests, and the 401 count's z-score >= Z_THRESHOLD.
- client_errors: x.total >= ERROR_MIN_REQUESTS, the rate of 4xx other than 401 >= ERROR_MIN_RATE
  and at least ERROR_RATE_JUMP above the baseline rate of those.
- spike and drop need WARMUP_MINUTES of recorded history (a new store has no baseline); the
  auth and error rules rely on their absolute floors from the first minute.
- One flag per rule per COOLDOWN_MINUTES per store.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import redis

from apps.core.activity import Activity, store_mark_active
from apps.core.cache import redis_client, tenant_key
from apps.core.flusher import PeriodicFlusher

logger = logging.getLogger(__name__)

BASELINE_MINUTES = 60
WARMUP_MINUTES = 15
EWMA_ALPHA = 0.1
Z_THRESHOLD = 4.0
SPIKE_MIN_REQUESTS = 60
SPIKE_RATIO = 3.0
DROP_MIN_BASELINE = 30.0
DROP_RATIO = 0.2
AUTH_MIN_FAILURES = 20
AUTH_MIN_RATE = 0.5
ERROR_MIN_REQUESTS = 50
ERROR_MIN_RATE = 0.5
ERROR_RATE_JUMP = 0.3
COOLDOWN_MINUTES = 15
KEY_TTL_SECONDS = (BASELINE_MINUTES + 30) * 60
# A store is scanned while its last request is within the baseline window (and the minute being
# evaluated): after that every minute of its history is zero and no rule can fire.
WATCH_SECONDS = (BASELINE_MINUTES + 2) * 60
USAGE_FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class MinuteCounts:
    total: int = 0
    client_errors: int = 0
    auth_failures: int = 0


@dataclass(frozen=True)
class Flag:
    rule: str
    minute: int
    observed: float
    baseline: float
    message: str


def minute_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def _usage_key(minute: int, schema_name: str | None = None) -> str:
    return tenant_key("api_usage", minute, schema_name=schema_name)


# (schema, minute) -> [total, 4xx, 401] not yet written to Redis.
_UsageCounts = dict[tuple[str, int], list[int]]
_pending: _UsageCounts = {}
_pending_lock = threading.Lock()


def _add(counts: _UsageCounts, schema_name: str, minute: int, status_code: int) -> None:
    row = counts.get((schema_name, minute))
    if row is None:
        row = counts[(schema_name, minute)] = [0, 0, 0]
    row[0] += 1
    if 400 <= status_code < 500:
        row[1] += 1
        if status_code == 401:
            row[2] += 1


def _usage_write(counts: _UsageCounts) -> None:
    """Add `counts` to the stores' minute hashes in one pipeline (raises redis.RedisError)."""
    pipe = redis_client().pipeline(transaction=False)
    first: dict[str, int] = {}
    for (schema_name, minute), (total, errors, auth) in counts.items():
        key = _usage_key(minute, schema_name)
        pipe.hincrby(key, "total", total)
        if errors:
            pipe.hincrby(key, "4xx", errors)
        if auth:
            pipe.hincrby(key, "401", auth)
        pipe.expire(key, KEY_TTL_SECONDS)
        first[schema_name] = min(minute, first.get(schema_name, minute))
    for schema_name, minute in first.items():
        pipe.set(tenant_key("api_usage", "since", schema_name=schema_name), minute, nx=True)
    store_mark_active(pipe, Activity.API_TRAFFIC, first)
    pipe.execute()


def api_request_count(status_code: int, *, schema_name: str) -> None:
    """Count one API request of the store in this minute's bucket: in memory only, written to
    Redis by this process's flush thread within USAGE_FLUSH_SECONDS."""
    minute = int(time.time()) // 60
    with _pending_lock:
        _add(_pending, schema_name, minute, status_code)
    _flusher.ensure_started()


def api_usage_flush() -> int:
    """Write this process's buffered counts to Redis now; returns the requests written. On a
    Redis error the counts go back to the buffer (minutes past the baseline window dropped)."""
    global _pending
    with _pending_lock:
        counts, _pending = _pending, {}
    if not counts:
        return 0
    try:
        _usage_write(counts)
    except redis.RedisError as exc:
        oldest = int(time.time()) // 60 - BASELINE_MINUTES
        with _pending_lock:
            for (schema_name, minute), row in counts.items():
                if minute < oldest:
                    continue
                kept = _pending.setdefault((schema_name, minute), [0, 0, 0])
                for i in range(3):
                    kept[i] += row[i]
        logger.warning("API usage kept in memory: Redis unavailable (%s)", exc)
        return 0
    return sum(row[0] for row in counts.values())


_flusher = PeriodicFlusher("api-usage-flush", api_usage_flush, USAGE_FLUSH_SECONDS)


def usage_window(*, end_minute: int, minutes: int) -> tuple[list[MinuteCounts], int | None]:
    """Counts of the connection's store for the `minutes` minutes ending at `end_minute`
    (inclusive, oldest first), and the first minute ever recorded (None if never)."""
    pipe = redis_client().pipeline(transaction=False)
    for minute in range(end_minute - minutes + 1, end_minute + 1):
        pipe.hmget(_usage_key(minute), "total", "4xx", "401")
    pipe.get(tenant_key("api_usage", "since"))
    *rows, since = pipe.execute()
    counts = [
        MinuteCounts(int(total or 0), int(errors or 0), int(auth or 0))
        for total, errors, auth in rows
    ]
    return counts, int(since) if since is not None else None


def ewma(values: list[float], alpha: float = EWMA_ALPHA) -> tuple[float, float]:
    """(mean, standard deviation), exponentially weighted, oldest value first."""
    if not values:
        return 0.0, 0.0
    mean = values[0]
    variance = 0.0
    for value in values[1:]:
        deviation = value - mean
        increment = alpha * deviation
        mean += increment
        variance = (1 - alpha) * (variance + deviation * increment)
    return mean, math.sqrt(variance)


def _z(value: float, mean: float, sd: float) -> float:
    return (value - mean) / max(sd, math.sqrt(max(mean, 0.0)), 1.0)


def detect(history: list[MinuteCounts], current: MinuteCounts, minute: int) -> list[Flag]:
    """Apply the rule (module docstring) to the current minute against `history` (the minutes
    before it, oldest first, only those since the store's first recorded minute)."""
    flags: list[Flag] = []
    totals = [float(m.total) for m in history]
    mean, sd = ewma(totals)
    x = float(current.total)
    if len(history) >= WARMUP_MINUTES:
        z = _z(x, mean, sd)
        if x >= SPIKE_MIN_REQUESTS and x >= SPIKE_RATIO * mean and z >= Z_THRESHOLD:
            flags.append(
                Flag(
                    "spike",
                    minute,
                    x,
                    mean,
                    f"{int(x)} API requests in a minute, against a usual {mean:.0f}.",
                )
            )
        if mean >= DROP_MIN_BASELINE and x <= DROP_RATIO * mean and z <= -Z_THRESHOLD:
            flags.append(
                Flag(
                    "drop",
                    minute,
                    x,
                    mean,
                    f"Only {int(x)} API requests in a minute, against "
                    f"a usual {mean:.0f}: is an integration down?",
                )
            )
    auth_mean, auth_sd = ewma([float(m.auth_failures) for m in history])
    auth = float(current.auth_failures)
    if (
        auth >= AUTH_MIN_FAILURES
        and auth >= AUTH_MIN_RATE * max(x, 1.0)
        and _z(auth, auth_mean, auth_sd) >= Z_THRESHOLD
    ):
        flags.append(
            Flag(
                "auth_failures",
                minute,
                auth,
                auth_mean,
                f"{int(auth)} requests with an "
                "invalid or revoked API key in a minute: a leaked or stale key may be in use.",
            )
        )
    if x >= ERROR_MIN_REQUESTS:
        # 401s have their own rule; this one watches the other 4xx answers.
        rate = (current.client_errors - current.auth_failures) / x
        past_requests = sum(m.total for m in history)
        past_errors = sum(m.client_errors - m.auth_failures for m in history)
        past_rate = past_errors / past_requests if past_requests else 0
        if rate >= ERROR_MIN_RATE and rate - past_rate >= ERROR_RATE_JUMP:
            flags.append(
                Flag(
                    "client_errors",
                    minute,
                    rate,
                    past_rate,
                    f"{rate:.0%} of API requests "
                    f"failed with a 4xx error in a minute, against a usual {past_rate:.0%}.",
                )
            )
    return flags


def cooldown_claim(rule: str) -> bool:
    """True if `rule` may flag the connection's store now (and starts its cooldown)."""
    return bool(
        redis_client().set(
            tenant_key("api_usage", "cooldown", rule), 1, nx=True, ex=COOLDOWN_MINUTES * 60
        )
    )
