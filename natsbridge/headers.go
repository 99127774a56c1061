package natsbridge

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
)

// The headers of every message the bridge publishes (see the package doc).
const (
	HeaderCodec       = "Shmchan-Codec"
	HeaderType        = "Shmchan-Type"
	HeaderFingerprint = "Shmchan-Fingerprint"
	HeaderRegion      = "Shmchan-Region"
	HeaderPos         = "Shmchan-Pos"
	HeaderClose       = "Shmchan-Close"
)

// hex16 formats v as 16 lower-case hex digits.
func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// parseHex16 parses exactly 16 lower-case hex digits.
func parseHex16(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < 16; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// stamp holds the header values every message of one region shares; the
// slices are shared by all messages (nats.go only reads them).
type stamp struct {
	codec, typ, fp, region []string
	idPrefix               string // "<region>-"
}

func newStamp(info shmchan.RawInfo) *stamp {
	r := hex16(info.ID)
	return &stamp{
		codec:    []string{info.Codec},
		typ:      []string{info.Type},
		fp:       []string{hex16(info.Fingerprint)},
		region:   []string{r},
		idPrefix: r + "-",
	}
}

// valueMsg is a value's message with its two own header values, in one
// allocation.
type valueMsg struct {
	m nats.Msg
	v [2]string // Nats-Msg-Id, Shmchan-Pos
}

// value builds the message for the value at pos. data is not copied:
// nats.go copies it into its buffer when it publishes.
func (s *stamp) value(subject string, pos uint64, data []byte) *nats.Msg {
	var b [64]byte
	id := string(strconv.AppendUint(append(b[:0], s.idPrefix...), pos, 10))
	vm := &valueMsg{v: [2]string{id, id[len(s.idPrefix):]}}
	vm.m = nats.Msg{
		Subject: subject,
		Data:    data,
		Header: nats.Header{
			jetstream.MsgIDHeader: vm.v[0:1:1],
			HeaderCodec:           s.codec,
			HeaderType:            s.typ,
			HeaderFingerprint:     s.fp,
			HeaderRegion:          s.region,
			HeaderPos:             vm.v[1:2:2],
		},
	}
	return &vm.m
}

// marker builds the close marker; used is the number of positions the
// channel had used.
func (s *stamp) marker(subject string, used uint64) *nats.Msg {
	return &nats.Msg{
		Subject: subject,
		Header: nats.Header{
			jetstream.MsgIDHeader: {s.idPrefix + "close"},
			HeaderCodec:           s.codec,
			HeaderType:            s.typ,
			HeaderFingerprint:     s.fp,
			HeaderRegion:          s.region,
			HeaderClose:           {strconv.FormatUint(used, 10)},
		},
	}
}

// kind is what a message turned out to be.
type kind int

const (
	kindValue kind = iota
	kindMarker
)

// checker validates messages against the channel In sends into.
type checker struct {
	info shmchan.RawInfo
	fp   string
}

func newChecker(info shmchan.RawInfo) *checker {
	return &checker{info: info, fp: hex16(info.Fingerprint)}
}

func one(h nats.Header, key string) (string, error) {
	v := h[key]
	if len(v) != 1 {
		if len(v) == 0 {
			return "", fmt.Errorf("%w: no %s header", ErrMalformed, key)
		}
		return "", fmt.Errorf("%w: %d %s headers", ErrMalformed, len(v), key)
	}
	return v[0], nil
}

// check classifies a message: a value, the close marker, or an error
// matching ErrMalformed or shmchan.ErrTypeMismatch.
func (c *checker) check(h nats.Header, data []byte) (kind, error) {
	codec, err := one(h, HeaderCodec)
	if err != nil {
		return 0, err
	}
	typ, err := one(h, HeaderType)
	if err != nil {
		return 0, err
	}
	fp, err := one(h, HeaderFingerprint)
	if err != nil {
		return 0, err
	}
	region, err := one(h, HeaderRegion)
	if err != nil {
		return 0, err
	}
	if fp != c.fp {
		if _, ok := parseHex16(fp); !ok {
			return 0, fmt.Errorf("%w: %s %q is not 16 lower-case hex digits", ErrMalformed, HeaderFingerprint, fp)
		}
	}
	if _, ok := parseHex16(region); !ok {
		return 0, fmt.Errorf("%w: %s %q is not 16 lower-case hex digits", ErrMalformed, HeaderRegion, region)
	}
	if codec == "" {
		return 0, fmt.Errorf("%w: empty %s", ErrMalformed, HeaderCodec)
	}
	if codec != c.info.Codec || fp != c.fp {
		return 0, fmt.Errorf("%w: message of %s (codec %s, fingerprint %s), the channel holds %s (codec %s, fingerprint %s)",
			shmchan.ErrTypeMismatch, typ, codec, fp, c.info.Type, c.info.Codec, c.fp)
	}
	if _, ok := h[HeaderClose]; ok {
		if _, err := one(h, HeaderClose); err != nil {
			return 0, err
		}
		if len(data) != 0 {
			return 0, fmt.Errorf("%w: close marker with %d bytes of data", ErrMalformed, len(data))
		}
		if _, ok := h[HeaderPos]; ok {
			return 0, fmt.Errorf("%w: close marker with a %s header", ErrMalformed, HeaderPos)
		}
		return kindMarker, nil
	}
	pos, err := one(h, HeaderPos)
	if err != nil {
		return 0, err
	}
	if _, err := strconv.ParseUint(pos, 10, 64); err != nil {
		return 0, fmt.Errorf("%w: %s %q", ErrMalformed, HeaderPos, pos)
	}
	if c.info.Raw && len(data) != c.info.ValueSize {
		return 0, fmt.Errorf("%w: a value of %d bytes for %s, whose values are %d bytes", ErrMalformed, len(data), c.info.Type, c.info.ValueSize)
	}
	if len(data) > c.info.MaxMsg {
		return 0, fmt.Errorf("%w: a value of %d bytes, the channel's maximum is %d", ErrMalformed, len(data), c.info.MaxMsg)
	}
	return kindValue, nil
}
