package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Magic is the first 8 bytes of every region, so that file(1)-like tools can
// tell a shmchan region from any other object in /dev/shm.
const Magic = "SHMCHAN\x00"

// Version is the layout version this package reads and writes. A region with
// any other version is ErrIncompatible.
const Version = 1

// LineSize is the padding unit that keeps words written by different
// processes on different cache lines. It is fixed by the format (not taken
// from the machine) so every process agrees on the offsets.
const LineSize = 64

// Offsets of the immutable header. All integers are little-endian on the
// architectures shmchan supports (amd64, arm64), i.e. native.
const (
	OffMagic       = 0   // [8]byte Magic
	OffVersion     = 8   // uint32 Version
	OffDataOffset  = 12  // uint32 offset of slot 0
	OffMode        = 16  // uint32 ModeSPSC or ModeMPSC
	OffWait        = 20  // uint32 WaitFutex, WaitMQ or WaitSpin
	OffCapacity    = 24  // uint64 number of slots, a power of two
	OffSlotSize    = 32  // uint32 bytes per slot: SlotHeaderSize+MaxMsg rounded up to 8
	OffMaxMsg      = 36  // uint32 largest payload in bytes
	OffProducers   = 40  // uint32 sender entries: 1 for SPSC
	OffFlags       = 44  // uint32 FlagRaw, ...
	OffFingerprint = 48  // uint64 type fingerprint (see package codec)
	OffTotalSize   = 56  // uint64 size of the whole region in bytes
	OffCreatorPID  = 64  // uint32 pid of the creating process
	OffCreatorUID  = 68  // uint32 effective uid of the creating process
	OffCreated     = 72  // int64 creation time, Unix nanoseconds
	OffCodecName   = 80  // [32]byte codec name, NUL padded
	OffTypeName    = 112 // [136]byte Go type name, NUL padded (informational)
	OffChecksum    = 248 // uint64 xxhash64 of bytes [0, 248)
	HeaderSize     = 256 // end of the immutable header

	CodecNameLen = OffTypeName - OffCodecName
	TypeNameLen  = OffChecksum - OffTypeName
)

// Offsets of the mutable words. Each group lives on its own cache line and
// has one writer (see FORMAT.md for who writes what and how a reader defends
// itself against a bad value).
const (
	// Control line: written once by the creator.
	OffReady = 256 // uint32 ReadyValue once the creator finished

	// Sender line: written by the sender (SPSC) or by producers' CAS (MPSC).
	OffTail        = 320 // uint64: bits 0..62 values claimed (MPSC) / committed (SPSC); bit 63 closed
	OffSenderWakes = 328 // uint64 futex/mq wakes the senders issued to the receiver

	// Receiver line: written by the receiver.
	OffHead          = 384 // uint64 values consumed
	OffAbandoned     = 392 // uint64 MPSC slots skipped because their writer died
	OffReceiverWakes = 400 // uint64 wakes the receiver issued to sleeping senders

	// Receiver wait line: the receiver sleeps on RecvSeq.
	OffRecvSeq     = 448 // uint32 futex word, bumped by a waker
	OffRecvWaiting = 452 // uint32 1 while the receiver may be asleep
	OffRecvSleeps  = 456 // uint64 times the receiver went to sleep

	// Sender wait line: senders sleep on SendSeq.
	OffSendSeq     = 512 // uint32 futex word, bumped by a waker
	OffSendWaiters = 516 // uint32 senders that may be asleep
	OffSendSleeps  = 520 // uint64 times a sender went to sleep

	// OffRoles is the first role entry (the receiver's); entry i is at
	// OffRoles + i*LineSize.
	OffRoles = 576
)

// Fields of a role entry, relative to the entry's start.
const (
	RolePID       = 0  // uint32 pid of the holder (informational: liveness is the role lock)
	RoleFlags     = 4  // uint32 RoleSleeping, ...
	RoleStart     = 8  // uint64 holder's process start time (clock ticks since boot)
	RoleSince     = 16 // int64 Unix nanoseconds when the role was taken
	RoleClaimLo   = 24 // uint64 MPSC: first position of the claim in progress
	RoleClaimHi   = 32 // uint64 MPSC: one past the last position of the claim in progress (== lo: none)
	RoleSent      = 40 // uint64 values this entry committed
	RoleTakeovers = 48 // uint64 times the entry was taken over from a dead holder
)

// RoleLockBase is the byte offset of role entry 0's lock: a Linux
// open-file-description lock (F_OFD_SETLK, write, 1 byte) on the region's
// descriptor at RoleLockBase+i holds role entry i (0: receiver, 1..:
// senders). The kernel drops it when the holder's last descriptor closes, at
// exit or crash, so a role whose holder died is free, and pid reuse cannot
// fool it. The offset is far past any region's end (MaxTotalSize), so the
// locks never cover region bytes.
const RoleLockBase = 1 << 40

// Role entry flags.
const (
	RoleSleeping = 1 << 0 // the holder counted itself in SendWaiters
)

// ReadyValue is stored at OffReady when the creator has finished writing the
// region; openers wait (a bounded time) for it.
const ReadyValue = 0x59444552 // "REDY" little-endian

// ClosedBit is bit 63 of the tail word: no more values will be sent.
const ClosedBit = uint64(1) << 63

// SlotHeaderSize is the per-slot header: seq uint32 at +0, len uint32 at +4.
const (
	SlotSeq        = 0
	SlotLen        = 4
	SlotHeaderSize = 8
	// SlotSkip in a slot's len marks a claimed MPSC slot whose value was
	// never written (its encoding failed); the receiver skips it.
	SlotSkip = uint32(1) << 31
)

// Mode is a region's topology.
type Mode uint32

// Modes.
const (
	ModeSPSC Mode = 0 // one sender, one receiver
	ModeMPSC Mode = 1 // many senders, one receiver
)

func (m Mode) String() string {
	switch m {
	case ModeSPSC:
		return "spsc"
	case ModeMPSC:
		return "mpsc"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// Wait is how a region's blocked sides sleep and are woken.
type Wait uint32

// Wait modes.
const (
	WaitFutex Wait = 0 // a shared futex on a word of the region
	WaitMQ    Wait = 1 // POSIX message queues as doorbells
	WaitSpin  Wait = 2 // never sleep
)

func (w Wait) String() string {
	switch w {
	case WaitFutex:
		return "futex"
	case WaitMQ:
		return "mq"
	case WaitSpin:
		return "spin"
	}
	return fmt.Sprintf("wait(%d)", uint32(w))
}

// Flags are a region's feature bits.
type Flags uint32

// Flags.
const (
	FlagRaw Flags = 1 << 0 // values are raw bytes of a pointer-free T: in-place access allowed

	knownFlags = FlagRaw
)

// String names the flags set, "-" for none; unknown bits are shown in hex.
func (f Flags) String() string {
	var parts []string
	if f&FlagRaw != 0 {
		parts = append(parts, "raw")
	}
	if rest := f &^ knownFlags; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// Limits. They keep every size computation far from overflow and every
// 32-bit sequence comparison unambiguous.
const (
	MaxCapacity  = 1 << 30
	MaxMsg       = 1 << 30
	MaxProducers = 4096
	MaxTotalSize = 1 << 40
)

// Header is the decoded immutable header plus the derived geometry.
type Header struct {
	Mode        Mode
	Wait        Wait
	Capacity    uint64
	SlotSize    uint32
	MaxMsg      uint32
	Producers   uint32
	Flags       Flags
	Fingerprint uint64
	CreatorPID  uint32
	CreatorUID  uint32
	Created     int64
	CodecName   string
	TypeName    string

	// Derived (and checked against the stored values by Validate).
	DataOffset uint32
	TotalSize  uint64

	// Checksum is the sealed header's checksum (set by Encode and Peek). It
	// covers the creator's pid and creation time, so it identifies one
	// creation of a region: a name unlinked and created again gets another.
	Checksum uint64
}

// SlotSizeFor returns the slot stride for payloads of up to maxMsg bytes.
func SlotSizeFor(maxMsg uint32) uint32 {
	return (SlotHeaderSize + maxMsg + 7) &^ 7
}

// DataOffsetFor returns the offset of slot 0 for the given number of sender
// entries.
func DataOffsetFor(producers uint32) uint32 {
	end := OffRoles + (1+producers)*LineSize
	return (end + LineSize - 1) &^ (LineSize - 1)
}

// RoleOffset returns the offset of role entry i (0: receiver, 1..: senders).
func RoleOffset(i int) int { return OffRoles + i*LineSize }

// Geometry fills in SlotSize, DataOffset and TotalSize from the parameters
// and checks every parameter, with ErrCorrupt wrapped in a message saying
// which field is impossible. New regions are built from a Header that passed
// Geometry; Validate runs the same checks on a region read from memory.
func (h *Header) Geometry() error {
	switch {
	case h.Mode != ModeSPSC && h.Mode != ModeMPSC:
		return fmt.Errorf("%w: mode %d", ErrCorrupt, h.Mode)
	case h.Wait > WaitSpin:
		return fmt.Errorf("%w: wait mode %d", ErrCorrupt, h.Wait)
	case h.Capacity == 0 || h.Capacity > MaxCapacity || h.Capacity&(h.Capacity-1) != 0:
		return fmt.Errorf("%w: capacity %d is not a power of two in [1, %d]", ErrCorrupt, h.Capacity, MaxCapacity)
	case h.MaxMsg == 0 || h.MaxMsg > MaxMsg:
		return fmt.Errorf("%w: max message size %d not in [1, %d]", ErrCorrupt, h.MaxMsg, MaxMsg)
	case h.Mode == ModeSPSC && h.Producers != 1:
		return fmt.Errorf("%w: SPSC region with %d sender entries", ErrCorrupt, h.Producers)
	case h.Producers == 0 || h.Producers > MaxProducers:
		return fmt.Errorf("%w: %d sender entries not in [1, %d]", ErrCorrupt, h.Producers, MaxProducers)
	case h.Flags&^knownFlags != 0:
		return fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, uint32(h.Flags))
	}
	h.SlotSize = SlotSizeFor(h.MaxMsg)
	h.DataOffset = DataOffsetFor(h.Producers)
	hi, lo := bits.Mul64(h.Capacity, uint64(h.SlotSize))
	total := lo + uint64(h.DataOffset)
	if hi != 0 || lo > MaxTotalSize || total > MaxTotalSize {
		return fmt.Errorf("%w: %d slots of %d bytes exceed the %d-byte region limit", ErrCorrupt, h.Capacity, h.SlotSize, uint64(MaxTotalSize))
	}
	h.TotalSize = total
	return nil
}

// Encode writes h (whose Geometry must have succeeded) into the first
// HeaderSize bytes of b and seals it with the checksum. It does not touch the
// mutable part and does not set the ready word.
func (h *Header) Encode(b []byte) {
	b = b[:HeaderSize]
	clear(b)
	le := binary.LittleEndian
	copy(b[OffMagic:], Magic)
	le.PutUint32(b[OffVersion:], Version)
	le.PutUint32(b[OffDataOffset:], h.DataOffset)
	le.PutUint32(b[OffMode:], uint32(h.Mode))
	le.PutUint32(b[OffWait:], uint32(h.Wait))
	le.PutUint64(b[OffCapacity:], h.Capacity)
	le.PutUint32(b[OffSlotSize:], h.SlotSize)
	le.PutUint32(b[OffMaxMsg:], h.MaxMsg)
	le.PutUint32(b[OffProducers:], h.Producers)
	le.PutUint32(b[OffFlags:], uint32(h.Flags))
	le.PutUint64(b[OffFingerprint:], h.Fingerprint)
	le.PutUint64(b[OffTotalSize:], h.TotalSize)
	le.PutUint32(b[OffCreatorPID:], h.CreatorPID)
	le.PutUint32(b[OffCreatorUID:], h.CreatorUID)
	le.PutUint64(b[OffCreated:], uint64(h.Created))
	putString(b[OffCodecName:OffTypeName], h.CodecName)
	putString(b[OffTypeName:OffChecksum], h.TypeName)
	h.Checksum = Checksum(b)
	le.PutUint64(b[OffChecksum:], h.Checksum)
}

// Checksum returns the xxhash64 of the header bytes before OffChecksum.
func Checksum(hdr []byte) uint64 { return xxhash.Sum64(hdr[:OffChecksum]) }

// putString stores s NUL-padded, cut at a rune boundary if too long.
func putString(dst []byte, s string) {
	if len(s) > len(dst) {
		// Cut before the first byte that does not fit, backing up while that
		// byte continues a UTF-8 sequence, so a rune that fits whole is kept
		// and one that does not is dropped whole.
		n := len(dst)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	copy(dst, s)
}

func getString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Validate decodes the immutable header of a region image and checks it:
// magic, then version, then checksum, then parameters, then that fileSize
// (the size fstat reports) and the image itself hold the whole region.
// It copies the header first, so a concurrent writer cannot make it check one
// value and return another.
func Validate(region []byte, fileSize int64) (Header, error) {
	h, err := Peek(region)
	if err != nil {
		return h, err
	}
	if fileSize < 0 || uint64(fileSize) < h.TotalSize || uint64(len(region)) < h.TotalSize {
		return Header{}, fmt.Errorf("%w: file is %d bytes (%d mapped), header claims %d", ErrCorrupt, fileSize, len(region), h.TotalSize)
	}
	return h, nil
}

// Stored is a header exactly as the bytes hold it: every field, nothing
// checked. Tools show it for damaged regions; Peek decodes through it, so
// the field list exists once.
type Stored struct {
	Magic       string
	Version     uint32
	DataOffset  uint32
	Mode        Mode
	Wait        Wait
	Capacity    uint64
	SlotSize    uint32
	MaxMsg      uint32
	Producers   uint32
	Flags       Flags
	Fingerprint uint64
	TotalSize   uint64
	CreatorPID  uint32
	CreatorUID  uint32
	Created     int64
	CodecName   string
	TypeName    string
	Checksum    uint64 // as stored
	Computed    uint64 // recomputed over the stored bytes
}

// Decode reads the fields of the first HeaderSize bytes of b (a private
// copy: the caller must not pass shared memory a peer may be writing)
// without checking any of them.
func Decode(b *[HeaderSize]byte) Stored {
	le := binary.LittleEndian
	return Stored{
		Magic:       string(b[OffMagic : OffMagic+8]),
		Version:     le.Uint32(b[OffVersion:]),
		DataOffset:  le.Uint32(b[OffDataOffset:]),
		Mode:        Mode(le.Uint32(b[OffMode:])),
		Wait:        Wait(le.Uint32(b[OffWait:])),
		Capacity:    le.Uint64(b[OffCapacity:]),
		SlotSize:    le.Uint32(b[OffSlotSize:]),
		MaxMsg:      le.Uint32(b[OffMaxMsg:]),
		Producers:   le.Uint32(b[OffProducers:]),
		Flags:       Flags(le.Uint32(b[OffFlags:])),
		Fingerprint: le.Uint64(b[OffFingerprint:]),
		TotalSize:   le.Uint64(b[OffTotalSize:]),
		CreatorPID:  le.Uint32(b[OffCreatorPID:]),
		CreatorUID:  le.Uint32(b[OffCreatorUID:]),
		Created:     int64(le.Uint64(b[OffCreated:])),
		CodecName:   getString(b[OffCodecName:OffTypeName]),
		TypeName:    getString(b[OffTypeName:OffChecksum]),
		Checksum:    le.Uint64(b[OffChecksum:]),
		Computed:    Checksum(b[:]),
	}
}

// Peek runs every check of Validate but the size check: magic, version,
// checksum, parameters. Tools use it on the first HeaderSize bytes to learn
// how much to map.
func Peek(region []byte) (Header, error) {
	if len(region) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrCorrupt, len(region), HeaderSize)
	}
	var b [HeaderSize]byte
	copy(b[:], region)
	d := Decode(&b)
	if d.Magic != Magic {
		return Header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, d.Magic)
	}
	if d.Version != Version {
		return Header{}, fmt.Errorf("%w: layout version %d, this code reads version %d", ErrIncompatible, d.Version, Version)
	}
	if d.Checksum != d.Computed {
		return Header{}, fmt.Errorf("%w: header checksum %#x, computed %#x", ErrCorrupt, d.Checksum, d.Computed)
	}
	h := Header{
		Mode:        d.Mode,
		Wait:        d.Wait,
		Capacity:    d.Capacity,
		MaxMsg:      d.MaxMsg,
		Producers:   d.Producers,
		Flags:       d.Flags,
		Fingerprint: d.Fingerprint,
		CreatorPID:  d.CreatorPID,
		CreatorUID:  d.CreatorUID,
		Created:     d.Created,
		CodecName:   d.CodecName,
		TypeName:    d.TypeName,
		Checksum:    d.Checksum,
	}
	if err := h.Geometry(); err != nil {
		return Header{}, err
	}
	if d.SlotSize != h.SlotSize {
		return Header{}, fmt.Errorf("%w: slot size %d, parameters give %d", ErrCorrupt, d.SlotSize, h.SlotSize)
	}
	if d.DataOffset != h.DataOffset {
		return Header{}, fmt.Errorf("%w: data offset %d, parameters give %d", ErrCorrupt, d.DataOffset, h.DataOffset)
	}
	if d.TotalSize != h.TotalSize {
		return Header{}, fmt.Errorf("%w: total size %d, parameters give %d", ErrCorrupt, d.TotalSize, h.TotalSize)
	}
	return h, nil
}
