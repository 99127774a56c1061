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


if __name__ == "__main__":
    unittest.main()
