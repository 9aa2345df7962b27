#!/usr/bin/env bash
# Elasticsearch, single node on 127.0.0.1, from Maven Central's integ-test-zip distribution.
# Usage: elasticsearch.sh install|start|wait|stop|status|url
# Env: ES_VERSION, ES_PORT (9200), ES_HEAP (1g), ES_JAVA_HOME (Java 17+), SERVICES_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ES_VERSION="${ES_VERSION:-8.19.21}"
ES_PORT="${ES_PORT:-9200}"
ES_HEAP="${ES_HEAP:-1g}"
ES_USER="${ES_USER:-esdedup}"
ES_HOME="$SERVICES_DIR/elasticsearch-$ES_VERSION"
ES_DATA="$SERVICES_DIR/es-data"
NAME=elasticsearch
URL="http://127.0.0.1:$ES_PORT"

find_java() {
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then echo "$ES_JAVA_HOME"; return; fi
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/temurin-25-jdk-amd64; do
    [[ -x "$j/bin/java" ]] && { echo "$j"; return; }
  done
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

install() {
  if [[ -x "$ES_HOME/bin/elasticsearch" ]]; then log "elasticsearch $ES_VERSION already installed"; return 0; fi
  command -v mvn >/dev/null || { log "mvn not found: install Maven (apt-get install -y maven)"; exit 1; }
  command -v unzip >/dev/null || apt-get install -y -q unzip >/dev/null
  local dl="$SERVICES_DIR/download"
  mkdir -p "$dl"
  log "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION from Maven Central"
  mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$dl"
  rm -rf "$ES_HOME.tmp" && mkdir -p "$ES_HOME.tmp"
  unzip -q "$dl/elasticsearch-$ES_VERSION.zip" -d "$ES_HOME.tmp"
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" && rm -rf "$ES_HOME.tmp" "$dl"
  cat > "$ES_HOME/config/elasticsearch.yml" <<YML
cluster.name: dedup-local
node.name: dedup-node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $((ES_PORT + 100))
path.data: $ES_DATA
path.logs: $SERVICES_DIR/es-logs
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
YML
  mkdir -p "$ES_HOME/config/jvm.options.d"
  printf -- '-Xms%s\n-Xmx%s\n' "$ES_HEAP" "$ES_HEAP" > "$ES_HOME/config/jvm.options.d/heap.options"
  log "elasticsearch $ES_VERSION installed in $ES_HOME"
}

start() {
  install
  if pid_alive "$NAME"; then log "elasticsearch already running ($URL)"; wait_ready; return; fi
  if curl -fsS -o /dev/null --max-time 3 "$URL/_cluster/health" 2>/dev/null; then
    log "an Elasticsearch already answers on $URL; reusing it"; return 0
  fi
  # Elasticsearch refuses to run as root: run it as a dedicated system user.
  id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  mkdir -p "$ES_DATA" "$SERVICES_DIR/es-logs" "$SERVICES_DIR/es-tmp"
  chown -R "$ES_USER" "$ES_HOME" "$ES_DATA" "$SERVICES_DIR/es-logs" "$SERVICES_DIR/es-tmp"
  local java_home; java_home="$(find_java)"
  log "starting elasticsearch $ES_VERSION on $URL (java: $java_home, heap $ES_HEAP)"
  : > "$SERVICES_DIR/$NAME.log"; chmod 666 "$SERVICES_DIR/$NAME.log"
  setsid runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java_home" ES_TMPDIR="$SERVICES_DIR/es-tmp" \
    "$ES_HOME/bin/elasticsearch" \
    >> "$SERVICES_DIR/$NAME.log" 2>&1 < /dev/null &
  echo $! > "$SERVICES_DIR/$NAME.pid"
  wait_ready
}

wait_ready() {
  # The integ-test distribution has no root handler: probe cluster health, not GET /.
  wait_http "$NAME" "$URL/_cluster/health?wait_for_status=yellow&timeout=5s" "${ES_START_TIMEOUT:-180}"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop_pid "$NAME" ;;
  status) pid_alive "$NAME" && echo running || echo stopped ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 install|start|wait|stop|status|url" >&2; exit 2 ;;
esac
