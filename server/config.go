package server

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/sandbox"
)

// Config is the server's configuration. It comes from a YAML file, then
// SLUICE_* environment variables, then flags: each overrides the one before.
type Config struct {
	// DataDir holds the metadata database and the administrator's first
	// token (admin.token, 0600).
	DataDir string `yaml:"data_dir"`
	// Listen is the address to serve on.
	Listen string `yaml:"listen"`
	// TokenTTL is the default lifetime of API tokens.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// ShutdownGrace is how long a stopping server lets requests finish.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MasterKey is the file of the key that wraps every data key (0600;
	// made on the first start when missing). Default DataDir/master.key;
	// keep it on other storage than the objects in production.
	MasterKey string `yaml:"master_key"`
	// Store is where sealed objects live (default file://DataDir/objects).
	Store string `yaml:"store"`
	// ImportDir is the only directory datasets are registered from by
	// server-side path: the server reads nothing else for an administrator.
	// It holds plaintext sources, so it is never inside DataDir (whose bytes
	// hold no raw value); without it, registration by path is refused.
	ImportDir string `yaml:"import_dir"`
	// StateDir holds the sandbox's job workspaces while jobs run (default
	// DataDir/sandbox). Workspaces hold masked views, never raw data.
	StateDir string `yaml:"state_dir"`
	// MaxJobs is how many jobs run at once; the rest wait, oldest first.
	MaxJobs int `yaml:"max_jobs"`
	// AllowedImages are the images jobs may use, by name or digest (the
	// admission policy checks them).
	AllowedImages []string `yaml:"allowed_images"`
	// MaxLimits are the ceilings of a job's resources (sandbox.MaxLimits
	// when zero).
	MaxLimits sandbox.Limits `yaml:"-"`
}

// WithDefaults fills what a complete configuration may leave out (New
// does; a caller that wires parts before New can too).
func (c Config) WithDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.DataDir, "sandbox")
	}
	if c.MaxJobs <= 0 {
		c.MaxJobs = DefaultConfig.MaxJobs
	}
	if c.AllowedImages == nil {
		c.AllowedImages = DefaultConfig.AllowedImages
	}
	if c.MaxLimits == (sandbox.Limits{}) {
		c.MaxLimits = sandbox.MaxLimits
	}
	return c
}

// DefaultConfig is the configuration when nothing is given.
var DefaultConfig = Config{Listen: "127.0.0.1:8420", TokenTTL: 30 * 24 * time.Hour, ShutdownGrace: 10 * time.Second,
	MaxJobs: 2, AllowedImages: []string{"busybox", "python"}}

// envVars are the environment variables a Config reads.
var envVars = map[string]string{
	"SLUICE_DATA_DIR":       "data_dir",
	"SLUICE_LISTEN":         "listen",
	"SLUICE_TOKEN_TTL":      "token_ttl",
	"SLUICE_SHUTDOWN_GRACE": "shutdown_grace",
	"SLUICE_MASTER_KEY":     "master_key",
	"SLUICE_STORE":          "store",
	"SLUICE_IMPORT_DIR":     "import_dir",
	"SLUICE_STATE_DIR":      "state_dir",
	"SLUICE_MAX_JOBS":       "max_jobs",
	"SLUICE_ALLOWED_IMAGES": "allowed_images",
}

// LoadConfig reads the file at path (none when "") over DefaultConfig, then
// the environment (getenv). An unknown key or a bad value names where it
// came from.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	c := DefaultConfig
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("--config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	for env, key := range envVars {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := c.Set(key, v); err != nil {
			return c, fmt.Errorf("%s: %w", env, err)
		}
	}
	return c, nil
}

// Set sets one key from its text (as a file, the environment or a flag
// gives it).
func (c *Config) Set(key, v string) error {
	switch key {
	case "data_dir":
		c.DataDir = v
	case "listen":
		c.Listen = v
	case "master_key":
		c.MasterKey = v
	case "store":
		c.Store = v
	case "import_dir":
		c.ImportDir = v
	case "state_dir":
		c.StateDir = v
	case "max_jobs":
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q: use a positive number of jobs", v)
		}
		c.MaxJobs = n
	case "allowed_images":
		c.AllowedImages = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	case "token_ttl", "shutdown_grace":
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: use a positive duration such as 720h", v)
		}
		if key == "token_ttl" {
			c.TokenTTL = d
		} else {
			c.ShutdownGrace = d
		}
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return nil
}

// Validate checks a complete configuration.
func (c Config) Validate() error {
	var missing []string
	if c.DataDir == "" {
		missing = append(missing, "data_dir (--data-dir, SLUICE_DATA_DIR)")
	}
	if c.Listen == "" {
		missing = append(missing, "listen (--listen, SLUICE_LISTEN)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if c.ImportDir != "" && c.DataDir != "" {
		if rel, err := filepath.Rel(filepath.Clean(c.DataDir), filepath.Clean(c.ImportDir)); err == nil && filepath.IsLocal(rel) {
			return fmt.Errorf("import_dir %s is inside data_dir: the data directory holds no plaintext source", c.ImportDir)
		}
	}
	return nil
}
