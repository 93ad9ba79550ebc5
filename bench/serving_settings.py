"""Production settings plus bench/serving_urls.py: what bench/serving.py serves."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.serving_urls"
