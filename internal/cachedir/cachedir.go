// Package cachedir is the one lookup of catdog's cache directory: $CATDOG_CACHE when set,
// otherwise the user cache directory's catdog folder ($XDG_CACHE_HOME/catdog or
// ~/.cache/catdog), the same folder the Makefile uses.
package cachedir

import (
	"errors"
	"os"
	"path/filepath"
)

// Env is the environment variable that overrides the cache directory.
const Env = "CATDOG_CACHE"

// Dir returns catdog's cache directory, or an error when neither $CATDOG_CACHE nor a user
// cache directory ($XDG_CACHE_HOME, $HOME) is known.
func Dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", errors.New("cachedir: no cache directory: set " + Env + " or HOME")
	}
	return filepath.Join(d, "catdog"), nil
}

// Join returns a path below the cache directory.
func Join(elem ...string) (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{d}, elem...)...), nil
}
