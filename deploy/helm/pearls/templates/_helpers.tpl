{{/* Name of the release's objects: <release>-pearls, or the release name when it already says pearls. */}}
{{- define "pearls.fullname" -}}
{{- if contains "pearls" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-pearls" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pearls.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: pearls
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pearls
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "svc" $name). */}}
{{- define "pearls.selectorLabels" -}}
app.kubernetes.io/name: pearls
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc }}
{{- end -}}

{{- define "pearls.image" -}}
{{- printf "%s-%s:%s" .root.Values.image.repository .svc (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "pearls.secretName" -}}
{{- $cfg := index .root.Values.services .svc -}}
{{- $cfg.existingSecret | default (printf "%s-%s" (include "pearls.fullname" .root) .svc) -}}
{{- end -}}

{{- define "pearls.kafkaSaslSecretName" -}}
{{- .Values.kafka.sasl.existingSecret | default (printf "%s-kafka-sasl" (include "pearls.fullname" .)) -}}
{{- end -}}

{{- define "pearls.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end -}}
{{- end -}}

{{- define "pearls.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end -}}
{{- end -}}

{{/* The environment every container of a service gets (the service and its prepare Job). */}}
{{- define "pearls.env" -}}
{{- $root := .root -}}
{{- $cfg := index $root.Values.services .svc -}}
{{- $k := $root.Values.kafka -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" $k.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
- name: KAFKA_TOPIC_PARTITIONS
  value: {{ $k.topics.partitions | quote }}
- name: KAFKA_TOPIC_REPLICATION_FACTOR
  value: {{ $k.topics.replicationFactor | quote }}
- name: KAFKA_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ $k.topics.minInsyncReplicas | quote }}
- name: KAFKA_DEAD_LETTER_SUFFIX
  value: {{ $k.deadLetterSuffix | quote }}
{{- if include "pearls.kafkaSasl" $root }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.saslMechanism | quote }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "pearls.kafkaSaslSecretName" $root }}
      key: {{ $k.sasl.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pearls.kafkaSaslSecretName" $root }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if and (include "pearls.kafkaTls" $root) $k.tls.caSecret }}
- name: KAFKA_SSL_CAFILE
  value: {{ printf "/etc/pearls/kafka-ca/%s" $k.tls.caKey | quote }}
{{- end }}
{{- range $name, $value := $root.Values.delivery }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := $root.Values.commonEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := $cfg.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "pearls.envFrom" -}}
- secretRef:
    name: {{ include "pearls.secretName" . }}
{{- end -}}

{{- define "pearls.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if and (include "pearls.kafkaTls" .root) .root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .root.Values.kafka.tls.caSecret }}
    items:
      - key: {{ .root.Values.kafka.tls.caKey }}
        path: {{ .root.Values.kafka.tls.caKey }}
{{- end }}
{{- end -}}

{{- define "pearls.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and (include "pearls.kafkaTls" .root) .root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/pearls/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Refuses settings that cannot work. */}}
{{- define "pearls.validate" -}}
{{- $k := .Values.kafka -}}
{{- if not (has $k.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol: %s is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" $k.securityProtocol) -}}
{{- end -}}
{{- if not (has $k.saslMechanism (list "SCRAM-SHA-256" "SCRAM-SHA-512" "PLAIN")) -}}
{{- fail (printf "kafka.saslMechanism: %s is not one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN" $k.saslMechanism) -}}
{{- end -}}
{{- if and (include "pearls.kafkaSasl" .) (not $k.sasl.existingSecret) (not (and $k.sasl.username $k.sasl.password)) -}}
{{- fail "kafka.securityProtocol SASL_*: set kafka.sasl.existingSecret, or kafka.sasl.username and kafka.sasl.password" -}}
{{- end -}}
{{- end -}}
