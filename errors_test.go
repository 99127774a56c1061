package shmchan

// Every error of the public contract, produced on purpose and matched with
// errors.Is; the codecs end to end across a process boundary; permissions,
// and what may not sit at a region's name (a symbolic link, a FIFO, a
// directory, a file of another user).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/shm"
)

// shmPath is where the region called name lives.
func shmPath(name string) string { return filepath.Join(shm.Dir, strings.TrimPrefix(name, "/")) }

// mustNotExist fails the test if anything is at name in /dev/shm.
func mustNotExist(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Lstat(shmPath(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: something was left at the name (lstat: %v)", shmPath(name), err)
	}
}

// closeOK closes c and fails the test on an error.
func closeOK[T any](t *testing.T, c *Chan[T]) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

type errPoint struct{ X, Y int64 }

type errPointAgain struct{ X, Y int64 } // same structure, another name: the same raw type

type errPointRenamed struct{ X, Z int64 } // a field renamed

type errPointWider struct{ X, Y, Z int64 }

type errPointNarrower struct{ X, Y int32 }

type errWithString struct {
	ID   int
	Name string
}

// errDoc is a type only codec.JSON and codec.Gob can carry.
type errDoc struct {
	Name  string
	Tags  []string
	Attrs map[string]int
	Score float64
}

// errBin carries itself with encoding.BinaryAppender and
// encoding.BinaryUnmarshaler (its string field keeps it from being raw).
type errBin struct {
	Name string
	N    uint32
}

func (b *errBin) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint32(dst, b.N)
	return append(dst, b.Name...), nil
}

func (b *errBin) UnmarshalBinary(src []byte) error {
	if len(src) < 4 {
		return fmt.Errorf("errBin: %d bytes", len(src))
	}
	b.N = binary.LittleEndian.Uint32(src)
	b.Name = string(src[4:])
	return nil
}

func TestErrNotExist(t *testing.T) {
	name := testName(t)
	if _, err := Open[errPoint](name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing region: %v, want fs.ErrNotExist", err)
	}
	if _, err := Open[errPoint]("/" + name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing region with a leading slash: %v, want fs.ErrNotExist", err)
	}
	if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unlink of a missing region: %v, want fs.ErrNotExist", err)
	}
	mustNotExist(t, name)
}

func TestErrExist(t *testing.T) {
	name := testName(t)
	c, err := Create[errPoint](name)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	for _, n := range []string{name, "/" + name} {
		if _, err := Create[errPoint](n); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Create(%q) of an existing region: %v, want fs.ErrExist", n, err)
		}
		// Another type changes nothing: the name is taken.
		if _, err := Create[string](n); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Create[string](%q) of an existing region: %v, want fs.ErrExist", n, err)
		}
	}
	// The failed creates did not disturb the region.
	if err := c.TrySend(errPoint{1, 2}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.TryRecv(); err != nil || v != (errPoint{1, 2}) {
		t.Fatalf("TryRecv: %v %v", v, err)
	}
}

func TestErrInvalidName(t *testing.T) {
	long := strings.Repeat("a", 256)
	for _, name := range []string{
		"", "/", "//", "a/b", "/a/b", "a/", "/a/", ".", "..", "/.", "/..", "../x", "a\x00b", "\x00",
		long, "/" + long,
	} {
		label := fmt.Sprintf("%q", name)
		if len(name) > 200 {
			label = fmt.Sprintf("%d bytes", len(name))
		}
		t.Run(label, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalidName) || !errors.Is(err, fs.ErrInvalid) {
					t.Errorf("%s(%q): %v, want ErrInvalidName and fs.ErrInvalid", what, name, err)
				}
			}
			c, err := Create[errPoint](name)
			check("Create", err)
			if c != nil {
				c.Close()
			}
			_, err = Open[errPoint](name)
			check("Open", err)
			_, err = OpenOrCreate[errPoint](name)
			check("OpenOrCreate", err)
			check("Unlink", Unlink(name))
		})
	}
	t.Run("255 bytes is valid", func(t *testing.T) {
		name := testPrefix() + "max-"
		name += strings.Repeat("x", 255-len(name))
		t.Cleanup(func() { Unlink(name) })
		c, err := Create[errPoint]("/" + name)
		if err != nil {
			t.Fatalf("a 255-byte name: %v", err)
		}
		closeOK(t, c)
		if _, err := os.Stat(shmPath(name)); err != nil {
			t.Fatal(err)
		}
		if err := Unlink(name); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNameSlash: "/orders" and "orders" are the same object,
// /dev/shm/orders, whichever form creates and whichever opens.
func TestNameSlash(t *testing.T) {
	for _, form := range []struct{ create, open func(string) string }{
		{func(n string) string { return "/" + n }, func(n string) string { return n }},
		{func(n string) string { return n }, func(n string) string { return "/" + n }},
	} {
		name := testName(t)
		c, err := Create[errPoint](form.create(name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(shm.Dir, name)); err != nil {
			t.Fatalf("Create(%q) did not make %s: %v", form.create(name), filepath.Join(shm.Dir, name), err)
		}
		o, err := Open[errPoint](form.open(name))
		if err != nil {
			t.Fatalf("Open(%q) after Create(%q): %v", form.open(name), form.create(name), err)
		}
		if err := c.TrySend(errPoint{3, 4}); err != nil {
			t.Fatal(err)
		}
		if v, err := o.TryRecv(); err != nil || v != (errPoint{3, 4}) {
			t.Fatalf("value across the two forms of the name: %v %v", v, err)
		}
		if _, err := Create[errPoint](form.open(name)); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Create(%q) after Create(%q): %v, want fs.ErrExist", form.open(name), form.create(name), err)
		}
		closeOK(t, o)
		closeOK(t, c)
		if err := Unlink(form.open(name)); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, name)
	}
}

// TestErrFullCap: Cap() is WithCapacity rounded up to a power of two, and
// exactly that many TrySends succeed on an empty channel before ErrFull.
func TestErrFullCap(t *testing.T) {
	for _, tc := range []struct{ ask, cap int }{
		{1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {100, 128}, {1000, 1024}, {1024, 1024}, {1025, 2048},
	} {
		t.Run(fmt.Sprint(tc.ask), func(t *testing.T) {
			c, err := Create[errPoint](testName(t), WithCapacity(tc.ask))
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, c)
			if c.Cap() != tc.cap {
				t.Fatalf("WithCapacity(%d): Cap() = %d, want %d", tc.ask, c.Cap(), tc.cap)
			}
			sent := 0
			for ; sent <= tc.cap; sent++ {
				err := c.TrySend(errPoint{int64(sent), -int64(sent)})
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil {
					t.Fatalf("TrySend %d: %v", sent, err)
				}
			}
			if sent != c.Cap() {
				t.Fatalf("%d TrySends succeeded on an empty channel, Cap() = %d", sent, c.Cap())
			}
			if n := c.Len(); n != c.Cap() {
				t.Fatalf("Len() = %d on a full channel of %d", n, c.Cap())
			}
			if err := c.TrySend(errPoint{}); !errors.Is(err, ErrFull) {
				t.Fatalf("TrySend on a full channel: %v, want ErrFull", err)
			}
			// A full channel makes a blocking Send wait, not fail.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			if err := c.Send(ctx, errPoint{}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send on a full channel: %v, want DeadlineExceeded", err)
			}
			for i := 0; i < sent; i++ {
				v, err := c.TryRecv()
				if err != nil || v != (errPoint{int64(i), -int64(i)}) {
					t.Fatalf("TryRecv %d: %v %v", i, v, err)
				}
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryRecv on a drained channel: %v, want ErrEmpty", err)
			}
			// One slot free again: one TrySend, then ErrFull... after Cap more.
			if err := c.TrySend(errPoint{}); err != nil {
				t.Fatalf("TrySend after draining: %v", err)
			}
		})
	}
}

func TestErrEmpty(t *testing.T) {
	for _, mpsc := range []bool{false, true} {
		t.Run(map[bool]string{false: "spsc", true: "mpsc"}[mpsc], func(t *testing.T) {
			var opts []Option
			if mpsc {
				opts = append(opts, WithMultiProducer())
			}
			c, err := Create[errPoint](testName(t), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, c)
			if v, err := c.TryRecv(); !errors.Is(err, ErrEmpty) || v != (errPoint{}) {
				t.Fatalf("TryRecv on a new channel: %v %v, want the zero value and ErrEmpty", v, err)
			}
			if err := c.TrySend(errPoint{1, 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.TryRecv(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryRecv after draining: %v, want ErrEmpty", err)
			}
			if c.Len() != 0 {
				t.Fatalf("Len() = %d on an empty channel", c.Len())
			}
		})
	}
}

// TestErrTooLarge: with WithMaxMessageSize(n), a value of n bytes fits and
// one of n+1 is ErrTooLarge, and nothing is sent for it.
func TestErrTooLarge(t *testing.T) {
	for _, n := range []int{1, 7, 8, 100, 4096, 70000} {
		t.Run(fmt.Sprintf("bytes/%d", n), func(t *testing.T) {
			tooLargeCase(t, n, func(k int) []byte { return bytes.Repeat([]byte{byte(k)}, k) }, bytes.Equal)
		})
		t.Run(fmt.Sprintf("string/%d", n), func(t *testing.T) {
			tooLargeCase(t, n, func(k int) string { return strings.Repeat(string(rune('a'+k%26)), k) },
				func(a, b string) bool { return a == b })
		})
	}
	t.Run("json", func(t *testing.T) {
		c, err := Create[errDoc](testName(t), WithCodec(codec.JSON[errDoc]()), WithMaxMessageSize(64))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		if err := c.TrySend(errDoc{Name: strings.Repeat("x", 100)}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a JSON value over the limit: %v, want ErrTooLarge", err)
		}
		if err := c.TrySend(errDoc{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		if v, err := c.TryRecv(); err != nil || v.Name != "x" {
			t.Fatalf("%+v %v", v, err)
		}
	})
	t.Run("mpsc", func(t *testing.T) {
		// In MPSC the slot is claimed before the value is encoded: a value
		// that does not fit must leave no trace a receiver can see.
		c, err := Create[[]byte](testName(t), WithMultiProducer(), WithMaxMessageSize(16), WithCapacity(4))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		for i := 0; i < 10; i++ { // more than the capacity: skipped slots are freed
			if err := c.TrySend(make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("TrySend of 17 bytes: %v, want ErrTooLarge", err)
			}
			if v, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryRecv after a too-large send: %q %v, want ErrEmpty", v, err)
			}
		}
		if err := c.TrySend([]byte("0123456789abcdef")); err != nil {
			t.Fatal(err)
		}
		if v, err := c.TryRecv(); err != nil || string(v) != "0123456789abcdef" {
			t.Fatalf("%q %v", v, err)
		}
	})
}

func tooLargeCase[T any](t *testing.T, n int, mk func(int) T, eq func(a, b T) bool) {
	c, err := Create[T](testName(t), WithMaxMessageSize(n), WithCapacity(8))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	ctx := context.Background()
	if err := c.TrySend(mk(n)); err != nil {
		t.Fatalf("TrySend of %d bytes with WithMaxMessageSize(%d): %v", n, n, err)
	}
	if err := c.TrySend(mk(n + 1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("TrySend of %d bytes: %v, want ErrTooLarge", n+1, err)
	}
	if err := c.Send(ctx, mk(n+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send of %d bytes: %v, want ErrTooLarge", n+1, err)
	}
	// A batch stops at the value that does not fit and says how many went.
	k, err := c.SendBatch(ctx, []T{mk(0), mk(n - 1), mk(n + 1), mk(1)})
	if k != 2 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SendBatch with a too-large third value: %d, %v; want 2, ErrTooLarge", k, err)
	}
	if c.Len() != 3 {
		t.Fatalf("Len() = %d, want 3: a too-large value was counted", c.Len())
	}
	for _, want := range []T{mk(n), mk(0), mk(n - 1)} {
		v, err := c.TryRecv()
		if err != nil || !eq(v, want) {
			t.Fatalf("TryRecv: %d bytes, %v", len(fmt.Sprint(v)), err)
		}
	}
	if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after the values that fit: %v, want ErrEmpty", err)
	}
}

// TestErrTypeMismatch: Open with a T other than the region's.
func TestErrTypeMismatch(t *testing.T) {
	mismatch := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrTypeMismatch) {
			t.Errorf("%s: %v, want ErrTypeMismatch", what, err)
		}
	}
	t.Run("raw", func(t *testing.T) {
		name := testName(t)
		c, err := Create[errPoint](name)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		_, err = Open[errPointWider](name)
		mismatch(t, "another struct (wider)", err)
		_, err = Open[errPointNarrower](name)
		mismatch(t, "another struct (narrower fields)", err)
		_, err = Open[errPointRenamed](name)
		mismatch(t, "a renamed field", err)
		_, err = Open[uint64](name)
		mismatch(t, "a scalar", err)
		_, err = Open[[2]int64](name)
		mismatch(t, "an array of the same size", err)
		_, err = Open[[]byte](name)
		mismatch(t, "[]byte", err)
		_, err = Open[errWithString](name, WithCodec(codec.JSON[errWithString]()))
		mismatch(t, "an encoded type", err)
		_, err = OpenOrCreate[errPointWider](name)
		mismatch(t, "OpenOrCreate with another struct", err)
		// The type's name is not part of a raw fingerprint: the same
		// structure under another name is the same type on the wire.
		o, err := Open[errPointAgain](name)
		if err != nil {
			t.Fatalf("the same structure under another name: %v", err)
		}
		closeOK(t, o)
	})
	t.Run("scalar", func(t *testing.T) {
		name := testName(t)
		c, err := Create[uint32](name)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		_, err = Open[int32](name)
		mismatch(t, "int32 on a uint32 region", err)
		_, err = Open[uint64](name)
		mismatch(t, "uint64 on a uint32 region", err)
		_, err = Open[struct{ V uint32 }](name)
		mismatch(t, "a struct on a scalar region", err)
	})
	t.Run("bytes vs string", func(t *testing.T) {
		name := testName(t)
		c, err := Create[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		_, err = Open[string](name)
		mismatch(t, "string on a []byte region", err)
		name2 := testName(t)
		c2, err := Create[string](name2)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c2)
		_, err = Open[[]byte](name2)
		mismatch(t, "[]byte on a string region", err)
	})
	t.Run("codec", func(t *testing.T) {
		name := testName(t)
		c, err := Create[errDoc](name, WithCodec(codec.JSON[errDoc]()))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		_, err = Open[errDoc](name, WithCodec(codec.Gob[errDoc]()))
		mismatch(t, "gob on a json region", err)
		_, err = Open[errWithString](name, WithCodec(codec.JSON[errWithString]()))
		mismatch(t, "json of another type", err)
		// WithCodec of a type other than T itself.
		_, err = Open[errDoc](name, WithCodec(codec.JSON[errWithString]()))
		mismatch(t, "Open with WithCodec of another type", err)
		n2 := testName(t)
		_, err = Create[errDoc](n2, WithCodec(codec.JSON[errWithString]()))
		mismatch(t, "Create with WithCodec of another type", err)
		mustNotExist(t, n2)
		_, err = Create[[]byte](n2, WithCodec(codec.String()))
		mismatch(t, "Create[[]byte] with the string codec", err)
		mustNotExist(t, n2)
		o, err := Open[errDoc](name, WithCodec(codec.JSON[errDoc]()))
		if err != nil {
			t.Fatalf("the right codec: %v", err)
		}
		closeOK(t, o)
	})
}

// TestErrNoCodec: a T that is not raw, []byte, string or binary needs
// WithCodec; the error says which codecs exist, and nothing is created.
func TestErrNoCodec(t *testing.T) {
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNoCodec) {
			t.Fatalf("%s: %v, want ErrNoCodec", what, err)
		}
		for _, s := range []string{"codec.JSON", "codec.Gob", "WithCodec"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error does not mention %s: %v", what, s, err)
			}
		}
	}
	name := testName(t)
	_, err := Create[errWithString](name)
	check(t, "Create of a struct with a string field", err)
	mustNotExist(t, name)
	_, err = Create[map[string]int](name)
	check(t, "Create of a map", err)
	mustNotExist(t, name)
	_, err = Create[*errPoint](name)
	check(t, "Create of a pointer", err)
	_, err = Create[[]int](name)
	check(t, "Create of a slice of int", err)
	_, err = Create[any](name)
	check(t, "Create of an interface", err)
	_, err = OpenOrCreate[errDoc](name)
	check(t, "OpenOrCreate", err)
	mustNotExist(t, name)
	// Open of an existing region says the same.
	c, err := Create[errWithString](name, WithCodec(codec.JSON[errWithString]()))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	_, err = Open[errWithString](name)
	check(t, "Open without the codec", err)
}

// TestErrIncompatible: a layout option given to Open that disagrees with
// the region.
func TestErrIncompatible(t *testing.T) {
	incompatible := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrIncompatible) {
			t.Errorf("%s: %v, want ErrIncompatible", what, err)
		}
	}
	agrees := func(t *testing.T, what string, c *Chan[[]byte], err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
			return
		}
		closeOK(t, c)
	}
	name := testName(t)
	c, err := Create[[]byte](name, WithCapacity(64), WithMaxMessageSize(200))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	_, err = Open[[]byte](name, WithCapacity(128))
	incompatible(t, "WithCapacity(128) on 64 slots", err)
	_, err = Open[[]byte](name, WithCapacity(16))
	incompatible(t, "WithCapacity(16) on 64 slots", err)
	_, err = Open[[]byte](name, WithCapacity(65))
	incompatible(t, "WithCapacity(65) on 64 slots", err)
	_, err = Open[[]byte](name, WithMaxMessageSize(100))
	incompatible(t, "WithMaxMessageSize(100) on 200", err)
	_, err = Open[[]byte](name, WithMaxMessageSize(201))
	incompatible(t, "WithMaxMessageSize(201) on 200", err)
	_, err = Open[[]byte](name, WithMultiProducer())
	incompatible(t, "WithMultiProducer on SPSC", err)
	_, err = Open[[]byte](name, WithWait(WaitSpin))
	incompatible(t, "WithWait(WaitSpin) on futex", err)
	_, err = Open[[]byte](name, WithWait(WaitMQ))
	incompatible(t, "WithWait(WaitMQ) on futex", err)
	_, err = OpenOrCreate[[]byte](name, WithCapacity(8))
	incompatible(t, "OpenOrCreate with WithCapacity(8)", err)
	o, err := Open[[]byte](name, WithCapacity(33)) // rounds up to 64
	agrees(t, "WithCapacity(33) on 64 slots", o, err)
	o, err = Open[[]byte](name, WithCapacity(64), WithMaxMessageSize(200), WithWait(WaitFutex))
	agrees(t, "every option matching", o, err)
	o, err = Open[[]byte](name)
	agrees(t, "no options", o, err)

	mp := testName(t)
	m, err := Create[[]byte](mp, WithMultiProducer(), WithProducers(4), WithWait(WaitSpin))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, m)
	_, err = Open[[]byte](mp, WithProducers(8))
	incompatible(t, "WithProducers(8) on 4", err)
	_, err = Open[[]byte](mp, WithWait(WaitFutex))
	incompatible(t, "WithWait(WaitFutex) on spin", err)
	o, err = Open[[]byte](mp, WithMultiProducer(), WithProducers(4), WithWait(WaitSpin))
	agrees(t, "MPSC, every option matching", o, err)

	// A raw type's message size is its own: asking another is incompatible.
	raw := testName(t)
	r, err := Create[errPoint](raw)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	_, err = Open[errPoint](raw, WithMaxMessageSize(17))
	incompatible(t, "WithMaxMessageSize(17) on a 16-byte raw type", err)
}

// TestErrClosedHandle: after Close every method of the handle returns
// ErrClosed (Len and Stats report nothing), and it also matches
// os.ErrClosed.
func TestErrClosedHandle(t *testing.T) {
	for _, roles := range []string{"none", "sender", "receiver", "both"} {
		t.Run(roles, func(t *testing.T) {
			c, err := Create[errPoint](testName(t), WithCapacity(4))
			if err != nil {
				t.Fatal(err)
			}
			if roles == "sender" || roles == "both" {
				if err := c.TrySend(errPoint{1, 1}); err != nil {
					t.Fatal(err)
				}
			}
			if roles == "receiver" || roles == "both" {
				if _, err := c.TryRecv(); err != nil && !errors.Is(err, ErrEmpty) {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			checkClosedHandle(t, c)
		})
	}
}

func checkClosedHandle(t *testing.T, c *Chan[errPoint]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) || !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s on a closed handle: %v, want ErrClosed", what, err)
		}
	}
	closed("TrySend", c.TrySend(errPoint{}))
	closed("Send", c.Send(ctx, errPoint{}))
	_, err := c.TryRecv()
	closed("TryRecv", err)
	_, err = c.Recv(ctx)
	closed("Recv", err)
	n, err := c.SendBatch(ctx, []errPoint{{}, {}})
	closed("SendBatch", err)
	if n != 0 {
		t.Errorf("SendBatch on a closed handle sent %d", n)
	}
	n, err = c.RecvBatch(ctx, make([]errPoint, 4))
	closed("RecvBatch", err)
	if n != 0 {
		t.Errorf("RecvBatch on a closed handle received %d", n)
	}
	called := false
	closed("SendFunc", c.SendFunc(ctx, func(*errPoint) { called = true }))
	closed("RecvFunc", c.RecvFunc(ctx, func(*errPoint) { called = true }))
	if called {
		t.Error("a callback ran on a closed handle")
	}
	closed("CloseSend", c.CloseSend())
	closed("second Close", c.Close())
	var errs []error
	for _, err := range c.All(ctx) {
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Errorf("All on a closed handle yielded %d times, want once (with ErrClosed)", len(errs))
	} else {
		closed("All", errs[0])
	}
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d on a closed handle", n)
	}
	if st := c.Stats(); st != (Stats{}) {
		t.Errorf("Stats() = %+v on a closed handle", st)
	}
	if c.Cap() != 4 {
		t.Errorf("Cap() = %d on a closed handle", c.Cap())
	}
}

// TestErrClosedAfterCloseSend: CloseSend closes the channel for sending;
// receivers drain it, then get ErrClosed from every receiving method.
func TestErrClosedAfterCloseSend(t *testing.T) {
	for _, mpsc := range []bool{false, true} {
		t.Run(map[bool]string{false: "spsc", true: "mpsc"}[mpsc], func(t *testing.T) {
			opts := []Option{WithCapacity(8)}
			if mpsc {
				opts = append(opts, WithMultiProducer())
			}
			name := testName(t)
			c, err := Create[errPoint](name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, c)
			for i := 0; i < 3; i++ {
				if err := c.TrySend(errPoint{int64(i), 0}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			closed := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrClosed) {
					t.Errorf("%s after CloseSend: %v, want ErrClosed", what, err)
				}
			}
			closed("TrySend", c.TrySend(errPoint{}))
			closed("Send", c.Send(ctx, errPoint{}))
			n, err := c.SendBatch(ctx, []errPoint{{}})
			closed("SendBatch", err)
			if n != 0 {
				t.Errorf("SendBatch after CloseSend sent %d", n)
			}
			closed("SendFunc", c.SendFunc(ctx, func(*errPoint) {}))
			if mpsc {
				// Any sender may close an MPSC channel, and it is closed for all.
				o, err := Open[errPoint](name)
				if err != nil {
					t.Fatal(err)
				}
				closed("TrySend from another handle", o.TrySend(errPoint{}))
				closeOK(t, o)
			}
			// What was sent before is drained, in order, by each receiving method.
			if v, err := c.TryRecv(); err != nil || v.X != 0 {
				t.Fatalf("TryRecv: %v %v", v, err)
			}
			if v, err := c.Recv(ctx); err != nil || v.X != 1 {
				t.Fatalf("Recv: %v %v", v, err)
			}
			var got []errPoint
			for v, err := range c.All(ctx) {
				if err != nil {
					t.Fatalf("All: %v", err)
				}
				got = append(got, v)
			}
			if len(got) != 1 || got[0].X != 2 {
				t.Fatalf("All drained %v, want the last value", got)
			}
			_, err = c.TryRecv()
			closed("TryRecv", err)
			_, err = c.Recv(ctx)
			closed("Recv", err)
			n, err = c.RecvBatch(ctx, make([]errPoint, 2))
			closed("RecvBatch", err)
			if n != 0 {
				t.Errorf("RecvBatch on a drained channel: %d", n)
			}
			closed("RecvFunc", c.RecvFunc(ctx, func(*errPoint) { t.Error("RecvFunc callback on a drained channel") }))
			if !c.Stats().Closed {
				t.Error("Stats().Closed is false after CloseSend")
			}
			// Closing the channel is not closing the handle.
			if errors.Is(err, errHandleClosed) {
				t.Errorf("a drained channel reported as a closed handle: %v", err)
			}
		})
	}
}

// codecKind is one codec's end-to-end case: the same functions run in the
// test and in a helper process.
type codecKind struct {
	create func(name string) error // create the region (and close the handle)
	send   func(name string) error // open, send every value, CloseSend
	recv   func(name string) error // open, receive and check every value, then ErrClosed
}

func mkCodecKind[T any](opts []Option, vals []T, eq func(a, b T) bool) codecKind {
	ctx := context.Background()
	return codecKind{
		create: func(name string) error {
			c, err := Create[T](name, append([]Option{WithCapacity(64)}, opts...)...)
			if err != nil {
				return err
			}
			return c.Close()
		},
		send: func(name string) error {
			c, err := Open[T](name, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			for i, v := range vals {
				if err := c.Send(ctx, v); err != nil {
					return fmt.Errorf("value %d: %w", i, err)
				}
			}
			return c.CloseSend()
		},
		recv: func(name string) error {
			c, err := Open[T](name, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			for i, want := range vals {
				v, err := c.Recv(ctx)
				if err != nil {
					return fmt.Errorf("value %d: %w", i, err)
				}
				if !eq(v, want) {
					return fmt.Errorf("value %d: got %#v, want %#v", i, v, want)
				}
			}
			if _, err := c.Recv(ctx); !errors.Is(err, ErrClosed) {
				return fmt.Errorf("after the last value: %v, want ErrClosed", err)
			}
			return nil
		},
	}
}

func errDocs() []errDoc {
	return []errDoc{
		{},
		{Name: "a", Tags: []string{"x", "y"}, Attrs: map[string]int{"k": 1}, Score: 1.5},
		{Name: "ünïcödé ✓", Tags: []string{""}, Attrs: map[string]int{"": -1, "big": 1 << 40}, Score: -0.25},
		{Name: strings.Repeat("long", 200), Tags: make([]string, 30)},
	}
}

func errDocEq(a, b errDoc) bool {
	// Gob and JSON do not keep empty and nil apart: compare contents.
	return a.Name == b.Name && a.Score == b.Score && slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Attrs, b.Attrs)
}

var codecKinds = map[string]codecKind{
	"bytes": mkCodecKind(nil, [][]byte{{}, {0}, []byte("hello"), bytes.Repeat([]byte{0xff, 0}, 2048)}, bytes.Equal),
	"string": mkCodecKind(nil, []string{"", "x", "ünïcödé ✓", strings.Repeat("s", 4096)},
		func(a, b string) bool { return a == b }),
	"binary": mkCodecKind(nil, []errBin{{}, {Name: "one", N: 1}, {Name: strings.Repeat("b", 1000), N: 1 << 31}},
		func(a, b errBin) bool { return a == b }),
	"json": mkCodecKind([]Option{WithCodec(codec.JSON[errDoc]()), WithMaxMessageSize(8192)}, errDocs(), errDocEq),
	"gob":  mkCodecKind([]Option{WithCodec(codec.Gob[errDoc]()), WithMaxMessageSize(8192)}, errDocs(), errDocEq),
}

func init() {
	// errs-codec kind send|recv name
	extraHelpers["errs-codec"] = func(args []string) int {
		if len(args) != 3 {
			fmt.Fprintf(os.Stderr, "errs-codec: args %q\n", args)
			return 2
		}
		k, ok := codecKinds[args[0]]
		if !ok {
			fmt.Fprintf(os.Stderr, "errs-codec: unknown kind %q\n", args[0])
			return 2
		}
		f := k.send
		if args[1] == "recv" {
			f = k.recv
		}
		if err := f(args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "errs-codec %s %s: %v\n", args[0], args[1], err)
			return 1
		}
		return 0
	}
}

// TestCodecsCrossProcess sends values of each codec from a helper process
// to this one and back the other way.
func TestCodecsCrossProcess(t *testing.T) {
	for _, kind := range slices.Sorted(maps.Keys(codecKinds)) {
		k := codecKinds[kind]
		for _, dir := range []string{"helper-sends", "helper-receives"} {
			t.Run(kind+"/"+dir, func(t *testing.T) {
				name := testName(t)
				if err := k.create(name); err != nil {
					t.Fatal(err)
				}
				if dir == "helper-sends" {
					if err := spawn(t, "errs-codec", kind, "send", name).Wait(); err != nil {
						t.Fatalf("helper: %v", err)
					}
					if err := k.recv(name); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := k.send(name); err != nil {
						t.Fatal(err)
					}
					if err := spawn(t, "errs-codec", kind, "recv", name).Wait(); err != nil {
						t.Fatalf("helper: %v", err)
					}
				}
			})
		}
	}
}

func TestPermDefault(t *testing.T) {
	name := testName(t)
	c, err := Create[errPoint](name)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	fi, err := os.Lstat(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want -rw------- (0600)", fi.Mode())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() {
		t.Fatalf("owner uid %d, want %d", st.Uid, os.Geteuid())
	}
}

// TestPermExact: WithPerm is applied exactly, whatever the umask, to the
// region and to its doorbell queues.
func TestPermExact(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, perm := range []fs.FileMode{0o640, 0o666, 0o604, 0o400, 0o700} {
		t.Run(perm.String(), func(t *testing.T) {
			name := testName(t)
			c, err := Create[errPoint](name, WithPerm(perm))
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, c)
			fi, err := os.Stat(shmPath(name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != perm {
				t.Fatalf("WithPerm(%v) under umask 077: mode %v", perm, fi.Mode().Perm())
			}
		})
	}
	t.Run("doorbells", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("reading the queues' modes needs an mqueue mount, which needs root")
		}
		name := testName(t)
		c, err := Create[errPoint](name, WithPerm(0o640), WithWait(WaitMQ))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		if fi, err := os.Stat(shmPath(name)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Fatalf("region: %v %v", fi.Mode(), err)
		}
		// The queues are only visible through an mqueue mount: a helper
		// mounts one in a mount namespace of its own and reports the modes.
		out, code := nsRun(t, "errs-mqmode", t.TempDir(), name)
		if code != 0 {
			t.Fatalf("helper exited %d:\n%s", code, out)
		}
		for _, b := range bellNames(name) {
			want := fmt.Sprintf("%s %#o", b, 0o640)
			if !strings.Contains(out, want+"\n") {
				t.Errorf("doorbell queue: WithPerm(0640) under umask 077: want %q, helper saw:\n%s", want, out)
			}
		}
	})
}

func init() {
	// errs-mqmode dir name: mount the mqueue filesystem on dir (in this
	// helper's own mount namespace) and print the mode of name's doorbells.
	extraHelpers["errs-mqmode"] = func(args []string) int {
		if err := nsPrivate(); err != nil {
			fmt.Println("skip:", err)
			return nsSkip
		}
		if err := syscall.Mount("mqueue", args[0], "mqueue", 0, ""); err != nil {
			fmt.Printf("skip: mount mqueue on %s: %v\n", args[0], err)
			return nsSkip
		}
		defer syscall.Unmount(args[0], 0)
		for _, b := range bellNames(args[1]) {
			fi, err := os.Stat(filepath.Join(args[0], b))
			if err != nil {
				fmt.Println(err)
				return 1
			}
			fmt.Printf("%s %#o\n", b, uint32(fi.Mode().Perm()))
		}
		return 0
	}
}

// TestSymlinkRefused: a symbolic link planted at the name is not followed,
// by Open, Create or OpenOrCreate, and nothing is written through it.
func TestSymlinkRefused(t *testing.T) {
	// A real region elsewhere is the link's target: Open would accept it if
	// it followed the link.
	target := testName(t)
	tc, err := Create[errPoint](target)
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, tc)
	before, err := os.ReadFile(shmPath(target))
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(plain, []byte("do not touch"), 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(t.TempDir(), "not-yet")
	for _, tg := range []struct{ what, path string }{
		{"a region", shmPath(target)},
		{"a plain file", plain},
		{"nothing (dangling)", dangling},
	} {
		t.Run(tg.what, func(t *testing.T) {
			name := testName(t)
			if err := os.Symlink(tg.path, shmPath(name)); err != nil {
				t.Fatal(err)
			}
			if _, err := Open[errPoint](name); !errors.Is(err, shm.ErrNotRegular) {
				t.Errorf("Open through a symlink: %v, want shm.ErrNotRegular", err)
			}
			if _, err := Create[errPoint](name); !errors.Is(err, fs.ErrExist) {
				t.Errorf("Create over a symlink: %v, want fs.ErrExist", err)
			}
			if _, err := OpenOrCreate[errPoint](name); err == nil {
				t.Errorf("OpenOrCreate through a symlink succeeded")
			}
			if fi, err := os.Lstat(shmPath(name)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v %v", fi, err)
			}
		})
	}
	if after, err := os.ReadFile(shmPath(target)); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the region behind the link changed (%v)", err)
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "do not touch" {
		t.Errorf("the file behind the link changed: %q %v", b, err)
	}
	if _, err := os.Lstat(dangling); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file was created through the dangling link: %v", err)
	}
}

// TestNotRegularRefused: a FIFO or a directory at the name is refused at
// once: Open does not block on the FIFO.
func TestNotRegularRefused(t *testing.T) {
	for _, kind := range []string{"fifo", "directory"} {
		t.Run(kind, func(t *testing.T) {
			name := testName(t)
			path := shmPath(name)
			var err error
			if kind == "fifo" {
				err = syscall.Mkfifo(path, 0o600)
			} else {
				err = os.Mkdir(path, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(path) })
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := Open[errPoint](name); !errors.Is(err, shm.ErrNotRegular) {
					t.Errorf("Open of a %s: %v, want shm.ErrNotRegular", kind, err)
				}
				if _, err := Create[errPoint](name); !errors.Is(err, fs.ErrExist) {
					t.Errorf("Create over a %s: %v, want fs.ErrExist", kind, err)
				}
				if _, err := OpenOrCreate[errPoint](name); err == nil {
					t.Errorf("OpenOrCreate of a %s succeeded", kind)
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Open of a %s blocked", kind)
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode().IsRegular() {
				t.Fatalf("the %s was replaced: %v %v", kind, fi, err)
			}
		})
	}
}

// TestForeignOwner: a region owned by another uid is refused unless the
// opener allows it with WithAllowForeignOwner.
func TestForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the region to another uid")
	}
	name := testName(t)
	c, err := Create[errPoint](name)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, c)
	const other = 54321
	if err := os.Chown(shmPath(name), other, other); err != nil {
		t.Skipf("chown: %v", err)
	}
	if _, err := Open[errPoint](name); !errors.Is(err, shm.ErrForeignOwner) {
		t.Fatalf("Open of a region owned by uid %d: %v, want shm.ErrForeignOwner", other, err)
	}
	if _, err := OpenOrCreate[errPoint](name); !errors.Is(err, shm.ErrForeignOwner) {
		t.Fatalf("OpenOrCreate of a region owned by uid %d: %v, want shm.ErrForeignOwner", other, err)
	}
	o, err := Open[errPoint](name, WithAllowForeignOwner())
	if err != nil {
		t.Fatalf("Open with WithAllowForeignOwner: %v", err)
	}
	defer closeOK(t, o)
	if err := c.TrySend(errPoint{5, 6}); err != nil {
		t.Fatal(err)
	}
	if v, err := o.TryRecv(); err != nil || v != (errPoint{5, 6}) {
		t.Fatalf("through the foreign region: %v %v", v, err)
	}
}

// TestCreateBadOptions: options no region can have fail at Create, before
// anything is made at the name.
func TestCreateBadOptions(t *testing.T) {
	for _, tc := range []struct {
		what string
		opts []Option
	}{
		{"negative capacity", []Option{WithCapacity(-1)}},
		{"capacity over the limit", []Option{WithCapacity(1<<30 + 1)}},
		{"negative message size", []Option{WithMaxMessageSize(-5)}},
		{"message size over the limit", []Option{WithMaxMessageSize(1<<30 + 1)}},
		{"unknown wait mode", []Option{WithWait(WaitMode(7))}},
		{"perm with other bits", []Option{WithPerm(fs.ModeSetuid | 0o600)}},
		{"a region over the size limit", []Option{WithCapacity(1 << 30), WithMaxMessageSize(1 << 12)}},
	} {
		name := testName(t)
		c, err := Create[[]byte](name, tc.opts...)
		if err == nil {
			c.Close()
			t.Errorf("%s: Create succeeded", tc.what)
		}
		mustNotExist(t, name)
	}
}
