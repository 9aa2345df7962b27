#!/usr/bin/env bash
# A Flink 1.19 session cluster (one JobManager, two TaskManagers, each its own JVM) and Beam's Flink
# job server, all on 127.0.0.1, from Maven Central jars (scripts/services/flink/pom.xml).
# Usage: flink.sh install|start|wait|stop|status|endpoint|boot|worker-logs|conf DIR
# Env: FLINK_TASKMANAGERS (2), FLINK_SLOTS (task slots per TaskManager, 1), FLINK_REST_PORT (8081),
#      FLINK_RPC_PORT (6123), FLINK_JOB_PORT (8099; the artifact and expansion services take the two
#      ports below it), FLINK_TM_PROCESS (2340m for one slot, 1630m more per further slot),
#      FLINK_TM_JVM_OPTS and FLINK_IDLE_JVM_OPTS (collector settings, below), FLINK_JAVA_HOME (Java 17),
#      SERVICES_DIR.
#
# The job runs on it with --runner=PortableRunner --job_endpoint=$(flink.sh endpoint)
# --environment_type=PROCESS --environment_config='{"command": "<repo>/scripts/flink-sdk-boot"}':
# every TaskManager starts its own Python SDK worker process from this repository's virtualenv.
# Known-good pair: Beam Python SDK 2.77 (requirements.txt) with Beam's Flink job server 2.62.0 on
# Flink 1.19.0 (2.62.0 is the newest job server whose dependencies all resolve on Maven Central).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BEAM_FLINK_VERSION=2.62.0   # keep in step with flink/pom.xml
TASKMANAGERS="${FLINK_TASKMANAGERS:-2}"
REST_PORT="${FLINK_REST_PORT:-8081}"
RPC_PORT="${FLINK_RPC_PORT:-6123}"
JOB_PORT="${FLINK_JOB_PORT:-8099}"
SLOTS="${FLINK_SLOTS:-1}"
[[ "$TASKMANAGERS" =~ ^[1-9][0-9]*$ && "$SLOTS" =~ ^[1-9][0-9]*$ ]] \
  || { echo "FLINK_TASKMANAGERS and FLINK_SLOTS must be positive integers" >&2; exit 2; }
# Per slot: 768m managed memory, 256m task off-heap, 442m task heap and their share of the JVM
# overhead (render_conf). With 300m instead of 1,630m per further slot, a TaskManager of two slots
# (773 MB heap for both) ran out of heap at 20,000 pages (java.lang.OutOfMemoryError in a gRPC thread
# receiving an SDK worker's output).
TM_PROCESS="${FLINK_TM_PROCESS:-$((2340 + (SLOTS - 1) * 1630))m}"
HOME_DIR="$SERVICES_DIR/flink-$BEAM_FLINK_VERSION"
LIB="$HOME_DIR/lib"
CONF="$HOME_DIR/conf"
POM="$REPO_ROOT/scripts/services/flink/pom.xml"
REST="http://127.0.0.1:$REST_PORT"
# Flink's own Java 17 module flags (its env.java.opts.all default).
JAVA_OPENS=(--add-exports=java.base/sun.net.util=ALL-UNNAMED --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED)
for pkg in java.lang java.net java.io java.nio sun.nio.ch java.lang.reflect java.text java.time java.util \
           java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks; do
  JAVA_OPENS+=("--add-opens=java.base/$pkg=ALL-UNNAMED")
done

find_java() {
  if [[ -n "${FLINK_JAVA_HOME:-}" ]]; then echo "$FLINK_JAVA_HOME"; return; fi
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64; do
    [[ -x "$j/bin/java" ]] && { echo "$j"; return; }
  done
  command -v java >/dev/null || { log "no Java found: install Java 17 (apt-get install openjdk-17-jre-headless) or set FLINK_JAVA_HOME"; exit 1; }
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

install() {
  if [[ -f "$LIB/.complete" ]]; then log "flink job server $BEAM_FLINK_VERSION already installed in $HOME_DIR"; write_conf; return 0; fi
  command -v mvn >/dev/null || { log "Maven (mvn) is needed to fetch the Flink job server from Maven Central: install it (apt-get install maven)"; exit 1; }
  log "fetching org.apache.beam:beam-runners-flink-1.19:$BEAM_FLINK_VERSION and its dependencies (~150 MB) into $LIB"
  rm -rf "$LIB"; mkdir -p "$LIB"
  mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime >&2
  touch "$LIB/.complete"
  write_conf
}

write_conf() {
  mkdir -p "$CONF" "$HOME_DIR/tmp" "$HOME_DIR/artifacts" "$HOME_DIR/log"
  render_conf > "$CONF/flink-conf.yaml"
}

# conf DIR: writes the flink-conf.yaml this layout (FLINK_TASKMANAGERS, FLINK_SLOTS, ...) would use into
# DIR and prints the TaskManager JVM options Flink derives from it (an installed job server needed);
# the running cluster's own configuration is not touched.
conf() {
  [[ -n "${1:-}" ]] || { echo "usage: $0 conf DIR" >&2; exit 2; }
  [[ -f "$LIB/.complete" ]] || { log "not installed: run $0 install first"; exit 1; }
  mkdir -p "$1" && render_conf > "$1/flink-conf.yaml"
  CONF="$1" memory_params "$(classpath)" GET_TM_RESOURCE_PARAMS | sed -n 1p
}

render_conf() {
  cat <<EOF
# Written by scripts/services/flink.sh; every address is loopback.
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $RPC_PORT
jobmanager.bind-host: 127.0.0.1
# When a job ends the JobManager archives it and prints every step's Beam metrics as one JSON text
# (MetricsContainerStepMap.toString): a 512 MB heap ran out there on the demo job ("Java heap space",
# job FAILED after its work was done). 1600m gives a ~1 GB heap.
jobmanager.memory.process.size: 1600m
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $REST_PORT
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: $SLOTS
taskmanager.memory.process.size: $TM_PROCESS
taskmanager.memory.network.min: 128m
taskmanager.memory.network.max: 128m
# The Beam runner's gRPC channels to the SDK worker (data, state) take direct buffers from the
# TaskManager's direct-memory limit (framework off-heap + task off-heap + network): at the default
# 256 MB a 5,000-page job failed ("Cannot reserve 2097152 bytes of direct buffer memory (allocated:
# 266903362, limit: 268435456)"). 256m of task off-heap per slot (per SDK worker) makes it 512 MB for
# one slot; the process size above grows by the same amount, so the heap (~590 MB) is unchanged.
taskmanager.memory.task.off-heap.size: $((SLOTS * 256))m
# Managed memory is what the batch sorters of GroupByKey get, split evenly between the slots; every
# operator of the job (~150 sorting ones in the default job) shares one slot's: 192m failed a
# 1,000-page job ("Too little memory provided to sorter"). 768m per slot.
taskmanager.memory.managed.size: $((SLOTS * 768))m
taskmanager.network.sort-shuffle.min-buffers: 64
cluster.evenly-spread-out-slots: true
# Beam's runner classes come from the cluster's classpath, not from each job's jar: only then does the
# runner keep an SDK worker process alive between the tasks of a job (it tears the environment down
# after every task when its classes live in a job class loader: a Python start per task).
classloader.resolve-order: parent-first
parallelism.default: $((TASKMANAGERS * SLOTS))
io.tmp.dirs: $HOME_DIR/tmp
# The SDK workers keep every core busy while they embed: the JVMs' RPCs (task deployment, heartbeats)
# then wait for CPU. Flink's 10 s ask timeout failed a 1,000-page job on 2 cores ("Ask timed out ...
# submitTask"); the timeouts below are for a loaded machine, not a slow network.
pekko.ask.timeout: 120 s
heartbeat.timeout: 300000
# Every operator of a job shares the slot's managed memory, so each sorter's buffer is small (~480 KB
# for the default job); a row bigger than that (a long page's units/ row) failed a GroupByKey ("The
# record exceeds the maximum size of a sort buffer"). Large records are spilled instead.
taskmanager.runtime.large-record-handler: true
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0
metrics.internal.query-service.port: 0
# An exception no thread catches (a gRPC thread of the SDK worker's data plane) ends the process
# instead of leaving a task waiting for data that will not come: the job fails, naming it.
cluster.uncaught-exception-handling: FAIL
EOF
}

# Garbage collection, for memory (measured with bench/engine_bench.py, 2,000 pages):
# - the JobManager and the job server are idle for most of a job (their heaps fill when a job is
#   translated, submitted and archived); G1 with a periodic collection and a low free-heap ratio hands
#   the unused heap back to the system between those moments (Flink's -Xms = -Xmx is lifted for it);
# - the TaskManagers only move bytes between the SDK workers and the sorters: the serial collector
#   keeps a smaller footprint than G1 (no remembered sets, no concurrent threads).
IDLE_JVM="${FLINK_IDLE_JVM_OPTS:--XX:+UseG1GC -Xms64m -XX:G1PeriodicGCInterval=10000 -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30}"
# - a TaskManager that runs out of memory exits: a gRPC thread's OutOfMemoryError is otherwise only
#   logged, the SDK worker's data stream breaks, and the job hangs without failing (seen at 20,000 pages).
TM_JVM="${FLINK_TM_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError}"

# classpath: Flink's runtime and Beam's Flink runner (the job server's and the cluster's).
classpath() { find "$LIB" -name '*.jar' | sort | paste -sd: -; }

# launch NAME MAIN_CLASS "JVM OPTIONS" CLASSPATH [ARGS...]: one JVM in the background, pid and log under $SERVICES_DIR.
# -Xss16m: the job's graph (~300 Beam steps) is Java-serialised recursively on submission and
# deployment; the default 1 MB thread stack overflows (java.lang.StackOverflowError, job FAILED).
launch() {
  local name="$1" main="$2" cp="$4" jvm; read -r -a jvm <<< "$3"; shift 4
  if pid_alive "$name"; then log "$name already running"; return 0; fi
  local java_home; java_home="$(find_java)"
  # SDK worker processes (pipelines/process_worker.py) write their output here.
  export NEAR_DUP_WORKER_LOGS="$HOME_DIR/log/workers"
  setsid bash -c 'cd "$1" && echo $$ > "$2" && shift 2 && exec "$@"' _ "$HOME_DIR" "$SERVICES_DIR/$name.pid" \
    "$java_home/bin/java" "${jvm[@]}" -Xss16m "${JAVA_OPENS[@]}" -Djava.io.tmpdir="$HOME_DIR/tmp" \
    -Dlog.file="$HOME_DIR/log/$name.log" -cp "$cp" "$main" "$@" \
    > "$SERVICES_DIR/$name.log" 2>&1 < /dev/null &
}

# memory_params CLASSPATH COMMAND -> two lines: the JVM options, then the "-D key=value" settings.
memory_params() {
  local out; out="$("$(find_java)/bin/java" -cp "$1" org.apache.flink.runtime.util.bash.BashJavaUtils "$2" \
    --configDir "$CONF" 2>&1)" || { log "flink memory settings rejected:"; grep -m3 Exception <<< "$out" >&2; exit 1; }
  grep '^BASH_JAVA_UTILS_EXEC_RESULT:' <<< "$out" | tail -n 2 | sed 's/^BASH_JAVA_UTILS_EXEC_RESULT://'
}

# started_taskmanagers: the name of every TaskManager this folder started (a pid file each), whatever
# FLINK_TASKMANAGERS says now.
started_taskmanagers() {
  local f
  for f in "$SERVICES_DIR"/flink-taskmanager*.pid; do [[ -e "$f" ]] && basename "$f" .pid; done
  return 0
}

# running_layout: "TASKMANAGERS SLOTS" of the cluster this folder started, if its JobManager runs: the
# TaskManagers whose pid is alive, and the slots of the configuration it was started with.
running_layout() {
  pid_alive flink-jobmanager || return 1
  local name n=0 slots
  for name in $(started_taskmanagers); do pid_alive "$name" && n=$((n + 1)); done
  slots="$(sed -n 's/^taskmanager.numberOfTaskSlots: *//p' "$CONF/flink-conf.yaml" 2>/dev/null)"
  echo "$n ${slots:-?}"
}

start() {
  # A running cluster of another layout is not reused (its parallelism and memory are not what was
  # asked for) and its configuration is not rewritten under it.
  local running
  if running="$(running_layout)" && [[ "$running" != "$TASKMANAGERS $SLOTS" ]]; then
    log "a Flink cluster of ${running% *} TaskManager(s) of ${running#* } slot(s) is running here, not the" \
        "$TASKMANAGERS of $SLOTS asked for (FLINK_TASKMANAGERS, FLINK_SLOTS): stop it first (make flink-stop)"
    exit 2
  fi
  install
  local cp; cp="$(classpath)"
  log "starting flink 1.19 (1 JobManager, $TASKMANAGERS TaskManagers of $SLOTS slots) on $REST and the Beam job server on 127.0.0.1:$JOB_PORT"
  # The JVM limits and memory settings Flink derives from jobmanager/taskmanager.memory.process.size
  # (what Flink's own jobmanager.sh and taskmanager.sh do with BashJavaUtils).
  local params jvm_opts dynamic
  params="$(memory_params "$cp" GET_JM_RESOURCE_PARAMS)"
  jvm_opts="$(sed -n 1p <<< "$params")"; dynamic="$(sed -n 2p <<< "$params")"
  # shellcheck disable=SC2086  # $dynamic is a list of "-D key=value" words
  launch flink-jobmanager org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint "$jvm_opts $IDLE_JVM" "$cp" \
    --configDir "$CONF" $dynamic
  params="$(memory_params "$cp" GET_TM_RESOURCE_PARAMS)"
  jvm_opts="$(sed -n 1p <<< "$params")"; dynamic="$(sed -n 2p <<< "$params")"
  for i in $(seq 1 "$TASKMANAGERS"); do
    # shellcheck disable=SC2086  # $dynamic is a list of "-D key=value" words
    launch "flink-taskmanager$i" org.apache.flink.runtime.taskexecutor.TaskManagerRunner "$jvm_opts $TM_JVM" "$cp" \
      --configDir "$CONF" -D taskmanager.resource-id="tm$i" $dynamic
  done
  # The job server Java-serialises the whole translated job graph to submit it: with a 512 MB heap the
  # default job (a few steps more: WriteRunState) ran out there ("Java heap space", job FAILED in CI).
  launch flink-jobserver org.apache.beam.runners.flink.FlinkJobServerDriver "-Xmx1g $IDLE_JVM" "$cp" \
    --flink-master="127.0.0.1:$REST_PORT" --flink-conf-dir="$CONF" --job-host=127.0.0.1 --job-port="$JOB_PORT" \
    --artifact-port="$((JOB_PORT - 1))" --expansion-port="$((JOB_PORT - 2))" --artifacts-dir="$HOME_DIR/artifacts"
  sleep 2  # the pid files are written by the launched shells
  wait_ready
}

# wait_ready: the REST API lists every TaskManager and the job server accepts connections.
wait_ready() {
  local timeout="${FLINK_START_TIMEOUT:-180}" start=$SECONDS n=0
  while (( SECONDS - start < timeout )); do
    for name in flink-jobmanager flink-jobserver $(seq -f 'flink-taskmanager%g' 1 "$TASKMANAGERS"); do
      if ! pid_alive "$name"; then
        log "$name exited during start-up; last log lines:"; tail -n 40 "$SERVICES_DIR/$name.log" >&2 || true; return 1
      fi
    done
    n="$(curl -fsS --max-time 5 "$REST/taskmanagers" 2>/dev/null | "$PYTHON" -c \
      'import json,sys; print(len(json.load(sys.stdin)["taskmanagers"]))' 2>/dev/null || echo 0)"
    if (( n >= TASKMANAGERS )) && (exec 3<>"/dev/tcp/127.0.0.1/$JOB_PORT") 2>/dev/null; then
      log "flink healthy after $((SECONDS - start)) s: $n TaskManagers registered, job server on 127.0.0.1:$JOB_PORT"
      return 0
    fi
    sleep 1
  done
  log "flink not ready after ${timeout} s ($n of $TASKMANAGERS TaskManagers); logs: $SERVICES_DIR/flink-*.log"
  return 1
}

stop() {
  stop_pid flink-jobserver
  local name; for name in $(started_taskmanagers); do stop_pid "$name"; done
  stop_pid flink-jobmanager
}

status() {
  local all=running
  for name in flink-jobmanager flink-jobserver $(seq -f 'flink-taskmanager%g' 1 "$TASKMANAGERS"); do
    pid_alive "$name" || all=stopped
  done
  echo "$all"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop ;;
  status) status ;;
  endpoint) echo "localhost:$JOB_PORT" ;;
  boot) echo "$REPO_ROOT/scripts/flink-sdk-boot" ;;
  worker-logs) echo "$HOME_DIR/log/workers" ;;
  conf) conf "${2:-}" ;;
  *) echo "usage: $0 install|start|wait|stop|status|endpoint|boot|worker-logs|conf DIR" >&2; exit 2 ;;
esac
