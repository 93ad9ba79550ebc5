#!/bin/sh
# The HTTP web service: the one definition of how production serves HTTP (the Dockerfile's CMD;
# bench/serving.py and bench/ingest.py start it too). Granian runs the WSGI application: on 2
# cores it served 1,277 cached recommendation req/s and 27,425 ingested events/s where gunicorn
# gthread managed 895 and 25,262 (bench/, same machine and data).
#
# Websockets (/ws/) are not served here: the `ws` service runs uvicorn config.asgi:application
# and the proxy in front routes /ws/ to it (deploy/docker-compose.yml, deploy/k8s/ws.yaml).
#
# Environment (documented in .env.example):
#   WEB_HOST, WEB_PORT          listen address (default 0.0.0.0:8000)
#   WEB_CONCURRENCY             worker processes (default 2: one per core)
#   WEB_THREADS                 threads per worker running Django (default 2)
#   PROMETHEUS_MULTIPROC_DIR    where workers keep their metrics so /metrics adds them up;
#                               unset: a private temporary folder. Emptied at start either way.
set -eu

if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  PROMETHEUS_MULTIPROC_DIR=$(mktemp -d -t shelfsense-metrics-XXXXXX)
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete

exec "${GRANIAN:-granian}" --interface wsgi config.wsgi:application \
  --host "${WEB_HOST:-0.0.0.0}" --port "${WEB_PORT:-8000}" \
  --workers "${WEB_CONCURRENCY:-2}" --blocking-threads "${WEB_THREADS:-2}" \
  --respawn-failed-workers --no-access-log --log-level "$(echo "${LOG_LEVEL:-info}" | tr 'A-Z' 'a-z')"
