package ctest_test

// The README fragment's examples compile and do what it says, against Go.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shmchan/shmchan"
)

func readmeBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("c/README.md has no %s example", lang)
	}
	return m[1]
}

// feed creates the []byte channel name, and sends vals then CloseSend
// once the example has joined.
func feed(t *testing.T, name string, vals ...string) {
	t.Helper()
	ch, err := shmchan.Create[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ctx := ctxFor(t)
	for _, v := range vals {
		if err := ch.Send(ctx, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.CloseSend(); err != nil {
		t.Fatal(err)
	}
}

func TestReadmeC(t *testing.T) {
	name := testName(t)
	src := strings.ReplaceAll(readmeBlock(t, "c"), `"orders"`, `"`+name+`"`)
	dir := t.TempDir()
	file, bin := filepath.Join(dir, "reader.c"), filepath.Join(dir, "reader")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, cflags...), "-O2", "-I..", "-o", bin, file, "../shmchan.c")
	if out, err := exec.Command(compiler(t, "cc"), args...).CombinedOutput(); err != nil {
		t.Fatalf("the README's C example: %v\n%s", err, out)
	}
	feed(t, name, "first", "second", "third")
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || string(out) != "first\nsecond\nthird\n" {
		t.Fatalf("the README's C example: %v, printed %q", err, out)
	}
}

func TestReadmePython(t *testing.T) {
	in, replies := testName(t), testName(t)
	src := strings.ReplaceAll(readmeBlock(t, "python"), `"orders"`, `"`+in+`"`)
	src = strings.ReplaceAll(src, `"replies"`, `"`+replies+`"`)
	cmd := python(t, "-c", src)
	feed(t, in, "one", "two")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "one\ntwo\n" {
		t.Fatalf("the README's Python example: %v, printed %q\n%s", err, out, stderr.String())
	}
	rx, err := shmchan.Open[[]byte](replies)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if v, err := rx.TryRecv(); err != nil || string(v) != "done" {
		t.Fatalf("reply: %q, %v", v, err)
	}
	if _, err := rx.TryRecv(); !errors.Is(err, shmchan.ErrClosed) {
		t.Fatalf("after the reply: %v, want ErrClosed", err)
	}
}
