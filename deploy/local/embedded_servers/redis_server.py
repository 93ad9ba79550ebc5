"""The embedded Redis: its config file (rewritten on every `up`), start as a daemon, recognise
our server on the port (its INFO names our config file), wait out AOF loading, and stop it with
SHUTDOWN SAVE. Talks to Redis through redis-py, with retries off: a retried SHUTDOWN would
reconnect to a server on its way down and make a stop look like an outage."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .accounts import grant_traversal, own_data_dir
from .binaries import redis_server_binary
from .common import HOST, START_TIMEOUT_S, Account, ServiceError, Settings, log
from .processes import port_answers, port_owner, run, tail, wait_for_port


class NotRedisError(Exception):
    """What answered on the port does not speak the Redis protocol (or hung up)."""


class RedisReplyError(Exception):
    """Redis answered with an error reply (``ERR ...``, ``LOADING ...``)."""


def _client(port: int) -> redis.Redis:
    return redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _call(port: int, command: str, *args: str) -> object:
    """Send one command to 127.0.0.1:`port`; the decoded reply.

    Raises NotRedisError (nothing listening, hung up, not the Redis protocol) and
    RedisReplyError (an error reply; a server still loading its data answers ``LOADING ...``).
    """
    client = _client(port)
    try:
        return client.execute_command(command, *args)
    except redis.BusyLoadingError as exc:  # a ConnectionError subclass, but a reply
        raise RedisReplyError(f"LOADING {exc}") from exc
    except redis.ResponseError as exc:
        raise RedisReplyError(str(exc)) from exc
    except (redis.RedisError, OSError) as exc:
        raise NotRedisError(str(exc)) from exc
    finally:
        client.close()


def redis_ping(port: int) -> bool:
    """True once the Redis on `port` answers PING; raises NotRedisError / RedisReplyError."""
    return _call(port, "PING") in (True, "PONG")


def redis_is_ours(settings: Settings) -> bool:
    """True if our redis answers on its port; False if nothing listens there.

    Raises ServiceError if something else holds the port: another Redis (its INFO names a
    different config file) or something that does not speak Redis at all.
    """
    port = settings.redis_port
    if not port_answers(port):
        return False
    try:
        info = _call(port, "INFO", "server")
    except NotRedisError:
        what = port_owner(port)
    except RedisReplyError as exc:
        what = f"a Redis we did not start ({exc})"
    else:
        config_file = info.get("config_file") if isinstance(info, dict) else None
        if config_file == str(settings.redis_conf):
            return True
        what = "a Redis we did not start"
    raise ServiceError(
        f"{HOST}:{port} is already in use by {what}; stop it or pick another port with "
        "LOCAL_REDIS_PORT=..."
    )


def _redis_quote(value: Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_redis_conf(settings: Settings) -> None:
    """Write the server's config file (our port, pid file, log and data folder, persistence)."""
    settings.redis_conf.write_text(
        "# Written by deploy/local/services.py on every `up`; edits are overwritten.\n"
        f"bind {HOST}\n"
        f"port {settings.redis_port}\n"
        "protected-mode yes\n"
        "daemonize yes\n"
        f"pidfile {_redis_quote(settings.redis_pidfile)}\n"
        f"logfile {_redis_quote(settings.redis_log)}\n"
        f"dir {_redis_quote(settings.redis_data)}\n"
        # Data must survive `down`/`up`: an append-only file fsynced every second, plus
        # the default RDB snapshots (SHUTDOWN also writes one).
        "appendonly yes\n"
        "appendfsync everysec\n"
        "save 3600 1\n"
        "save 300 100\n"
        "save 60 10000\n"
    )
    settings.redis_conf.chmod(0o644)


def redis_up(settings: Settings, account: Account | None) -> None:
    """Start our Redis (or reuse it) and return once it answers PING (its data loaded).
    ServiceError when it cannot start or goes away."""
    if redis_is_ours(settings):
        log.info("redis: reusing the server on %s:%s", HOST, settings.redis_port)
        return
    binary = redis_server_binary()
    redis_log = settings.redis_log
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    grant_traversal(binary.parent, account)
    grant_traversal(settings.data_dir, account)
    own_data_dir(settings.redis_data, account)
    write_redis_conf(settings)
    log.info("redis: starting on %s:%s", HOST, settings.redis_port)
    try:
        # daemonizes, returns
        run([binary, settings.redis_conf], account=account, cwd=settings.redis_data)
        wait_for_port(settings.redis_port, "Redis", redis_log)
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n--- {redis_log} ---\n{tail(redis_log)}") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # the port opens before a large AOF has been loaded
        try:
            redis_ping(settings.redis_port)
            return
        except NotRedisError as exc:
            detail = f"{exc}\n--- {redis_log} ---\n{tail(redis_log)}"
            raise ServiceError(f"Redis went away after starting: {detail}") from None
        except RedisReplyError as exc:
            if not str(exc).startswith("LOADING"):
                raise ServiceError(f"Redis answered PING with {exc}") from None
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis still loading data after {START_TIMEOUT_S}s") from None
            time.sleep(0.1)


def redis_down(settings: Settings) -> None:
    """Stop our Redis with SHUTDOWN SAVE and wait for its port to close; not running (or
    someone else's server on the port, logged) is not an error."""
    try:
        running = redis_is_ours(settings)
    except ServiceError as exc:
        log.warning("redis: ours is not running (%s)", exc)
        return
    if not running:
        log.info("redis: not running")
        return
    log.info("redis: stopping (SHUTDOWN SAVE)")
    try:
        _call(settings.redis_port, "SHUTDOWN", "SAVE")
    except NotRedisError:
        pass  # the expected outcome: Redis exits without replying
    except RedisReplyError as exc:
        raise ServiceError(f"Redis refused to shut down: {exc}; see {settings.redis_log}") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while port_answers(settings.redis_port):
        if time.monotonic() > deadline:
            raise ServiceError(
                f"Redis still answers on {settings.redis_port}; see {settings.redis_log}"
            )
        time.sleep(0.05)
