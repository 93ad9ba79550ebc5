"""Model artifacts on an S3-compatible object store (issue 18, item 5), against a real S3 HTTP
server (moto's standalone server in a process of its own): training here uploads the artifact
under the store's prefix with the manifest last, a web process started from the environment
alone downloads it into its own local cache and serves it, a store never loads another's
prefix, a half-uploaded artifact is never loaded, deletion removes the objects and the copy."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import boto3
import orjson
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.recommendations import services
from apps.recommendations.model_store import (
    MANIFEST,
    artifact_belongs_to,
    artifact_delete,
    artifact_dir,
    artifact_save,
    models,
)
from apps.recommendations.models import ModelVersion
from apps.recommendations.movielens import movielens_ingest
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_create
from ml.model import RecommenderModel
from tests.factories import api_key_for, subscribe_store
from tests.faults.conftest import server_env, test_database_url
from tests.processes import BIN, HOST, ProcessSet, free_port, wait_until
from tests.recommendations.conftest import TINY_CONFIG, _an_hour_ago, clear_store_keys

pytestmark = pytest.mark.django_db

REGION = "us-east-1"


def _answers(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on a free port, recording every request it receives, with a bucket of
    this run; `env` configures a process for it, `storage` is the same as a STORAGES entry."""
    logs = tmp_path_factory.mktemp("s3-server")
    recording = logs / "requests.jsonl"
    port = free_port()
    with ProcessSet(logs) as procs:
        server = procs.start(
            "moto",
            [BIN / "moto_server", "-H", HOST, "-p", str(port)],
            env={"MOTO_ENABLE_RECORDING": "1", "MOTO_RECORDER_FILEPATH": str(recording)},
            port=port,
        )
        wait_until(
            lambda: procs._check_alive(server) and _answers(port),
            timeout=60,
            message="moto_server to listen",
        )
        endpoint = f"http://{HOST}:{port}"
        bucket = f"shelfsense-{secrets.token_hex(4)}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="test-key",
            aws_secret_access_key="test-secret",
        )
        client.create_bucket(Bucket=bucket)
        env = {
            "STORAGE_BACKEND": "s3",
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
        }
        storage = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "region_name": REGION,
                "access_key": "test-key",
                "secret_key": "test-secret",
                "default_acl": None,
                "file_overwrite": True,
            },
        }
        yield SimpleNamespace(
            client=client, bucket=bucket, env=env, storage=storage, recording=recording
        )


@pytest.fixture(scope="module")
def s3_settings(s3, tmp_path_factory):
    """This process stores artifacts and exports in the bucket, with its own empty cache."""
    override = override_settings(
        STORAGES={**settings.STORAGES, "default": s3.storage, "artifacts": s3.storage},
        MEDIA_ROOT=str(tmp_path_factory.mktemp("s3-media")),
        ARTIFACT_CACHE_DIR=str(tmp_path_factory.mktemp("s3-cache")),
    )
    override.enable()
    yield Path(settings.ARTIFACT_CACHE_DIR)
    override.disable()


def _train_and_activate() -> ModelVersion:
    version = services.model_version_start(
        actor_label="test", config=TINY_CONFIG, dispatch=False, plan_limited=False
    )
    version = services.model_version_train(version_id=version.pk, precompute="none")
    if version.status == ModelVersion.Status.READY:
        version = services.model_version_activate(
            version=version, actor_label="test", precompute="none"
        )
    assert version.status == ModelVersion.Status.ACTIVE, (version.status, version.error)
    return version


@pytest.fixture(scope="module")
def s3_stores(django_db_setup, django_db_blocker, s3_settings, movielens):
    """Stores s3-a and s3-b, committed, each with an active model trained in this process and
    stored in the bucket only, and a committed API key of store A (for a server process)."""
    with django_db_blocker.unblock():
        a = tenant_create(slug="s3-a", name="S3 A")
        b = tenant_create(slug="s3-b", name="S3 B")
        versions = {}
        for store, prefix in ((a, "a"), (b, "b")):
            subscribe_store(store, "growth")
            with tenant_context(store):
                movielens_ingest(movielens, item_prefix=prefix, newest_at=_an_hour_ago())
                versions[prefix] = _train_and_activate()
        _, key_a = api_key_for(a, scopes=("recommend",))
        connection.set_schema_to_public()
    yield SimpleNamespace(a=a, b=b, version_a=versions["a"], version_b=versions["b"], key_a=key_a)
    with django_db_blocker.unblock():
        for tenant in (a, b):
            clear_store_keys(tenant.schema_name)
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Tenant.objects.filter(pk=tenant.pk).delete()
        connection.set_schema_to_public()


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))


def _copy(s3, source: str, target: str, *, without: str | None = None) -> None:
    """Copy an artifact's objects to another folder inside the bucket (server side)."""
    for key in _keys(s3, f"{source}/"):
        name = key.removeprefix(f"{source}/")
        if name != without:
            s3.client.copy_object(
                Bucket=s3.bucket,
                Key=f"{target}/{name}",
                CopySource={"Bucket": s3.bucket, "Key": key},
            )


def test_training_uploads_each_file_under_the_stores_prefix_manifest_last(s3, s3_stores):
    # given store A's version trained in this process with the S3 storage
    version = s3_stores.version_a
    schema = s3_stores.a.schema_name
    name = f"models/{schema}/{version.number}"

    # then its artifact is in the bucket under the store's prefix, and nowhere on local disk
    assert version.artifact_path == name
    files = [key.removeprefix(f"{name}/") for key in _keys(s3, f"models/{schema}/")]
    assert set(files) == {"arrays.npz", MANIFEST, "ranker.txt"}
    assert not (Path(settings.MEDIA_ROOT) / "models").exists()

    # and the server received the manifest after every other file of the folder
    puts = [
        entry["url"].split(f"/{s3.bucket}/", 1)[1]
        for entry in map(json.loads, s3.recording.read_text().splitlines())
        if entry["method"] == "PUT" and f"/{s3.bucket}/{name}/" in entry["url"]
    ]
    assert sorted(puts) == sorted(f"{name}/{file}" for file in files)
    assert puts[-1] == f"{name}/{MANIFEST}"


def _recommend(port: int, key: str, shopper: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request(
            "GET",
            f"/api/v1/recommendations/users/{shopper}?k=5",
            headers={"Host": store_domain("s3-a"), "Authorization": f"Bearer {key}"},
        )
        response = conn.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        conn.close()


def test_a_web_process_serves_the_model_another_process_trained(s3, s3_stores, tmp_path):
    # given store A's model, trained here, in the bucket only; no precomputed lists in Redis;
    # and a web server configured by environment alone, with empty media and cache folders
    version = s3_stores.version_a
    schema = s3_stores.a.schema_name
    clear_store_keys(schema)
    cache = tmp_path / "web-cache"
    env = server_env(
        database_url=test_database_url(),
        redis_url=settings.REDIS_URL,
        MEDIA_ROOT=str(tmp_path / "web-media"),
        ARTIFACT_CACHE_DIR=str(cache),
        **s3.env,
    )

    with ProcessSet(tmp_path / "logs") as procs:
        web = procs.web("granian", env=env, workers=1, threads=1)
        # when a shopper asks it for recommendations
        status, body = _recommend(web.port, s3_stores.key_a, "1")
        logs = procs.logs()

    # then it answers from that model, which it downloaded into its own cache
    assert status == 200, (body, logs)
    assert body["model_version"] == version.label, logs
    assert body["strategy"] == version.metrics["final"]["strategy"], logs
    assert len(body["items"]) == 5
    assert all(row["item_id"].startswith("a") for row in body["items"])
    copy = cache / "models" / schema / str(version.number)
    stored = _keys(s3, f"{version.artifact_path}/")
    assert sorted(path.name for path in copy.iterdir()) == sorted(
        key.rsplit("/", 1)[1] for key in stored
    )
    for stored_key in stored:
        remote = s3.client.get_object(Bucket=s3.bucket, Key=stored_key)["Body"].read()
        assert (copy / stored_key.rsplit("/", 1)[1]).read_bytes() == remote
    assert not (tmp_path / "web-media" / "models").exists()


@pytest.mark.parametrize(
    ("name", "schema", "expected"),
    [
        ("models/store_b/3", "store_b", True),
        ("models/store_a/3", "store_b", False),
        ("models/store_b/../store_a/3", "store_b", False),
        ("models/store_b", "store_b", False),
        ("models/store_bb/3", "store_b", False),
        ("exports/store_b/3", "store_b", False),
    ],
)
def test_an_artifact_belongs_to_the_store_of_its_prefix(name, schema, expected):
    assert artifact_belongs_to(name, schema) is expected


def test_a_store_cannot_load_another_stores_artifact(s3_stores, s3_settings):
    # given store A's artifact in the bucket, not yet in this process's cache
    version_a = s3_stores.version_a
    models.forget()

    # when store B's serving is handed store A's key prefix
    with pytest.raises(ValueError, match="is not under"):
        models.get(s3_stores.b.schema_name, version_a.pk, version_a.artifact_path)

    # then nothing was downloaded nor loaded for either store
    assert not (s3_settings / "models" / s3_stores.a.schema_name).exists()
    assert models.keys() == []


def test_each_store_loads_its_own_model_from_the_bucket(s3_stores, s3_settings):
    # given both stores' artifacts in the bucket and an empty per-process LRU
    models.forget()

    # when each store's model is loaded through the serving LRU
    loaded_a = models.get(
        s3_stores.a.schema_name, s3_stores.version_a.pk, s3_stores.version_a.artifact_path
    )
    loaded_b = models.get(
        s3_stores.b.schema_name, s3_stores.version_b.pk, s3_stores.version_b.artifact_path
    )

    # then each holds its own store's items, cached under its own schema
    assert all(item.startswith("a") for item in loaded_a.model.item_index.ids.tolist())
    assert all(item.startswith("b") for item in loaded_b.model.item_index.ids.tolist())
    for store, version in ((s3_stores.a, s3_stores.version_a), (s3_stores.b, s3_stores.version_b)):
        assert (
            s3_settings / "models" / store.schema_name / str(version.number) / MANIFEST
        ).exists()
    models.forget()


def test_a_half_uploaded_artifact_is_not_loaded(s3, s3_stores, s3_settings):
    # given every file of an artifact in the bucket except its manifest (an upload cut short)
    schema = s3_stores.a.schema_name
    name = f"models/{schema}/90"
    _copy(s3, s3_stores.version_a.artifact_path, name, without=MANIFEST)
    assert len(_keys(s3, f"{name}/")) == 2

    # when serving asks for it
    with pytest.raises(FileNotFoundError, match="missing or incomplete"):
        models.get(schema, 10_090, name)

    # then nothing was loaded and nothing is left in the cache, not even a partial download
    assert models.keys() == []
    assert not (s3_settings / name).exists()
    assert [p.name for p in (s3_settings / "models" / schema).glob(".download-*")] == []


def test_deleting_an_artifact_removes_its_objects_and_the_local_copy(s3, s3_stores, s3_settings):
    # given a complete artifact of store A in the bucket, loaded once (so cached locally)
    schema = s3_stores.a.schema_name
    name = f"models/{schema}/91"
    _copy(s3, s3_stores.version_a.artifact_path, name)
    local = artifact_dir(name)
    assert local == s3_settings / name
    assert (local / MANIFEST).exists()

    # when it is deleted
    artifact_delete(name)

    # then its objects and its local copy are gone; the store's active version is untouched
    assert _keys(s3, f"{name}/") == []
    assert not local.exists()
    assert len(_keys(s3, f"{s3_stores.version_a.artifact_path}/")) == 3
    with pytest.raises(FileNotFoundError):
        artifact_dir(name)


def test_saving_again_replaces_an_earlier_attempt(s3, s3_stores, s3_settings):
    # given a leftover of a failed attempt at version 92: a stray file and no manifest
    schema = s3_stores.a.schema_name
    name = f"models/{schema}/92"
    s3.client.put_object(Bucket=s3.bucket, Key=f"{name}/stray.bin", Body=b"old")
    model = RecommenderModel.load(artifact_dir(s3_stores.version_a.artifact_path))

    # when version 92 is saved
    assert artifact_save(model, schema_name=schema, number=92) == name

    # then the folder holds exactly the new artifact, which loads
    assert [key.removeprefix(f"{name}/") for key in _keys(s3, f"{name}/")] == [
        "arrays.npz",
        MANIFEST,
        "ranker.txt",
    ]
    assert RecommenderModel.load(artifact_dir(name)).n_items == model.n_items
    artifact_delete(name)


def test_the_default_storage_for_exports_is_the_bucket_too(s3, s3_settings):
    # when a file is saved through the default storage (batch job exports use it)
    name = default_storage.save("batchjobs/s3-probe/result.csv", ContentFile(b"shopper,item\n"))

    # then it is an object of the bucket
    try:
        body = s3.client.get_object(Bucket=s3.bucket, Key=name)["Body"].read()
        assert body == b"shopper,item\n"
        assert not (Path(settings.MEDIA_ROOT) / name).exists()
    finally:
        default_storage.delete(name)


def test_a_file_system_storage_serves_in_place(s3_stores, tmp_path):
    # given a trained model and the `make run` storage: the file system under MEDIA_ROOT
    model = RecommenderModel.load(artifact_dir(s3_stores.version_a.artifact_path))
    media = tmp_path / "media"
    file_system = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    with override_settings(
        STORAGES={**settings.STORAGES, "artifacts": file_system},
        MEDIA_ROOT=str(media),
        ARTIFACT_CACHE_DIR="",
    ):
        # when it is saved and looked up
        name = artifact_save(model, schema_name="store_fs", number=4)
        folder = artifact_dir(name)

        # then it is read where it was written, with no copy and no staging folder left
        assert folder == media / "models" / "store_fs" / "4"
        assert sorted(path.name for path in folder.iterdir()) == [
            "arrays.npz",
            MANIFEST,
            "ranker.txt",
        ]
        assert [path.name for path in folder.parent.iterdir()] == ["4"]
        assert not (media / "artifact-cache").exists()
        assert RecommenderModel.load(folder).n_items == model.n_items

        artifact_delete(name)
        assert not folder.exists()


def test_processes_downloading_at_once_each_get_the_complete_copy(s3, s3_stores, s3_settings):
    # given a complete artifact of store A in the bucket, not in the cache
    schema = s3_stores.a.schema_name
    name = f"models/{schema}/93"
    _copy(s3, s3_stores.version_a.artifact_path, name)

    # when four threads (as four processes on one machine would) ask for it at once
    def load(_):
        folder = artifact_dir(name)
        return folder, RecommenderModel.load(folder).n_items

    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(pool.map(load, range(4)))

    # then each loads the same complete folder, and no partial download is left behind
    n_items = RecommenderModel.load(artifact_dir(s3_stores.version_a.artifact_path)).n_items
    assert loaded == [(s3_settings / name, n_items)] * 4
    for key in _keys(s3, f"{name}/"):
        remote = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        assert (s3_settings / key).read_bytes() == remote
    assert [p.name for p in (s3_settings / "models" / schema).glob(".download-*")] == []
    artifact_delete(name)


def test_the_s3_backend_needs_a_bucket():
    # when settings load with STORAGE_BACKEND=s3 and no bucket
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then they refuse, naming the variable
    assert result.returncode == 1
    assert "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME." in result.stderr
