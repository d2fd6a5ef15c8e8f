{{/* Common labels for every object of the release. */}}
{{- define "gitops.labels" -}}
app.kubernetes.io/part-of: gitops-controllers
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* image: registry/name:tag */}}
{{- define "gitops.image" -}}
{{ .root.Values.image.registry }}/{{ .name }}:{{ .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- end -}}

{{/* Flags both controllers take. The binaries reject unknown flags, so
     only flags they define are passed; see values.yaml for the rest. */}}
{{- define "gitops.commonArgs" -}}
- --metrics-addr=:{{ .Values.metricsPort }}
- --health-addr=:{{ .Values.healthPort }}
- --log-level={{ .Values.logLevel }}
- --log-encoding={{ .Values.logEncoding }}
{{- end -}}
