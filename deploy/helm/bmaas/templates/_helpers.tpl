{{- define "bmaas.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bmaas.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bmaas.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bmaas.etcdEndpoints" -}}
{{- if .Values.etcd.bundled -}}
http://{{ include "bmaas.fullname" . }}-etcd-0.{{ include "bmaas.fullname" . }}-etcd:2379
{{- else -}}
{{- required "etcd.endpoints: name the external etcd (or set etcd.bundled)" (join "," .Values.etcd.endpoints) -}}
{{- end -}}
{{- end -}}

{{- define "bmaas.natsURL" -}}
{{- if .Values.nats.bundled -}}
nats://{{ include "bmaas.fullname" . }}-nats:4222
{{- else -}}
{{- required "nats.url: name the external NATS (or set nats.bundled)" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "bmaas.tokenSecret" -}}
{{- default (printf "%s-token" (include "bmaas.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "bmaas.auth" -}}
{{- if or .Values.auth.token .Values.auth.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Environment and arguments every bmaas container shares. */}}
{{- define "bmaas.env" -}}
- name: POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
{{- end -}}

{{- define "bmaas.args" -}}
- --etcd-endpoints={{ include "bmaas.etcdEndpoints" . }}
- --nats-url={{ include "bmaas.natsURL" . }}
- --grpc-addr=0.0.0.0:{{ .Values.service.grpcPort }}
- --http-addr=0.0.0.0:{{ .Values.service.httpPort }}
- --advertise-host=$(POD_IP)
- --data-dir=/var/lib/bmaas
- --log.format={{ .Values.logFormat }}
{{- if include "bmaas.auth" . }}
- --auth.token-file=/etc/bmaas/auth/token
{{- end }}
{{- end -}}

{{- define "bmaas.probes" -}}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /livez, port: http}
  periodSeconds: 10
  failureThreshold: 6
{{- end -}}

{{- define "bmaas.ports" -}}
- {name: grpc, containerPort: {{ .Values.service.grpcPort }}, protocol: TCP}
- {name: http, containerPort: {{ .Values.service.httpPort }}, protocol: TCP}
{{- end -}}
