#!/usr/bin/env bash
# Starts one Kafka node from the environment, as the official apache/kafka image does:
# every KAFKA_<NAME> variable but the JVM's own becomes a line of server.properties
# (lower case; `___` -> `-`, `__` -> `_`, `_` -> `.`); without any, a single combined
# broker/controller on :9092 (advertised as localhost). The storage is formatted with
# CLUSTER_ID on the first start and reused afterwards.
set -euo pipefail
config=/opt/kafka/config/server.properties
libs="/opt/kafka/libs/*"
cluster_id=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
jvm_only=" KAFKA_VERSION KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_GC_LOG_OPTS KAFKA_JMX_OPTS KAFKA_LOG4J_OPTS "

property() { # KAFKA_FOO__BAR___BAZ -> foo_bar-baz
  local name=${1#KAFKA_}
  name=${name,,}
  name=${name//___/-}
  name=${name//__/$'\x01'}
  name=${name//_/.}
  printf '%s' "${name//$'\x01'/_}"
}

: >"$config"
given=0
while IFS= read -r var; do
  [[ $var == KAFKA_* && $jvm_only != *" $var "* ]] || continue
  printf '%s=%s\n' "$(property "$var")" "${!var}" >>"$config"
  given=1
done < <(compgen -e | sort)
if ((given == 0)); then
  cat >>"$config" <<'DEFAULTS'
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://localhost:9092
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@localhost:9093
log.dirs=/tmp/kraft-combined-logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
DEFAULTS
fi

heap=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
performance=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
logging=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties}

# A static voter list formats with the id alone; a dynamic quorum needs --standalone.
format=(--ignore-formatted -t "$cluster_id" -c "$config")
if ! grep -q '^controller\.quorum\.voters=' "$config"; then
  format+=(--standalone)
fi
# shellcheck disable=SC2086  # the options are word lists, as in kafka-run-class.sh
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 $logging -cp "$libs" \
  kafka.tools.StorageTool format "${format[@]}"
# shellcheck disable=SC2086
exec java $heap $performance ${KAFKA_GC_LOG_OPTS:-} ${KAFKA_JMX_OPTS:-} ${KAFKA_OPTS:-} $logging \
  -cp "$libs" kafka.Kafka "$config"
