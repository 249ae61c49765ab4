"""A small service for the supervisor's tests (stdlib only, run as a real process).

It serves `GET /` (who it is), `GET /health` (503 while the file `down-<instance id>` or `down-all`
exists in `APP_STATE`, else 200; each answer is appended to `checks-<instance id>`) and
`GET /hang` (never answers). Its environment says what else to do:
`APP_CRASH` (exit 3 at once), `APP_FIXED_PORT` (listen there, not on $PORT), `APP_IGNORE_TERM`
(ignore SIGTERM), `APP_CHILD` (start a `sleep` child first and print its pid).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

INSTANCE = os.environ.get("FOGBANK_INSTANCE_ID", "?")
STATE = Path(os.environ.get("APP_STATE", "."))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            down = (STATE / f"down-{INSTANCE}").exists() or (STATE / "down-all").exists()
            with open(STATE / f"checks-{INSTANCE}", "a") as f:
                f.write("fail\n" if down else "pass\n")
            self._answer(503 if down else 200, {"ok": not down})
        elif self.path == "/hang":
            time.sleep(3600)
        else:
            keys = ("FOGBANK_SERVICE", "AVAILABILITY_ZONE", "PORT", "APP_VERSION", "LANG")
            self._answer(200, {"instance": INSTANCE, **{k: os.environ.get(k) for k in keys}})

    def _answer(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if os.environ.get("APP_CRASH"):
        print("crashing on purpose", flush=True)
        sys.exit(3)
    if os.environ.get("APP_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("APP_CHILD"):
        child = subprocess.Popen(["sleep", "3600"])
        print(f"child {child.pid}", flush=True)
    port = int(os.environ.get("APP_FIXED_PORT") or os.environ["PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
