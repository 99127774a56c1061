package natsbridge

import "errors"

// ErrMalformed: a message on the subject is not a value or close marker
// In can use (headers missing or unparsable, or data of a size the channel
// cannot hold). In terminates such a message and reports an error matching
// ErrMalformed through the error handler; it does not stop. Type
// mismatches are shmchan.ErrTypeMismatch instead, and do stop In.
var ErrMalformed = errors.New("natsbridge: malformed message")

// errAckTimeout: JetStream did not acknowledge a publish in time.
var errAckTimeout = errors.New("natsbridge: no acknowledgement from JetStream in time")
