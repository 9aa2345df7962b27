#!/usr/bin/env bash
# BigQuery emulator (bqemulator 1.4.0, PyPI, DuckDB-based) on 127.0.0.1: REST and gRPC (Storage Read).
# Usage: bigquery.sh install|start|wait|stop|status|url|grpc
# Env: BQ_REST_PORT (9050), BQ_GRPC_PORT (9060), BQ_PROJECT (test-project), SERVICES_DIR.
# It reads FILE_LOADS files from the GCS emulator's disk (BQEMU_GCS_LOCAL_ROOT), so start gcs.sh first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BQ_REST_PORT="${BQ_REST_PORT:-9050}"
BQ_GRPC_PORT="${BQ_GRPC_PORT:-9060}"
BQ_PROJECT="${BQ_PROJECT:-test-project}"
DUCKDB_VERSION=1.5.5
NAME=bigquery
VENV="$SERVICES_DIR/venvs/bigquery"
BQ_HOME="$SERVICES_DIR/bq-home"
URL="http://127.0.0.1:$BQ_REST_PORT"

install() {
  if [[ -x "$VENV/bin/bqemulator" && -d "$BQ_HOME/.duckdb" ]]; then log "bqemulator already installed"; return 0; fi
  log "installing bqemulator into $VENV"
  rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check bqemulator==1.4.0 "duckdb==$DUCKDB_VERSION" \
    "duckdb-extension-spatial==$DUCKDB_VERSION" "duckdb-extension-avro==$DUCKDB_VERSION" numpy
  # At start the emulator runs INSTALL spatial/avro, which would download: point DuckDB's extension
  # directory (under a private HOME) at the files shipped inside the two PyPI packages instead.
  local platform ext_dir
  platform="$("$VENV/bin/python" -c 'import duckdb; print(duckdb.execute("PRAGMA platform").fetchone()[0])')"
  ext_dir="$BQ_HOME/.duckdb/extensions/v$DUCKDB_VERSION/$platform"
  mkdir -p "$ext_dir"
  find "$VENV/lib" -name '*.duckdb_extension' -exec ln -sf {} "$ext_dir/" \;
  ls "$ext_dir" | grep -q spatial || { log "duckdb spatial extension not found in the PyPI package"; exit 1; }
}

start() {
  if pid_alive "$NAME"; then log "bigquery emulator already running ($URL)"; wait_ready; return; fi
  refuse_foreign "bigquery emulator" "$URL/healthz" BQ_REST_PORT
  install
  local gcs_root; gcs_root="$(bash "$(dirname "${BASH_SOURCE[0]}")/gcs.sh" root)"
  log "starting bigquery emulator on $URL (grpc 127.0.0.1:$BQ_GRPC_PORT, project $BQ_PROJECT)"
  HOME="$BQ_HOME" BQEMU_GCS_LOCAL_ROOT="$gcs_root" STORAGE_EMULATOR_HOST="http://127.0.0.1:${GCS_PORT:-9023}" \
    setsid bash -c 'cd "$1" && echo $$ > "$2" && shift 2 && exec "$@"' _ "$BQ_HOME" "$SERVICES_DIR/$NAME.pid" \
      "$VENV/bin/bqemulator" start --rest-host 127.0.0.1 --grpc-host 127.0.0.1 --rest-port "$BQ_REST_PORT" --grpc-port "$BQ_GRPC_PORT" \
      --project "$BQ_PROJECT" > "$SERVICES_DIR/$NAME.log" 2>&1 < /dev/null &
  sleep 0.5
  wait_ready
}

wait_ready() { wait_http "$NAME" "$URL/healthz" "${BQ_START_TIMEOUT:-60}"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop_pid "$NAME" ;;
  status) pid_alive "$NAME" && echo running || echo stopped ;;
  url) echo "$URL" ;;
  grpc) echo "127.0.0.1:$BQ_GRPC_PORT" ;;
  *) echo "usage: $0 install|start|wait|stop|status|url|grpc" >&2; exit 2 ;;
esac
