package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/mq"
	"github.com/shmchan/shmchan/shm"
)

// doctorLine returns the first line of out for check at level, or "".
func doctorLine(out, lvl, check string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(lvl) + `\s+` + regexp.QuoteMeta(check) + `\s+.*$`)
	return re.FindString(out)
}

// This machine: everything shmchan needs is there, and nothing of this
// test's is stale (the prefix keeps other programs' regions out).
func TestDoctorHere(t *testing.T) {
	out, errOut, code := tool(t, "doctor", "-prefix", namePrefix())
	t.Logf("doctor on this machine:\n%s", out)
	if code != 0 || !strings.HasSuffix(out, "no problems found\n") || errOut != "" {
		t.Fatalf("doctor: exit %d, stderr %q", code, errOut)
	}
	for _, check := range []string{"/dev/shm", "shm-space", "shm-create", "futex", "regions"} {
		if doctorLine(out, "ok", check) == "" {
			t.Errorf("no ok line for %s", check)
		}
	}
	if doctorLine(out, "ok", "membarrier") == "" && doctorLine(out, "note", "membarrier") == "" {
		t.Errorf("no membarrier line")
	}
	if strings.Contains(out, "mqueue") {
		t.Errorf("mq checked without -mq or a WaitMQ region")
	}

	// A plan far larger than the free space is a problem; a small one is not.
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil {
		t.Fatal(err)
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	slots := uint64(1)
	for slots<<20 <= 2*free && slots < layout.MaxCapacity {
		slots <<= 1
	}
	big := fmt.Sprintf("%dx1m", slots)
	out, _, code = tool(t, "doctor", "-prefix", namePrefix(), "-plan", big)
	if line := doctorLine(out, "PROBLEM", "shm-space"); code != 1 || !strings.Contains(line, "--shm-size") || !strings.Contains(line, "free of") {
		t.Errorf("doctor -plan %s: exit %d:\n%s", big, code, out)
	}
	out, _, code = tool(t, "doctor", "-prefix", namePrefix(), "-plan", "1kx256", "-channels", "3", "-mq")
	if code != 0 || !strings.Contains(doctorLine(out, "ok", "shm-space"), "3 channels of 1024 x 256 bytes need") ||
		!strings.Contains(out, "enough for 3 WaitMQ channels") || doctorLine(out, "ok", "mqueue") == "" {
		t.Errorf("doctor -plan 1kx256 -channels 3 -mq: exit %d:\n%s", code, out)
	}
	for _, bad := range [][]string{{"-plan", "12"}, {"-plan", "0x5"}, {"-plan", "4xq"}, {"-channels", "0"}, {"-prefix", "a", "b"}} {
		if _, errOut, code := tool(t, append([]string{"doctor"}, bad...)...); code != 2 || !strings.Contains(errOut, "usage: shmchan doctor") {
			t.Errorf("doctor %v: exit %d, %q", bad, code, errOut)
		}
	}
}

func TestDoctorRegions(t *testing.T) {
	// Healthy: in use by two live processes.
	busy := newName(t)
	busyRegion(t, busy)
	out, _, code := tool(t, "doctor", busy)
	if code != 0 || !strings.Contains(doctorLine(out, "ok", "regions"), "1 region named, none damaged") ||
		!strings.Contains(doctorLine(out, "ok", "shm-space"), "the regions named take") {
		t.Errorf("doctor of a busy region: exit %d:\n%s", code, out)
	}

	// Stale: both holders exited, empty. The printed fix removes it.
	stale := newName(t)
	startHolder(t, stale, "send-recv-exit", "3")
	out, _, code = tool(t, "doctor", "-prefix", namePrefix())
	line := doctorLine(out, "PROBLEM", "stale")
	wantFix := "Fix: shmchan rm -stale -prefix " + namePrefix() + "."
	if code != 1 || !strings.Contains(line, stale) || !strings.HasSuffix(line, wantFix) || strings.Contains(line, busy) {
		t.Fatalf("doctor with a stale region: exit %d, stale line %q, want %q:\n%s", code, line, wantFix, out)
	}
	out, _, code = tool(t, "doctor", stale, busy)
	if line := doctorLine(out, "PROBLEM", "stale"); code != 1 || !strings.Contains(line, "Fix: shmchan rm "+stale+" (or") {
		t.Errorf("doctor NAME of a stale region: exit %d:\n%s", code, out)
	}
	fix := strings.Fields(strings.TrimSuffix(wantFix, "."))[1:] // shmchan rm -stale -prefix P
	if _, errOut, code := tool(t, fix[1:]...); code != 0 || exists(stale) || !exists(busy) {
		t.Fatalf("running the fix %v: exit %d, %s; stale still there %v", fix, code, errOut, exists(stale))
	}
	if out, _, code := tool(t, "doctor", "-prefix", namePrefix()); code != 0 {
		t.Errorf("doctor after the fix: exit %d:\n%s", code, out)
	}

	// Holders dead, values left: a problem, but not one rm -stale solves.
	full := newName(t)
	startHolder(t, full, "send-exit", "3")
	out, _, code = tool(t, "doctor", full)
	if line := doctorLine(out, "PROBLEM", "regions"); code != 1 || !strings.Contains(line, "3 values wait unread") || !strings.HasSuffix(line, "shmchan rm "+full) {
		t.Errorf("doctor of an abandoned full region: exit %d:\n%s", code, out)
	}

	// Damaged, readable by others, owned by another user, spinning, absent.
	damaged := newName(t)
	quietRegion(t, damaged)
	damage(t, damaged, layout.OffTypeName, []byte("X"))
	open := newName(t)
	c, err := shmchan.Create[rec](open, shmchan.WithPerm(0o644), shmchan.WithWait(shmchan.WaitSpin))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _, code = tool(t, "doctor", damaged, open, namePrefix()+"absent")
	t.Logf("doctor of bad regions:\n%s", out)
	for _, want := range []string{
		damaged + " does not validate: ",
		open + " has mode -rw-r--r--: every user on the machine can read it. Fix: chmod o-rwx",
		open + " waits by spinning",
		namePrefix() + "absent: no such region",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q", want)
		}
	}
	if code != 1 {
		t.Errorf("doctor of bad regions: exit %d", code)
	}
	if os.Geteuid() == 0 {
		foreign := newName(t)
		quietRegion(t, foreign)
		if err := os.Chown("/dev/shm/"+foreign, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		out, _, code = tool(t, "doctor", foreign)
		if line := doctorLine(out, "PROBLEM", "regions"); code != 1 || !strings.Contains(line, "is owned by 4242 (uid 4242), not by you (uid 0)") {
			t.Errorf("doctor of a foreign region: exit %d:\n%s", code, out)
		}
	} else {
		t.Log("not root: the foreign-owner case needs chown and is left out")
	}

	// A WaitMQ region brings in the message-queue checks.
	bells := newName(t)
	startHolder(t, bells, "recv", "0", "mq")
	out, _, code = tool(t, "doctor", bells)
	if code != 0 || !strings.Contains(doctorLine(out, "ok", "mqueue"), "enough for 1 WaitMQ channel") ||
		!strings.Contains(out, "created, rang and removed a test doorbell queue") {
		t.Errorf("doctor of a WaitMQ region: exit %d:\n%s", code, out)
	}
}

// inPrivateMounts runs script under sh in a private mount namespace, or
// skips the test if this machine does not allow one.
func inPrivateMounts(t *testing.T, script string) (string, int) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("no unshare(1) here: %v", err)
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("a private mount namespace is not permitted here (unshare -m: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), "BIN="+binPath, "P="+namePrefix())
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "panic") {
		t.Fatalf("crashed:\n%s", out)
	}
	return string(out), code
}

// A container-sized /dev/shm: 1 MiB is too small for a default channel.
func TestDoctorSmallShm(t *testing.T) {
	out, code := inPrivateMounts(t, `mount -t tmpfs -o size=1m,mode=1777 tmpfs /dev/shm
"$BIN" doctor || echo "exit $?"
"$BIN" doctor -plan 16x64 && echo "exit 0"`)
	t.Logf("doctor with a 1 MiB /dev/shm:\n%s", out)
	if code != 0 {
		t.Fatalf("script: exit %d", code)
	}
	first, second, ok := strings.Cut(out, "exit 1\n")
	if !ok {
		t.Fatalf("doctor with a 1 MiB /dev/shm did not exit 1:\n%s", out)
	}
	line := doctorLine(first, "PROBLEM", "shm-space")
	for _, want := range []string{"/dev/shm has 1.0M free of 1.0M", "needs 4.0M", "--shm-size", "medium: Memory"} {
		if !strings.Contains(line, want) {
			t.Errorf("shm-space problem line %q lacks %q", line, want)
		}
	}
	if strings.Count(first, "PROBLEM") != 1 {
		t.Errorf("more problems than the size:\n%s", first)
	}
	if !strings.HasSuffix(second, "no problems found\nexit 0\n") || !strings.Contains(doctorLine(second, "note", "shm-space"), "only 1.0M") {
		t.Errorf("doctor -plan 16x64 with a 1 MiB /dev/shm:\n%s", second)
	}
}

// Doorbell queues whose region is gone: found (with /dev/mqueue mounted),
// and removed by the rm -stale line doctor prints.
func TestDoctorOrphanBells(t *testing.T) {
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithWait(shmchan.WaitMQ))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := shm.Unlink(name); err != nil { // the region goes, its doorbells stay
		t.Fatal(err)
	}
	// A private /dev with its own /dev/shm and the mqueue filesystem.
	out, code := inPrivateMounts(t, `mount -t tmpfs -o size=64m,mode=755 tmpfs /dev
mkdir -m 1777 /dev/shm
mkdir /dev/mqueue
mount -t mqueue mqueue /dev/mqueue
"$BIN" doctor -prefix "$P" || echo "exit $?"
"$BIN" rm -stale -prefix "$P"
"$BIN" doctor -prefix "$P" && echo "exit 0"`+"\n")
	t.Logf("orphaned doorbells:\n%s", out)
	if code != 0 {
		t.Fatalf("script: exit %d", code)
	}
	first, second, ok := strings.Cut(out, "exit 1\n")
	line := doctorLine(first, "PROBLEM", "doorbells")
	if !ok || !strings.Contains(line, "/"+name+".rx, /"+name+".tx") || !strings.HasSuffix(line, "Fix: shmchan rm -stale -prefix "+namePrefix()+".") {
		t.Fatalf("doctor does not report the doorbells:\n%s", out)
	}
	if !strings.Contains(second, "removed doorbell /"+name+".rx\nremoved doorbell /"+name+".tx\n") || !strings.HasSuffix(second, "exit 0\n") ||
		doctorLine(second, "ok", "doorbells") == "" {
		t.Errorf("rm -stale did not remove them:\n%s", second)
	}
	for _, b := range []string{name + ".rx", name + ".tx"} {
		if q, err := mq.Open(b, os.O_RDONLY, 0, nil); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				q.Close()
			}
			t.Errorf("doorbell %s still there: %v", b, err)
		}
	}
}

func TestNewCommandsHelp(t *testing.T) {
	out, _, _ := tool(t, "help")
	for _, cmd := range []string{"doctor", "metrics", "record", "replay"} {
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` +\S`).MatchString(out) {
			t.Errorf("shmchan help does not list %s:\n%s", cmd, out)
		}
		for _, h := range []string{"-h", "-help"} {
			out, errOut, code := tool(t, cmd, h)
			if code != 0 || !strings.HasPrefix(out, "usage: shmchan "+cmd) || !strings.Contains(out, "\nExample") || errOut != "" {
				t.Errorf("shmchan %s %s: exit %d, %q", cmd, h, code, out)
			}
		}
		if _, errOut, code := tool(t, cmd, "-bogus"); code != 2 || !strings.Contains(errOut, "usage: shmchan "+cmd) {
			t.Errorf("shmchan %s -bogus: exit %d, %q", cmd, code, errOut)
		}
	}
	for _, args := range [][]string{{"record", "x"}, {"record", "-count", "-1", "a", "b"}, {"replay", "f"}, {"replay", "a", "b", "c"}} {
		if _, errOut, code := tool(t, args...); code != 2 || !strings.Contains(errOut, "usage: shmchan") {
			t.Errorf("shmchan %v: exit %d, %q", args, code, errOut)
		}
	}
}
