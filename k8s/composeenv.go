package k8s

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// ComposeImageVar is the variable deploy/compose.yaml takes the image reference from.
const ComposeImageVar = "CATDOG_IMAGE"

// SetEnvFile sets key=value in a compose .env file, keeping every other line (comments,
// other variables) as it was, and replaces the file atomically. A missing file is created.
func SetEnvFile(path, key, value string) error {
	if strings.ContainsAny(value, "\n\r\"'$ #") {
		return fmt.Errorf("%w: value of %s %q would need quoting in a .env file", ErrInvalidSpec, key, value)
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out bytes.Buffer
	found := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		k, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "=")
		if ok && strings.TrimSpace(k) == key {
			if found {
				continue // a later duplicate would override the value compose reads
			}
			line, found = key+"="+value, true
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !found {
		out.WriteString(key + "=" + value + "\n")
	}
	return atomicfile.WriteFile(path, out.Bytes(), 0o644)
}
