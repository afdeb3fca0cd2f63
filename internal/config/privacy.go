package config

// Privacy keeps user IDs (personal data) out of logs and traces.
type Privacy struct {
	// UserIDs in logs and traces: raw, hash (a keyed hash: lines about one
	// user still correlate) or drop.
	UserIDs string `yaml:"userIds" env:"USER_IDS"`
	// HashKeyFile holds the hash key (at least 32 bytes) for UserIDs: hash.
	HashKeyFile string `yaml:"hashKeyFile" env:"HASH_KEY_FILE"`
}

func (v Privacy) check(p *Problems) {
	switch v.UserIDs {
	case "raw", "drop":
	case "hash":
		if v.HashKeyFile == "" {
			p.Add("privacy.hashKeyFile", "is required when privacy.userIds is hash")
		}
	default:
		p.Add("privacy.userIds", "must be raw, hash or drop, got %q", v.UserIDs)
	}
	p.file("privacy.hashKeyFile", v.HashKeyFile)
}
