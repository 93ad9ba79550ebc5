"""Embedded PostgreSQL and Redis for local development and the test suite, by subject:

- `common`: settings from the environment, the data folder's layout, `ServiceError`;
- `binaries`: where the bundled PostgreSQL and redis-server binaries are;
- `accounts`: the unprivileged account the servers run as under root, data folder ownership;
- `processes`: running a server command, ports (who answers, waiting for one), logs;
- `postgres_server` and `redis_server`: start, reuse and stop each server;
- `commands`: `up`, `down`, `status` and the command line.

`deploy/local/services.py` is the entry point (script and import-by-path) and re-exports the
public names; see deploy/local/README.md for the contract.
"""
