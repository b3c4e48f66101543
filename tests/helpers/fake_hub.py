"""A local stand-in for the Hugging Face Hub's file endpoint (`/{repo}/resolve/main/{file}`), served over HTTP
from a dict, for the code that fetches small files (core.hub). Point HF_ENDPOINT at `FakeHub.url`."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FakeHub:
    """Files by `repo/filename`; a path not in `files` answers 404, one in `status` that status."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.requests: list[str] = []
        self.url = ""

    def add_dir(self, repo: str, folder: object) -> None:
        """Serve every file of a local directory as `repo`'s."""
        from pathlib import Path

        for path in Path(str(folder)).iterdir():
            if path.is_file():
                self.files[f"{repo}/{path.name}"] = path.read_bytes()


@contextmanager
def serve(hub: FakeHub) -> Iterator[FakeHub]:
    """Run `hub` on a free local port for the duration of the block."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            key = self.path.lstrip("/").replace("/resolve/main/", "/", 1)
            hub.requests.append(key)
            code = hub.status.get(key, 200 if key in hub.files else 404)
            body = hub.files.get(key, b"") if code == 200 else b"{}"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
