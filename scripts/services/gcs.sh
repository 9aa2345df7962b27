#!/usr/bin/env bash
# GCS emulator (gcp-storage-emulator, PyPI) on 127.0.0.1, objects kept on disk so the BigQuery
# emulator can load files written through it (FILE_LOADS).
# Usage: gcs.sh install|start|wait|stop|status|url|root
# Env: GCS_PORT (9023), SERVICES_DIR. Clients need STORAGE_EMULATOR_HOST=$(gcs.sh url).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
GCS_EMULATOR_VERSION="${GCS_EMULATOR_VERSION:-2026.7.19}"
GCS_PORT="${GCS_PORT:-9023}"
NAME=gcs
VENV="$SERVICES_DIR/venvs/gcs"
DATA="$SERVICES_DIR/gcs-data"
URL="http://127.0.0.1:$GCS_PORT"

install() {
  if [[ -x "$VENV/bin/gcp-storage-emulator" ]]; then log "gcp-storage-emulator already installed"; return 0; fi
  log "installing gcp-storage-emulator==$GCS_EMULATOR_VERSION into $VENV"
  rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "gcp-storage-emulator==$GCS_EMULATOR_VERSION"
}

start() {
  if pid_alive "$NAME"; then log "gcs emulator already running ($URL)"; wait_ready; return; fi
  refuse_foreign "gcs emulator" "$URL/storage/v1/b?project=test-project" GCS_PORT
  install
  mkdir -p "$DATA"
  log "starting gcs emulator on $URL (data: $DATA)"
  # Objects are stored on disk under the working directory's .cloudstorage/.
  setsid bash -c 'cd "$1" && echo $$ > "$2" && shift 2 && exec "$@"' _ "$DATA" "$SERVICES_DIR/$NAME.pid" \
      "$VENV/bin/gcp-storage-emulator" start --host 127.0.0.1 --port "$GCS_PORT" --default-bucket dedup-local \
      > "$SERVICES_DIR/$NAME.log" 2>&1 < /dev/null &
  sleep 0.5
  wait_ready
}

wait_ready() { wait_http "$NAME" "$URL/storage/v1/b?project=test-project" "${GCS_START_TIMEOUT:-60}"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop_pid "$NAME" ;;
  status) pid_alive "$NAME" && echo running || echo stopped ;;
  url) echo "$URL" ;;
  root) echo "$DATA/.cloudstorage" ;;
  *) echo "usage: $0 install|start|wait|stop|status|url|root" >&2; exit 2 ;;
esac
