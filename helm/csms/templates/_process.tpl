{{/*
The ConfigMap, Deployment and PodDisruptionBudget of one csms process other than the
gateway: a worker (workers.yaml) or the alerts notifier (alerts-notify.yaml). Call with
(dict "root" $ "name" NAME "component" COMPONENT "args" ARGS "values" VALUES
"settings" SETTINGS "env" ENV): NAME suffixes the resource names, VALUES is the
process's block of values (replicas, statusPort, probes, scheduling ...), SETTINGS the
dict of CSMS_* settings for its ConfigMap, ENV its own EnvVars from Secrets (a list).
*/}}
{{- define "csms.process" -}}
{{- $root := .root }}
{{- $values := .values }}
{{- $fullname := printf "%s-%s" (include "csms.fullname" $root) .name }}
{{- $selector := printf "%s\napp.kubernetes.io/component: %s" (include "csms.selectorLabels" $root) .component }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "csms.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
data:
  {{- include "csms.settingsData" .settings | trim | nindent 2 }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "csms.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  # Replicas beyond the partition count of the topics it consumes stay idle.
  replicas: {{ $values.replicas }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "csms.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ toYaml .settings | sha256sum }}
        {{- with include "csms.scrapeAnnotations" (dict "root" $root "port" $values.statusPort) }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.serviceAccountName }}
      serviceAccountName: {{ . }}
      {{- end }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      {{- with $values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      topologySpreadConstraints:
        {{- include "csms.spread" (dict "custom" $values.topologySpreadConstraints "selector" $selector) | trim | nindent 8 }}
      affinity:
        {{- include "csms.affinity" (dict "custom" $values.affinity "selector" $selector) | trim | nindent 8 }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "csms.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ join ", " .args }}]
          ports:
            - name: status
              containerPort: {{ $values.statusPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $fullname }}
            {{- with $root.Values.extraEnvFrom }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- $env := concat (include "csms.secretEnv" $root | fromYamlArray) .env $root.Values.extraEnv $values.extraEnv }}
          {{- with $env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- include "csms.probes" $values | nindent 10 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "csms.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "csms.volumes" $root | nindent 8 }}
{{- if $values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "csms.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  maxUnavailable: {{ $values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
{{- end }}
{{- end }}

{{/*
The settings of a process other than the gateway, as a dict: Kafka, the log level, its
status port, then its config and the release's config. Call with (dict "root" $
"values" VALUES).
*/}}
{{- define "csms.processSettings" -}}
{{- $root := .root }}
{{- $settings := include "csms.kafkaSettings" $root | fromYaml }}
{{- $_ := set $settings "CSMS_LOG_LEVEL" $root.Values.logLevel }}
{{- $_ := set $settings "CSMS_STATUS_PORT" (toString (int .values.statusPort)) }}
{{- range $key, $value := merge (dict) .values.config $root.Values.config }}
{{- $_ := set $settings $key (include "csms.settingText" $value) }}
{{- end }}
{{- toYaml $settings }}
{{- end }}
