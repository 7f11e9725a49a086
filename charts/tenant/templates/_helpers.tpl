{{/*
Chart name, truncated to 63 characters (the DNS-1123 label limit).
*/}}
{{- define "tenant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. If the release name already contains the
chart name it is used as is.
*/}}
{{- define "tenant.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "tenant.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "tenant.labels" -}}
helm.sh/chart: {{ include "tenant.chart" . }}
{{ include "tenant.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels. Never change these: a Deployment's selector is immutable.
*/}}
{{- define "tenant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "tenant.serviceAccountName" -}}
{{- include "tenant.fullname" . }}
{{- end }}

{{/*
Fails rendering with a clear message when a required tenant value is missing. values.schema.json
rejects the same input first; this covers `--skip-schema-validation`.
*/}}
{{- define "tenant.validate" -}}
{{- $tenant := .Values.tenant | default dict }}
{{- if not (and (kindIs "string" $tenant.id) (trim ($tenant.id | default "") | ne "")) }}
{{- fail "tenant.id is required: set it with --set tenant.id=<tenant id> (a non-empty string)" }}
{{- end }}
{{- if not (and (kindIs "string" $tenant.plan) (trim ($tenant.plan | default "") | ne "")) }}
{{- fail "tenant.plan is required: set it with --set tenant.plan=<plan> (a non-empty string)" }}
{{- end }}
{{- end }}

{{/*
A container probe built from one entry of .Values.probes. Usage:
  include "tenant.probe" (dict "probe" .Values.probes.readiness)
*/}}
{{- define "tenant.probe" -}}
{{- $p := .probe -}}
{{- if eq $p.type "httpGet" }}
httpGet:
  path: {{ $p.path | default "/" }}
  port: http
{{- else }}
tcpSocket:
  port: http
{{- end }}
initialDelaySeconds: {{ $p.initialDelaySeconds }}
periodSeconds: {{ $p.periodSeconds }}
timeoutSeconds: {{ $p.timeoutSeconds }}
failureThreshold: {{ $p.failureThreshold }}
{{- end }}
