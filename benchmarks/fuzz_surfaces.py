"""Workers of ``fuzz_campaign.py``: byte mutations, and a hostile detector and hostile reference files.

Run by the campaign as ``python fuzz_surfaces.py SURFACE SEEDS_JSON START COUNT WORK``, one
process per batch; prints one JSON line: outcomes by kind and the first recipe of each.

- ``detector``: a data port on loopback sends mutated MPX streams (damaged prefixes and
  headers, implausible frame numbers, HDR messages of absurd lengths or counts, stale bytes
  before the first message, streams cut or stalled mid-frame) to ``record`` (both transfers)
  and ``stream``; each recording is read back.
- ``control``: a control port on loopback answers each request wrongly (any status, no echo,
  absurd lengths, a bad prefix, half a reply, a reply dripped past the deadline, none at all)
  to ``MerlinControl`` and ``start_acquisition``; every call must end by its deadline.
- ``references``: mutated reference files (targets elsewhere: a planted key, other files,
  other hosts, relative paths; offsets, lengths, shapes, dtypes and blank marks edited; JSON
  damaged) read eagerly and lazily; no returned pixel may come from anything but a frame.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

#: What a planted private key holds (``references``): never returned as pixels.
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
#: Seconds every live call of a case may take (its ``timeout``).
TIMEOUT = 0.3


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """One random damage of a ``.mib`` file or an MPX stream."""
    raw = bytearray(raw)
    kind = rng.randrange(7)
    if kind == 0:  # random bytes in a header region
        frame = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        at = (frame if frame >= 0 else 0) + rng.randrange(400)
        for _ in range(rng.randrange(1, 9)):
            if at < len(raw):
                raw[at] = rng.randrange(256)
            at += 1
    elif kind == 1:  # a whole header field replaced
        frame = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        frame = frame if frame >= 0 else 0
        head = bytes(raw[frame : frame + 384])
        fields = head.split(b",")
        i = rng.randrange(len(fields))
        fields[i] = rng.choice(
            [b"", b"-1", b"0", b"9" * rng.randrange(1, 400), b"1e400", b"nan", b"U07", b"R64", b"  2x2G",
             b"3000-01-01T00:00:00Z", b"12", b"24", b"\x1b[31m", b"abc"]
        )  # fmt: skip
        raw[frame : frame + len(head)] = b",".join(fields)[: len(head)].ljust(len(head), b"\x00")
    elif kind == 2:  # truncated
        del raw[rng.randrange(len(raw) + 1) :]
    elif kind == 3:  # bytes inserted or deleted mid-file
        at = rng.randrange(len(raw) + 1)
        if rng.random() < 0.5:
            raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        else:
            del raw[at : at + rng.randrange(1, 5)]
    elif kind == 4:  # MPX prefix length damaged
        at = raw.find(b"MPX,", rng.randrange(max(1, len(raw))))
        if at >= 0:
            raw[at + 4 : at + 14] = f"{rng.choice([0, 1, 2, 3, 4, 5, 10**9, rng.randrange(10**10)]):010d}".encode()
    elif kind == 5:  # a frame header copied from elsewhere
        a = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        b = raw.find(b"MQ1,", rng.randrange(max(1, len(raw))))
        if a >= 0 and b >= 0:
            raw[b : b + 64] = raw[a : a + 64][: len(raw[b : b + 64])]
    else:  # flipped bits anywhere
        for _ in range(rng.randrange(1, 17)):
            if raw:
                i = rng.randrange(len(raw))
                raw[i] ^= 1 << rng.randrange(8)
    return bytes(raw)


class Outcomes:
    """Outcomes by kind, and the first recipe of each unexpected one."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.first: dict[str, dict] = {}

    def add(self, kind: str, recipe: dict | None = None) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if recipe is not None and kind not in self.first:
            self.first[kind] = recipe

    def run(self, call, allowed: tuple, recipe: dict) -> object:
        """``call()``: its result counted as ``data``, an allowed exception by name, anything else a finding."""
        try:
            result = call()
        except allowed as err:
            self.add(type(err).__name__)
            return None
        except Exception as err:  # everything else is a finding
            where = traceback.format_exc().splitlines()[-3][:200]
            self.add(f"{type(err).__name__} ({recipe['call']})", {**recipe, "error": repr(err)[:300], "where": where})
            return None
        self.add("data")
        return result


@contextlib.contextmanager
def one_client(listener: socket.socket, script):
    """Serve the next connection to ``listener`` with ``script(client)`` in a thread."""

    def run():
        with contextlib.suppress(OSError):
            client, _ = listener.accept()
            with client:
                client.settimeout(5)
                script(client)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(15)
        if thread.is_alive():
            raise RuntimeError("the hostile server did not finish within 15 s")


# --- a hostile detector: the data port ---------------------------------------------------


def _stream(seed: Path, rng: random.Random) -> tuple[bytes, str]:
    """A mutated data-port stream of ``seed`` and what was done to it."""
    from rsciio_mib_plugin.format.mpx import mpx_message
    from rsciio_mib_plugin.reader.acquisition import open_acquisition

    prop = open_acquisition(seed)
    size = prop.geometry.frame_bytes
    body = seed.read_bytes()
    frames = [bytearray(body[i : i + size]) for i in range(0, len(body) - size + 1, size)]
    hdr = seed.with_suffix(".hdr").read_bytes() if seed.with_suffix(".hdr").exists() else None
    kind = rng.choice(["bytes", "frame number", "hdr", "stale", "mixed", "repeat"])
    if kind == "frame number":
        k = rng.randrange(len(frames))
        number = rng.choice([0, 1, k, 10**9 + 1, 10**12, 10**20, -1, "abc", "", " 7", "1e3", "٣"])
        head = bytes(frames[k][:64]).split(b",")
        head[1] = str(number).encode()
        new = b",".join(head)[:64].ljust(64, b"\x00")
        frames[k][:64] = new
    if kind == "mixed" and len(frames) > 1:  # a frame of another kind mid-stream
        frames[rng.randrange(1, len(frames))] = bytearray(rng.randbytes(size + rng.choice([-1, 0, 1, 384])))
    if kind == "repeat":
        frames = frames + frames  # the numbers go backwards
    messages = [mpx_message(bytes(f)) for f in frames]
    if hdr is not None and kind != "stale":
        text = hdr
        if kind == "hdr":
            lines = text.split(b"\r\n")
            i = rng.randrange(len(lines))
            lines[i] = lines[i].split(b"\t")[0] + b"\t" + rng.choice([b"0", b"-3", b"1e400", b"9" * 60, b"abc", b""])
            text = b"\r\n".join(lines)
        message = mpx_message(text)
        if kind == "hdr" and rng.random() < 0.3:
            message = b"MPX," + rng.choice([b"9999999999", b"0000000004", b"0000000000", b"00000x0001"]) + message[14:]
        messages.insert(0, message)
    payload = b"".join(messages)
    if kind == "stale":
        payload = rng.randbytes(rng.randrange(1, 5000)) + payload
    if kind == "bytes":
        payload = mutate(payload, rng)
    return payload, kind


def detector(seeds: list[Path], start: int, count: int, work: Path, out: Outcomes) -> None:
    from rsciio_mib_plugin import MIBFormatError, load_mib_data
    from rsciio_mib_plugin.live import record, stream

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    streams = [s for s in seeds if s.suffix == ".mib" and "capture" not in s.name]
    for n in range(start, start + count):
        rng = random.Random(n)
        seed = streams[n % len(streams)]
        payload, kind = _stream(seed, rng)
        stall = rng.random() < 0.15  # the stream stops, the connection stays open: the timeout ends it
        cut = rng.randrange(len(payload) + 1) if stall else len(payload)

        def script(client, payload=payload[:cut], stall=stall):
            with contextlib.suppress(OSError):
                client.sendall(payload)
                if stall:
                    client.settimeout(3 * TIMEOUT + 1)
                    client.recv(1)  # until the client gives up and closes

        call = rng.choice(["record copy", "record splice", "stream"])
        frames = rng.choice([None, None, 1, 3, 8, 10**6])
        target = work / f"rec{n % 4}.mib"
        recipe = {"seed": seed.name, "case": n, "kind": kind, "stall": stall, "call": call, "frames": frames}
        allowed = (MIBFormatError, TimeoutError, ConnectionError)

        def take(call=call, frames=frames, target=target):
            if call == "stream":
                return [len(b) for _, b in stream(data_port=port, timeout=TIMEOUT, frames=frames)]
            transfer = call.split()[1]
            return record(target, data_port=port, timeout=TIMEOUT, frames=frames, overwrite=True, transfer=transfer)

        with one_client(listener, script):
            began = time.monotonic()
            result = out.run(take, allowed, recipe)
            seconds = time.monotonic() - began
        if seconds > 10 * TIMEOUT + 5:  # far more than a stall of TIMEOUT: something waits unbounded
            out.add("slow", {**recipe, "seconds": round(seconds, 2)})
        if isinstance(result, dict) and result["frames"]:  # what was recorded reads back
            out.run(
                lambda t=target: load_mib_data(t, return_mmap=False), (MIBFormatError,), {**recipe, "call": "read back"}
            )
    listener.close()


# --- a hostile detector: the control port ------------------------------------------------


def _reply(request: bytes, rng: random.Random) -> tuple[list[tuple[bytes, float]], str]:
    """Pieces of a wrong reply to ``request`` (bytes, pause after) and what is wrong with it."""
    from rsciio_mib_plugin.format.mpx import mpx_message

    body = request[15:]
    kind = rng.choice(
        ["status", "no echo", "length", "prefix", "half", "drip", "silent", "close", "value", "extra", "empty"]
    )
    if kind == "status":
        return [(mpx_message(body + b"," + rng.choice([b"0", b"1", b"2", b"3", b"9", b"-1", b"x", b""])), 0)], kind
    if kind == "no echo":
        return [(mpx_message(rng.choice([b"GET,OTHER,0", b"0", b"", b",,,,", b"SET,,0", rng.randbytes(30)])), 0)], kind
    if kind == "length":
        text = rng.choice([b"9999999999", b"0000004097", b"0000000000", b"0000000001", b"-000000001"])
        return [(b"MPX," + text + b"," + body + b",0", 0)], kind
    if kind == "prefix":
        return [(rng.choice([b"XPM,", b"MPX;", b"HTTP"]) + mpx_message(body + b",0")[4:], 0)], kind
    reply = mpx_message(body + b",0")
    if kind == "half":
        return [(reply[: rng.randrange(len(reply))], 0)], kind
    if kind == "drip":  # one byte at a time, slower than the deadline allows
        return [(reply[i : i + 1], TIMEOUT / 4) for i in range(len(reply))], kind
    if kind == "silent":
        return [(b"", 3 * TIMEOUT + 1)], kind
    if kind == "close":
        return [], kind
    if kind == "value":
        value = rng.choice([b"\xff\xfe", b"1,2,3", b"\x00" * 10, b"9" * 4000, "é".encode()])
        return [(mpx_message(body + b"," + value + b",0"), 0)], kind
    if kind == "extra":
        return [(reply + mpx_message(b"CMD,STARTACQUISITION,0") * rng.randrange(1, 4), 0)], kind
    return [(mpx_message(b""), 0)], kind


def control(seeds: list[Path], start: int, count: int, work: Path, out: Outcomes) -> None:
    from rsciio_mib_plugin import MerlinCommandError, MIBFormatError
    from rsciio_mib_plugin.live import MerlinControl
    from rsciio_mib_plugin.live.control import start_acquisition

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    for n in range(start, start + count):
        rng = random.Random(n)
        kinds = []

        def script(client, rng=rng, kinds=kinds):
            for _ in range(50):  # start_acquisition may ask again while "busy"
                request = client.recv(4096)
                if not request:
                    return
                pieces, kind = _reply(request, rng)
                kinds.append(kind)
                if not pieces:
                    return
                for data, pause in pieces:
                    client.sendall(data)
                    if pause:
                        time.sleep(pause)

        call = rng.choice(["get", "set", "cmd", "start"])
        recipe = {"case": n, "call": call, "replies": kinds}
        allowed = (MerlinCommandError, MIBFormatError, TimeoutError, ConnectionError)

        frames = rng.choice([None, 4])

        def request(call=call, frames=frames):
            if call == "start":
                return start_acquisition("127.0.0.1", port, TIMEOUT, frames)
            with MerlinControl(port=port, timeout=TIMEOUT) as merlin:
                if call == "get":
                    return merlin.get("COUNTERDEPTH")
                if call == "set":
                    return merlin.set("NUMFRAMESTOACQUIRE", 4)
                return merlin.cmd("STARTACQUISITION")

        with one_client(listener, script):
            began = time.monotonic()
            out.run(request, allowed, recipe)
            seconds = time.monotonic() - began
        if seconds > TIMEOUT + 0.5:  # a timeout is a deadline (issue 23, item 3)
            out.add("late", {**recipe, "seconds": round(seconds, 2)})
    listener.close()


# --- hostile reference files ----------------------------------------------------------


def _edit_references(refs: dict, rng: random.Random, planted: dict[str, str]) -> tuple[object, str]:
    """A mutated copy of a reference set and what was changed."""
    refs = json.loads(json.dumps(refs))
    table = refs["refs"]
    chunks = [k for k in table if not k.rsplit("/", 1)[-1].startswith(".")]
    arrays = [k for k in table if k.endswith("/.zarray")]
    kind = rng.choice(
        ["none", "target", "offset", "length", "shape", "dtype", "spec", "entries", "blank", "attrs", "top", "text"]
    )
    if kind == "target" and chunks:
        key = rng.choice(chunks)
        table[key][0] = rng.choice(
            [planted["key"], planted["key.mib"], planted["other.mib"], "relative/scan.mib", "/etc/passwd",
             "/dev/zero", "http://127.0.0.1:9/scan.mib", "memory://scan.mib", "file:///etc/passwd",
             table[key][0] + "?sig=1", table[key][0].upper(), "", 7, None]
        )  # fmt: skip
    elif kind == "offset" and chunks:
        key = rng.choice(chunks)
        table[key][1] = rng.choice([0, -1, table[key][1] + 1, table[key][1] - 384, 10**15, 2**63, 1.5, "0", None])
    elif kind == "length" and chunks:
        key = rng.choice(chunks)
        table[key][2] = rng.choice([0, 1, table[key][2] * 2, table[key][2] - 1, 10**12, -5, True])
    elif kind in ("shape", "dtype", "spec") and arrays:
        key = rng.choice(arrays)
        spec = json.loads(table[key])
        if kind == "shape":
            i = rng.randrange(len(spec["shape"]))
            spec["shape"][i] = rng.choice([0, -1, 10**6, 60000, spec["shape"][i] * 2, 2.5, "8", None])
            if rng.random() < 0.3:
                spec["shape"] = spec["shape"][1:] or [1]
        elif kind == "dtype":
            spec["dtype"] = rng.choice(["<u2", ">u4", "|u1", "<f8", "|O", "S10", ">u2", "|b1"])
        else:
            field = rng.choice(["chunks", "compressor", "filters", "order", "fill_value"])
            spec[field] = rng.choice([None, [1], {"id": "zlib"}, [{"id": "delta", "dtype": "<u2"}], "F", 7])
        table[key] = json.dumps(spec) if rng.random() < 0.9 else spec
    elif kind == "entries":
        action = rng.choice(["drop", "inline", "outside", "short"])
        if action == "drop" and chunks:
            del table[rng.choice(chunks)]
        elif action == "inline" and chunks:
            table[rng.choice(chunks)] = rng.choice(["base64:" + "QUJD" * 10, "raw bytes", [table[chunks[0]][0]]])
        elif action == "outside" and chunks:
            head = chunks[0].rsplit("/", 1)[0]
            table[f"{head}/999999.0.0"] = table[chunks[0]]
        elif action == "short" and chunks:
            table[rng.choice(chunks)] = table[chunks[0]][:2]
    elif kind == "blank":
        for key in [k for k in table if k.endswith("/.zattrs")]:
            attrs = json.loads(table[key])
            signal = attrs.setdefault("metadata", {}).setdefault("Signal", {})
            signal["blank_positions"] = rng.choice([True, False, [True] * 3, "yes", None, [[1, 0], [0]]])
            table[key] = json.dumps(attrs)
        if chunks and rng.random() < 0.5:
            del table[rng.choice(chunks)]
    elif kind == "attrs":
        for key in [k for k in table if k.endswith("/.zattrs")]:
            attrs = json.loads(table[key])
            field = rng.choice(["axes", "metadata", "original_metadata", "rsciio_mib_plugin"])
            attrs[field] = rng.choice([None, [], {}, "x", 3, [{"size": 10**9}], {"format": "other"}])
            table[key] = json.dumps(attrs) if rng.random() < 0.9 else attrs
    elif kind == "top":
        return rng.choice(
            [[], {"version": 2, "refs": table}, {"refs": table}, {"version": 1, "refs": []}, "x", 1]
        ), kind
    return refs, kind


def references(seeds: list[Path], start: int, count: int, work: Path, out: Outcomes) -> None:
    from rsciio_mib_plugin import MIBFormatError, file_reader

    sets = [(p, json.loads(p.read_text())) for p in seeds if p.suffix == ".json"]
    planted = json.loads((seeds[0].parent / "planted.json").read_text())
    secret = np.frombuffer(SECRET * 8, np.uint8)
    for n in range(start, start + count):
        rng = random.Random(n)
        seed, refs = sets[n % len(sets)]
        edited, kind = _edit_references(refs, rng, planted)
        path = work / f"ref{n % 4}.json"
        text = json.dumps(edited)
        if kind == "text" or rng.random() < 0.05:
            text = mutate(text.encode(), rng).decode("utf-8", "replace")
        path.write_text(text)
        lazy = rng.random() < 0.5
        call = "file_reader lazy" if lazy else "file_reader"
        recipe = {"seed": seed.name, "case": n, "kind": kind, "call": call, "text": text[:300]}

        def read(lazy=lazy, path=path):
            signals = file_reader(path, lazy=lazy)
            return [np.asarray(s["data"].compute(scheduler="sync") if lazy else s["data"]) for s in signals]

        for data in out.run(read, (MIBFormatError,), recipe) or []:
            raw = np.ascontiguousarray(data).view(np.uint8).ravel()
            if raw.size >= 16 and _contains(raw, secret[:16]):
                out.add("SECRET RETURNED", recipe)


def _contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    return needle.tobytes() in haystack.tobytes()


SURFACES = {"detector": detector, "control": control, "references": references}


if __name__ == "__main__":
    surface, seeds_json, first, number, folder = sys.argv[1:6]
    warnings.simplefilter("ignore")
    outcomes = Outcomes()
    SURFACES[surface]([Path(p) for p in json.loads(seeds_json)], int(first), int(number), Path(folder), outcomes)
    print(json.dumps({"outcomes": outcomes.counts, "first": outcomes.first}))
