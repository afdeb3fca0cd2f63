package config

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level" env:"LEVEL"`
	// Format is json or text; empty picks json for api and worker, text for dev.
	Format string `yaml:"format" env:"FORMAT"`
}

func (l Log) check(p *Problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Add("log.level", "must be debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case "", "json", "text":
	default:
		p.Add("log.format", "must be json or text, got %q", l.Format)
	}
}
