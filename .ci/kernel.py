#!/usr/bin/env python3
"""Starts the Rust kernel (evcxr_jupyter) in a build folder no other running kernel uses.

evcxr keeps its crate and its cargo target in EVCXR_TMPDIR. Two kernels in one folder rename
each other's libraries and read each other's code, so every kernel takes a numbered slot
under $RWT_EVCXR_SLOTS (target/evcxr/0, 1, ...): the lowest one that no running kernel
holds. A slot is held by an flock on its .lock file for as long as the kernel (or anything
it started) lives; the kernel being killed, even with SIGKILL, frees it. Slots stay after the
kernel ends, so the next kernel in that slot starts warm; .ci/setup builds slots 0 and 1
ahead. A slot made on the spot (a third notebook at once) gets the compiled dependencies
from evcxr's cache (`:cache` in init.evcxr) and compiles only rwt itself.

    kernel.py EVCXR_JUPYTER CONNECTION_FILE     (the kernel spec's argv)

RWT_KERNEL_SLOT=N asks for slot N only (waiting for it), as .ci/setup does to warm one.
"""
import fcntl
import os
import sys


def take(slot_dir, wait):
    os.makedirs(slot_dir, exist_ok=True)
    fd = os.open(os.path.join(slot_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def main():
    evcxr, connection_file = sys.argv[1], sys.argv[2]
    slots = os.environ["RWT_EVCXR_SLOTS"]
    wanted = os.environ.get("RWT_KERNEL_SLOT")
    if wanted is not None:
        slot, fd = int(wanted), take(os.path.join(slots, wanted), wait=True)
    else:
        slot = 0
        while (fd := take(os.path.join(slots, str(slot)), wait=False)) is None:
            slot += 1
    # The lock lives in this open file, which evcxr inherits across exec.
    os.set_inheritable(fd, True)
    os.environ["EVCXR_TMPDIR"] = os.path.join(slots, str(slot))
    print(f"[rwt kernel] build folder {os.environ['EVCXR_TMPDIR']}", file=sys.stderr, flush=True)
    os.execv(evcxr, [evcxr, "--control_file", connection_file])


if __name__ == "__main__":
    main()
