package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/MicahParks/jwkset"
	"gopkg.in/yaml.v3"
)

// apiKey is one entry of the API keys file. The file holds the SHA-256 of
// each key, never the key: reading the file (or the Secret it is mounted
// from) does not let anyone call the API.
//
//	keys:
//	  - id: feed-service                  # shown in logs
//	    sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//	    subject: feed-service
//	    scopes: [artifactstate:service]
type apiKey struct {
	ID      string   `yaml:"id"`
	SHA256  string   `yaml:"sha256"`
	Subject string   `yaml:"subject"`
	Scopes  []string `yaml:"scopes"`
}

func loadAPIKeys(path string) (map[[sha256.Size]byte]apiKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth.apiKeysFile: %w", err)
	}
	var file struct {
		Keys []apiKey `yaml:"keys"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("auth.apiKeysFile %s: %w", path, err)
	}
	keys := make(map[[sha256.Size]byte]apiKey, len(file.Keys))
	ids := map[string]bool{}
	for i, k := range file.Keys {
		sum, err := hex.DecodeString(k.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("auth.apiKeysFile %s: key %d (%q): sha256 must be 64 hex digits (sha256sum of the key)", path, i, k.ID)
		}
		if k.ID == "" || k.Subject == "" {
			return nil, fmt.Errorf("auth.apiKeysFile %s: key %d: id and subject are required", path, i)
		}
		if ids[k.ID] {
			return nil, fmt.Errorf("auth.apiKeysFile %s: id %q appears twice", path, k.ID)
		}
		ids[k.ID] = true
		keys[[sha256.Size]byte(sum)] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth.apiKeysFile %s: no keys", path)
	}
	return keys, nil
}

func staticStorage(raw json.RawMessage) (jwkset.Storage, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("auth.jwksFile: %w", err)
	}
	s, err := set.ToStorage()
	if err != nil {
		return nil, fmt.Errorf("auth.jwksFile: %w", err)
	}
	return s, nil
}
