{{/* The app's name: object names and app.kubernetes.io/name. */}}
{{- define "plumbline-app.name" -}}
{{- default .Release.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select exactly this app's pods. */}}
{{- define "plumbline-app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plumbline-app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The recommended app.kubernetes.io labels, as `plumbline render` writes them. */}}
{{- define "plumbline-app.labels" -}}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{ include "plumbline-app.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.version | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: {{ include "plumbline-app.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* app.files keyed as ConfigMap keys ('/' cannot be in a key: www/a.css -> www__a.css). */}}
{{- define "plumbline-app.data" -}}
{{- $data := dict -}}
{{- range $path, $content := .Values.app.files -}}
{{- $_ := set $data (replace "/" "__" $path) $content -}}
{{- end -}}
{{- toJson $data -}}
{{- end -}}

{{/* sha256 of the files: names the ConfigMap and annotates the pods, so a change rolls out. */}}
{{- define "plumbline-app.hash" -}}
{{- include "plumbline-app.data" . | sha256sum -}}
{{- end -}}

{{- define "plumbline-app.bundled" -}}
{{- if and (not .Values.app.filesInImage) (not .Values.app.existingConfigMap) -}}true{{- end -}}
{{- end -}}

{{- define "plumbline-app.configMapName" -}}
{{- if .Values.app.existingConfigMap -}}
{{- .Values.app.existingConfigMap -}}
{{- else -}}
{{- printf "%s-%s" (include "plumbline-app.name" .) (include "plumbline-app.hash" . | trunc 10) -}}
{{- end -}}
{{- end -}}

{{- define "plumbline-app.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
periodSeconds: {{ .probes.periodSeconds }}
timeoutSeconds: {{ .probes.timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end -}}

{{/* The image as pods pull it: pinned by digest when imageDigest is set. */}}
{{- define "plumbline-app.image" -}}
{{- .Values.image }}{{ with .Values.imageDigest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "plumbline-app.securityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
