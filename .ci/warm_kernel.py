#!/usr/bin/env python3
"""Compiles the notebooks' Rust build ahead, in evcxr build folders (slots) of .ci/kernel.py.

    warm_kernel.py SLOT ...

For each slot: starts the Rust kernel in it (RWT_KERNEL_SLOT) from notebooks/ and runs what
every notebook's first cells run (`:dep rwt = { path = ".." }`, `use rwt::prelude::*`), so
cargo builds candle and rwt now, with its progress in this terminal, instead of while a
notebook shows `[*]`. A slot is skipped when a running kernel holds it, and when its stamp
says it was warmed for the current sources (src/, Cargo.toml, Cargo.lock, the toolchain). A
new slot other than 0 is first seeded with a copy of slot 0's build, which cargo finds up to
date (its fingerprints do not depend on the folder), so it costs a copy, not a compile.
"""
import fcntl
import glob
import hashlib
import os
import queue
import shutil
import subprocess
import sys
import time

from jupyter_client.manager import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOTS = os.environ["RWT_EVCXR_SLOTS"]
CODE = ':dep rwt = { path = ".." }\nuse rwt::prelude::*;\nprintln!("rwt ready");'


def say(msg):
    print(f"[setup] {msg}", flush=True)


def fingerprint():
    """What the warm build depends on: the crate's sources and manifests, the toolchain."""
    h = hashlib.sha256()
    files = [os.path.join(ROOT, f) for f in ("Cargo.toml", "Cargo.lock", "build.rs")]
    files += sorted(glob.glob(os.path.join(ROOT, "src", "**", "*"), recursive=True))
    for f in files:
        if os.path.isfile(f):
            st = os.stat(f)
            h.update(f"{os.path.relpath(f, ROOT)} {st.st_size} {st.st_mtime_ns}\n".encode())
    for tool in (["rustc", "-V"], ["evcxr_jupyter", "--version"]):
        try:
            h.update(subprocess.run(tool, capture_output=True, text=True).stdout.encode())
        except OSError:
            pass
    h.update(CODE.encode())
    return h.hexdigest()


def try_lock(slot):
    d = os.path.join(SLOTS, str(slot))
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


def seed(slot):
    """Copies slot 0's cargo target into a slot never warmed before (slot 0 locked meanwhile)."""
    src, dst = os.path.join(SLOTS, "0", "target"), os.path.join(SLOTS, str(slot), "target")
    if slot == 0 or os.path.exists(os.path.join(SLOTS, str(slot), ".warm")):
        return
    if not os.path.exists(os.path.join(SLOTS, "0", ".warm")):
        return
    fd0 = try_lock(0)
    if fd0 is None:
        return
    try:
        say(f"build folder {slot}: copying build folder 0")
        start = time.time()
        shutil.rmtree(dst + ".tmp", ignore_errors=True)
        subprocess.run(["cp", "-a", "--reflink=auto", src, dst + ".tmp"], check=True)
        shutil.rmtree(dst, ignore_errors=True)
        os.rename(dst + ".tmp", dst)
        say(f"  copied in {time.time() - start:.0f} s")
    finally:
        os.close(fd0)


def warm(slot, stamp_value):
    """Runs CODE in a kernel on `slot`; returns the seconds it took, or raises."""
    env = dict(os.environ, RWT_KERNEL_SLOT=str(slot))
    km = KernelManager(kernel_name="rust")
    km.start_kernel(cwd=os.path.join(ROOT, "notebooks"), env=env)
    kc = km.client()
    kc.start_channels()
    start = time.time()
    try:
        kc.wait_for_ready(timeout=120)
        msg_id = kc.execute(CODE)
        errors = []
        next_note = 60
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=10)
            except queue.Empty:
                if not km.is_alive():
                    raise RuntimeError("the kernel died")
                if time.time() - start >= next_note:
                    say(f"  still compiling ({time.time() - start:.0f} s)")
                    next_note += 60
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stderr" and content["text"].strip():
                errors.append(content["text"])
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if errors:
            raise RuntimeError("\n".join(errors))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    with open(os.path.join(SLOTS, str(slot), ".warm"), "w") as f:
        f.write(stamp_value)
    return time.time() - start


def main():
    stamp_value = fingerprint()
    for slot in map(int, sys.argv[1:]):
        stamp = os.path.join(SLOTS, str(slot), ".warm")
        fd = try_lock(slot)
        if fd is None:
            say(f"build folder {slot}: in use by a running kernel, left as it is")
            continue
        fresh = os.path.exists(stamp) and open(stamp).read() == stamp_value
        if not fresh:
            seed(slot)
        os.close(fd)  # the kernel below takes it
        if fresh:
            continue
        say(f"build folder {slot}: compiling the notebooks' dependencies (candle, rwt); "
            "the first time about 7 minutes on two cores, then under a minute")
        try:
            secs = warm(slot, stamp_value)
        except Exception as e:
            say(f"build folder {slot}: the build failed: {e}")
            return 1
        say(f"build folder {slot}: ready in {secs:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
