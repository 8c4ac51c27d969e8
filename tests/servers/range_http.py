"""An HTTP file server for the tests: HEAD, and GET with one ``Range: bytes=a-b``.

    python range_http.py FOLDER [--ignore-range] [--drop-after N] [--missing-status S]
                         [--shift N [--lie]] [--silent] [--endless NAME]

Binds 127.0.0.1 on a port the system chooses and prints it on the first
line; every request line is printed after it (the tests count them).
``--ignore-range`` answers every GET with the whole file (200), as some
servers do; ``--drop-after N`` closes the connection after N bytes of any
body, as a failing link does. Hostile ones: ``--missing-status 403`` answers
a missing file as S3 and CDNs do; ``--shift N`` answers every range that does
not start at byte 0 N bytes late (its Content-Range honest, or with ``--lie``
stating the range asked for); ``--silent`` accepts connections and never
answers; ``--endless NAME`` answers any request for NAME with a 2.5 GB body (206 to a Range request)
(stated by HEAD too) and prints how many bytes it sent before the client hung up.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

ENDLESS_BYTES = 2_500_000_000


def handler(folder: Path, args):
    ignore_range, drop_after = args.ignore_range, args.drop_after

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            print(f"{self.command} {self.path} {self.headers.get('Range', '-')}", flush=True)

        def _file(self) -> Path | None:
            path = (folder / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
            if folder not in path.parents or not path.is_file():
                self.send_response(args.missing_status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return path

        def _endless(self, body: bool) -> bool:
            if args.endless is None or unquote(urlsplit(self.path).path).lstrip("/") != args.endless:
                return False
            self.send_response(206 if "Range" in self.headers else 200)  # "partial", without a Content-Range
            self.send_header("Content-Length", str(ENDLESS_BYTES))
            self.end_headers()
            sent = 0
            try:
                while body and sent < ENDLESS_BYTES:
                    self.wfile.write(b"Key:\tvalue\n" * 8192)
                    sent += 12 * 8192
            except OSError:
                pass
            print(f"endless: sent {sent} bytes", flush=True)
            self.close_connection = True
            return True

        def do_HEAD(self):
            if self._endless(False):
                return
            path = self._file()
            if path is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        def do_GET(self):
            if self._endless(True):
                return
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
            stated = (start, end)
            if partial and args.shift and start > 0:
                start, end = min(start + args.shift, size - 1), min(end + args.shift, size - 1)
                stated = stated if args.lie else (start, end)
            self.send_response(206 if partial else 200)
            if partial:
                self.send_header("Content-Range", f"bytes {stated[0]}-{stated[1]}/{size}")
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
    parser.add_argument("--missing-status", type=int, default=404)
    parser.add_argument("--shift", type=int, default=0)
    parser.add_argument("--lie", action="store_true")
    parser.add_argument("--silent", action="store_true")
    parser.add_argument("--endless")
    args = parser.parse_args()
    folder = Path(args.folder).resolve()
    if args.silent:  # connections queue in the backlog and are never answered
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        print(listener.getsockname()[1], flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(folder, args))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
