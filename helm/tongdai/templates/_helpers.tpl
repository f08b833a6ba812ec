{{/* Names and labels shared by the templates. */}}

{{- define "tongdai.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tongdai.fullname" -}}
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

{{- define "tongdai.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tongdai.labels" -}}
helm.sh/chart: {{ include "tongdai.chart" . }}
app.kubernetes.io/name: {{ include "tongdai.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tongdai
{{- end }}

{{/* Selector labels of one component: include "tongdai.selectorLabels" (list . "node") */}}
{{- define "tongdai.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "tongdai.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "tongdai.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "tongdai.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "tongdai.controlPlane.headless" -}}
{{- printf "%s-peers" (include "tongdai.controlPlane.fullname" .) }}
{{- end }}

{{- define "tongdai.node.fullname" -}}
{{- printf "%s-node" (include "tongdai.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tongdai.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tongdai.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tongdai.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* DNS name of replica i (0-based pod ordinal). */}}
{{- define "tongdai.replicaHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "tongdai.controlPlane.fullname" $root) (index . 1) (include "tongdai.controlPlane.headless" $root) $root.Release.Namespace $root.Values.clusterDomain }}
{{- end }}

{{/* replica.initial_members: id@quic@api for every replica; id = ordinal + 1. */}}
{{- define "tongdai.initialMembers" -}}
{{- $members := list }}
{{- range $i := until (int .Values.controlPlane.replicas) }}
{{- $host := include "tongdai.replicaHost" (list $ $i) }}
{{- $members = append $members (printf "%d@%s:%d@%s:%d" (add1 $i) $host (int $.Values.controlPlane.quicPort) $host (int $.Values.controlPlane.apiPort)) }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{/* control_plane.replicas: the QUIC address of every replica. */}}
{{- define "tongdai.replicaAddrs" -}}
{{- $addrs := list }}
{{- range $i := until (int .Values.controlPlane.replicas) }}
{{- $addrs = append $addrs (printf "%s:%d" (include "tongdai.replicaHost" (list $ $i)) (int $.Values.controlPlane.quicPort)) }}
{{- end }}
{{- join "," $addrs }}
{{- end }}

{{/* An IP and port as a socket address: IPv6 in brackets. */}}
{{- define "tongdai.socketAddr" -}}
{{- $ip := index . 0 -}}
{{- if contains ":" $ip }}{{ printf "[%s]:%d" $ip (int (index . 1)) }}{{ else }}{{ printf "%s:%d" $ip (int (index . 1)) }}{{ end }}
{{- end }}

{{- define "tongdai.operatorTokenSecret" -}}
{{- default (printf "%s-operator-token" (include "tongdai.fullname" .)) .Values.controlPlane.operatorToken.existingSecret }}
{{- end }}

{{- define "tongdai.certsSecret" -}}
{{- if eq .Values.certs.mode "existingSecret" }}
{{- required "certs.existingSecret is required when certs.mode is existingSecret" .Values.certs.existingSecret }}
{{- else }}
{{- printf "%s-certs" (include "tongdai.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The certificate volume of a role ("replica" or "node"): ca.pem, <role>.pem and <role>.key,
whichever way they were issued.
*/}}
{{- define "tongdai.certsVolume" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
- name: certs
  projected:
    defaultMode: 0440
    sources:
{{- if eq $root.Values.certs.mode "certManager" }}
      - secret:
          name: {{ printf "%s-%s-tls" (include "tongdai.fullname" $root) $role }}
          items:
            - {key: ca.crt, path: ca.pem}
            - {key: tls.crt, path: {{ $role }}.pem}
            - {key: tls.key, path: {{ $role }}.key}
{{- else }}
      - secret:
          name: {{ include "tongdai.certsSecret" $root }}
          items:
            - {key: ca.pem, path: ca.pem}
            - {key: {{ $role }}.pem, path: {{ $role }}.pem}
            - {key: {{ $role }}.key, path: {{ $role }}.key}
{{- end }}
{{- end }}

{{- define "tongdai.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "tongdai.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* Anti-affinity of a component: include "tongdai.antiAffinity" (list . "node" "hard") */}}
{{- define "tongdai.antiAffinity" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $mode := index . 2 -}}
{{- if eq $mode "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "tongdai.selectorLabels" (list $root $component) | nindent 10 }}
{{- else if eq $mode "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "tongdai.selectorLabels" (list $root $component) | nindent 12 }}
{{- end }}
{{- end }}
