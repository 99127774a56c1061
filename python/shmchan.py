"""shmchan for Python: ctypes over libshmchan.so, built from ../c:

    cc -std=c11 -O2 -fPIC -shared -o python/libshmchan.so c/shmchan.c

The library is looked up in $SHMCHAN_LIB, next to this file, then by the
system's loader. Values are bytes: a Go Chan[[]byte] carries them as they
are; a raw channel carries a pointer-free Go struct's bytes (pack them with
the struct module).

    from shmchan import Chan
    with Chan("orders") as ch:           # an existing channel
        for value in ch:                 # until the sender closes it
            print(value)

Every topology works: SPSC and MPSC (one receiver), work queues (each
value goes to one of many receivers) and broadcast (every receiver gets
every value sent after it joined, at its first recv). A DropOldest
broadcast receiver that fell a ring behind gets one Lagged exception,
whose .missed says how many values it lost, and goes on with the oldest
intact one.

A Chan is safe to share between threads (its calls are serialised by a
lock); blocking calls release the GIL and wake up now and then so that
Ctrl-C works.
"""

import ctypes
import os
import threading
import time

__all__ = [
    "Chan", "create", "unlink", "Error", "Full", "Empty", "Closed", "TooLarge",
    "Corrupt", "Incompatible", "Busy", "NotFound", "Timeout", "Invalid", "Exists",
    "PermissionDenied", "Lagged", "WAIT_FUTEX", "WAIT_MQ", "WAIT_SPIN",
    "WAIT_FOR_SLOWEST", "DROP_OLDEST",
]

OK, EFULL, EEMPTY, ECLOSED, ETOOLARGE, ECORRUPT, EINCOMPATIBLE, EBUSY = 0, -1, -2, -3, -4, -5, -6, -7
ENOENT, ETIMEDOUT, EINVAL, ESYS, ELAGGED, EEXIST, EPERM = -8, -9, -10, -11, -12, -13, -14
WAIT_FUTEX, WAIT_MQ, WAIT_SPIN = 0, 1, 2
WAIT_FOR_SLOWEST, DROP_OLDEST = 0, 1  # broadcast overflow policies
_TOPO_SINGLE, _TOPO_WORKQUEUE, _TOPO_BROADCAST = 0, 1, 2
_ALLOW_FOREIGN_OWNER = 1
_SLICE_NS = 200_000_000  # a blocking call returns to Python this often, for signals


class Error(Exception):
    """A shmchan error; .code is the SHMCHAN_E* value."""

    def __init__(self, code, what=""):
        self.code = code
        msg = _lib().shmchan_strerror(code).decode()
        if code == ESYS:
            msg += ": " + os.strerror(ctypes.get_errno())
        super().__init__(f"{what}: {msg}" if what else msg)


class Full(Error): pass
class Empty(Error): pass
class Closed(Error): pass
class TooLarge(Error): pass
class Corrupt(Error): pass
class Incompatible(Error): pass
class Busy(Error): pass
class NotFound(Error, FileNotFoundError): pass
class Timeout(Error, TimeoutError): pass
class Invalid(Error, ValueError): pass
class Exists(Error, FileExistsError): pass
class PermissionDenied(Error, PermissionError): pass
class Lagged(Error):
    """A DropOldest broadcast receiver fell more than a ring behind:
    .missed values were overwritten before it read them. The next recv goes
    on with the oldest value still intact."""

    def __init__(self, code, what="", missed=0):
        super().__init__(code, what)
        self.missed = missed


_CLASSES = {
    EFULL: Full, EEMPTY: Empty, ECLOSED: Closed, ETOOLARGE: TooLarge, ECORRUPT: Corrupt,
    EINCOMPATIBLE: Incompatible, EBUSY: Busy, ENOENT: NotFound, ETIMEDOUT: Timeout,
    EINVAL: Invalid, ELAGGED: Lagged, EEXIST: Exists, EPERM: PermissionDenied,
}


def _raise(code, what):
    if code in (ECORRUPT, EINCOMPATIBLE, EINVAL):
        detail = _lib().shmchan_last_error().decode(errors="replace")
        if detail:
            what = f"{what} ({detail})"
    raise _CLASSES.get(code, Error)(code, what)


class _Params(ctypes.Structure):
    _fields_ = [
        ("topology", ctypes.c_uint32), ("multi_producer", ctypes.c_uint32),
        ("producers", ctypes.c_uint32), ("consumers", ctypes.c_uint32),
        ("overflow", ctypes.c_uint32), ("wait", ctypes.c_uint32),
        ("capacity", ctypes.c_uint64), ("max_msg", ctypes.c_uint32),
        ("raw", ctypes.c_uint32), ("fingerprint", ctypes.c_uint64),
        ("codec_name", ctypes.c_char_p), ("type_name", ctypes.c_char_p),
        ("perm", ctypes.c_uint32),
    ]


_LIB = None
_LIB_LOCK = threading.Lock()


def _lib():
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libshmchan.so")
            path = os.environ.get("SHMCHAN_LIB") or (here if os.path.exists(here) else "libshmchan.so")
            lib = ctypes.CDLL(path, use_errno=True)
            P = ctypes.c_void_p
            sig = {
                "shmchan_open_flags": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(P)]),
                "shmchan_create": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Params), ctypes.POINTER(P)]),
                "shmchan_unlink": (ctypes.c_int, [ctypes.c_char_p]),
                "shmchan_send": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64]),
                "shmchan_recv": (ctypes.c_int, [P, P, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.c_int64]),
                "shmchan_close_send": (ctypes.c_int, [P]),
                "shmchan_close": (None, [P]),
                "shmchan_strerror": (ctypes.c_char_p, [ctypes.c_int]),
                "shmchan_max_msg": (ctypes.c_size_t, [P]),
                "shmchan_cap": (ctypes.c_size_t, [P]),
                "shmchan_len": (ctypes.c_size_t, [P]),
                "shmchan_missed": (ctypes.c_uint64, [P]),
                "shmchan_last_error": (ctypes.c_char_p, []),
            }
            for name, (res, args) in sig.items():
                f = getattr(lib, name)
                f.restype, f.argtypes = res, args
            _LIB = lib
    return _LIB


def _name(name):
    b = name.encode() if isinstance(name, str) else bytes(name)
    if b"\0" in b:
        raise Invalid(EINVAL, f"name {name!r} contains a NUL")
    return b


def unlink(name):
    """Remove the channel's name (and its doorbells)."""
    rc = _lib().shmchan_unlink(_name(name))
    if rc != OK:
        _raise(rc, f"unlink {name!r}")


class Chan:
    """A handle on an existing channel; Chan.create makes a new one.

    The first send takes a sender role, the first recv the receiver role
    (Busy if held by a live process). Iterating receives until the channel
    is closed for sending and drained.
    """

    def __init__(self, name, *, allow_foreign_owner=False, _handle=None):
        self._lock = threading.Lock()
        self._closing = False
        self.name = name
        if _handle is None:
            h = ctypes.c_void_p()
            flags = _ALLOW_FOREIGN_OWNER if allow_foreign_owner else 0
            rc = _lib().shmchan_open_flags(_name(name), flags, ctypes.byref(h))
            if rc != OK:
                _raise(rc, f"open {name!r}")
            _handle = h
        self._h = _handle
        self.missed = 0  # values this handle lost to DropOldest lags, in all
        self._max = _lib().shmchan_max_msg(self._h)
        self._buf = ctypes.create_string_buffer(max(self._max, 1))

    @classmethod
    def create(cls, name, *, capacity=0, max_msg=0, multi_producer=False, producers=0,
               work_queue=False, broadcast=None, consumers=0,
               wait=WAIT_FUTEX, raw_fingerprint=None, codec_name=None, type_name=None, perm=0):
        """Create a channel (Exists if the name is taken). By default it is
        a []byte channel that Go opens as shmchan.Open[[]byte]; with
        raw_fingerprint (from `shmchan stat` of the Go type) it is a raw
        channel of max_msg-byte values. work_queue=True makes a work queue
        (Go's WithMultiConsumer); broadcast=WAIT_FOR_SLOWEST or DROP_OLDEST
        a broadcast (WithBroadcast); consumers is WithConsumers (0: 64)."""
        if work_queue and broadcast is not None:
            raise Invalid(EINVAL, "a work queue or a broadcast, not both")
        p = _Params()
        p.multi_producer = 1 if multi_producer else 0
        if work_queue:
            p.topology = _TOPO_WORKQUEUE
        elif broadcast is not None:
            p.topology, p.overflow = _TOPO_BROADCAST, broadcast
        p.consumers = consumers
        p.producers, p.wait, p.capacity, p.max_msg, p.perm = producers, wait, capacity, max_msg, perm
        if raw_fingerprint is not None:
            p.raw, p.fingerprint = 1, raw_fingerprint
        p.codec_name = codec_name.encode() if codec_name else None
        p.type_name = type_name.encode() if type_name else None
        h = ctypes.c_void_p()
        rc = _lib().shmchan_create(_name(name), ctypes.byref(p), ctypes.byref(h))
        if rc != OK:
            _raise(rc, f"create {name!r}")
        return cls(name, _handle=h)

    def _handle(self):
        if self._h is None:
            raise Closed(ECLOSED, f"{self.name!r}: handle closed")
        return self._h

    def _blocking(self, call, timeout, what):
        """Runs call(timeout_ns) in slices, so that signals get handled."""
        if timeout is not None and timeout <= 0:
            rc = call(0)
            if rc != OK:
                _raise(rc, what)
            return
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closing:
                raise Closed(ECLOSED, f"{self.name!r}: handle closed")
            left = _SLICE_NS if end is None else min(_SLICE_NS, max(int((end - time.monotonic()) * 1e9), 1))
            rc = call(left)
            if rc == OK:
                return
            if rc != ETIMEDOUT or (end is not None and time.monotonic() >= end):
                _raise(rc, what)

    def send(self, value, timeout=None):
        """Send bytes; blocks while full (timeout in seconds: Timeout; 0:
        Full at once). Closed once the channel was closed for sending."""
        b = bytes(value)
        with self._lock:
            h = self._handle()
            self._blocking(lambda ns: _lib().shmchan_send(h, b, len(b), ns), timeout, f"send on {self.name!r}")

    def recv(self, timeout=None):
        """Receive one value as bytes; blocks while empty (timeout in
        seconds: Timeout; 0: Empty at once). Closed once closed and drained.
        A DropOldest broadcast receiver that fell behind gets Lagged once
        (.missed: how many values it lost); the next recv goes on."""
        n = ctypes.c_size_t()
        with self._lock:
            h = self._handle()
            try:
                self._blocking(lambda ns: _lib().shmchan_recv(h, self._buf, len(self._buf), ctypes.byref(n), ns),
                               timeout, f"recv on {self.name!r}")
            except Lagged as e:
                e.missed = _lib().shmchan_missed(h)
                self.missed += e.missed
                raise
            return ctypes.string_at(self._buf, n.value)

    def close_send(self):
        """Close the channel for sending, like close(ch) in Go."""
        with self._lock:
            rc = _lib().shmchan_close_send(self._handle())
        if rc != OK:
            _raise(rc, f"close_send on {self.name!r}")

    def close(self):
        """Release this handle's roles and unmap; the channel stays. A call
        blocked in another thread returns Closed within a fraction of a
        second."""
        self._closing = True
        with self._lock:
            if self._h is not None:
                _lib().shmchan_close(self._h)
                self._h = None

    def __len__(self):
        with self._lock:
            return _lib().shmchan_len(self._handle())

    @property
    def cap(self):
        with self._lock:
            return _lib().shmchan_cap(self._handle())

    @property
    def max_msg(self):
        return self._max

    def __iter__(self):
        """Receive until closed and drained. Lags of a DropOldest broadcast
        are passed over (their counts add up in .missed); call recv to see
        each one."""
        while True:
            try:
                yield self.recv()
            except Lagged:
                continue
            except Closed:
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def create(name, **kw):
    """Chan.create(name, **kw)."""
    return Chan.create(name, **kw)
