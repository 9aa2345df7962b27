#!/usr/bin/env bash
# Elasticsearch, single node on 127.0.0.1, from Maven Central's integ-test-zip distribution.
# Usage: elasticsearch.sh install|start|wait|stop|status|url|home|remove
# Env: ES_VERSION, ES_PORT (9200), ES_HEAP (1g), ES_JAVA_HOME (Java 17+), SERVICES_DIR,
#      ES_ZIP (a downloaded elasticsearch-$ES_VERSION.zip: no Maven needed), ES_BASE (where the
#      server, its data and logs live; default $SERVICES_DIR), ES_USER (service user when run as root).
#
# Who runs it: Elasticsearch refuses to run as root. Started by an ordinary user it runs as that
# user, under $SERVICES_DIR. Started by root it runs as the system user $ES_USER (created once); if
# that user cannot enter $SERVICES_DIR (a clone under /root or in a mode-700 folder), the server, its
# data and logs go to /var/lib/near-dup-es/<key of $SERVICES_DIR> instead, and the script says so.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ES_VERSION="${ES_VERSION:-8.19.21}"
ES_PORT="${ES_PORT:-9200}"
ES_HEAP="${ES_HEAP:-1g}"
ES_USER="${ES_USER:-esdedup}"
NAME=elasticsearch
URL="http://127.0.0.1:$ES_PORT"
ZIP_NAME="elasticsearch-$ES_VERSION.zip"

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# layout: sets ES_BASE, ES_HOME, ES_DATA, ES_LOGS, ES_TMP for whoever runs the script.
layout() {
  if [[ -z "${ES_BASE:-}" ]]; then
    ES_BASE="$SERVICES_DIR"
    if is_root; then
      ensure_service_user
      if ! runuser -u "$ES_USER" -- test -x "$SERVICES_DIR" 2>/dev/null; then
        ES_BASE="/var/lib/near-dup-es/$(printf '%s' "$SERVICES_DIR" | sha1sum | cut -c1-12)"
        log "user $ES_USER cannot enter $SERVICES_DIR (a parent folder is private): Elasticsearch lives in $ES_BASE (set ES_BASE to choose another place)"
      fi
    fi
  fi
  ES_HOME="$ES_BASE/elasticsearch-$ES_VERSION"
  ES_DATA="$ES_BASE/es-data"
  ES_LOGS="$ES_BASE/es-logs"
  ES_TMP="$ES_BASE/es-tmp"
}

ensure_service_user() {
  id -u "$ES_USER" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  log "created system user $ES_USER (Elasticsearch refuses to run as root)"
}

find_java() {
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then echo "$ES_JAVA_HOME"; return; fi
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/temurin-25-jdk-amd64; do
    [[ -x "$j/bin/java" ]] && { echo "$j"; return; }
  done
  command -v java >/dev/null || { log "no Java found: install Java 17+ (apt-get install openjdk-17-jre-headless) or set ES_JAVA_HOME"; exit 1; }
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

# fetch_zip DIR -> path of the distribution zip (ES_ZIP, an earlier download, or Maven Central).
fetch_zip() {
  local dl="$1"
  if [[ -n "${ES_ZIP:-}" ]]; then
    [[ -r "$ES_ZIP" ]] || { log "ES_ZIP=$ES_ZIP is not a readable file"; exit 1; }
    echo "$ES_ZIP"; return
  fi
  if [[ ! -s "$dl/$ZIP_NAME" ]]; then
    command -v mvn >/dev/null || {
      log "Maven (mvn) is needed to fetch Elasticsearch from Maven Central: install it (apt-get install maven) or set ES_ZIP to a downloaded $ZIP_NAME"
      exit 1; }
    log "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION from Maven Central"
    mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$dl" >&2
  fi
  echo "$dl/$ZIP_NAME"
}

install() {
  layout
  if [[ -x "$ES_HOME/bin/elasticsearch" ]]; then log "elasticsearch $ES_VERSION already installed in $ES_HOME"; return 0; fi
  mkdir -p "$ES_BASE" "$SERVICES_DIR/download"
  local zip; zip="$(fetch_zip "$SERVICES_DIR/download")"
  rm -rf "$ES_HOME.tmp" && mkdir -p "$ES_HOME.tmp"
  # Python's zipfile instead of unzip (not installed everywhere); file modes are kept.
  "$PYTHON" - "$zip" "$ES_HOME.tmp" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" && rm -rf "$ES_HOME.tmp"
  log "elasticsearch $ES_VERSION installed in $ES_HOME"
}

# write_config: the node's settings, rewritten at every start (an installation made by an older
# script gets today's settings). The disk checks are off: this is a local, single-node server on a
# disk the machine shares. ES 8.19+ also starts no merge while the disk is over 95% full (or has less
# than 100 GB free, on a large disk) and a force merge then waits for ever; 1 GB free is its floor here.
write_config() {
  cat > "$ES_HOME/config/elasticsearch.yml" <<YML
cluster.name: dedup-local
node.name: dedup-node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $((ES_PORT + 100))
path.data: $ES_DATA
path.logs: $ES_LOGS
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
indices.merge.disk.watermark.high: 1gb
YML
  mkdir -p "$ES_HOME/config/jvm.options.d"
  printf -- '-Xms%s\n-Xmx%s\n' "$ES_HEAP" "$ES_HEAP" > "$ES_HOME/config/jvm.options.d/heap.options"
}

start() {
  install
  if pid_alive "$NAME"; then log "elasticsearch already running ($URL)"; wait_ready; return; fi
  if curl -fsS -o /dev/null --max-time 3 "$URL/_cluster/health" 2>/dev/null; then
    log "an Elasticsearch already answers on $URL; reusing it"; return 0
  fi
  write_config
  mkdir -p "$ES_DATA" "$ES_LOGS" "$ES_TMP"
  # Elasticsearch's launcher leaves a final-flags* folder (a JVM's gc.log) in its own temp folder at
  # every start; CLI_JAVA_OPTS points that at ES_TMP, not /tmp, and the last start's are removed here.
  rm -rf "$ES_TMP"/final-flags*
  local -a as_user=()
  if is_root; then
    # The server runs as the service user; it owns what it writes.
    chown -R "$ES_USER" "$ES_HOME" "$ES_DATA" "$ES_LOGS" "$ES_TMP"
    as_user=(runuser -u "$ES_USER" --)
  fi
  local java_home; java_home="$(find_java)"
  log "starting elasticsearch $ES_VERSION on $URL as $(is_root && echo "$ES_USER" || id -un) (java: $java_home, heap $ES_HEAP, home $ES_HOME)"
  : > "$SERVICES_DIR/$NAME.log"
  setsid "${as_user[@]}" env ES_JAVA_HOME="$java_home" ES_TMPDIR="$ES_TMP" \
    CLI_JAVA_OPTS="-Djava.io.tmpdir=$ES_TMP" "$ES_HOME/bin/elasticsearch" \
    >> "$SERVICES_DIR/$NAME.log" 2>&1 < /dev/null &
  echo $! > "$SERVICES_DIR/$NAME.pid"
  wait_ready
}

wait_ready() {
  # The integ-test distribution has no root handler: probe cluster health, not GET /.
  wait_http "$NAME" "$URL/_cluster/health?wait_for_status=yellow&timeout=5s" "${ES_START_TIMEOUT:-180}"
}

# remove: stop and delete the server, its data and logs (also a relocated ES_BASE).
remove() {
  stop_pid "$NAME"
  layout
  rm -rf "$ES_HOME" "$ES_DATA" "$ES_LOGS" "$ES_TMP"
  [[ "$ES_BASE" == "$SERVICES_DIR" ]] || rmdir "$ES_BASE" 2>/dev/null || true
  log "removed elasticsearch $ES_VERSION and its data from $ES_BASE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop_pid "$NAME" ;;
  status) pid_alive "$NAME" && echo running || echo stopped ;;
  url) echo "$URL" ;;
  home) layout; echo "$ES_HOME" ;;
  remove) remove ;;
  *) echo "usage: $0 install|start|wait|stop|status|url|home|remove" >&2; exit 2 ;;
esac
