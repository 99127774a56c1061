package shm

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathValid(t *testing.T) {
	long := strings.Repeat("n", 255)
	for _, tc := range []struct{ name, want string }{
		{"orders", "/dev/shm/orders"},
		{"/orders", "/dev/shm/orders"},
		{".hidden", "/dev/shm/.hidden"},
		{"...", "/dev/shm/..."},
		{"a b", "/dev/shm/a b"},
		{"a\\b", "/dev/shm/a\\b"},
		{long, "/dev/shm/" + long},
		{"/" + long, "/dev/shm/" + long},
	} {
		got, err := Path(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q, nil", tc.name, got, err, tc.want)
		}
	}
}

func TestPathInvalid(t *testing.T) {
	for _, name := range []string{
		"", "/", "//", "//orders", "a/b", "/a/b", "orders/", "/orders/",
		".", "..", "/.", "/..", "../x", "/../x",
		"a\x00b", "\x00",
		strings.Repeat("n", 256), "/" + strings.Repeat("n", 256),
	} {
		got, err := Path(name)
		if !errors.Is(err, ErrInvalidName) || !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Path(%q) = %q, %v; want ErrInvalidName", name, got, err)
		}
		if _, err := Create(name, 64, Options{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v; want ErrInvalidName", name, err)
		}
		if _, err := Open(name, Options{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q): %v; want ErrInvalidName", name, err)
		}
		if err := Unlink(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Unlink(%q): %v; want ErrInvalidName", name, err)
		}
	}
}

func TestPathIn(t *testing.T) {
	if got, err := PathIn("", "x"); err != nil || got != "/dev/shm/x" {
		t.Errorf(`PathIn("", "x") = %q, %v`, got, err)
	}
	if got, err := PathIn("/tmp/t", "/x"); err != nil || got != "/tmp/t/x" {
		t.Errorf(`PathIn("/tmp/t", "/x") = %q, %v`, got, err)
	}
}

// FuzzPath checks that no name accepted by Path leaves Dir.
func FuzzPath(f *testing.F) {
	for _, s := range []string{"orders", "/orders", "..", "/..", "a/../b", "//x", "\x00", ". .", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := Path(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Path(%q): error %v does not match ErrInvalidName", name, err)
			}
			return
		}
		if filepath.Dir(p) != Dir || filepath.Base(p) != strings.TrimPrefix(name, "/") {
			t.Fatalf("Path(%q) = %q escapes %s or changes the name", name, p, Dir)
		}
	})
}
