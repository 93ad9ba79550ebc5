# Sourced by the Makefile. For each of DATABASE_URL / REDIS_URL that is unset (after reading
# .env), start the embedded server under .data/ and export its URL; set ones are left alone.
# A failed start stops the make target (set -e): never fall back to some other server.
if [ -f .env ]; then
  set -a; source .env; set +a
fi
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  local_urls="$(.venv/bin/python deploy/local/services.py up)"
  while IFS='=' read -r key value; do
    if [ -n "$key" ] && [ -z "${!key:-}" ]; then
      export "$key=$value"
    fi
  done <<< "$local_urls"
fi
export DATABASE_URL REDIS_URL
