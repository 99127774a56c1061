package shm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shmchan/shmchan/internal/testutil"
)

// helperEnv marks a run of the test binary as the helper process of a
// cross-process test.
const helperEnv = "SHMCHAN_SHM_HELPER"

// uniqueName returns a fresh object name and removes whatever is left at
// it in Dir when the test ends, pass or fail.
func uniqueName(t testing.TB) string { return testutil.Name(t) }

// TestMain runs the helper processes (TestHelperProcess), and checks that
// the tests leaked nothing: descriptors, goroutines, objects in Dir
// (testutil.Main).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(m.Run())
	}
	testutil.Main(m, testutil.Config{
		Prefix: "shmchan-test",
		Remove: func(t testing.TB, name string) {
			if err := os.RemoveAll(filepath.Join(Dir, name)); err != nil {
				t.Errorf("cleanup of %s: %v", name, err)
			}
		},
	})
}
