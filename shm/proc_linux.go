package shm

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// ProcStartTime returns the start time of process pid, field 22 of
// /proc/<pid>/stat: clock ticks after boot (divide by the USER_HZ clock
// rate, 100 on Linux, for seconds). With the pid it identifies a process
// even after pid reuse; it is meant for display. A process that does not
// exist (or has been reaped) gives an error matching fs.ErrNotExist.
func ProcStartTime(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("shm: start time of pid %d: %w", pid, fs.ErrInvalid)
	}
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("shm: start time of pid %d: %w", pid, err)
	}
	v, err := parseStartTime(b)
	if err != nil {
		return 0, fmt.Errorf("shm: start time of pid %d: %s: %w", pid, path, err)
	}
	return v, nil
}

// parseStartTime extracts field 22 from the text of /proc/<pid>/stat. Field
// 2, the command name in parentheses, may itself contain spaces and ')', so
// the fields are counted from the last ')'.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' after the command name: %w", fs.ErrInvalid)
	}
	// After ") " come fields 3 (state), 4, ...; field 22 is index 19.
	fields := strings.Fields(string(b[i+1:]))
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("%d fields after the command name, want more than %d: %w", len(fields), idx, fs.ErrInvalid)
	}
	v, err := strconv.ParseUint(fields[idx], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field 22: %w", err)
	}
	return v, nil
}
