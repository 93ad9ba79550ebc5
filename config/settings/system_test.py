"""The processes of the system tests (tests/system/): web server, websocket server, Celery
worker and beat, started as subprocesses against the pytest run's database, Redis prefix and
queues (all taken from the environment, as in config.settings.test).

The one difference from the test settings: mail goes to files under EMAIL_FILE_PATH, where the
test reads it as a person reads their inbox (a subprocess has no locmem outbox to look at).
"""

from .base import env
from .test import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH")
