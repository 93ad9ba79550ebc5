"""Local development: `make run`. Debug tooling on, secrets optional."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])

# Serve static files straight from the source folders; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PUBLIC_PORT = env("PUBLIC_PORT", default=env("WEB_PORT", default="8000"))
