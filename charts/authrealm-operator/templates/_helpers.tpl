{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "authrealm-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, plus the chart name when
the release name does not already contain it.
*/}}
{{- define "authrealm-operator.fullname" -}}
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
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "authrealm-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "authrealm-operator.labels" -}}
helm.sh/chart: {{ include "authrealm-operator.chart" . }}
{{ include "authrealm-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: authrealm
{{- end }}

{{/*
Labels that select the operator pods (never change them on upgrade: a
Deployment's selector is immutable).
*/}}
{{- define "authrealm-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authrealm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "authrealm-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authrealm-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference.
*/}}
{{- define "authrealm-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Name of the Lease the operator replicas elect their leader with. The operator
uses this fixed name in its own namespace (POD_NAMESPACE); the Role below
grants access to it only.
*/}}
{{- define "authrealm-operator.leaseName" -}}
authrealm-operator-leader
{{- end }}

{{/*
What the operator needs where it reconciles realms: the realms and their
status, and the children it applies with server-side apply (owner references
remove them with the realm). Used by the ClusterRole (every namespace) or by
one Role per watched namespace.
*/}}
{{- define "authrealm-operator.realmRules" -}}
# The realms themselves: watch them, patch annotations (handled rotations).
- apiGroups: ["authrealm.io"]
  resources: ["authrealms"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["authrealm.io"]
  resources: ["authrealms/status"]
  verbs: ["get", "patch", "update"]
# OAuth clients: listed per realm, watched, their status written.
- apiGroups: ["authrealm.io"]
  resources: ["authclients"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["authrealm.io"]
  resources: ["authclients/status"]
  verbs: ["get", "patch", "update"]
# Children applied with server-side apply.
- apiGroups: [""]
  resources: ["secrets", "services", "configmaps", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Deployments: also read for their status (AuthServiceReady / MainProjectReady).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# The realm's optional Ingress (spec.ingress).
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Which auth-service pods serve a key before it signs (their JWKS is fetched).
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
# Per-realm monitoring (spec.monitoring), when the Prometheus Operator CRDs exist.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Events on the realms (rotations, revocations, failures).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Image of the realms' services for a repository: the chart's appVersion unless
realmImages.tag says otherwise.
*/}}
{{- define "authrealm-operator.realmImage" -}}
{{- printf "%s:%s" .repository (.tag | default .appVersion) }}
{{- end }}
