{{- define "plumbline-server.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selects the server's pods; apps' NetworkPolicies let in pods with component and part-of. */}}
{{- define "plumbline-server.selectorLabels" -}}
app.kubernetes.io/name: plumbline-server
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: plumbline
{{- end -}}

{{- define "plumbline-server.labels" -}}
{{ include "plumbline-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "plumbline-server.appsNamespace" -}}
{{- default .Release.Namespace .Values.appsNamespace -}}
{{- end -}}

{{- define "plumbline-server.image" -}}
{{- .Values.image }}{{ with .Values.imageDigest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "plumbline-server.publicUrl" -}}
{{- if .Values.publicUrl -}}{{ .Values.publicUrl }}
{{- else if .Values.ingress.host -}}{{ ternary "https" "http" (not (empty .Values.ingress.tlsSecret)) }}://{{ .Values.ingress.host }}
{{- else -}}http://{{ include "plumbline-server.name" . }}.{{ .Release.Namespace }}.svc.cluster.local:{{ .Values.service.port }}
{{- end -}}
{{- end -}}

{{- define "plumbline-server.packageClaim" -}}
{{- if .Values.packages.cache.existingClaim -}}{{ .Values.packages.cache.existingClaim }}
{{- else if .Values.packages.cache.create -}}{{ include "plumbline-server.name" . }}-r-packages
{{- end -}}
{{- end -}}
