package cachedir

import (
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	tests := []struct {
		name, cache, xdg, home, want string
		wantErr                      bool
	}{
		{name: "override", cache: "/c", xdg: "/x", home: "/h", want: "/c"},
		{name: "xdg", xdg: "/x", home: "/h", want: "/x/catdog"},
		{name: "home", home: "/h", want: "/h/.cache/catdog"},
		{name: "nothing", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(Env, tt.cache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := Dir()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Dir() = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Dir() = %q, %v; want %q", got, err, tt.want)
			}
			j, _ := Join("a", "b")
			if j != filepath.Join(tt.want, "a", "b") {
				t.Errorf("Join = %q", j)
			}
		})
	}
}
