#!/usr/bin/env bash
# Serves the draft-check API (python -m service) over the index `make run` built; used by `make serve`.
#   scripts/serve.sh [service options...]      (ES_URL, ES_INDEX, SERVE_HOST, SERVE_PORT from the environment)
# Without NEAR_DUP_API_KEYS / NEAR_DUP_API_KEYS_SECRET a random local key is made once, kept (mode 600)
# in $SERVICES_DIR/api-key, and used; its path is printed, never the key.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services="${SERVICES_DIR:-$repo/.services}"
py="${PY:-$repo/.venv/bin/python}"
if [ -z "${NEAR_DUP_API_KEYS:-}${NEAR_DUP_API_KEYS_SECRET:-}" ]; then
  key_file="$services/api-key"
  if [ ! -s "$key_file" ]; then
    mkdir -p "$services"
    (umask 077 && "$py" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$key_file")
  fi
  NEAR_DUP_API_KEYS="$(cat "$key_file")"
  export NEAR_DUP_API_KEYS
  echo "local API key in $key_file, e.g.:"
  echo "  curl -H \"Authorization: Bearer \$(cat $key_file)\" -H 'Content-Type: text/plain' --data-binary @draft.txt http://${SERVE_HOST:-127.0.0.1}:${SERVE_PORT:-8000}/v1/check"
fi
cd "$repo"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$py" -m service --es_url "${ES_URL:-http://127.0.0.1:9200}" --es_index "${ES_INDEX:-dedup-documents}" \
  --host "${SERVE_HOST:-127.0.0.1}" --port "${SERVE_PORT:-8000}" "$@"
