"""End-to-end browser check: after a demo run, headless Chromium opens the Dagster asset graph and
MLflow's registered-models page; the pages must show the assets and models the run produced.

The demo: a small simulated ToF-SIMS campaign, `progral ingest`, and `progral train` of the
lithium-compound classifier with its upstream features and its promotion (in-process, faster
than waiting for the daemon). Then ``dagster-webserver`` and ``mlflow ui`` start on free ports on
127.0.0.1, each in its own process group, and Chromium (OS package, headless) loads both pages.
Both UIs are JavaScript apps: the test waits until the rendered text shows what it should (up to
90 s), driving Chromium over its DevTools pipe (see ``Browser``).

Expected names come from elsewhere, not from the pages: asset keys and groups from the code
location's Definitions, registered models and aliases from the MLflow API. The asset graph
shortens long node labels in the middle (``li_com…_classifier``), so there a label counts when
it is the name or a prefix…suffix shortening of it; the catalog page must show every full name.

Screenshots go to docs/screenshots/ when missing or when ``PROGRAL_UPDATE_SCREENSHOTS=1``
(reduced to a 128-colour palette to keep them small).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from progral_dagster.cli import main
from progral_dagster.cli.serve import mlflow_ui_command, service_env, start_group, stop_group

from .helpers import make_settings
from .pg_fixtures import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
TRAINED = ["li_compound_classifier", "li_compound_classifier_champion"]
CLASSIFIER = "tof-sims-li-compound-classifier"


def chromium_binary() -> str | None:
    return shutil.which("chromium") or (
        str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None
    )


@pytest.fixture(scope="module")
def chromium():
    exe = chromium_binary()
    if exe is None:
        pytest.skip(
            "chromium is not installed (`make install-system` installs the OS package; needs root and apt)"
        )
    return exe


@pytest.fixture(scope="module")
def demo(tmp_path_factory, mlflow_template_db, chromium):
    from progral_dagster.cli.simulate import simulate_campaign

    root = tmp_path_factory.mktemp("browser")
    saved = dict(os.environ)
    try:
        s = make_settings(root)
        (s.home / "mlflow").mkdir(parents=True, exist_ok=True)
        shutil.copy(mlflow_template_db, s.home / "mlflow" / "mlflow.db")
        simulate_campaign(
            s.share, root / "truth", seed=5, size="small", kinds=("spectra",), verbose=False
        )
        assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
        assert main(["train", *TRAINED, "--with-upstream", "--home", str(s.home)]) == 0
        yield s
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"{url}: server exited; log:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(
        f"{url} did not answer in {timeout} s; log:\n{log.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture(scope="module")
def servers(demo):
    s = demo
    env = service_env(s)
    dport, mport = free_port(), free_port()
    logs = s.home / "logs"
    dagster = start_group(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(dport),
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        env,
        logs / "webserver.log",
    )
    mlflow = start_group(mlflow_ui_command(s, "127.0.0.1", mport), env, logs / "mlflow.log")
    try:
        _wait(f"http://127.0.0.1:{dport}/server_info", dagster, logs / "webserver.log")
        _wait(f"http://127.0.0.1:{mport}/health", mlflow, logs / "mlflow.log")
        yield {"dagster": dport, "mlflow": mport}
    finally:
        for p in (dagster, mlflow):
            stop_group(p, grace_s=10)
        for p in (dagster, mlflow):
            with pytest.raises(ProcessLookupError):
                os.killpg(p.pid, 0)  # the whole group is gone (code server children included)


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    JSON messages separated by NUL bytes on file descriptors 3 and 4; no extra package).

    Needed beyond ``--dump-dom``/``--screenshot`` for two things: waiting until a page shows what
    it should (instead of a fixed virtual-time budget), and setting MLflow's "dismissed" flags in
    the page's localStorage, so that its promotion dialog and assistant panel do not cover the
    screenshot."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--remote-debugging-pipe",
    )

    def __init__(self, exe: str, profile: Path, width: int = 1600, height: int = 1000):
        import fcntl

        r_cmd, w_cmd = os.pipe()
        r_evt, w_evt = os.pipe()

        def child_fds():  # runs in the child: its fds 3 (commands) and 4 (answers)
            a = fcntl.fcntl(r_cmd, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(w_evt, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [
            exe,
            *self.FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            cmd,
            pass_fds=(3, 4),
            preexec_fn=child_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(r_cmd)
        os.close(w_evt)
        self._w, self._r, self._buf, self._n, self._session = w_cmd, r_evt, b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable")
        self.viewport(width, height)

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        import select

        self._n += 1
        msg = {"id": self._n, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self._session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self._n:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"chromium did not answer {method} in {timeout} s")
            if select.select([self._r], [], [], left)[0]:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium exited")
                self._buf += chunk

    def viewport(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")

    def open(self, url: str, until, timeout: float = 90) -> str:
        """Load ``url`` and wait until ``until(visible text)`` holds; returns the DOM."""
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.js("document.body ? document.body.innerText : ''") or ""
            if until(" ".join(text.split())):
                return self.settled()
            time.sleep(0.5)
        raise AssertionError(
            f"{url}: the expected content did not appear in {timeout} s; page text: "
            f"{' '.join(text.split())[:1500]}"
        )

    def settled(self, quiet_s: float = 2.0, timeout: float = 30) -> str:
        """The DOM once it stopped changing for ``quiet_s`` (statuses arrive after the labels)."""
        dom, since, deadline = None, time.time(), time.time() + timeout
        while time.time() < deadline:
            now = self.js("document.documentElement.outerHTML")
            if now != dom:
                dom, since = now, time.time()
            elif time.time() - since >= quiet_s:
                break
            time.sleep(0.25)
        return dom

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(
            base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=10)
        stop_group(self.proc, grace_s=5)
        os.close(self._w)
        os.close(self._r)


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def visible_text(dom: str) -> str:
    t = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", t)).split())


def shown(name: str, text: str) -> bool:
    """``name`` is on the page whole, or as a label shortened in the middle (``abc…xyz``)."""
    if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
        return True
    for head, tail in re.findall(r"([\w-]+)…([\w-]+)", text):
        if name.startswith(head) and name.endswith(tail) and len(head) + len(tail) >= 6:
            return True
    return False


def keep_screenshot(shot: Path, name: str) -> None:
    """Copy into docs/screenshots/ (missing, or PROGRAL_UPDATE_SCREENSHOTS=1), as a small PNG."""
    target = SHOTS / name
    if target.exists() and os.environ.get("PROGRAL_UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image

    assert shot.exists() and shot.stat().st_size > 10_000, "chromium wrote no screenshot"
    SHOTS.mkdir(parents=True, exist_ok=True)
    img = Image.open(shot).convert("RGB")
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def _expected_assets() -> dict[str, str]:
    """asset key -> group, from the code location (what the graph must show for the demo)."""
    from progral_dagster.cli.train import trainable_keys
    from progral_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    import dagster as dg

    sel = dg.AssetSelection.assets(*TRAINED).upstream()
    keys = sel.resolve(graph)
    assert set(TRAINED) <= set(trainable_keys(defs))
    return {k.to_user_string(): graph.get(k).group_name for k in keys}


def test_dagster_asset_graph_shows_the_demo_assets(servers, browser, tmp_path):
    expected = _expected_assets()
    assert {"raw_files", "measurements", "tof_sims_peak_areas", *TRAINED} <= set(expected)
    groups = sorted(set(expected.values()))
    port = servers["dagster"]
    expanded = ",".join(f"global@global:{g}" for g in groups)  # the UI's ids of expanded groups
    url = f"http://127.0.0.1:{port}/asset-groups?expanded={urllib.parse.quote(expanded)}"

    def all_there(text: str) -> bool:
        return all(shown(a, text) for a in [*expected, *groups])

    try:
        dom = browser.open(url, until=all_there)
    except AssertionError as exc:
        pytest.fail(f"not all of {sorted(expected)} in the asset graph: {exc}")
    text = visible_text(dom)
    assert "Global asset lineage" in text and all_there(text)
    shot = tmp_path / "dagster-assets.png"
    browser.screenshot(shot)
    keep_screenshot(shot, "dagster-assets.png")

    # the catalog lists every asset by its full name (a tall viewport: the list renders only the
    # rows in view)
    browser.viewport(1600, 4000)

    def full_names(text: str) -> bool:
        return all(re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", text) for a in expected)

    catalog = visible_text(browser.open(f"http://127.0.0.1:{port}/assets", until=full_names))
    assert full_names(catalog)


def test_mlflow_registered_models_page_shows_the_champion(servers, demo, browser, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=demo.mlflow_tracking_uri)
    registered = {m.name: m for m in client.search_registered_models()}
    assert CLASSIFIER in registered
    champion = client.get_model_version_by_alias(CLASSIFIER, "champion").version
    base = f"http://127.0.0.1:{servers['mlflow']}"
    browser.open(f"{base}/#/models", until=lambda t: "Registered Models" in t)
    # MLflow's own "seen it" flags: no promotion dialog, no assistant panel over the list
    browser.js("""localStorage.setItem('_mlflow_model_registry_promo_modal_dismissed_v1', 'true');
                  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
                  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');""")
    browser.open("about:blank", until=lambda t: True)  # then a fresh document reads the flags
    alias = rf"@\s*champion\s*:\s*Version {champion}\b"

    def listed(text: str) -> bool:
        return all(shown(n, text) for n in registered) and re.search(alias, text) is not None

    text = visible_text(browser.open(f"{base}/#/models", until=listed))
    assert "Registered Models" in text and listed(text)
    assert "Flexible, governed deployments" not in text  # the dialog did not come back
    shot = tmp_path / "mlflow-models.png"
    browser.screenshot(shot)
    keep_screenshot(shot, "mlflow-models.png")
    # the REST API the page reads agrees
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/registered-models/search", timeout=10) as r:
        names = {m["name"] for m in json.loads(r.read())["registered_models"]}
    assert names == set(registered)
