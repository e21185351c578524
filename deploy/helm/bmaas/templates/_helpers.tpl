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
https://{{ include "bmaas.fullname" . }}-etcd-0.{{ include "bmaas.fullname" . }}-etcd:2379
{{- else -}}
{{- required "etcd.endpoints: name the external etcd (or set etcd.bundled)" (join "," .Values.etcd.endpoints) -}}
{{- end -}}
{{- end -}}

{{- define "bmaas.natsURL" -}}
{{- if .Values.nats.bundled -}}
tls://{{ include "bmaas.fullname" . }}-nats:4222
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

{{/* The generated Secret of the bundled etcd and NATS. */}}
{{- define "bmaas.bundledSecret" -}}
{{- printf "%s-bundled" (include "bmaas.fullname" .) -}}
{{- end -}}

{{/*
Secrets are mounted under /run/secrets/bmaas: the tasks' sandbox shows
/etc, /usr and /opt, never /run.
*/}}
{{- define "bmaas.secretsDir" -}}/run/secrets/bmaas{{- end -}}

{{/* The projected sources of the etcd client's files; empty without any. */}}
{{- define "bmaas.etcdSources" -}}
{{- $e := .Values.etcd -}}
{{- if $e.bundled }}
- secret:
    name: {{ include "bmaas.bundledSecret" . }}
    items: [{key: ca.crt, path: ca.crt}, {key: client.crt, path: tls.crt}, {key: client.key, path: tls.key}]
{{- else }}
{{- if or $e.username $e.passwordSecret.name }}
- secret:
    name: {{ required "etcd.passwordSecret.name: the Secret holding etcd.username's password" $e.passwordSecret.name }}
    items: [{key: {{ $e.passwordSecret.key }}, path: password}]
{{- end }}
{{- if $e.tlsSecret }}
- secret:
    name: {{ $e.tlsSecret }}
    items:
      - {key: ca.crt, path: ca.crt}
      {{- if $e.clientCert }}
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "bmaas.etcdArgs" -}}
{{- $e := .Values.etcd -}}
{{- $dir := printf "%s/etcd" (include "bmaas.secretsDir" .) -}}
{{- if $e.bundled }}
- --etcd-ca={{ $dir }}/ca.crt
- --etcd-cert={{ $dir }}/tls.crt
- --etcd-key={{ $dir }}/tls.key
{{- else }}
{{- if or $e.username $e.passwordSecret.name }}
- --etcd-username={{ required "etcd.username: the etcd user of etcd.passwordSecret" $e.username }}
- --etcd-password-file={{ $dir }}/password
{{- end }}
{{- if $e.tlsSecret }}
- --etcd-ca={{ $dir }}/ca.crt
{{- if $e.clientCert }}
- --etcd-cert={{ $dir }}/tls.crt
- --etcd-key={{ $dir }}/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The projected sources of the NATS client's files; empty without any. */}}
{{- define "bmaas.natsSources" -}}
{{- $n := .Values.nats -}}
{{- if $n.bundled }}
- secret:
    name: {{ include "bmaas.bundledSecret" . }}
    items: [{key: ca.crt, path: ca.crt}, {key: nats-password, path: password}]
{{- else }}
{{- if and (or $n.user $n.passwordSecret.name) $n.credsSecret.name }}
{{- fail "nats: give a user and password (nats.user, nats.passwordSecret) or a credentials file (nats.credsSecret), not both" }}
{{- end }}
{{- if or $n.user $n.passwordSecret.name }}
- secret:
    name: {{ required "nats.passwordSecret.name: the Secret holding nats.user's password" $n.passwordSecret.name }}
    items: [{key: {{ $n.passwordSecret.key }}, path: password}]
{{- end }}
{{- if $n.credsSecret.name }}
- secret:
    name: {{ $n.credsSecret.name }}
    items: [{key: {{ $n.credsSecret.key }}, path: nats.creds}]
{{- end }}
{{- if $n.tlsSecret }}
- secret:
    name: {{ $n.tlsSecret }}
    items:
      - {key: ca.crt, path: ca.crt}
      {{- if $n.clientCert }}
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "bmaas.natsArgs" -}}
{{- $n := .Values.nats -}}
{{- $dir := printf "%s/nats" (include "bmaas.secretsDir" .) -}}
{{- if $n.bundled }}
- --nats-user=bmaas
- --nats-password-file={{ $dir }}/password
- --nats-ca={{ $dir }}/ca.crt
{{- else }}
{{- if or $n.user $n.passwordSecret.name }}
- --nats-user={{ required "nats.user: the NATS user of nats.passwordSecret" $n.user }}
- --nats-password-file={{ $dir }}/password
{{- end }}
{{- if $n.credsSecret.name }}
- --nats-creds={{ $dir }}/nats.creds
{{- end }}
{{- if $n.tlsSecret }}
- --nats-ca={{ $dir }}/ca.crt
{{- if $n.clientCert }}
- --nats-cert={{ $dir }}/tls.crt
- --nats-key={{ $dir }}/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret with the bmaas pods' certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "bmaas.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if .Values.tls.certManager.issuerRef.name -}}
{{- printf "%s-tls" (include "bmaas.fullname" .) -}}
{{- else -}}
{{- fail "tls.enabled: name the certificate's Secret (tls.existingSecret) or a cert-manager issuer (tls.certManager.issuerRef)" -}}
{{- end -}}
{{- end -}}

{{/* The DNS names the bmaas pods' certificate must carry, one a line. */}}
{{- define "bmaas.tlsDNSNames" -}}
{{- $f := include "bmaas.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $f }}
- {{ $f }}.{{ $ns }}
- {{ $f }}.{{ $ns }}.svc
- {{ $f }}.{{ $ns }}.svc.{{ .Values.clusterDomain }}
- "*.{{ $f }}-control.{{ $ns }}.svc"
- localhost
{{- range .Values.tls.extraDnsNames }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The identity in the certificate's URI SAN. */}}
{{- define "bmaas.tlsURI" -}}
spiffe://bmaas/node/{{ include "bmaas.fullname" . }}
{{- end -}}

{{/* Host header values of the edge: the Service's names, then the values'. */}}
{{- define "bmaas.allowedHosts" -}}
{{- $f := include "bmaas.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $f (printf "%s.%s" $f $ns) (printf "%s.%s.svc" $f $ns) (printf "%s.%s.svc.%s" $f $ns .Values.clusterDomain) -}}
{{- join "," (concat $hosts .Values.http.allowedHosts) -}}
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
{{- $dir := include "bmaas.secretsDir" . -}}
- --etcd-endpoints={{ include "bmaas.etcdEndpoints" . }}
{{- include "bmaas.etcdArgs" . }}
- --nats-url={{ include "bmaas.natsURL" . }}
{{- include "bmaas.natsArgs" . }}
- --grpc-addr=0.0.0.0:{{ .Values.service.grpcPort }}
- --http-addr=0.0.0.0:{{ .Values.service.httpPort }}
- --data-dir=/var/lib/bmaas
- --log.format={{ .Values.logFormat }}
{{- if include "bmaas.auth" . }}
- --auth.token-file={{ $dir }}/auth/token
{{- end }}
{{- if .Values.tls.enabled }}
- --tls.cert-file={{ $dir }}/tls/tls.crt
- --tls.key-file={{ $dir }}/tls/tls.key
- --tls.client-ca-file={{ $dir }}/tls/ca.crt
{{- end }}
{{- end -}}

{{/*
The secrets every bmaas container mounts, as volumeMounts and volumes.
Never subPath: a Secret's update reaches a subPath mount only on restart,
and the certificates are reloaded when their files change.
*/}}
{{- define "bmaas.secretMounts" -}}
{{- $dir := include "bmaas.secretsDir" . -}}
{{- if include "bmaas.auth" . }}
- {name: auth, mountPath: {{ $dir }}/auth, readOnly: true}
{{- end }}
{{- if include "bmaas.etcdSources" . | trim }}
- {name: etcd, mountPath: {{ $dir }}/etcd, readOnly: true}
{{- end }}
{{- if include "bmaas.natsSources" . | trim }}
- {name: nats, mountPath: {{ $dir }}/nats, readOnly: true}
{{- end }}
{{- if .Values.tls.enabled }}
- {name: tls, mountPath: {{ $dir }}/tls, readOnly: true}
{{- end }}
{{- end -}}

{{- define "bmaas.secretVolumes" -}}
{{- if include "bmaas.auth" . }}
- name: auth
  secret: {secretName: {{ include "bmaas.tokenSecret" . }}, defaultMode: 0440}
{{- end }}
{{- with include "bmaas.etcdSources" . | trim }}
- name: etcd
  projected:
    defaultMode: 0440
    sources: {{- . | nindent 6 }}
{{- end }}
{{- with include "bmaas.natsSources" . | trim }}
- name: nats
  projected:
    defaultMode: 0440
    sources: {{- . | nindent 6 }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  secret: {secretName: {{ include "bmaas.tlsSecret" . }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{/* The probes speak HTTPS with TLS on (the kubelet verifies no certificate). */}}
{{- define "bmaas.probes" -}}
{{- $scheme := ternary "HTTPS" "HTTP" (.Values.tls.enabled | default false) -}}
readinessProbe:
  httpGet: {path: /readyz, port: http, scheme: {{ $scheme }}}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /livez, port: http, scheme: {{ $scheme }}}
  periodSeconds: 10
  failureThreshold: 6
{{- end -}}

{{- define "bmaas.ports" -}}
- {name: grpc, containerPort: {{ .Values.service.grpcPort }}, protocol: TCP}
- {name: http, containerPort: {{ .Values.service.httpPort }}, protocol: TCP}
{{- end -}}
