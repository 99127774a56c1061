"""Tests of shmchan.py on its own (no Go): run with
SHMCHAN_LIB=/path/to/libshmchan.so python3 python/test_shmchan.py.
The Go test c/python_test.go runs it, and the Go-Python-Go pipeline."""

import os
import threading
import time
import unittest

import shmchan
from shmchan import Chan

_counter = [0]


def fresh_name():
    _counter[0] += 1
    return f"{os.environ.get('SHMCHAN_TEST_PREFIX', 'shmchan-pytest-')}{os.getpid()}-{_counter[0]}"


class ChanTest(unittest.TestCase):
    def setUp(self):
        self.name = fresh_name()

    def tearDown(self):
        try:
            shmchan.unlink(self.name)
        except shmchan.NotFound:
            pass

    def test_round_trip_and_iteration(self):
        with Chan.create(self.name, capacity=4, max_msg=32) as tx, Chan(self.name) as rx:
            self.assertEqual(tx.cap, 4)
            self.assertEqual(tx.max_msg, 32)
            got = []

            def consume():
                got.extend(rx)  # until closed

            t = threading.Thread(target=consume)
            t.start()
            want = [bytes([i]) * (i % 33) for i in range(200)]
            for v in want:
                tx.send(v)
            tx.close_send()
            t.join(10)
            self.assertFalse(t.is_alive())
            self.assertEqual(got, want)
            with self.assertRaises(shmchan.Closed):
                rx.recv(timeout=0)
            with self.assertRaises(shmchan.Closed):
                tx.send(b"late")

    def test_errors(self):
        with self.assertRaises(shmchan.NotFound):
            Chan(self.name)
        for bad in ["", "/", "..", "a/b", "x" * 256, "a\0b"]:
            with self.assertRaises(shmchan.Invalid):
                Chan(bad)
        with Chan.create(self.name, capacity=2, max_msg=4) as c:
            with self.assertRaises(shmchan.Exists):
                Chan.create(self.name)
            with self.assertRaises(shmchan.Empty):
                c.recv(timeout=0)
            t0 = time.monotonic()
            with self.assertRaises(shmchan.Timeout):
                c.recv(timeout=0.05)
            self.assertGreaterEqual(time.monotonic() - t0, 0.05)
            with self.assertRaises(shmchan.TooLarge):
                c.send(b"12345")
            c.send(b"1")
            c.send(b"2")
            self.assertEqual(len(c), 2)
            with self.assertRaises(shmchan.Full):
                c.send(b"3", timeout=0)
            with self.assertRaises(shmchan.Timeout):
                c.send(b"3", timeout=0.02)
            with Chan(self.name) as other:
                with self.assertRaises(shmchan.Busy):
                    other.recv(timeout=0)  # c holds the receiver role
            self.assertEqual(c.recv(), b"1")
        with self.assertRaises(shmchan.Closed):
            c.recv()  # the handle is closed

    def test_close_wakes_a_blocked_recv(self):
        c = Chan.create(self.name)
        errs = []

        def blocked():
            try:
                c.recv()
            except shmchan.Closed as e:
                errs.append(e)

        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.1)
        c.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errs), 1)

    def test_work_queue(self):
        """Three handles receive from one work queue: every value once."""
        n = 3000
        with Chan.create(self.name, work_queue=True, consumers=4, capacity=16, max_msg=8) as tx:
            got, lock = [], threading.Lock()

            def worker():
                with Chan(self.name) as rx:
                    for v in rx:
                        with lock:
                            got.append(int.from_bytes(v, "little"))

            ts = [threading.Thread(target=worker) for _ in range(3)]
            for t in ts:
                t.start()
            for i in range(n):
                tx.send(i.to_bytes(8, "little"))
            tx.close_send()
            for t in ts:
                t.join(30)
                self.assertFalse(t.is_alive())
            self.assertEqual(sorted(got), list(range(n)))

    def test_broadcast_lagged_once(self):
        """A DropOldest subscriber a ring behind: one Lagged with the exact
        count, then the oldest intact values, then Empty."""
        with Chan.create(self.name, broadcast=shmchan.DROP_OLDEST, capacity=4, max_msg=8) as tx, \
                Chan(self.name) as rx, Chan(self.name) as other:
            with self.assertRaises(shmchan.Empty):
                rx.recv(timeout=0)  # joins
            with self.assertRaises(shmchan.Empty):
                other.recv(timeout=0)
            for i in range(10):
                tx.send(bytes([i]), timeout=0)  # DropOldest never waits
            with self.assertRaises(shmchan.Lagged) as cm:
                rx.recv()
            self.assertEqual(cm.exception.missed, 6)
            self.assertEqual([rx.recv(timeout=0) for _ in range(4)], [bytes([i]) for i in range(6, 10)])
            with self.assertRaises(shmchan.Empty):
                rx.recv(timeout=0)
            self.assertEqual(rx.missed, 6)
            # Iteration passes lags over and counts them.
            tx.close_send()
            self.assertEqual(list(other), [bytes([i]) for i in range(6, 10)])
            self.assertEqual(other.missed, 6)

    def test_broadcast_wait_for_slowest(self):
        """WaitForSlowest: two subscribers each get every value; the sender
        waits for the slower one."""
        with Chan.create(self.name, broadcast=shmchan.WAIT_FOR_SLOWEST, capacity=2, max_msg=4) as tx, \
                Chan(self.name) as a, Chan(self.name) as b:
            for rx in (a, b):
                with self.assertRaises(shmchan.Empty):
                    rx.recv(timeout=0)
            tx.send(b"1")
            tx.send(b"2")
            with self.assertRaises(shmchan.Full):
                tx.send(b"3", timeout=0)
            self.assertEqual(a.recv(), b"1")
            with self.assertRaises(shmchan.Full):
                tx.send(b"3", timeout=0)  # b still gates
            self.assertEqual(b.recv(), b"1")
            tx.send(b"3", timeout=0)
            self.assertEqual([a.recv(), a.recv(), b.recv(), b.recv()], [b"2", b"3", b"2", b"3"])

    def test_create_errors(self):
        with self.assertRaises(shmchan.Invalid):
            Chan.create(self.name, work_queue=True, broadcast=shmchan.DROP_OLDEST)
        with self.assertRaises(shmchan.Invalid):
            Chan.create(self.name, broadcast=7)
        with self.assertRaises(shmchan.Invalid):
            Chan.create(self.name, consumers=3)  # one receiver: no consumer entries


if __name__ == "__main__":
    unittest.main()
