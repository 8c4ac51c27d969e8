"""An HTTP file server for the tests: HEAD, and GET with one ``Range: bytes=a-b``.

    python range_http.py FOLDER [--ignore-range] [--drop-after N]

Binds 127.0.0.1 on a port the system chooses and prints it on the first
line; every request line is printed after it (the tests count them).
``--ignore-range`` answers every GET with the whole file (200), as some
servers do; ``--drop-after N`` closes the connection after N bytes of any
body, as a failing link does.
"""

from __future__ import annotations

import argparse
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def handler(folder: Path, ignore_range: bool, drop_after: int | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            print(f"{self.command} {self.path} {self.headers.get('Range', '-')}", flush=True)

        def _file(self) -> Path | None:
            path = (folder / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
            if folder not in path.parents or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return path

        def do_HEAD(self):
            path = self._file()
            if path is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        def do_GET(self):
            path = self._file()
            if path is None:
                return
            size = path.stat().st_size
            start, end = 0, size - 1
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            partial = bool(match) and not ignore_range
            if partial:
                start = int(match[1])
                end = min(int(match[2]) if match[2] else size - 1, size - 1)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(206 if partial else 200)
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            with open(path, "rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            if drop_after is not None and len(body) > drop_after:
                self.wfile.write(body[:drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.close()
                return
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--drop-after", type=int)
    args = parser.parse_args()
    folder = Path(args.folder).resolve()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(folder, args.ignore_range, args.drop_after))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
