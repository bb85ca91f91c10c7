#!/usr/bin/env bash
# As in the official image: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT
# (the compose file's healthcheck). A small JVM: it runs every few seconds.
exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp "/opt/kafka/libs/*" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
