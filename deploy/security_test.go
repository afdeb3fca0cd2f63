package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// checkSecretFiles: every *_FILE setting names a file in a volume the
// container mounts from a Secret (secrets are files, never environment);
// the value is replaced with a stand-in file so the configuration validates.
func checkSecretFiles(t *testing.T, where string, spec corev1.PodSpec, env map[string]string) {
	t.Helper()
	secretVolumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
		}
	}
	for name, value := range env {
		if strings.Contains(name, "PASSWORD") && !strings.HasSuffix(name, "_FILE") || strings.HasSuffix(name, "_API_KEY") {
			t.Errorf("%s: %s is a secret in the environment: use the _FILE setting and a mounted Secret", where, name)
		}
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		mounted := slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
			return secretVolumes[m.Name] && strings.HasPrefix(value, strings.TrimSuffix(m.MountPath, "/")+"/")
		})
		if !mounted {
			t.Errorf("%s: %s=%s is not in a mounted Secret", where, name, value)
		}
		standIn := filepath.Join(t.TempDir(), filepath.Base(value))
		if err := os.WriteFile(standIn, []byte("stand-in"), 0o600); err != nil {
			t.Fatal(err)
		}
		env[name] = standIn
	}
}

// TestProductionOverlayIsSecure: the production overlay turns on what the
// README's Security section promises.
func TestProductionOverlayIsSecure(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/k8s/overlays/production", appForeign...)
	var cm *corev1.ConfigMap
	for _, c := range find[*corev1.ConfigMap](objs) {
		if c.Name == "artifactstate-config" || strings.HasPrefix(c.Name, "artifactstate-config-") {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no artifactstate-config ConfigMap")
	}
	env := cm.Data
	for name, want := range map[string]string{
		"ARTIFACTSTATE_AUTH_ENABLED":          "true",
		"ARTIFACTSTATE_TEMPORAL_TLS_ENABLED":  "true",
		"ARTIFACTSTATE_CASSANDRA_TLS_ENABLED": "true",
		"ARTIFACTSTATE_PRIVACY_USER_IDS":      "hash",
	} {
		if env[name] != want {
			t.Errorf("production: %s=%q, want %q", name, env[name], want)
		}
	}
	for _, name := range []string{"ARTIFACTSTATE_AUTH_JWKS_URL", "ARTIFACTSTATE_AUTH_ISSUER", "ARTIFACTSTATE_AUTH_AUDIENCE",
		"ARTIFACTSTATE_TEMPORAL_TLS_CERT_FILE", "ARTIFACTSTATE_CASSANDRA_TLS_CERT_FILE", "ARTIFACTSTATE_TRACING_CA_FILE",
		"ARTIFACTSTATE_TRACING_CERT_FILE", "ARTIFACTSTATE_TEMPORAL_ENCRYPTION_KEYS_FILE", "ARTIFACTSTATE_PRIVACY_HASH_KEY_FILE",
		"ARTIFACTSTATE_API_RATE_LIMIT_PER_CLIENT", "ARTIFACTSTATE_API_RATE_LIMIT_GLOBAL"} {
		if env[name] == "" {
			t.Errorf("production: %s is not set", name)
		}
	}
	if env["ARTIFACTSTATE_TRACING_INSECURE"] == "true" {
		t.Error("production exports traces without TLS")
	}
	if !slices.ContainsFunc(objs, func(o k8sObject) bool { return o.kind == "Certificate" && o.name == "artifactstate-client-tls" }) {
		t.Error("production: no cert-manager Certificate artifactstate-client-tls for the client certificate")
	}
}
