package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// Format constants (see the package documentation).
const (
	Magic   = "SHMCREC\x00"
	Version = 1

	fixedHeader = 64 // before the names
	sumSize     = 8
	recordHead  = 24

	MaxCodecName   = 16
	MaxTypeName    = 128
	MaxChannelName = 255
	MaxMsg         = 1 << 30

	flagRaw = 1 << 0

	kindValue = 1
	kindEnd   = 2

	// chunk bounds how much one read allocates ahead of the bytes that
	// actually arrive, so a damaged length cannot make the reader allocate
	// a gigabyte for a file of a few bytes.
	chunk = 1 << 20
)

var le = binary.LittleEndian

// Header is what a recording says about the channel it came from.
type Header struct {
	Codec       string // codec name, 1 to 16 bytes
	Type        string // Go type name (informational), up to 128 bytes
	Channel     string // the recorded channel's name, up to 255 bytes
	Fingerprint uint64 // the channel's type fingerprint
	Raw         bool   // values are a pointer-free type's bytes
	ValueSize   int    // raw: every value's length; otherwise 0
	MaxMsg      int    // no value is longer
	Capacity    uint64 // the recorded channel's capacity (informational)
	Started     int64  // Unix nanoseconds
}

// check reports a header that cannot be written.
func (h *Header) check() error {
	switch {
	case len(h.Codec) < 1 || len(h.Codec) > MaxCodecName:
		return fmt.Errorf("codec name %q: want 1 to %d bytes", h.Codec, MaxCodecName)
	case len(h.Type) > MaxTypeName:
		return fmt.Errorf("type name of %d bytes: at most %d", len(h.Type), MaxTypeName)
	case len(h.Channel) > MaxChannelName:
		return fmt.Errorf("channel name of %d bytes: at most %d", len(h.Channel), MaxChannelName)
	case !utf8.ValidString(h.Codec) || !utf8.ValidString(h.Type) || !utf8.ValidString(h.Channel):
		return errors.New("names must be UTF-8")
	case h.MaxMsg < 1 || h.MaxMsg > MaxMsg:
		return fmt.Errorf("max message %d not in [1, %d]", h.MaxMsg, MaxMsg)
	case h.Raw && (h.ValueSize < 1 || h.ValueSize > h.MaxMsg):
		return fmt.Errorf("raw value size %d not in [1, max message %d]", h.ValueSize, h.MaxMsg)
	case !h.Raw && h.ValueSize != 0:
		return fmt.Errorf("value size %d for a channel that is not raw (want 0)", h.ValueSize)
	}
	return nil
}

func (h *Header) encode() []byte {
	n := fixedHeader + len(h.Codec) + len(h.Type) + len(h.Channel) + sumSize
	b := make([]byte, n)
	copy(b, Magic)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], uint32(n))
	if h.Raw {
		le.PutUint32(b[16:], flagRaw)
	}
	le.PutUint32(b[20:], uint32(h.ValueSize))
	le.PutUint32(b[24:], uint32(h.MaxMsg))
	le.PutUint64(b[32:], h.Fingerprint)
	le.PutUint64(b[40:], h.Capacity)
	le.PutUint64(b[48:], uint64(h.Started))
	le.PutUint16(b[56:], uint16(len(h.Codec)))
	le.PutUint16(b[58:], uint16(len(h.Type)))
	le.PutUint16(b[60:], uint16(len(h.Channel)))
	p := fixedHeader
	p += copy(b[p:], h.Codec)
	p += copy(b[p:], h.Type)
	p += copy(b[p:], h.Channel)
	le.PutUint64(b[p:], xxhash.Sum64(b[:p]))
	return b
}

// recordSum is the checksum of record index i with head h (its first 16
// bytes are used) and data.
func recordSum(d *xxhash.Digest, i int64, h []byte, data []byte) uint64 {
	var idx [8]byte
	le.PutUint64(idx[:], uint64(i))
	d.Reset()
	d.Write(idx[:])
	d.Write(h[:16])
	d.Write(data)
	return d.Sum64()
}

// Writer writes a recording. It buffers: call Close to write the end
// record and flush.
type Writer struct {
	w      *bufio.Writer
	h      Header
	d      *xxhash.Digest
	n      int64 // value records written
	size   int64 // bytes written so far (header included)
	closed bool
	err    error // sticky
	head   [recordHead]byte
}

// NewWriter writes h's header to w and returns a Writer for the records.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	wr := &Writer{w: bufio.NewWriterSize(w, 256<<10), h: h, d: xxhash.New()}
	b := h.encode()
	if _, err := wr.w.Write(b); err != nil {
		return nil, err
	}
	wr.size = int64(len(b))
	return wr, nil
}

// Write appends one value, taken from the channel at Unix nanoseconds at.
func (w *Writer) Write(at int64, data []byte) error {
	switch {
	case w.err != nil:
		return w.err
	case w.closed:
		return errors.New("capture: write after Close")
	case len(data) > w.h.MaxMsg:
		return fmt.Errorf("capture: value of %d bytes, max message %d", len(data), w.h.MaxMsg)
	case w.h.Raw && len(data) != w.h.ValueSize:
		return fmt.Errorf("capture: value of %d bytes in a raw recording of %d-byte values", len(data), w.h.ValueSize)
	}
	if err := w.record(kindValue, at, data); err != nil {
		return err
	}
	w.n++
	return nil
}

func (w *Writer) record(kind uint32, at int64, data []byte) error {
	h := w.head[:]
	le.PutUint32(h[0:], uint32(len(data)))
	le.PutUint32(h[4:], kind)
	le.PutUint64(h[8:], uint64(at))
	le.PutUint64(h[16:], recordSum(w.d, w.n, h, data))
	if _, err := w.w.Write(h); err != nil {
		w.err = err
		return err
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = err
		return err
	}
	w.size += int64(recordHead + len(data))
	return nil
}

// Count is the number of values written.
func (w *Writer) Count() int64 { return w.n }

// Size is the number of bytes written (or buffered) so far.
func (w *Writer) Size() int64 { return w.size }

// Flush writes out what is buffered (without an end record: a file
// flushed but never closed reads as truncated after its last record).
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Close writes the end record (at Unix nanoseconds at) and flushes. It
// does not close the underlying writer.
func (w *Writer) Close(at int64) error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		return w.err
	}
	var cnt [8]byte
	le.PutUint64(cnt[:], uint64(w.n))
	if err := w.record(kindEnd, at, cnt[:]); err != nil {
		return err
	}
	w.closed = true
	return w.Flush()
}

// Record is one value read back.
type Record struct {
	Index  int64  // 0 for the first value
	Offset int64  // byte offset of the record in the file
	Time   int64  // Unix nanoseconds
	Data   []byte // valid until the next call of Next
}

// Reader reads a recording, checking everything as it goes.
type Reader struct {
	r     *bufio.Reader
	h     Header
	d     *xxhash.Digest
	off   int64 // offset of the next record
	next  int64 // index of the next record
	err   error // sticky: the damage found, or io.EOF
	buf   []byte
	head  [recordHead]byte
	Ended int64 // Unix nanoseconds of the end record, once read
}

// NewReader reads and checks the header. The error is a *DamageError
// (wrapping ErrNotRecording, ErrDamaged or ErrTruncated) or an I/O error.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: bufio.NewReaderSize(r, 256<<10), d: xxhash.New()}
	if err := rd.readHeader(); err != nil {
		return nil, err
	}
	return rd, nil
}

// Header returns the header read.
func (r *Reader) Header() Header { return r.h }

// HeaderSize is the header's length in bytes.
func (r *Reader) HeaderSize() int64 {
	return int64(fixedHeader + len(r.h.Codec) + len(r.h.Type) + len(r.h.Channel) + sumSize)
}

func hdrErr(kind error, at int64, format string, args ...any) error {
	return &DamageError{Record: headerIndex, Offset: 0, At: at, Reason: fmt.Sprintf(format, args...), Err: kind}
}

// readFull reads len(b) bytes; it returns how many it got and whether the
// file ended first (an I/O error other than EOF is returned as is).
func (r *Reader) readFull(b []byte) (int, bool, error) {
	n, err := io.ReadFull(r.r, b)
	switch {
	case err == nil:
		return n, false, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return n, true, nil
	}
	return n, false, err
}

func (r *Reader) readHeader() error {
	var fixed [fixedHeader]byte
	n, short, err := r.readFull(fixed[:])
	if err != nil {
		return err
	}
	switch {
	case n == 0:
		return hdrErr(ErrNotRecording, 0, "the file is empty")
	case n < len(Magic) && string(fixed[:n]) == Magic[:n]:
		return hdrErr(ErrTruncated, int64(n), "the file ends %d bytes into the magic", n)
	case n < len(Magic) || string(fixed[:len(Magic)]) != Magic:
		return hdrErr(ErrNotRecording, 0, "no %q magic at the start", Magic)
	}
	if short {
		return hdrErr(ErrTruncated, int64(n), "the file ends %d bytes into the %d-byte fixed header", n, fixedHeader)
	}
	if v := le.Uint32(fixed[8:]); v != Version {
		return hdrErr(ErrNotRecording, 8, "format version %d (this program reads version %d)", v, Version)
	}
	c, t, ch := int(le.Uint16(fixed[56:])), int(le.Uint16(fixed[58:])), int(le.Uint16(fixed[60:]))
	switch {
	case c < 1 || c > MaxCodecName:
		return hdrErr(ErrDamaged, 56, "codec name length %d not in [1, %d]", c, MaxCodecName)
	case t > MaxTypeName:
		return hdrErr(ErrDamaged, 58, "type name length %d over %d", t, MaxTypeName)
	case ch > MaxChannelName:
		return hdrErr(ErrDamaged, 60, "channel name length %d over %d", ch, MaxChannelName)
	}
	total := fixedHeader + c + t + ch + sumSize
	if hl := int(le.Uint32(fixed[12:])); hl != total {
		return hdrErr(ErrDamaged, 12, "header length %d, the name lengths give %d", hl, total)
	}
	b := make([]byte, total)
	copy(b, fixed[:])
	m, short, err := r.readFull(b[fixedHeader:])
	if err != nil {
		return err
	}
	if short {
		return hdrErr(ErrTruncated, int64(fixedHeader+m), "the file ends %d bytes into the %d-byte header", fixedHeader+m, total)
	}
	p := total - sumSize
	if stored, computed := le.Uint64(b[p:]), xxhash.Sum64(b[:p]); stored != computed {
		return hdrErr(ErrDamaged, int64(p), "header checksum %016x, computed %016x", stored, computed)
	}
	h := Header{
		Fingerprint: le.Uint64(b[32:]),
		Raw:         le.Uint32(b[16:])&flagRaw != 0,
		ValueSize:   int(le.Uint32(b[20:])),
		MaxMsg:      int(le.Uint32(b[24:])),
		Capacity:    le.Uint64(b[40:]),
		Started:     int64(le.Uint64(b[48:])),
		Codec:       string(b[fixedHeader : fixedHeader+c]),
		Type:        string(b[fixedHeader+c : fixedHeader+c+t]),
		Channel:     string(b[fixedHeader+c+t : fixedHeader+c+t+ch]),
	}
	if f := le.Uint32(b[16:]); f&^flagRaw != 0 {
		return hdrErr(ErrDamaged, 16, "unknown flags %#x", f)
	}
	if le.Uint32(b[28:]) != 0 || le.Uint16(b[62:]) != 0 {
		return hdrErr(ErrDamaged, 28, "reserved fields are not zero")
	}
	if err := h.check(); err != nil {
		return hdrErr(ErrDamaged, 16, "%v", err)
	}
	r.h, r.off = h, int64(total)
	return nil
}

func (r *Reader) damage(kind error, at int64, format string, args ...any) error {
	r.err = &DamageError{Record: r.next, Offset: r.off, At: at, Reason: fmt.Sprintf(format, args...), Err: kind}
	return r.err
}

// Next returns the next value. After the last one it returns io.EOF, once
// the end record has been read and checked and nothing follows it. Damage
// is a *DamageError naming the record; after an error every call returns
// the same error.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	h := r.head[:]
	n, short, err := r.readFull(h)
	if err != nil {
		return Record{}, err
	}
	if short {
		if n == 0 {
			return Record{}, r.damage(ErrTruncated, r.off, "the file ends after %d whole records without the end record (cut short, or the recorder was killed)", r.next)
		}
		return Record{}, r.damage(ErrTruncated, r.off+int64(n), "the file ends %d bytes into the record's %d-byte head", n, recordHead)
	}
	length, kind := int64(le.Uint32(h[0:])), le.Uint32(h[4:])
	switch kind {
	case kindValue:
		if length > int64(r.h.MaxMsg) {
			return Record{}, r.damage(ErrDamaged, r.off, "length %d is over the recording's max message %d", length, r.h.MaxMsg)
		}
		if r.h.Raw && length != int64(r.h.ValueSize) {
			return Record{}, r.damage(ErrDamaged, r.off, "length %d in a recording of %d-byte raw values", length, r.h.ValueSize)
		}
	case kindEnd:
		if length != 8 {
			return Record{}, r.damage(ErrDamaged, r.off, "end record with length %d (want 8)", length)
		}
	default:
		return Record{}, r.damage(ErrDamaged, r.off+4, "record kind %d (want 1, a value, or 2, the end)", kind)
	}
	data, got, err := r.readData(int(length))
	if err != nil {
		return Record{}, err
	}
	if got < int(length) {
		return Record{}, r.damage(ErrTruncated, r.off+recordHead+int64(got),
			"the file ends %d bytes into the record's %d data bytes (cut short, or its length field is damaged)", got, length)
	}
	if stored, computed := le.Uint64(h[16:]), recordSum(r.d, r.next, h, data); stored != computed {
		return Record{}, r.damage(ErrDamaged, r.off+16, "checksum %016x, computed %016x (a changed byte in the record, or records lost, doubled or moved)", stored, computed)
	}
	rec := Record{Index: r.next, Offset: r.off, Time: int64(le.Uint64(h[8:])), Data: data}
	if kind == kindEnd {
		if cnt := le.Uint64(data); cnt != uint64(r.next) {
			return Record{}, r.damage(ErrDamaged, r.off+recordHead, "end record counts %d values, the file holds %d", cnt, r.next)
		}
		end := r.off + recordHead + 8
		if extra, _ := r.r.Peek(1); len(extra) > 0 {
			r.off = end
			return Record{}, r.damage(ErrDamaged, end, "bytes after the end record")
		}
		r.Ended = rec.Time
		r.err = io.EOF
		return Record{}, io.EOF
	}
	r.off += recordHead + length
	r.next++
	return rec, nil
}

// readData reads n data bytes into r.buf, growing it at most chunk bytes
// ahead of what arrived. It returns the bytes and how many there were.
func (r *Reader) readData(n int) ([]byte, int, error) {
	if cap(r.buf) >= n || n <= chunk {
		if cap(r.buf) < n {
			r.buf = make([]byte, n)
		}
		got, _, err := r.readFull(r.buf[:n])
		return r.buf[:got], got, err
	}
	r.buf = r.buf[:0]
	for len(r.buf) < n {
		step := min(chunk, n-len(r.buf))
		start := len(r.buf)
		r.buf = append(r.buf, make([]byte, step)...)
		got, short, err := r.readFull(r.buf[start:])
		r.buf = r.buf[:start+got]
		if err != nil || short {
			return r.buf, len(r.buf), err
		}
	}
	return r.buf, n, nil
}

// Offset is the byte offset of the next record.
func (r *Reader) Offset() int64 { return r.off }

// Summary is what Scan found in a whole, undamaged recording.
type Summary struct {
	Header Header
	Count  int64 // values
	Bytes  int64 // file size
	MaxLen int   // the longest value
	First  int64 // time of the first value (0 if none)
	Last   int64 // time of the last value
	Ended  int64 // time of the end record
}

// Scan reads a whole recording and checks every record. With an error it
// still returns what it found before the damage (Count values are intact).
func Scan(rd io.Reader) (Summary, error) {
	r, err := NewReader(rd)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Header: r.h}
	for {
		rec, err := r.Next()
		if err != nil {
			s.Bytes = r.off
			if errors.Is(err, io.EOF) {
				s.Bytes += recordHead + 8
				s.Ended = r.Ended
				return s, nil
			}
			return s, err
		}
		if s.Count == 0 {
			s.First = rec.Time
		}
		s.Last = rec.Time
		s.Count++
		s.MaxLen = max(s.MaxLen, len(rec.Data))
	}
}
