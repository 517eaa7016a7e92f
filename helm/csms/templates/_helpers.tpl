{{/*
Names and labels.
*/}}
{{- define "csms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: RELEASE-csms, or RELEASE when it contains "csms". */}}
{{- define "csms.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "csms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "csms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "csms.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "csms.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: csms
{{- end }}

{{- define "csms.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
Settings every csms process gets, as a dict of name to text: Kafka and the log level.
The ConfigMaps render it as data, the topics job (a hook that runs before any
ConfigMap of the release exists) as env. Secrets are not in it: see csms.secretEnv.
*/}}
{{- define "csms.kafkaSettings" -}}
{{- $kafka := .Values.kafka }}
{{- $settings := dict
  "CSMS_KAFKA_BOOTSTRAP" $kafka.bootstrap
  "CSMS_KAFKA_IDEMPOTENCE" (toString $kafka.idempotence)
  "CSMS_KAFKA_COMPRESSION" $kafka.compression
  "CSMS_KAFKA_SECURITY_PROTOCOL" $kafka.securityProtocol }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- $_ := set $settings "CSMS_KAFKA_SASL_MECHANISM" $kafka.sasl.mechanism }}
{{- if and $kafka.sasl.username (not $kafka.sasl.usernameKey) }}
{{- $_ := set $settings "CSMS_KAFKA_SASL_USERNAME" $kafka.sasl.username }}
{{- end }}
{{- end }}
{{- if and (has $kafka.securityProtocol (list "SSL" "SASL_SSL")) $kafka.ca.secretName }}
{{- $_ := set $settings "CSMS_KAFKA_SSL_CAFILE" (printf "/etc/csms/kafka-ca/%s" $kafka.ca.key) }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/* Environment variables from Secrets: the SASL credentials. */}}
{{- define "csms.secretEnv" -}}
{{- $kafka := .Values.kafka }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- if not $kafka.sasl.existingSecret }}
{{- fail "kafka.sasl.existingSecret: a SASL protocol needs the Secret with the Kafka password" }}
{{- end }}
{{- if $kafka.sasl.usernameKey }}
- name: CSMS_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.usernameKey }}
{{- else if not $kafka.sasl.username }}
{{- fail "kafka.sasl: set username, or usernameKey to read it from existingSecret" }}
{{- end }}
- name: CSMS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.passwordKey }}
{{- end }}
{{- end }}

{{/*
Volumes every csms pod has: a small writable /tmp (the root file system is read-only)
and, when the Kafka cluster's CA comes from a Secret, that CA.
*/}}
{{- define "csms.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if and (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL")) .Values.kafka.ca.secretName }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.ca.secretName }}
    items:
      - key: {{ .Values.kafka.ca.key }}
        path: {{ .Values.kafka.ca.key }}
{{- end }}
{{- end }}

{{- define "csms.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL")) .Values.kafka.ca.secretName }}
- name: kafka-ca
  mountPath: /etc/csms/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
A ConfigMap's data from a dict of settings, values quoted as text.
*/}}
{{- define "csms.settingsData" -}}
{{- range $name, $value := . }}
{{ $name }}: {{ toString $value | quote }}
{{- end }}
{{- end }}

{{/*
The probes of a csms container: both on the status port, /healthz never depends on Kafka.
Call with (dict "probes" .Values.gateway "port" "status").
*/}}
{{- define "csms.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: status
  periodSeconds: {{ .livenessProbe.periodSeconds }}
  timeoutSeconds: {{ .livenessProbe.timeoutSeconds }}
  failureThreshold: {{ .livenessProbe.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: status
  periodSeconds: {{ .readinessProbe.periodSeconds }}
  timeoutSeconds: {{ .readinessProbe.timeoutSeconds }}
  failureThreshold: {{ .readinessProbe.failureThreshold }}
{{- end }}

{{/* Prometheus annotations on a pod, when metrics.scrapeAnnotations is on. */}}
{{- define "csms.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* Default spread: over nodes (hard, one pod per node while nodes last), zones (soft). */}}
{{- define "csms.spread" -}}
{{- if .custom }}
{{- toYaml .custom }}
{{- else }}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: DoNotSchedule
  labelSelector:
    matchLabels:
      {{- .selector | nindent 6 }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- .selector | nindent 6 }}
{{- end }}
{{- end }}

{{/* Default affinity: prefer a node without another pod of the same component. */}}
{{- define "csms.affinity" -}}
{{- if .custom }}
{{- toYaml .custom }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- .selector | nindent 12 }}
{{- end }}
{{- end }}

{{/* Every setting of the gateway container that is not a Secret, as a dict. */}}
{{- define "csms.gatewaySettings" -}}
{{- $gw := .Values.gateway }}
{{- $settings := include "csms.kafkaSettings" . | fromYaml }}
{{- $_ := set $settings "CSMS_LOG_LEVEL" .Values.logLevel }}
{{- $_ := set $settings "CSMS_PORT" (toString (int $gw.ports.ws)) }}
{{- $_ := set $settings "CSMS_STATUS_PORT" (toString (int $gw.ports.status)) }}
{{- $_ := set $settings "CSMS_MAX_CONNECTIONS" (toString (int $gw.maxConnections)) }}
{{- $_ := set $settings "CSMS_PING_INTERVAL" (toString $gw.pingInterval) }}
{{- $_ := set $settings "CSMS_DRAIN_TIMEOUT" (toString (int $gw.drain.timeoutSeconds)) }}
{{- $_ := set $settings "CSMS_DRAIN_CLOSE_PERIOD" (toString (int $gw.drain.closePeriodSeconds)) }}
{{- if $gw.trustedProxies }}
{{- $_ := set $settings "CSMS_TRUSTED_PROXIES" (join "," $gw.trustedProxies) }}
{{- end }}
{{- if $gw.tls.enabled }}
{{- $certs := list }}
{{- $keys := list }}
{{- range $index, $secret := $gw.tls.certificateSecrets }}
{{- $certs = append $certs (printf "/etc/csms/tls/%d/tls.crt" $index) }}
{{- $keys = append $keys (printf "/etc/csms/tls/%d/tls.key" $index) }}
{{- end }}
{{- $_ := set $settings "CSMS_TLS_PORT" (toString (int $gw.ports.wss)) }}
{{- $_ := set $settings "CSMS_TLS_CERT" (join "," $certs) }}
{{- $_ := set $settings "CSMS_TLS_KEY" (join "," $keys) }}
{{- if $gw.tls.clientCA.secretName }}
{{- $_ := set $settings "CSMS_TLS_CLIENT_CA" (printf "/etc/csms/tls-client-ca/%s" $gw.tls.clientCA.key) }}
{{- end }}
{{- if $gw.tls.organization }}
{{- $_ := set $settings "CSMS_TLS_ORGANIZATION" $gw.tls.organization }}
{{- end }}
{{- end }}
{{- range $name, $value := merge (dict) $gw.config .Values.config }}
{{- $_ := set $settings $name (include "csms.settingText" $value) }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/* A config value as the text csms parses: 1000000, not 1e+06. */}}
{{- define "csms.settingText" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}
