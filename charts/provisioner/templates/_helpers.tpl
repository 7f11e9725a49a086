{{/*
Chart name, truncated to 63 characters (the DNS-1123 label limit).
*/}}
{{- define "provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Truncated to 56 characters so that the "-worker" suffix still fits in
63. If the release name already contains the chart name it is used as is.
*/}}
{{- define "provisioner.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "provisioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "provisioner.labels" -}}
helm.sh/chart: {{ include "provisioner.chart" . }}
{{ include "provisioner.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels shared by every component; add app.kubernetes.io/component to tell them apart.
*/}}
{{- define "provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Container image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "provisioner.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
ServiceAccount names.
*/}}
{{- define "provisioner.apiServiceAccountName" -}}
{{- printf "%s-api" (include "provisioner.fullname" .) }}
{{- end }}

{{- define "provisioner.workerServiceAccountName" -}}
{{- printf "%s-worker" (include "provisioner.fullname" .) }}
{{- end }}

{{/*
Pod-level security context (Pod Security Admission "restricted").
*/}}
{{- define "provisioner.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container-level security context (Pod Security Admission "restricted").
*/}}
{{- define "provisioner.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Environment shared by the api and the worker: plain settings from values; secrets come from
envFrom of .Values.existingSecret. Call with (dict "root" $ "extra" <component extraEnv>).
*/}}
{{- define "provisioner.env" -}}
{{- $root := .root -}}
- name: NODE_ENV
  value: production
- name: TEMPORAL_ADDRESS
  value: {{ $root.Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ $root.Values.temporal.namespace | quote }}
- name: TASK_QUEUE
  value: {{ $root.Values.temporal.taskQueue | quote }}
- name: INGRESS_NAMESPACE
  value: {{ $root.Values.ingressNamespace | quote }}
- name: NAMESPACE_PREFIX
  value: {{ $root.Values.namespacePrefix | quote }}
{{- range $name, $value := merge (dict) (.extra | default dict) ($root.Values.extraEnv | default dict) }}
- name: {{ $name }}
  value: {{ if kindIs "string" $value }}{{ $value | quote }}{{ else }}{{ $value | toJson | quote }}{{ end }}
{{- end }}
{{- end }}
