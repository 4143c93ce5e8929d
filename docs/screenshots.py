"""Take the README's screenshots of a running `aistack airflow`, with headless Chromium.

Run by hand (Debian: `apt-get install chromium`), while `aistack airflow` runs:

    .venv/bin/python docs/screenshots.py --url http://127.0.0.1:8080 --password <the printed one>

It logs in the way the UI does (a JWT from /auth/token in Airflow's `_token` cookie), opens each
page in Chromium through the DevTools protocol, waits for the UI to render, and writes PNGs to
docs/images/. Why the DevTools protocol rather than `chromium --screenshot URL`: the UI needs the
login cookie, and only the protocol can set one.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aistack.pipelines.airflow_rest import get_token  # noqa: E402

PIPELINE = "aistack__default__document-analysis"  # its latest run is shown: trigger one first


def pages(base: str, token: str) -> dict[str, str]:
    runs = httpx.get(
        f"{base}/api/v2/dags/{PIPELINE}/dagRuns", params={"order_by": "-run_after", "limit": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["dag_runs"]
    if not runs:
        raise SystemExit(f"no run of {PIPELINE} yet: trigger one in the UI first")
    return {
        "airflow-dags.png": "dags?tags=aistack",
        "airflow-pipeline-run.png": f"dags/{PIPELINE}/runs/{quote(runs[0]['dag_run_id'], safe='')}",
        "airflow-taskorchestrations.png": "plugin/taskorchestrations",
    }


class DevTools:
    """One page target of a Chromium started with --remote-debugging-port."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})


def start_chromium(profile: Path, width: int, height: int) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    process = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("chromium did not open its DevTools port")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    return process, next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds to let the UI render each page")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    token = get_token(base, args.user, args.password)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aistack-chromium-") as profile:
        process, websocket_url = start_chromium(Path(profile), 1440, 900)
        try:
            with connect(websocket_url, max_size=None) as socket:
                tools = DevTools(socket)
                tools.call("Network.enable")
                tools.call("Network.setCookie", name="_token", value=token, url=base, httpOnly=True)
                for name, path in pages(base, token).items():
                    tools.call("Page.navigate", url=f"{base}/{path}")
                    time.sleep(args.settle)
                    shot = tools.call("Page.captureScreenshot", format="png")
                    (args.out / name).write_bytes(base64.b64decode(shot["data"]))
                    print(f"wrote {args.out / name}")
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
