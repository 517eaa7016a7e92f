"""The framing fast path against websockets' own parser: same frames, whatever the input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from gateway.frames import FrameSplitter, text_frame_header

MAX_SIZE = 70_000


def _client() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://csms/ocpp/CP-1"), state=State.OPEN, max_size=None)


def _server() -> ServerProtocol:
    return ServerProtocol(state=State.OPEN, max_size=MAX_SIZE)


def _frames_of(events: list[Any]) -> list[tuple[Opcode, bool, bytes]]:
    return [(e.opcode, e.fin, bytes(e.data)) for e in events if isinstance(e, Frame)]


def _websockets_only(chunks: list[bytes]) -> tuple[list[tuple[Opcode, bool, bytes]], list[bytes]]:
    server = _server()
    seen: list[tuple[Opcode, bool, bytes]] = []
    for chunk in chunks:
        server.receive_data(chunk)
        seen += _frames_of(server.events_received())
    return seen, server.data_to_send()


def _with_fast_path(chunks: list[bytes]) -> tuple[list[tuple[Opcode, bool, bytes]], list[bytes]]:
    """What gateway/connection.py does: plain text frames unmasked here, the rest to websockets."""
    server = _server()
    splitter = FrameSplitter(MAX_SIZE)
    seen: list[tuple[Opcode, bool, bytes]] = []

    def on_text(payload: bytes) -> None:
        if server.state is State.OPEN:
            seen.append((Opcode.TEXT, True, payload))

    def on_frame(data: bytes) -> None:
        server.receive_data(data)
        seen.extend(_frames_of(server.events_received()))

    for chunk in chunks:
        splitter.feed(chunk, on_text, on_frame)
    return seen, server.data_to_send()


def _message(draw: st.DrawFn) -> bytes:
    client = _client()
    kind = draw(st.sampled_from(["text", "text", "text", "binary", "ping", "fragmented", "big"]))
    text = draw(st.text(max_size=300)).encode()
    if kind == "text":
        client.send_text(text)
    elif kind == "big":
        client.send_text(b"x" * draw(st.sampled_from([125, 126, 65_535, 65_536, 69_000])))
    elif kind == "binary":
        client.send_binary(text)
    elif kind == "ping":
        client.send_ping(text[:100])
    else:
        client.send_text(text[:10], fin=False)
        client.send_continuation(text[10:], fin=True)
    return b"".join(client.data_to_send())


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    data = b"".join(_message(draw) for _ in range(draw(st.integers(1, 8))))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(streams())
def test_fast_path_yields_exactly_what_websockets_yields(chunks: list[bytes]) -> None:
    assert _with_fast_path(chunks) == _websockets_only(chunks)


def _collect(splitter: FrameSplitter, data: bytes) -> tuple[list[bytes], list[bytes]]:
    texts: list[bytes] = []
    others: list[bytes] = []
    splitter.feed(data, texts.append, others.append)
    return texts, others


def test_whole_masked_text_frames_are_unmasked_and_partial_ones_wait() -> None:
    client = _client()
    client.send_text(b'[2,"1","Heartbeat",{}]')
    client.send_text(b'[2,"2","Heartbeat",{}]')
    data = b"".join(client.data_to_send())
    splitter = FrameSplitter(MAX_SIZE)
    assert _collect(splitter, data[:-3]) == ([b'[2,"1","Heartbeat",{}]'], [])
    assert _collect(splitter, data[-3:]) == ([b'[2,"2","Heartbeat",{}]'], [])


def test_other_frames_go_to_websockets_whole() -> None:
    client = _client()
    client.send_ping(b"are you there")
    client.send_binary(b"\x00\x01")
    data = b"".join(client.data_to_send())
    texts, others = _collect(FrameSplitter(MAX_SIZE), data)
    assert texts == []
    assert b"".join(others) == data
    assert len(others) == 2


def test_an_oversize_frame_goes_to_websockets_at_once_which_closes_1009() -> None:
    client = _client()
    client.send_text(b"y" * (MAX_SIZE + 1))
    header = b"".join(client.data_to_send())[:14]  # the header is enough
    texts, others = _collect(FrameSplitter(MAX_SIZE), header)
    assert texts == []
    assert others == [header]
    server = _server()
    server.receive_data(header)
    assert server.close_sent is not None
    assert server.close_sent.code == 1009


def test_an_unmasked_client_frame_goes_to_websockets_which_fails_it() -> None:
    frame = text_frame_header(5) + b"hello"  # what a server sends: no mask
    texts, others = _collect(FrameSplitter(MAX_SIZE), frame)
    assert (texts, others) == ([], [frame])
    server = _server()
    server.receive_data(frame)
    assert server.close_sent is not None
    assert server.close_sent.code == 1002


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_text_frame_header_is_read_by_websockets_as_a_final_text_frame(length: int) -> None:
    client = _client()
    payload = b"z" * length
    client.receive_data(text_frame_header(length) + payload)
    (frame,) = client.events_received()
    assert isinstance(frame, Frame)
    assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.TEXT, True, payload)
