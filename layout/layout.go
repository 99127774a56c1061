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
// any other version is ErrIncompatible. Version 2 added the fan-out
// topologies: the consumers and overflow fields, consumer role entries, the
// claim-head word, and the multi-producer flag.
const Version = 2

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
	OffConsumers   = 112 // uint32 consumer role entries (work queue, broadcast); 0 otherwise
	OffOverflow    = 116 // uint32 broadcast: OverflowWait or OverflowDrop; 0 otherwise
	OffTypeName    = 120 // [128]byte Go type name, NUL padded (informational)
	OffChecksum    = 248 // uint64 xxhash64 of bytes [0, 248)
	HeaderSize     = 256 // end of the immutable header

	CodecNameLen = OffConsumers - OffCodecName
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
	OffClaimHead     = 408 // uint64 work queue: positions handed out to consumers (CAS)
	OffLagged        = 416 // uint64 broadcast DropOldest: values receivers missed, summed

	// Receiver wait line: the receiver sleeps on RecvSeq.
	OffRecvSeq     = 448 // uint32 futex word, bumped by a waker
	OffRecvWaiting = 452 // uint32 1 while the receiver may be asleep
	OffRecvSleeps  = 456 // uint64 times the receiver went to sleep

	// Sender wait line: senders sleep on SendSeq.
	OffSendSeq     = 512 // uint32 futex word, bumped by a waker
	OffSendWaiters = 516 // uint32 senders that may be asleep
	OffSendSleeps  = 520 // uint64 times a sender went to sleep

	// OffRoles is the first role entry (the receiver's in SPSC and MPSC,
	// unused in the fan-out topologies); entry i is at OffRoles + i*LineSize.
	// Entries 1..Producers are the senders', and Producers+1 ..
	// Producers+Consumers the consumers' (work queue, broadcast).
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

	// Consumer entries use the same words: RoleCursor (= RoleClaimLo) is a
	// broadcast receiver's next position; a work-queue consumer's claim is
	// RoleClaimLo/RoleClaimHi; RoleSent counts the values it received.
	RoleCursor = RoleClaimLo
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
	RoleSleeping = 1 << 0 // the holder counted itself in the waiters of its side
	RoleJoined   = 1 << 1 // broadcast: the consumer's cursor gates senders (WaitForSlowest) and is read by them
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
	ModeSPSC      Mode = 0 // one sender, one receiver
	ModeMPSC      Mode = 1 // many senders, one receiver
	ModeWorkQueue Mode = 2 // senders, and consumers that compete: each value goes to one
	ModeBroadcast Mode = 3 // senders, and consumers that each see every value
)

// Overflow is what a broadcast sender does when the slowest receiver is a
// whole ring behind.
type Overflow uint32

// Overflow policies.
const (
	OverflowWait Overflow = 0 // wait for the slowest live receiver
	OverflowDrop Overflow = 1 // overwrite: a receiver that fell behind skips ahead
)

func (o Overflow) String() string {
	switch o {
	case OverflowWait:
		return "wait-for-slowest"
	case OverflowDrop:
		return "drop-oldest"
	}
	return fmt.Sprintf("overflow(%d)", uint32(o))
}

func (m Mode) String() string {
	switch m {
	case ModeSPSC:
		return "spsc"
	case ModeMPSC:
		return "mpsc"
	case ModeWorkQueue:
		return "workqueue"
	case ModeBroadcast:
		return "broadcast"
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
	FlagRaw   Flags = 1 << 0 // values are raw bytes of a pointer-free T: in-place access allowed
	FlagMulti Flags = 1 << 1 // work queue, broadcast: created WithMultiProducer

	knownFlags = FlagRaw | FlagMulti
)

// String names the flags set, "-" for none; unknown bits are shown in hex.
func (f Flags) String() string {
	var parts []string
	if f&FlagRaw != 0 {
		parts = append(parts, "raw")
	}
	if f&FlagMulti != 0 {
		parts = append(parts, "multi-producer")
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
	MaxConsumers = 4096
	// MaxWorkQueueCapacity bounds a work queue's ring: a consumed slot's
	// sequence (uint32(p+1) with bit 31 flipped) must never equal the
	// committed sequence of a position in the same slot within two laps.
	MaxWorkQueueCapacity = 1 << 29
	MaxTotalSize         = 1 << 40
)

// Header is the decoded immutable header plus the derived geometry.
type Header struct {
	Mode        Mode
	Wait        Wait
	Capacity    uint64
	SlotSize    uint32
	MaxMsg      uint32
	Producers   uint32
	Consumers   uint32   // consumer entries: work queue and broadcast only
	Overflow    Overflow // broadcast only
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

// DataOffsetFor returns the offset of slot 0 for the given numbers of
// sender and consumer entries.
func DataOffsetFor(producers, consumers uint32) uint32 {
	end := OffRoles + (1+producers+consumers)*LineSize
	return (end + LineSize - 1) &^ (LineSize - 1)
}

// RoleOffset returns the offset of role entry i (0: receiver, 1..Producers:
// senders, then the consumers).
func RoleOffset(i int) int { return OffRoles + i*LineSize }

// FanOut reports whether a mode has consumer entries (work queue,
// broadcast).
func (m Mode) FanOut() bool { return m == ModeWorkQueue || m == ModeBroadcast }

// ConsumerEntry returns the role entry index of consumer k (0-based).
func (h *Header) ConsumerEntry(k int) int { return 1 + int(h.Producers) + k }

// Entries returns the number of role entries: 1 + Producers + Consumers.
func (h *Header) Entries() int { return 1 + int(h.Producers) + int(h.Consumers) }

// Geometry fills in SlotSize, DataOffset and TotalSize from the parameters
// and checks every parameter, with ErrCorrupt wrapped in a message saying
// which field is impossible. New regions are built from a Header that passed
// Geometry; Validate runs the same checks on a region read from memory.
func (h *Header) Geometry() error {
	switch {
	case h.Mode > ModeBroadcast:
		return fmt.Errorf("%w: mode %d", ErrCorrupt, uint32(h.Mode))
	case h.Wait > WaitSpin:
		return fmt.Errorf("%w: wait mode %d", ErrCorrupt, uint32(h.Wait))
	case h.Mode == ModeWorkQueue && h.Capacity > MaxWorkQueueCapacity:
		return fmt.Errorf("%w: work-queue capacity %d over %d", ErrCorrupt, h.Capacity, MaxWorkQueueCapacity)
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
	case h.Flags&FlagMulti != 0 && !h.Mode.FanOut():
		return fmt.Errorf("%w: multi-producer flag in a %v region", ErrCorrupt, h.Mode)
	case !h.Mode.FanOut() && h.Consumers != 0:
		return fmt.Errorf("%w: %v region with %d consumer entries", ErrCorrupt, h.Mode, h.Consumers)
	case h.Mode.FanOut() && (h.Consumers == 0 || h.Consumers > MaxConsumers):
		return fmt.Errorf("%w: %d consumer entries not in [1, %d]", ErrCorrupt, h.Consumers, MaxConsumers)
	case h.Mode != ModeBroadcast && h.Overflow != 0 || h.Overflow > OverflowDrop:
		return fmt.Errorf("%w: overflow policy %d in a %v region", ErrCorrupt, uint32(h.Overflow), h.Mode)
	}
	h.SlotSize = SlotSizeFor(h.MaxMsg)
	h.DataOffset = DataOffsetFor(h.Producers, h.Consumers)
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
	le.PutUint32(b[OffConsumers:], h.Consumers)
	le.PutUint32(b[OffOverflow:], uint32(h.Overflow))
	le.PutUint64(b[OffFingerprint:], h.Fingerprint)
	le.PutUint64(b[OffTotalSize:], h.TotalSize)
	le.PutUint32(b[OffCreatorPID:], h.CreatorPID)
	le.PutUint32(b[OffCreatorUID:], h.CreatorUID)
	le.PutUint64(b[OffCreated:], uint64(h.Created))
	putString(b[OffCodecName:OffConsumers], h.CodecName)
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
	Consumers   uint32
	Overflow    Overflow
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
		Consumers:   le.Uint32(b[OffConsumers:]),
		Overflow:    Overflow(le.Uint32(b[OffOverflow:])),
		Fingerprint: le.Uint64(b[OffFingerprint:]),
		TotalSize:   le.Uint64(b[OffTotalSize:]),
		CreatorPID:  le.Uint32(b[OffCreatorPID:]),
		CreatorUID:  le.Uint32(b[OffCreatorUID:]),
		Created:     int64(le.Uint64(b[OffCreated:])),
		CodecName:   getString(b[OffCodecName:OffConsumers]),
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
		Consumers:   d.Consumers,
		Overflow:    d.Overflow,
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
