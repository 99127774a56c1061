//go:build linux

package mq

// The system's limits on queues (/proc/sys/fs/mqueue, RLIMIT_MSGQUEUE,
// RLIMIT_NOFILE), the defaults they imply, and the errors that name them.

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Files under /proc/sys/fs/mqueue.
const (
	procMsgMax         = "/proc/sys/fs/mqueue/msg_max"
	procMsgSizeMax     = "/proc/sys/fs/mqueue/msgsize_max"
	procMsgDefault     = "/proc/sys/fs/mqueue/msg_default"
	procMsgSizeDefault = "/proc/sys/fs/mqueue/msgsize_default"
	procQueuesMax      = "/proc/sys/fs/mqueue/queues_max"
)

// readProcInt reads one of the sysctls above; ok is false if it cannot.
func readProcInt(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return v, err == nil
}

// defaultMaxMsg and defaultMsgSize are what the kernel uses for a NULL attr:
// min(default, max), with its compiled-in 10 and 8192 as the fallback.
func defaultMaxMsg() int  { return procDefault(procMsgDefault, procMsgMax, 10) }
func defaultMsgSize() int { return procDefault(procMsgSizeDefault, procMsgSizeMax, 8192) }
func procDefault(def, max string, fallback int) int {
	d, ok := readProcInt(def)
	if !ok {
		return fallback
	}
	if m, ok := readProcInt(max); ok && m < d {
		return m
	}
	return d
}

// openError turns an mq_open errno into an error that explains it.
func openError(disp string, creating bool, ka *mqAttr, e unix.Errno) error {
	prefix := "mq: open " + disp + ": "
	switch e {
	case unix.EINVAL:
		if ka == nil {
			break
		}
		if ka.maxMsg <= 0 || ka.msgSize <= 0 {
			return newError(fmt.Sprintf("%sMaxMsg (%d) and MsgSize (%d) must be positive", prefix, ka.maxMsg, ka.msgSize), e)
		}
		if ka.maxMsg > hardMsgMax {
			return newError(fmt.Sprintf("%sMaxMsg %d exceeds the kernel's hard limit HARD_MSGMAX (%d)", prefix, ka.maxMsg, hardMsgMax), ErrLimit, e)
		}
		if ka.msgSize > hardMsgSizeMax {
			return newError(fmt.Sprintf("%sMsgSize %d exceeds the kernel's hard limit HARD_MSGSIZEMAX (%d)", prefix, ka.msgSize, hardMsgSizeMax), ErrLimit, e)
		}
		if m, ok := readProcInt(procMsgMax); ok && ka.maxMsg > m {
			return newError(fmt.Sprintf("%sMaxMsg %d exceeds %s (%d)", prefix, ka.maxMsg, procMsgMax, m), ErrLimit, e)
		}
		if m, ok := readProcInt(procMsgSizeMax); ok && ka.msgSize > m {
			return newError(fmt.Sprintf("%sMsgSize %d exceeds %s (%d)", prefix, ka.msgSize, procMsgSizeMax, m), ErrLimit, e)
		}
	case unix.EMFILE:
		if !creating || fdsExhausted() {
			return newError(prefix+"this process has too many open files (RLIMIT_NOFILE)", e)
		}
		maxMsg, msgSize := defaultMaxMsg(), defaultMsgSize()
		if ka != nil {
			maxMsg, msgSize = ka.maxMsg, ka.msgSize
		}
		lim, _ := UserLimit()
		return newError(fmt.Sprintf("%sa queue of MaxMsg %d × MsgSize %d needs about %d bytes, more than is left of "+
			"this user's RLIMIT_MSGQUEUE (%d bytes, shared by all the user's queues)",
			prefix, maxMsg, msgSize, queueBytes(maxMsg, msgSize), lim), ErrLimit, e)
	case unix.ENOSPC:
		limit := "?"
		if m, ok := readProcInt(procQueuesMax); ok {
			limit = strconv.Itoa(m)
		}
		return newError(fmt.Sprintf("%sthe system already has %s (%s) queues", prefix, procQueuesMax, limit), ErrLimit, e)
	}
	return fmt.Errorf("%s%w", prefix, e)
}

// Unlimited is what UserLimit returns for RLIMIT_MSGQUEUE = unlimited.
const Unlimited = ^uint64(0)

// UserLimit returns this process's RLIMIT_MSGQUEUE (the soft limit): the
// bytes that all the message queues of its real user may take together,
// or Unlimited. A queue of MaxMsg messages of MsgSize bytes is charged
// about MaxMsg × (MsgSize + 48) bytes plus some per priority in use.
func UserLimit() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl); err != nil {
		return 0, fmt.Errorf("mq: getrlimit RLIMIT_MSGQUEUE: %w", err)
	}
	return rl.Cur, nil
}

// queueBytes estimates what the kernel charges to RLIMIT_MSGQUEUE for a queue:
// the message bytes plus a struct msg_msg (48 bytes) per message and a
// priority tree node (48 bytes) per possible priority in use.
func queueBytes(maxMsg, msgSize int) int {
	return maxMsg*msgSize + maxMsg*48 + min(maxMsg, PrioMax)*48
}

// fdsExhausted reports whether the process is at its RLIMIT_NOFILE.
func fdsExhausted() bool {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return true // could not even open a directory
	}
	return uint64(len(ents)-1) >= rl.Cur // less the directory's own descriptor
}
