"""The OS account the servers run as. As root, PostgreSQL (and Redis, for safety) run as the
unprivileged system user `shelfsense-local`, which must own the data folders and be able to
reach the binaries; not root, everything runs as the caller and nothing is changed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from .common import SERVICE_ACCOUNT, Account, ServiceError, log


def service_account() -> Account | None:
    """The unprivileged account to run the servers as, or ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ServiceError(
                f"running as root needs the system user {SERVICE_ACCOUNT!r} and useradd is "
                "not available to create it; create it yourself or run as a normal user"
            ) from None
        log.info("creating system user %s (PostgreSQL will not run as root)", SERVICE_ACCOUNT)
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_ACCOUNT,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    grp.getgrgid(entry.pw_gid)  # fail early on a broken passwd/group pair
    return Account(name=SERVICE_ACCOUNT, uid=entry.pw_uid, gid=entry.pw_gid)


def data_owner(path: Path) -> Account | None:
    """As root, the account owning ``path`` (whoever started the server); else ``None``."""
    if os.geteuid() != 0 or not path.exists():
        return None
    import pwd

    st = path.stat()
    if st.st_uid == 0:
        return None
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return Account(name=name, uid=st.st_uid, gid=st.st_gid)


def _can_traverse(directory: Path, account: Account) -> bool:
    st = directory.stat()
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traversal(path: Path, account: Account | None) -> None:
    """Let ``account`` reach ``path``: add o+x (search only, not read) where missing.

    This is the only permission change made outside the data directories, and only to
    directories that lack it (typically none; /root is the usual exception).
    """
    if account is None:
        return
    for directory in (path, *path.parents):
        if not _can_traverse(directory, account):
            log.warning("chmod o+x %s (so %s can reach %s)", directory, account.name, path)
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)


def own_data_dir(path: Path, account: Account | None) -> None:
    """Create ``path`` (mode 0700) and, as root, hand it and its contents to ``account``."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account is None:
        if path.stat().st_uid != os.geteuid():
            raise ServiceError(
                f"{path} belongs to uid {path.stat().st_uid}, not to you; run as that user, "
                "or as root, or remove the folder to start afresh"
            )
    elif path.stat().st_uid != account.uid or path.stat().st_gid != account.gid:
        if any(path.iterdir()):
            log.info("chown -R %s %s", account.name, path)
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                os.lchown(name, account.uid, account.gid)
    path.chmod(0o700)  # PostgreSQL refuses a data directory readable by others
