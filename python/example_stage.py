"""A Python stage between two Go processes: read []byte values from one
channel, transform them, send them on to another, and close it when the
first one closes.

    cc -std=c11 -O2 -fPIC -shared -o python/libshmchan.so c/shmchan.c
    python3 python/example_stage.py IN OUT
"""
import sys

from shmchan import Chan

with Chan(sys.argv[1]) as src, Chan(sys.argv[2]) as dst:
    for value in src:                 # until the Go sender calls CloseSend
        dst.send(value.upper())
    dst.close_send()                  # the Go receiver drains, then gets ErrClosed
