#!/usr/bin/env python3
"""JupyterLab as people use it, in headless Chromium (run by .ci/browser-test).

    browser_test.py [--out DIR] [--timeout S] [--no-run] [NOTEBOOK ...]   (default: 01 and 08)

--no-run stops after step 3: the committed outputs only (the kernels start but run nothing).

1. Starts JupyterLab with .ci/lab — what `make lab` runs — on a free port with a token and
   --no-browser; autosave is off (the committed notebooks must not change), every cell is
   kept in the page (no windowing) so every output can be inspected.
2. Checks that new notebooks default to the Rust kernel (/api/kernelspecs).
3. Opens each notebook in its own JupyterLab tab (untrusted, as on a fresh clone) and checks
   every committed figure: the image loaded, is not blank, and is no wider than its output
   area.
4. Run All in every tab at the same time (the Run menu), waits until every cell ran and every
   kernel is idle, then fails on any error or stderr output, a plot shown as Debug text, a
   cell that had a figure and now has none, or a figure that did not load, is blank or wider
   than its output area; and checks that the kernels used different build folders.
5. Fails if a notebook file changed on disk.

Screenshots of every tab (opened and after Run All) and of every figure go to --out
(default target/browser-test), with JupyterLab's log (the kernels' compiler output).
"""
import argparse
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
DEFAULT = ["01-ground-matrices-and-exact-loss.ipynb", "08-ablations.ipynb"]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The test's JupyterLab user settings (a fresh folder, not the user's).
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False, "fetchNews": "false"},
}
DEBUG_DISPLAY = re.compile(r"^(Svg|LineChart|Heatmap|BarChart|Table|GroundMatrix|Overlay|ConfusionMatrix|ImageGrid|Summary)\s*[({]")

# Every figure in the page: which cell, loaded or not, how big, how wide its output area is,
# and the share of non-white pixels ("ink") of the image drawn on a canvas.
FIGURES_JS = """() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const figures = [];
  for (const img of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')) {
    const r = img.getBoundingClientRect();
    const area = img.closest('.jp-OutputArea-output').getBoundingClientRect();
    let ink = null;
    if (img.complete && img.naturalWidth > 0) {
      try {
        const w = Math.min(img.naturalWidth, 600), h = Math.max(1, Math.round(img.naturalHeight * w / img.naturalWidth));
        const c = document.createElement('canvas'); c.width = w; c.height = h;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0, w, h);
        const d = g.getImageData(0, 0, w, h).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235)) n++;
        ink = n / (w * h);
      } catch (e) { ink = null; }
    }
    figures.push({cell: cells.indexOf(img.closest('.jp-Cell')), complete: img.complete, naturalWidth: img.naturalWidth,
                  width: r.width, height: r.height, areaWidth: area.width, ink});
  }
  const blank_svg = [...document.querySelectorAll('.jp-Notebook .jp-RenderedSVG')].filter(e => !e.querySelector('img, svg')).length;
  const untrusted = document.body.innerText.includes('Cannot display an untrusted');
  return {figures, blank_svg, untrusted};
}"""

# Per cell: the prompt ("[3]:", "[*]:", "[ ]:"), and the text of stderr/error and plain outputs.
CELLS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, i) => ({
  index: i,
  code: cell.classList.contains('jp-CodeCell'),
  prompt: (cell.querySelector('.jp-InputArea-prompt') || {}).innerText || '',
  stderr: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText),
  plain: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="text/plain"]')].map(e => e.innerText),
}))"""


def say(msg):
    print(f"[browser-test] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, token, path):
    req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def committed_figure_cells(path):
    """Indices of the cells whose committed outputs hold a figure."""
    nb = json.load(open(path))
    cells = set()
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = "".join(data.get("text/html", ""))
            if "image/svg+xml" in data or "image/png" in data or "<img" in html:
                cells.add(i)
    return cells


def figure_problems(name, report, when):
    problems = []
    if report["untrusted"]:
        problems.append(f"{name} ({when}): JupyterLab says it cannot display an untrusted output")
    if report["blank_svg"]:
        problems.append(f"{name} ({when}): {report['blank_svg']} SVG outputs rendered empty")
    for f in report["figures"]:
        where = f"{name} ({when}), cell {f['cell']}"
        if not f["complete"] or f["naturalWidth"] == 0:
            problems.append(f"{where}: a figure did not load")
        elif f["width"] < 20 or f["height"] < 20:
            problems.append(f"{where}: a figure is shown {f['width']:.0f}x{f['height']:.0f} px")
        elif f["ink"] is not None and f["ink"] < 0.005:
            problems.append(f"{where}: a figure is blank (ink {f['ink']:.4f})")
        if f["width"] > f["areaWidth"] + 1:
            problems.append(f"{where}: a figure is {f['width']:.0f} px wide in a {f['areaWidth']:.0f} px output area (cut)")
    return problems


def _show_first_figure(page):
    """Scrolls the first figure into view, so the tab's screenshot shows one."""
    first = page.locator(".jp-Notebook .jp-OutputArea-output:has(img)").first
    try:
        first.scroll_into_view_if_needed(timeout=5_000)
    except Exception:
        pass


def shoot_figures(page, out, stem):
    outputs = page.locator(".jp-Notebook .jp-OutputArea-output:has(img)")
    for k in range(outputs.count()):
        try:
            outputs.nth(k).screenshot(path=os.path.join(out, f"{stem}-figure-{k:02d}.png"), timeout=10_000)
        except Exception as e:  # a screenshot is for people; the checks above decide
            say(f"  screenshot of figure {k} of {stem} failed: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "browser-test"))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for Run All in every tab")
    ap.add_argument("--no-run", action="store_true", help="only open the notebooks and check their committed figures")
    args = ap.parse_args()
    names = [os.path.basename(n) for n in (args.notebooks or DEFAULT)]
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    before = {n: open(os.path.join(NOTEBOOKS, n), "rb").read() for n in names}

    scratch = tempfile.mkdtemp(prefix="rwt-browser-test-")
    settings = os.path.join(scratch, "settings")
    for rel, value in SETTINGS.items():
        os.makedirs(os.path.dirname(os.path.join(settings, rel)), exist_ok=True)
        json.dump(value, open(os.path.join(settings, rel), "w"))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=settings, JUPYTERLAB_WORKSPACES_DIR=os.path.join(scratch, "workspaces"))
    log_path = os.path.join(args.out, "jupyterlab.log")
    log = open(log_path, "w")
    say(f"starting JupyterLab (.ci/lab) on port {port}; log in {os.path.relpath(log_path, ROOT)}")
    server = subprocess.Popen(
        [os.path.join(ROOT, ".ci", "lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    problems = []
    try:
        deadline = time.time() + 600
        while True:
            try:
                api(base, token, "/api/status")
                break
            except Exception:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {log_path}")
                time.sleep(1)
        specs = api(base, token, "/api/kernelspecs")
        say(f"kernels: {sorted(specs['kernelspecs'])}, default {specs['default']!r}")
        if specs["default"] != "rust":
            problems.append(f"new notebooks default to {specs['default']!r}, not the Rust kernel")

        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                os.path.join(scratch, "chromium"), executable_path="/usr/bin/chromium", headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
            pages = {}
            for k, name in enumerate(names):
                page = context.pages[0] if k == 0 and context.pages else context.new_page()
                page.goto(f"{base}/lab/workspaces/test{k}/tree/{name}?reset&token={token}")
                page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
                pages[name] = page
            # Opening: every committed figure rendered.
            for name, page in pages.items():
                stem = name.split("-")[0]
                want = committed_figure_cells(os.path.join(NOTEBOOKS, name))
                deadline = time.time() + 60
                while True:
                    report = page.evaluate(FIGURES_JS)
                    have = {f["cell"] for f in report["figures"] if f["naturalWidth"] > 0}
                    if want <= have or time.time() > deadline:
                        break
                    time.sleep(1)
                _show_first_figure(page)
                page.screenshot(path=os.path.join(args.out, f"{stem}-opened.png"))
                shoot_figures(page, args.out, f"{stem}-opened")
                for cell in sorted(want - have):
                    problems.append(f"{name} (opened): the committed figure of cell {cell} is blank")
                problems += figure_problems(name, report, "opened")
                say(f"{name} opened: {len(report['figures'])} figures, committed in {len(want)} cells")
            # Run All everywhere at once.
            start = time.time()

            def run_all(name, page):
                page.bring_to_front()
                page.locator(".jp-Notebook .jp-Cell").first.click()
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
                say(f"{name}: Run All at {time.time() - start:.1f} s")

            for name, page in ({} if args.no_run else pages).items():
                run_all(name, page)
            first_done, done, retried = {}, {}, set()
            while len(done) < len(pages) and not args.no_run:
                if time.time() - start > args.timeout:
                    raise RuntimeError(f"Run All did not finish in {args.timeout} s")
                time.sleep(2)
                for name, page in pages.items():
                    if name in done:
                        continue
                    cells = [c for c in page.evaluate(CELLS_JS) if c["code"]]
                    ran = [re.fullmatch(r"\[\d+\]:", c["prompt"].strip()) is not None for c in cells]
                    # A Run All clicked while the tab's kernel was still connecting can be lost:
                    # no cell queued ([*]) or run after 90 s. Click it once more (logged).
                    queued = any(c["prompt"].strip() == "[*]:" for c in cells)
                    if not queued and not any(ran) and name not in retried and time.time() - start > 90:
                        retried.add(name)
                        say(f"{name}: no cell queued after 90 s; Run All again")
                        run_all(name, page)
                    if ran and ran[0] and name not in first_done:
                        first_done[name] = time.time() - start
                        say(f"{name}: first cell (:dep rwt) done after {first_done[name]:.0f} s")
                    if all(ran):
                        done[name] = time.time() - start
                        say(f"{name}: every cell ran after {done[name]:.0f} s")
            while any(k["execution_state"] != "idle" for k in api(base, token, "/api/kernels")):
                if time.time() - start > args.timeout:
                    raise RuntimeError("the kernels did not become idle")
                time.sleep(1)
            time.sleep(2)  # the last outputs' images decode
            for name, page in ({} if args.no_run else pages).items():
                stem = name.split("-")[0]
                page.bring_to_front()
                for c in page.evaluate(CELLS_JS):
                    for text in c["stderr"]:
                        if text.strip():
                            problems.append(f"{name}, cell {c['index']}: error output:\n{text.strip()[:2000]}")
                    for text in c["plain"]:
                        if DEBUG_DISPLAY.match(text.strip()):
                            problems.append(f"{name}, cell {c['index']}: a plot was shown as Debug text")
                report = page.evaluate(FIGURES_JS)
                have = {f["cell"] for f in report["figures"] if f["naturalWidth"] > 0}
                for cell in sorted(committed_figure_cells(os.path.join(NOTEBOOKS, name)) - have):
                    problems.append(f"{name} (after Run All): cell {cell} shows no figure")
                problems += figure_problems(name, report, "after Run All")
                _show_first_figure(page)
                page.screenshot(path=os.path.join(args.out, f"{stem}-ran.png"))
                shoot_figures(page, args.out, f"{stem}-ran")
                say(f"{name} after Run All: {len(report['figures'])} figures")
            context.close()
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)

    folders = sorted(set(re.findall(r"\[rwt kernel\] build folder (\S+)", open(log_path).read())))
    say(f"kernels' build folders: {', '.join(os.path.relpath(f, ROOT) for f in folders)}")
    if len(names) > 1 and len(folders) < len(names) and not args.no_run:
        problems.append(f"{len(names)} kernels shared {len(folders)} build folder(s)")
    for n in names:
        if open(os.path.join(NOTEBOOKS, n), "rb").read() != before[n]:
            problems.append(f"{n} changed on disk during the test")
    say(f"screenshots in {os.path.relpath(args.out, ROOT)}/")
    if problems:
        say(f"FAILED: {len(problems)} problem(s)")
        for p in problems:
            print(f"  - {p}", flush=True)
        return 1
    ran = "" if args.no_run else ", ran side by side without an error"
    say(f"ok: {', '.join(names)} opened with every figure{ran}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
