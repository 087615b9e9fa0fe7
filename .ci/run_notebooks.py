#!/usr/bin/env python3
"""Execute notebooks headless with the Rust (evcxr) kernel and fail on any error output.

evcxr reports compile errors as "error" outputs, but panics and the `Err` of a `?` only as
text on stderr, and it never stops the run. So notebooks are executed with errors allowed and
every output is inspected here: an "error" output or any non-blank stderr text fails the
notebook (the notebooks print their progress on stdout).

    run_notebooks.py [--inplace] [--out DIR] [--timeout S] [NOTEBOOK ...]

Without notebook arguments every notebooks/*.ipynb runs, in name order. Executed copies go
to --out (default target/notebooks); --inplace writes the outputs back into the notebooks
(used to refresh the committed outputs with a full-mode run).
"""
import argparse
import glob
import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A plot or table that evcxr showed as Debug text: its `evcxr_display()` call did not compile
# (typically the final expression moves a variable of the cell; clone it instead).
DEBUG_DISPLAY = re.compile(r"^(Svg|LineChart|Heatmap|BarChart|Table|GroundMatrix|Overlay|ConfusionMatrix|ImageGrid|Summary|Animation|DriveHistory)\s*[({]")


def problems(nb):
    """(cell index, source, message) for every error output."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        for out in outputs:
            if out.get("output_type") == "error":
                yield i, cell.source, f"{out.get('ename')}: {out.get('evalue')}"
            text = out.get("data", {}).get("text/plain", "")
            if out.get("output_type") == "execute_result" and DEBUG_DISPLAY.match(text if isinstance(text, str) else "".join(text)):
                yield i, cell.source, "a plot or table was shown as Debug text: its evcxr_display() did not compile"
        stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
        if stderr.strip():
            yield i, cell.source, stderr


def run(path, out_dir, inplace, timeout):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="rust",
        allow_errors=True,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    )
    start = time.time()
    client.execute()
    elapsed = time.time() - start
    target = path if inplace else os.path.join(out_dir, os.path.basename(path))
    nbformat.write(nb, target)
    return list(problems(nb)), elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--inplace", action="store_true", help="write outputs back into the notebooks")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "notebooks"))
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = ap.parse_args()
    paths = args.notebooks or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for p in paths:
        print(f"executing {os.path.relpath(p, ROOT)} (RWT_QUICK={os.environ.get('RWT_QUICK', '0')}) ...", flush=True)
        try:
            errs, secs = run(p, args.out, args.inplace, args.timeout)
        except Exception as e:  # the kernel died or a cell timed out
            errs, secs = [(-1, "", f"{type(e).__name__}: {e}")], float("nan")
        if errs:
            failed += 1
            print(f"  FAILED after {secs:.0f} s", flush=True)
            for i, src, msg in errs:
                print(f"  --- cell {i}:\n{src}\n  --- output:\n{msg}", flush=True)
        else:
            print(f"  ok in {secs:.0f} s", flush=True)
    passed = len(paths) - failed
    print(f"notebooks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
