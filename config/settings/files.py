"""Where files live: trained model artifacts and batch job exports. Imported by base.py."""

from pathlib import Path

from config.settings.environment import BASE_DIR, env

# Files: "artifacts" holds trained models (apps/recommendations/model_store.py), "default" the
# batch job exports. STORAGE_BACKEND=filesystem (`make run`) keeps both under MEDIA_ROOT;
# STORAGE_BACKEND=s3 puts both in one S3-compatible bucket with the same key layout
# (models/<schema>/<number>/..., batchjobs/...). Serving memory-maps a local copy of an S3
# artifact, downloaded once into ARTIFACT_CACHE_DIR (default: MEDIA_ROOT/artifact-cache).
STORAGE_BACKEND = env("STORAGE_BACKEND", default="filesystem")
if STORAGE_BACKEND == "s3":
    if not env("AWS_STORAGE_BUCKET_NAME", default=""):
        raise ValueError("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME.")
    _FILE_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            # Empty for AWS itself; the URL of MinIO, Ceph, R2... otherwise.
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None) or None,
            "region_name": env("AWS_S3_REGION_NAME", default=None) or None,
            # Unset: boto3's own chain (instance profile, web identity / IRSA).
            "access_key": env("AWS_ACCESS_KEY_ID", default=None) or None,
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None) or None,
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default=None) or None,
            "location": env("AWS_LOCATION", default=""),
            "default_acl": None,
            "file_overwrite": True,
        },
    }
elif STORAGE_BACKEND == "filesystem":
    # No location: follows MEDIA_ROOT (also when a test overrides it).
    _FILE_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ValueError(f"STORAGE_BACKEND must be filesystem or s3, not {STORAGE_BACKEND!r}")
STORAGES = {
    "default": {**_FILE_STORAGE},
    "artifacts": {**_FILE_STORAGE},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media")))
# Local copies of remote model artifacts (S3), per machine; empty: MEDIA_ROOT/artifact-cache.
ARTIFACT_CACHE_DIR = env("ARTIFACT_CACHE_DIR", default="")
MEDIA_URL = "/media/"
