"""A hostile NDIF server on 127.0.0.1: what it sends must never run code or exhaust memory here.

The fake server speaks just enough of NDIF's protocol for nnsight's blocking remote backend: the
``/subscribe`` websocket (session id, then one status frame), ``POST /request`` and ``GET`` for a
result URL. Each test opens a trace the public way (``model.trace(..., **trace_kwargs(True))``, the
documented recipe) and checks that a malicious pickle does not run, that oversized or
zstd-bomb results are refused in one line, that download URLs obey the https rule, and that the
server's text reaches messages without control characters.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch

import lirefs
from lirefs import ndif as rm
from lirefs.errors import RemoteError


class _Payload:
    """Unpickling this runs code: it writes ``marker`` (what a hostile server would send)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_protocol=4)
    return buffer.getvalue()


def _ws_frame(payload: bytes, opcode: int) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


class _Server:
    """What the fake server answers: ``frame`` (text str or binary bytes) after the POST, and
    ``download`` (bytes served at ``/result``)."""

    def __init__(self) -> None:
        self.frame: str | bytes = ""
        self.download = b""
        self.posted = threading.Event()
        self.downloads = 0
        self.url = ""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    state = _Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/subscribe"):
                key = self.headers["Sec-WebSocket-Key"]
                accept = base64.b64encode(
                    hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
                ).decode()
                self.wfile.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
                )
                self.wfile.write(_ws_frame(json.dumps({"session_id": "s1"}).encode(), 1))
                self.wfile.flush()
                state.posted.wait(30)
                frame = state.frame
                if isinstance(frame, str):
                    self.wfile.write(_ws_frame(frame.encode(), 1))
                else:
                    self.wfile.write(_ws_frame(frame, 2))
                self.wfile.flush()
                self.close_connection = True
                return
            if self.path.startswith("/result"):
                state.downloads += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.download)))
                self.end_headers()
                self.wfile.write(state.download)
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            body = json.dumps({"id": "job1", "status": "RECEIVED"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            state.posted.set()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("NDIF_HOST", state.url)
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.delenv(rm.MAX_RESULT_BYTES_ENV, raising=False)
    monkeypatch.setattr(rm, "check_versions", lambda *a, **k: {})
    from nnsight import CONFIG

    monkeypatch.setattr(CONFIG.API, "COMPRESS", False)
    monkeypatch.setattr(CONFIG.API, "HOST", state.url)
    monkeypatch.setattr(CONFIG.APP, "REMOTE_LOGGING", False)
    from nnsight.modeling.mixins.remotable import Remotable

    # a tiny in-process model has no Hub id; the fake server never reads the key
    monkeypatch.setattr(Remotable, "to_model_key", lambda self: "tiny:{}")
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _completed(data: Any) -> str:
    return json.dumps({"id": "job1", "status": "COMPLETED", "data": data})


def _run_trace(model: Any) -> Any:
    """The documented recipe: a trace of one's own, opened with ``trace_kwargs(remote)``."""
    with model.trace("Q: 1+1?", **rm.trace_kwargs(True)):
        out = model.output.logits.save()
    return out


def test_a_hostile_binary_status_frame_does_not_run(
    server: _Server, make_tiny: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    server.frame = _torch_bytes({"id": "job1", "status": "COMPLETED", "data": _Payload(marker)})
    with pytest.raises(RemoteError, match="will not load") as err:
        _run_trace(make_tiny("gpt2"))
    assert not marker.exists()
    assert "\n" not in str(err.value)


def test_a_hostile_downloaded_result_does_not_run(
    server: _Server, make_tiny: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    server.download = _torch_bytes({"out": _Payload(marker)})
    server.frame = _completed(f"{server.url}/result")
    with pytest.raises(RemoteError, match="will not load"):
        _run_trace(make_tiny("gpt2"))
    assert server.downloads == 1 and not marker.exists()


def test_a_hostile_inline_result_does_not_run_in_a_generate(
    server: _Server, make_tiny: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    blob = _torch_bytes({"out": _Payload(marker)})
    server.frame = _torch_bytes({"id": "job1", "status": "COMPLETED", "data": blob})
    model = make_tiny("gpt2")
    with (
        pytest.raises(RemoteError, match="will not load"),
        model.generate("Q: 1+1?", max_new_tokens=2, **rm.trace_kwargs(True)),
    ):
        model.generator.output.save()
    assert not marker.exists()


def test_a_good_result_still_loads(server: _Server, make_tiny: Any) -> None:
    logits = torch.randn(1, 7, 5)
    server.download = _torch_bytes({"out": logits})
    server.frame = _completed(f"{server.url}/result")
    model = make_tiny("gpt2")
    with model.trace("Q: 1+1?", **rm.trace_kwargs(True)):
        out = model.output.logits.save()
    assert torch.equal(out, logits)


def test_a_zstd_bomb_is_refused_in_one_line(
    server: _Server, make_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zstandard as zstd
    from nnsight import CONFIG

    monkeypatch.setattr(CONFIG.API, "COMPRESS", True)
    monkeypatch.setenv(rm.MAX_RESULT_BYTES_ENV, str(1 << 20))
    bomb = zstd.ZstdCompressor(level=19).compress(b"\0" * (64 << 20))  # 64 MiB from a few KiB
    assert len(bomb) < 64 * 1024
    server.download = bomb
    server.frame = _completed(f"{server.url}/result")
    with pytest.raises(RemoteError, match=rm.MAX_RESULT_BYTES_ENV) as err:
        _run_trace(make_tiny("gpt2"))
    assert "\n" not in str(err.value) and "decompresses" in str(err.value)


def test_an_oversized_download_is_refused(
    server: _Server, make_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rm.MAX_RESULT_BYTES_ENV, "1000")
    server.download = b"x" * 5000
    server.frame = _completed(f"{server.url}/result")
    with pytest.raises(RemoteError, match="over 1,000 bytes"):
        _run_trace(make_tiny("gpt2"))


@pytest.mark.parametrize("bad", ["0", "-5", "lots"])
def test_a_bad_size_limit_is_one_line(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(rm.MAX_RESULT_BYTES_ENV, bad)
    with pytest.raises(RemoteError, match="not a positive number of bytes"):
        rm.max_result_bytes()


def test_a_plain_http_download_url_off_this_machine_is_refused(
    server: _Server, make_tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rm.ALLOW_HTTP_ENV, raising=False)
    server.frame = _completed("http://10.0.0.5:9/result")
    with pytest.raises(RemoteError, match="plain-http"):
        _run_trace(make_tiny("gpt2"))


def test_a_result_of_the_wrong_type_is_one_line(server: _Server, make_tiny: Any) -> None:
    server.download = _torch_bytes([1, 2, 3])
    server.frame = _completed(f"{server.url}/result")
    with pytest.raises(RemoteError, match="sent a list where the trace's saved values"):
        _run_trace(make_tiny("gpt2"))


def test_server_error_text_loses_its_control_characters(server: _Server, make_tiny: Any) -> None:
    server.frame = json.dumps(
        {"id": "job1", "status": "ERROR", "description": "boom\x1b[2J\x1b]0;owned\x07\rgone"}
    )
    with pytest.raises(RemoteError) as err:
        rm.run_remote(lambda: _run_trace(make_tiny("gpt2")), sleep=lambda s: None)
    text = str(err.value)
    assert "boom" in text and "\x1b" not in text and "\r" not in text and "\x07" not in text


def test_a_session_without_its_model_is_refused(server: _Server, make_tiny: Any) -> None:
    model = make_tiny("gpt2")
    with (
        pytest.raises(RemoteError, match="needs its model"),
        model.session(**rm.trace_kwargs(True)),
    ):
        pass


def test_a_hostile_session_result_does_not_run(
    server: _Server, make_tiny: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    server.download = _torch_bytes({"out": _Payload(marker)})
    server.frame = _completed(f"{server.url}/result")
    model = make_tiny("gpt2")
    with (
        pytest.raises(RemoteError, match="will not load"),
        model.session(**rm.trace_kwargs(True, model=model)),
        model.trace("Q: 1+1?"),
    ):
        model.output.logits.save()
    assert not marker.exists()


def test_clean_text_drops_control_characters() -> None:
    assert rm.clean_text("a\x1b[31mb\u202ec\x00d\ne") == "a[31mbcd e"
    assert lirefs.ndif.clean_text("x" * 500, 20).endswith("...")
