package deploy_test

// deploy/k8s/dependencies: the Cassandra (cass-operator) and Elasticsearch
// (ECK) custom resources each overlay pairs with. The app dials the Services
// the operators create, its replication fits the datacenter, the credentials
// match, every namespaced object has its namespace created by the same
// kustomization, and Elasticsearch can start on an ordinary node.

import (
	"net"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestKubernetesDependencies(t *testing.T) {
	known := knownEnv(t)
	for _, ov := range overlays {
		t.Run(path.Base(ov.dir), func(t *testing.T) {
			cfg, appObjs := overlayAPIConfig(t, ov, known)
			objs, dc, es := dependencies(t, ov.dependencies)

			// The kustomization creates the namespaces its objects live in.
			namespaces := map[string]bool{}
			for _, ns := range find[*corev1.Namespace](objs) {
				namespaces[ns.Name] = true
			}
			for _, o := range objs {
				if o.kind != "Namespace" && !namespaces[o.namespace] {
					t.Errorf("%s: %s %s is in namespace %q, which the kustomization does not create", ov.dependencies, o.kind, o.name, o.namespace)
				}
			}

			// Credentials the dependencies generate (local only) are the ones
			// the overlay gives the app.
			appSecrets := find[*corev1.Secret](appObjs)
			for _, s := range find[*corev1.Secret](objs) {
				i := slices.IndexFunc(appSecrets, func(a *corev1.Secret) bool {
					return a.Name == s.Name || strings.HasPrefix(a.Name, s.Name+"-") // kustomize's hash suffix
				})
				if i < 0 {
					continue
				}
				for k, v := range s.StringData {
					if string(appSecrets[i].Data[k]) != v {
						t.Errorf("%s: Secret %s/%s key %s differs from the overlay's Secret %s", ov.dependencies, s.Namespace, s.Name, k, appSecrets[i].Name)
					}
				}
			}

			// The app reaches cass-operator's Service, in the datacenter the
			// replication names, with a role cass-operator creates.
			for _, h := range cfg.Cassandra.Hosts {
				if host, _, _ := net.SplitHostPort(h); host != dc.service() {
					t.Errorf("%s: Cassandra host %q, cass-operator serves %s", ov.dir, h, dc.service())
				}
			}
			if cfg.Cassandra.LocalDC != dc.Metadata.Name {
				t.Errorf("%s: Cassandra local DC %q, the datacenter is %q", ov.dir, cfg.Cassandra.LocalDC, dc.Metadata.Name)
			}
			switch cfg.Cassandra.Replication.Class {
			case "NetworkTopologyStrategy":
				for name, n := range cfg.Cassandra.Replication.Datacenters {
					if name != dc.Metadata.Name || n > dc.Spec.Size {
						t.Errorf("%s: replication %s:%d, the datacenter is %s with %d nodes", ov.dir, name, n, dc.Metadata.Name, dc.Spec.Size)
					}
				}
			case "SimpleStrategy":
				if cfg.Cassandra.Replication.ReplicationFactor > dc.Spec.Size {
					t.Errorf("%s: replication factor %d on %d nodes", ov.dir, cfg.Cassandra.Replication.ReplicationFactor, dc.Spec.Size)
				}
			}
			for _, secret := range []string{"artifactstate-cassandra", "temporal-cassandra"} {
				if !slices.ContainsFunc(dc.Spec.Users, func(u struct {
					SecretName string `json:"secretName"`
					Superuser  bool   `json:"superuser"`
				}) bool {
					return u.SecretName == secret
				}) {
					t.Errorf("%s: the CassandraDatacenter creates no role from the Secret %s", ov.dependencies, secret)
				}
			}

			checkElasticsearchNodes(t, ov.dependencies, es)
		})
	}
}

// checkElasticsearchNodes: Elasticsearch refuses to start with mmap on
// unless vm.max_map_count is at least 262144, which most nodes do not have.
// Each node set either turns mmap off or raises the limit in a privileged
// init container (what ECK documents for production).
func checkElasticsearchNodes(t *testing.T, where string, es elasticsearchCluster) {
	t.Helper()
	if len(es.Spec.NodeSets) == 0 {
		t.Fatalf("%s: Elasticsearch %s has no node sets", where, es.Metadata.Name)
	}
	for _, ns := range es.Spec.NodeSets {
		if ns.Count < 1 {
			t.Errorf("%s: node set %s has %d nodes", where, ns.Name, ns.Count)
		}
		if mmap, ok := ns.Config["node.store.allow_mmap"]; ok && mmap == false {
			continue
		}
		raised := slices.ContainsFunc(ns.PodTemplate.Spec.InitContainers, func(c corev1.Container) bool {
			cmd := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
			privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
			return privileged && strings.Contains(cmd, "sysctl -w vm.max_map_count=262144")
		})
		if !raised {
			t.Errorf("%s: node set %s keeps mmap on (node.store.allow_mmap) without a privileged init container running `sysctl -w vm.max_map_count=262144`: Elasticsearch fails its bootstrap check on nodes with the default limit", where, ns.Name)
		}
	}
}
