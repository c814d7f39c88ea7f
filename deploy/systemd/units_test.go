package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// unit is a parsed unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parse(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// required are the [Service] settings both units must keep: a dedicated
// user, a read-only system with only the database directory writable, no
// privileges, and only the network families and system calls a service
// needs. The key directory is read-only when it exists; with PostgreSQL
// and --keys db there is none, and "-" keeps systemd from refusing to start
// the unit (status 226/NAMESPACE) for a path that does not exist.
var required = map[string]string{
	"User":                    "amaretti",
	"UMask":                   "0077",
	"ProtectSystem":           "strict",
	"ReadWritePaths":          "/var/lib/amaretti",
	"ReadOnlyPaths":           "-/var/lib/amaretti/keys",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces":      "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectControlGroups":    "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service",
	"SystemCallErrorNumber":   "EPERM",
}

var units = []struct {
	file, env, binary string
}{
	{"amarettid.service", "amarettid.env", "/usr/local/bin/amarettid"},
	{"webfront.service", "webfront.env", "/usr/local/bin/webfront"},
}

// TestHardening parses each unit and checks the settings it must have.
func TestHardening(t *testing.T) {
	for _, tc := range units {
		t.Run(tc.file, func(t *testing.T) {
			u := parse(t, tc.file)
			svc := u["Service"]
			if svc == nil {
				t.Fatal("no [Service] section")
			}
			for k, want := range required {
				vs := svc[k]
				found := false
				for _, v := range vs {
					found = found || v == want
				}
				if !found {
					t.Errorf("%s=%s missing (has %q)", k, want, vs)
				}
			}
			if got := svc["ReadWritePaths"]; len(got) != 1 {
				t.Errorf("ReadWritePaths must name the database directory only: %q", got)
			}
			if got := svc["EnvironmentFile"]; len(got) != 1 || got[0] != "/etc/amaretti/"+tc.env {
				t.Errorf("EnvironmentFile %q", got)
			}
			if got := svc["ExecStart"]; len(got) != 1 || got[0] != tc.binary {
				t.Errorf("ExecStart %q: flags belong in the environment file", got)
			}
			if u["Install"]["WantedBy"] == nil {
				t.Error("no WantedBy: systemctl enable would do nothing")
			}
		})
	}
}

// TestEnvironmentFiles: every line of an environment file is a comment or
// NAME=value for a variable the program reads, and the database and keys
// are in the directory the units make writable.
func TestEnvironmentFiles(t *testing.T) {
	line := regexp.MustCompile(`^#?(AMARETTI|WEBFRONT)_[A-Z_]+=("[^"]*"|\S*)$`)
	for _, tc := range units {
		t.Run(tc.env, func(t *testing.T) {
			b, err := os.ReadFile(tc.env + ".example") // installed as /etc/amaretti/<env>
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{}
			for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.HasPrefix(l, "# ") || l == "#" {
					continue
				}
				if !line.MatchString(l) {
					t.Errorf("%s:%d: %q", tc.env, i+1, l)
				}
				if k, v, _ := strings.Cut(l, "="); !strings.HasPrefix(k, "#") {
					vars[k] = v
				}
			}
			if vars["AMARETTI_DB"] != "/var/lib/amaretti/amaretti.db" || vars["AMARETTI_KEYS"] != "/var/lib/amaretti/keys" {
				t.Errorf("database and keys: %v", vars)
			}
		})
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the units, with
// ExecStart and EnvironmentFile pointed at files that exist here; any
// warning fails. Where systemd-analyze is not installed, TestHardening is
// the check, and this test says so in its log.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units are checked by TestHardening only")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range units {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			env := filepath.Join(dir, tc.env)
			if err := os.WriteFile(env, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			text := strings.NewReplacer(
				"ExecStart="+tc.binary, "ExecStart="+self,
				"EnvironmentFile=/etc/amaretti/"+tc.env, "EnvironmentFile="+env,
			).Replace(string(b))
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", path).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", tc.file, err, out)
			}
		})
	}
}

// TestVerifyCatchesMistakes: the verify test would notice a misspelt
// setting and an unknown system call group.
func TestVerifyCatchesMistakes(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: nothing to check")
		return
	}
	for _, bad := range []string{"ProtectSytem=strict", "SystemCallFilter=@no-such-group"} {
		t.Run(bad, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.service")
			os.WriteFile(path, []byte("[Service]\nExecStart=/bin/true\n"+bad+"\n"), 0o644)
			out, _ := exec.Command(analyze, "verify", path).CombinedOutput()
			if len(strings.TrimSpace(string(out))) == 0 {
				t.Fatalf("systemd-analyze verify said nothing about %s", bad)
			}
		})
	}
}
