package ctest_test

// FORMAT.md and shmchan.h agree: every offset and size in the document's
// tables, every constant of its C sketch and its limits, its fixed
// fingerprints, the raw-fingerprint example and the golden header are
// checked against the C header by a generated C program (static
// assertions, then run-time checks through the library), and the
// document's fingerprints against the Go codecs. The header also compiles
// as strict C11 and links as C++.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/layout"
)

func formatDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../layout/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docValue turns a value as FORMAT.md writes it ("2^30", "4096",
// "0x59444552", "(1ull << 63)", "1u") into a C expression.
func docValue(v string) string {
	v = strings.Trim(strings.TrimSpace(v), "`")
	if m := regexp.MustCompile(`^2\^(\d+)$`).FindStringSubmatch(v); m != nil {
		return "(1ull << " + m[1] + ")"
	}
	return v
}

func TestFormatAgreesWithHeader(t *testing.T) {
	doc := formatDoc(t)
	var src strings.Builder
	src.WriteString("#include \"shmchan.h\"\n#include <stdio.h>\n#include <string.h>\n")
	checks := 0
	assert := func(expr, why string) {
		fmt.Fprintf(&src, "_Static_assert(%s, %q);\n", expr, why)
		checks++
	}

	// The tables: offset, size, type, Go name, C name.
	row := regexp.MustCompile("(?m)^\\| (\\+?)(\\d+) \\| (\\d+) \\| [^|]+ \\| `(\\w+)` \\| `(\\w+)` \\|")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		rel, off, size, goName, cName := m[1] == "+", m[2], m[3], m[4], m[5]
		var st string
		switch {
		case strings.HasPrefix(goName, "Role"):
			st = "struct shmchan_role"
		case strings.HasPrefix(goName, "Slot"):
			st = "struct shmchan_slot"
		case rel:
			t.Fatalf("FORMAT.md: relative offset for %s", goName)
		default:
			if o, _ := strconv.Atoi(off); o < 256 {
				st = "struct shmchan_header"
			} else {
				st = "struct shmchan_region"
			}
		}
		seen[st] = true
		assert(fmt.Sprintf("offsetof(%s, %s) == %s", st, cName, off), "FORMAT.md: "+goName+" offset")
		assert(fmt.Sprintf("sizeof(((%s *)0)->%s) == %s", st, cName, size), "FORMAT.md: "+goName+" size")
	}
	if len(seen) != 4 || checks < 2*(20+14+8+2) {
		t.Fatalf("found only %d table checks in FORMAT.md (%v)", checks, seen)
	}

	// The C sketch's constants.
	sketch := regexp.MustCompile("(?s)```c\n(.*?)```").FindStringSubmatch(doc)
	if sketch == nil {
		t.Fatal("FORMAT.md has no C sketch")
	}
	define := regexp.MustCompile(`(?m)^#define (SHMCHAN_\w+)(\(?)\s*(.+?)\s*(/\*.*)?$`)
	defines := 0
	for _, m := range define.FindAllStringSubmatch(sketch[1], -1) {
		name, params, val := m[1], m[2], m[3]
		switch {
		case params != "":
			continue // a macro with parameters
		case strings.HasPrefix(val, "\""):
			fmt.Fprintf(&src, "static const char doc_%s[] = %s;\n", name, val)
			assert(fmt.Sprintf("sizeof doc_%s == sizeof %s", name, name), name+" length")
		default:
			assert(fmt.Sprintf("(%s) == (%s)", name, val), "FORMAT.md sketch: "+name)
		}
		defines++
	}
	if defines < 29 {
		t.Fatalf("found only %d constants in the C sketch", defines)
	}
	// Limits.
	limits := map[string]string{"MaxCapacity": "SHMCHAN_MAX_CAPACITY", "MaxMsg": "SHMCHAN_MAX_MSG",
		"MaxProducers": "SHMCHAN_MAX_PRODUCERS", "MaxConsumers": "SHMCHAN_MAX_CONSUMERS",
		"MaxWorkQueueCapacity": "SHMCHAN_MAX_WQ_CAPACITY", "MaxTotalSize": "SHMCHAN_MAX_TOTAL"}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Max\\w+)` \\| `?([^`|]+?)`? \\|").FindAllStringSubmatch(doc, -1) {
		c, ok := limits[m[1]]
		if !ok {
			t.Errorf("FORMAT.md limit %s has no C constant here", m[1])
			continue
		}
		assert(fmt.Sprintf("(%s) == %s", c, docValue(m[2])), "limit "+m[1])
		delete(limits, m[1])
	}
	if len(limits) != 0 {
		t.Errorf("FORMAT.md does not give the limits %v", limits)
	}
	// The geometry.
	if !strings.Contains(doc, "`data_offset = 576 + 64 * (1 + producers + consumers)`") {
		t.Error("FORMAT.md no longer gives data_offset as 576 + 64 * (1 + producers + consumers)")
	}
	assert("SHMCHAN_OFF_ROLES == 576 && SHMCHAN_LINE == 64 && sizeof(struct shmchan_region) == 576", "role area")

	// What the prose of the fan-out protocols fixes: the rescue lock's
	// byte and the consumed mark.
	if m := regexp.MustCompile("rescue lock\\*\\*: an OFD lock[^`]*`RoleLockBase \\+ 2\\^(\\d+)`").FindStringSubmatch(doc); m == nil {
		t.Error("FORMAT.md does not place the rescue lock at RoleLockBase + 2^n")
	} else {
		assert("SHMCHAN_RESCUE_LOCK == SHMCHAN_ROLE_LOCK_BASE + (1ull << "+m[1]+")", "FORMAT.md: the rescue lock")
		// The Go side keeps it unexported, in internal/region.
		src, err := os.ReadFile("../../internal/region/region.go")
		if err != nil {
			t.Fatal(err)
		}
		if g := regexp.MustCompile(`rescueLock = layout\.RoleLockBase \+ 1<<(\d+)`).FindSubmatch(src); g == nil || string(g[1]) != m[1] {
			t.Errorf("internal/region's rescue lock is not RoleLockBase + 1<<%s, as FORMAT.md says", m[1])
		}
	}
	if m := regexp.MustCompile("`consumed\\(p\\) = uint32\\(p \\+ 1\\) XOR (0x[0-9a-fA-F]+)`").FindStringSubmatch(doc); m == nil {
		t.Error("FORMAT.md does not define consumed(p)")
	} else {
		assert("SHMCHAN_CONSUMED_BIT == "+m[1]+"u", "FORMAT.md: consumed(p)")
	}
	// And the header agrees with the Go constants themselves.
	for c, v := range map[string]uint64{
		"SHMCHAN_VERSION": layout.Version, "SHMCHAN_MODE_SPSC": uint64(layout.ModeSPSC), "SHMCHAN_MODE_MPSC": uint64(layout.ModeMPSC),
		"SHMCHAN_MODE_WORKQUEUE": uint64(layout.ModeWorkQueue), "SHMCHAN_MODE_BROADCAST": uint64(layout.ModeBroadcast),
		"SHMCHAN_OVERFLOW_WAIT": uint64(layout.OverflowWait), "SHMCHAN_OVERFLOW_DROP": uint64(layout.OverflowDrop),
		"SHMCHAN_WAIT_FOR_SLOWEST": uint64(shmchan.WaitForSlowest), "SHMCHAN_DROP_OLDEST": uint64(shmchan.DropOldest),
		"SHMCHAN_WAIT_FUTEX": uint64(layout.WaitFutex), "SHMCHAN_WAIT_MQ": uint64(layout.WaitMQ), "SHMCHAN_WAIT_SPIN": uint64(layout.WaitSpin),
		"SHMCHAN_FLAG_RAW": uint64(layout.FlagRaw), "SHMCHAN_FLAG_MULTI": uint64(layout.FlagMulti),
		"SHMCHAN_ROLE_SLEEPING": layout.RoleSleeping, "SHMCHAN_ROLE_JOINED": layout.RoleJoined,
		"SHMCHAN_MAX_CAPACITY": layout.MaxCapacity, "SHMCHAN_MAX_WQ_CAPACITY": layout.MaxWorkQueueCapacity,
		"SHMCHAN_MAX_MSG": layout.MaxMsg, "SHMCHAN_MAX_PRODUCERS": layout.MaxProducers, "SHMCHAN_MAX_CONSUMERS": layout.MaxConsumers,
		"SHMCHAN_MAX_TOTAL": layout.MaxTotalSize, "SHMCHAN_ROLE_LOCK_BASE": layout.RoleLockBase, "SHMCHAN_OFF_ROLES": layout.OffRoles,
		"SHMCHAN_READY": layout.ReadyValue, "SHMCHAN_CLOSED": layout.ClosedBit, "SHMCHAN_SLOT_SKIP": uint64(layout.SlotSkip),
		"SHMCHAN_SLOT_HEADER": layout.SlotHeaderSize, "SHMCHAN_HEADER_SIZE": layout.HeaderSize, "SHMCHAN_LINE": layout.LineSize,
		"SHMCHAN_CODEC_NAME_LEN": layout.CodecNameLen, "SHMCHAN_TYPE_NAME_LEN": layout.TypeNameLen,
		"offsetof(struct shmchan_region, claim_head)": layout.OffClaimHead, "offsetof(struct shmchan_region, lagged)": layout.OffLagged,
		"offsetof(struct shmchan_role, claim_lo)": layout.RoleCursor,
	} {
		assert(fmt.Sprintf("(unsigned long long)(%s) == %#xull", c, v), "Go's layout: "+c)
	}

	// Fixed fingerprints.
	fps := map[string]uint64{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `(\\w+)` \\| `([^`]+)` \\| `0x([0-9a-f]{16})` \\|").FindAllStringSubmatch(doc, -1) {
		v, _ := strconv.ParseUint(m[4], 16, 64)
		fps[m[2]] = v
		fmt.Fprintf(&src, "static const char fpin_%s[] = \"shmchan/codec/v1\\0%s\\0%s\";\n", m[2], m[2], m[3])
		fmt.Fprintf(&src, "#define FP_%s 0x%sull\n", m[2], m[4])
	}
	if fps["bytes"] != codec.Bytes().Fingerprint() || fps["string"] != codec.String().Fingerprint() {
		t.Errorf("FORMAT.md's fingerprints %#x (bytes), %#x (string); Go's are %#x, %#x",
			fps["bytes"], fps["string"], codec.Bytes().Fingerprint(), codec.String().Fingerprint())
	}
	assert("SHMCHAN_FP_BYTES == FP_bytes && SHMCHAN_FP_STRING == FP_string", "fixed fingerprints")

	// The raw example.
	ex := regexp.MustCompile("`S` =\\s+`([^`]+)`[^`]*?fingerprint `0x([0-9a-f]{16})`").FindStringSubmatch(doc)
	if ex == nil {
		t.Fatal("FORMAT.md has no raw fingerprint example")
	}
	rawFP, _ := strconv.ParseUint(ex[2], 16, 64)
	if rawFP != recFingerprint(t) {
		t.Errorf("FORMAT.md's raw example fingerprint %#x, Go's for rec %#x", rawFP, recFingerprint(t))
	}
	var sBytes []string
	for _, tok := range regexp.MustCompile(`"[^"]*"|[0-9a-f]{2}`).FindAllString(strings.Join(strings.Fields(ex[1]), " "), -1) {
		if strings.HasPrefix(tok, "\"") {
			for _, ch := range []byte(strings.Trim(tok, "\"")) {
				sBytes = append(sBytes, fmt.Sprintf("0x%02x", ch))
			}
		} else {
			sBytes = append(sBytes, "0x"+tok)
		}
	}
	fmt.Fprintf(&src, "static const unsigned char raw_s[] = {%s};\n#define RAW_FP 0x%sull\n", strings.Join(sBytes, ","), ex[2])

	// The golden header.
	gold := regexp.MustCompile("(?s)checksum\\s+`0x([0-9a-f]{16})`\\):\n\n```\n(.*?)```").FindStringSubmatch(doc)
	if gold == nil {
		t.Fatal("FORMAT.md has no golden header dump")
	}
	img := hexdump(t, gold[2])
	var bs []string
	for _, b := range img {
		bs = append(bs, strconv.Itoa(int(b)))
	}
	fmt.Fprintf(&src, "static const unsigned char golden[256] = {%s};\n#define GOLD_SUM 0x%sull\n", strings.Join(bs, ","), gold[1])
	nums := regexp.MustCompile("`data_offset = (\\d+)`, `slot_size = (\\d+)`, `total_size = (\\d+)`").FindStringSubmatch(doc)
	if nums == nil {
		t.Fatal("FORMAT.md's example does not state its sizes")
	}

	fmt.Fprintf(&src, `
static int fails;
static void check(int ok, const char *what) { if (!ok) { printf("FAIL %%s\n", what); fails++; } }
int main(void) {
	check(memcmp(doc_SHMCHAN_MAGIC, SHMCHAN_MAGIC, sizeof doc_SHMCHAN_MAGIC) == 0, "magic");
	check(shmchan_xxh64(fpin_bytes, sizeof fpin_bytes - 1, 0) == FP_bytes, "bytes fingerprint from its documented input");
	check(shmchan_xxh64(fpin_string, sizeof fpin_string - 1, 0) == FP_string, "string fingerprint from its documented input");
	static const char dom[] = "shmchan/codec/v1\0raw";
	unsigned char in[256];
	memcpy(in, dom, sizeof dom);
	memcpy(in + sizeof dom, raw_s, sizeof raw_s);
	check(shmchan_xxh64(in, sizeof dom + sizeof raw_s, 0) == RAW_FP, "raw example fingerprint from its documented structure");
	struct shmchan_header h;
	memcpy(&h, golden, sizeof h);
	check(shmchan_xxh64(golden, 248, 0) == GOLD_SUM, "golden checksum recomputed");
	check(h.checksum == GOLD_SUM, "golden checksum stored");
	check(h.version == SHMCHAN_VERSION && h.mode == SHMCHAN_MODE_MPSC && h.capacity == 8 && h.max_msg == 100 &&
	      h.producers == 3 && h.flags == SHMCHAN_FLAG_RAW && h.fingerprint == 0x0123456789abcdefull, "golden parameters");
	check(h.data_offset == %s && h.slot_size == %s && h.total_size == %s, "golden sizes");
	check(h.consumers == 0 && h.overflow == 0, "golden fan-out fields");
	check(h.data_offset == SHMCHAN_OFF_ROLES + SHMCHAN_LINE * (1 + h.producers + h.consumers), "data_offset formula");
	check(h.slot_size == ((SHMCHAN_SLOT_HEADER + h.max_msg + 7) & ~7u), "slot_size formula");
	check(strcmp(h.codec_name, "raw") == 0 && strcmp(h.type_name, "main.Order") == 0, "golden names");
	puts(fails ? "failed" : "ok");
	return fails != 0;
}
`, nums[1], nums[2], nums[3])

	dir := t.TempDir()
	file := filepath.Join(dir, "format.c")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "format")
	cc := compiler(t, "cc")
	args := append(append([]string{}, cflags...), "-I..", "-o", bin, file, "../shmchan.c")
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("FORMAT.md and shmchan.h disagree:\n%s\n--- generated source ---\n%s", out, src.String())
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("run-time checks: %v\n%s", err, out)
	}
	t.Logf("%d static checks and the run-time checks passed", checks)
}

// hexdump parses a hexdump -C listing ("*" repeats the line before) of
// 256 bytes.
func hexdump(t *testing.T, s string) []byte {
	t.Helper()
	img := make([]byte, 256)
	var prev []byte
	prevOff := -1
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) == "*" {
			continue
		}
		f := strings.Fields(strings.SplitN(l, "|", 2)[0])
		off, err := strconv.ParseUint(f[0], 16, 32)
		if err != nil || len(f) != 17 {
			t.Fatalf("hexdump line %q", l)
		}
		for o := prevOff + 16; prevOff >= 0 && o < int(off); o += 16 {
			copy(img[o:], prev) // the lines "*" stood for
		}
		prev = make([]byte, 16)
		for i, h := range f[1:] {
			v, _ := strconv.ParseUint(h, 16, 8)
			prev[i] = byte(v)
		}
		copy(img[off:], prev)
		prevOff = int(off)
	}
	return img
}

// TestXXH64: the C XXH64, written from the algorithm's description,
// against Go's xxhash for every length up to 300, with two seeds.
func TestXXH64(t *testing.T) {
	for _, seed := range []uint64{0, 0x9E3779B97F4A7C15} {
		out, err := exec.Command(peerBinary(t), "xxh", "max=300", fmt.Sprint("seed=", seed)).Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		buf := make([]byte, 301)
		for i := range buf {
			buf[i] = byte(i*131 + 7)
		}
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if f[0] == "bytes" || f[0] == "string" {
				if f[1] != f[2] {
					t.Errorf("C: XXH64 of the %s fingerprint's input is %s, SHMCHAN_FP is %s", f[0], f[1], f[2])
				}
				continue
			}
			k, _ := strconv.Atoi(f[0])
			d := xxhash.NewWithSeed(seed)
			d.Write(buf[:k])
			if want := fmt.Sprintf("%016x", d.Sum64()); f[1] != want {
				t.Errorf("XXH64 of %d bytes, seed %#x: C %s, Go %s", k, seed, f[1], want)
			}
			n++
		}
		if n != 301 {
			t.Fatalf("C printed %d hashes", n)
		}
	}
}

// TestCompile: shmchan.c is strict C11 (pedantic too), and the header
// links from C++ (extern "C").
func TestCompile(t *testing.T) {
	dir := t.TempDir()
	cc := compiler(t, "cc")
	obj := filepath.Join(dir, "shmchan.o")
	args := append(append([]string{}, cflags...), "-Wpedantic", "-O2", "-c", "-o", obj, "../shmchan.c")
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
	}
	cxx := compiler(t, "c++")
	prog := filepath.Join(dir, "user.cc")
	err := os.WriteFile(prog, []byte(`#include "shmchan.h"
#include <cstdio>
#include <cstring>
int main() {
	shmchan *c = nullptr;
	int rc = shmchan_open("/", &c);            // an invalid name
	shmchan_close(c);
	shmchan_params p;
	shmchan_params_init(&p);
	static_assert(sizeof(shmchan_header) == 256, "header");
	std::printf("%d %s %d\n", rc, shmchan_strerror(rc), shmchan_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
	return rc == SHMCHAN_EINVAL ? 0 : 1;
}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "user")
	args = []string{"-std=c++11", "-Wall", "-Wextra", "-Werror", "-I..", "-o", bin, prog, obj}
	if out, err := exec.Command(cxx, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cxx, strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "-10 invalid argument 1" {
		t.Fatalf("the C++ program: %v: %q", err, out)
	}
	// The shared library of the README's build line.
	lib := filepath.Join(dir, "libshmchan.so")
	if out, err := exec.Command(cc, "-std=c11", "-O2", "-fPIC", "-shared", "-o", lib, "../shmchan.c").CombinedOutput(); err != nil {
		t.Fatalf("shared library: %v\n%s", err, out)
	}
}
