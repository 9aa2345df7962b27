# Shared helpers for the service scripts (sourced, not run).
# Every service lives under $SERVICES_DIR (default: <repo>/.services), binds to 127.0.0.1,
# writes its pid to $SERVICES_DIR/<name>.pid and its log to $SERVICES_DIR/<name>.log.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"
PYTHON="${PYTHON:-python3.11}"
mkdir -p "$SERVICES_DIR"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# pid_alive NAME -> 0 if the pid recorded for NAME is a live process.
pid_alive() {
  local f="$SERVICES_DIR/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# refuse_foreign NAME URL PORT_VARIABLE: exits 1 if a server this checkout did not start answers on
# URL. The GCS and BigQuery emulators share files on disk (BigQuery loads the GCS emulator's files
# by path), so another checkout's emulator on the port would take our writes into its folder and
# our loads would find nothing ("No files found that match the pattern").
refuse_foreign() {
  local name="$1" url="$2" var="$3"
  if curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null; then
    log "$name: a server this checkout did not start already answers on $url (another checkout's, or one"
    log "  whose pid file was lost). Stop it (make services-stop in its checkout) or set $var to another port."
    exit 1
  fi
}

# wait_http NAME URL TIMEOUT_S -> waits until URL answers 2xx; prints the log tail on failure.
wait_http() {
  local name="$1" url="$2" timeout="$3" start=$SECONDS
  while (( SECONDS - start < timeout )); do
    if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
      log "$name healthy after $((SECONDS - start)) s ($url)"
      return 0
    fi
    if ! pid_alive "$name"; then
      log "$name process exited during start-up; last log lines:"
      tail -n 60 "$SERVICES_DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "$name not healthy after ${timeout} s; last log lines:"
  tail -n 60 "$SERVICES_DIR/$name.log" >&2 || true
  return 1
}

# stop_pid NAME -> TERM, then KILL after 20 s; idempotent.
stop_pid() {
  local name="$1" f="$SERVICES_DIR/$1.pid"
  if ! pid_alive "$name"; then rm -f "$f"; log "$name not running"; return 0; fi
  local pid; pid="$(cat "$f")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
  log "$name stopped"
}
