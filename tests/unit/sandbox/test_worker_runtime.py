"""The in-sandbox runtime: framing, output capping, and the protocol over a real child process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from rftkit.sandbox.backends import RUNTIME_SOURCE
from rftkit.sandbox.channel import FrameBuffer, frame
from rftkit.sandbox.worker import encode_batch
from rftkit.sandbox.worker_runtime import CappedText, read_frame, write_frame


def test_frames_round_trip_through_a_pipe() -> None:
    r, w = os.pipe()
    write_frame(w, b'{"a": 1}')
    write_frame(w, b"")
    os.close(w)
    assert read_frame(r) == b'{"a": 1}'
    assert read_frame(r) == b""
    assert read_frame(r) is None
    os.close(r)


def test_frame_buffer_reassembles_split_frames() -> None:
    data = frame(b"hello") + frame(b"world!")
    buf = FrameBuffer()
    got = []
    for byte in data:
        buf.feed(bytes([byte]))
        while (f := buf.pop()) is not None:
            got.append(f)
    assert got == [b"hello", b"world!"]


def test_capped_text_keeps_the_head_and_counts_the_rest() -> None:
    cap = CappedText(10)
    cap.write("0123456")
    cap.write("789abcdef")
    text = cap.take()
    assert text.startswith("0123456789\n")
    assert "6 more characters dropped" in text
    assert cap.take() == ""


def _frames(source: str, pairs: list, timeout_s: float = 2.0, **init: object) -> tuple[dict, list]:
    """Run the real runtime on one batch; its ready message and its result frames."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", RUNTIME_SOURCE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    init = {"op": "init", "source": source, "sample_timeout_s": timeout_s, "output_max_bytes": 100, **init}
    payload = frame(json.dumps(init).encode()) + frame(encode_batch([(s, i) for s, i in pairs]))
    out, _ = proc.communicate(payload, timeout=30)
    buf = FrameBuffer()
    buf.feed(out)
    assert json.loads(buf.pop()) == {"loading": True}
    ready = json.loads(buf.pop())
    if ready.get("ok"):
        assert buf.pop() == b""  # the worker takes a batch with an empty frame, before it grades
    frames = []
    while (f := buf.pop()) is not None:
        frames.append(json.loads(f))
    return ready, frames


def _talk(source: str, pairs: list, timeout_s: float = 2.0, **init: object) -> tuple[dict, list[dict]]:
    ready, frames = _frames(source, pairs, timeout_s, **init)
    results: list[dict] = []
    for start, rows in frames:
        assert start == len(results)
        results += [dict(zip(FIELDS, _row(row), strict=True)) for row in rows]
    return ready, results


FIELDS = ("value", "error", "details", "stdout")


def _row(row: object) -> list:
    """A result row in its long form (the worker sends a bare number when that is all there is)."""
    if isinstance(row, int | float):
        return [row, None, None, ""]
    assert isinstance(row, list) and len(row) == 4, row
    return row


def test_runtime_grades_and_keeps_nan_and_inf_and_prints_out_of_band() -> None:
    source = (
        "import os, sys\n"
        "def grade(sample, item):\n"
        "    print('x' * 500)\n"
        "    os.write(1, b'raw bytes on fd 1')\n"
        "    sys.__stdout__.write('junk')\n"
        "    return {'nan': float('nan'), 'inf': float('inf')}[item['k']]\n"
    )
    ready, results = _talk(source, [[{}, {"k": "nan"}], [{}, {"k": "inf"}]])
    assert ready["ok"] is True
    assert math.isnan(results[0]["value"]) and results[1]["value"] == math.inf
    assert results[0]["stdout"].startswith("x" * 100) and "dropped" in results[0]["stdout"]


def test_runtime_reports_load_errors() -> None:
    ready, results = _talk("import not_a_module_anywhere\ndef grade(s, i):\n    return 1\n", [])
    assert ready["ok"] is False
    assert "ModuleNotFoundError" in ready["details"]
    assert results == []


def test_runtime_times_out_and_exits_after_a_timeout() -> None:
    source = (
        "def grade(sample, item):\n"
        "    try:\n        while True: pass\n"
        "    except Exception:\n        return 1\n"
    )
    ready, results = _talk(source, [[{}, {}], [{}, {}]], timeout_s=0.3)
    assert ready["ok"]
    assert [r["error"] for r in results] == ["timeout"]  # the worker exits after a timeout


def test_unencodable_values_arrive_as_text() -> None:
    _ready, results = _talk("def grade(sample, item):\n    return object()\n", [[{}, {}]])
    assert results[0]["value"].startswith("<object:")


def test_results_are_sent_in_few_frames_and_at_once_after_an_error() -> None:
    source = (
        "def grade(sample, item):\n    if item.get('raise'):\n        raise KeyError('x')\n    return 1\n"
    )
    pairs = [[{}, {}]] * 300 + [[{}, {"raise": True}]] + [[{}, {}]] * 300
    _ready, frames = _frames(source, pairs)
    sizes = [len(rows) for _, rows in frames]
    assert sum(sizes) == 601 and max(sizes) <= 256 and len(frames) < 20
    errors = [(start, k) for start, rows in frames for k, row in enumerate(rows) if _row(row)[1] is not None]
    assert errors == [(start, len(rows) - 1) for start, rows in frames if _row(rows[-1])[1] is not None]
    assert sum(isinstance(row, int) for _, rows in frames for row in rows) == 600  # the good ones: bare
    assert len(errors) == 1  # the error ends its frame


def test_returned_values_are_taken_when_grade_returns() -> None:
    source = "SEEN = []\ndef grade(sample, item):\n    SEEN.append(1)\n    return SEEN\n"
    _ready, results = _talk(source, [[{}, {}]] * 3)
    assert [r["value"] for r in results] == [[1], [1, 1], [1, 1, 1]]


def test_an_oversized_result_is_a_resource_error_and_the_worker_stops() -> None:
    source = "def grade(sample, item):\n    return item['v'] * item['n']\n"
    for size in (3000, 5000):  # found when the results are sent / when grade() returns
        pairs = [[{}, {"v": "x", "n": 1}], [{}, {"v": "x", "n": size}], [{}, {"v": "x", "n": 1}]]
        _ready, results = _talk(source, pairs, result_max_bytes=2500)
        assert [r["error"] for r in results] == [None, "resource"]
        assert "(a str) is over the 2500 byte limit" in results[1]["details"]
    # Several results over the limit together (each under it) still arrive, one per frame.
    _ready, results = _talk(source, [[{}, {"v": "x", "n": 1500}]] * 4, result_max_bytes=2500)
    assert [r["value"] for r in results] == ["x" * 1500] * 4


def test_values_json_cannot_carry_are_runtime_errors_for_that_sample_only() -> None:
    source = "def grade(sample, item):\n    return 10 ** 5000 if item.get('big') else 1\n"
    _ready, results = _talk(source, [[{}, {}], [{}, {"big": True}], [{}, {}]])
    assert [r["error"] for r in results] == [None, "runtime", None]
    assert "cannot be sent" in results[1]["details"]


def test_the_alarm_comes_back_after_a_grader_replaced_its_handler() -> None:
    source = (
        "import signal\n"
        "def grade(sample, item):\n"
        "    if item.get('ignore'):\n"
        "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "        return 1\n"
        "    while True: pass\n"
    )
    _ready, results = _talk(source, [[{}, {"ignore": True}], [{}, {}]], timeout_s=0.3)
    assert [r["error"] for r in results] == [None, "timeout"]


def test_a_shared_item_travels_once_and_each_sample_gets_its_own_copy() -> None:
    source = "def grade(sample, item):\n    item['seen'] = item.get('seen', 0) + 1\n    return item['seen']\n"
    shared = {"reference": "x" * 500}
    pairs = [("plain text", shared), ({"output_text": "y", "output_json": None}, shared), ("z", {"other": 1})]
    encoded = encode_batch(pairs)
    assert encoded.count(b"x" * 500) == 1
    assert json.loads(encoded)["index"] == [0, 0, 1]
    _ready, results = _talk("def grade(sample, item):\n    return [sample, sorted(item)]\n", pairs)
    plain = {"output_text": "plain text", "output_json": None, "output_tools": [], "choices": []}
    assert results[0]["value"] == [plain, ["reference"]]
    assert results[1]["value"][0]["output_text"] == "y" and results[2]["value"][1] == ["other"]
    _ready, results = _talk(source, pairs)
    assert [r["value"] for r in results] == [1, 1, 1]  # a grader that writes to its item changes no other's


def test_a_worker_has_worn_out_once_half_its_room_after_loading_is_used() -> None:
    from rftkit.sandbox.worker_runtime import _address_space, _cpu_seconds, _Room

    room = _Room(memory_cap=math.inf, cpu_cap=math.inf)
    assert room.memory_at_load > 0 and room.used_up() is None  # no limits: never worn out
    room = _Room(memory_cap=room.memory_at_load + (400 << 20), cpu_cap=math.inf)
    assert room.used_up() is None
    held = bytearray(250 << 20)  # more than half of the 400 MiB left
    assert _address_space() > room.memory_at_load + (200 << 20)
    assert "memory grew to" in (room.used_up() or "")
    del held
    room = _Room(memory_cap=math.inf, cpu_cap=_cpu_seconds() + 0.2)
    spin_until = _cpu_seconds() + 0.15
    while _cpu_seconds() < spin_until:
        pass
    assert "CPU time limit" in (room.used_up() or "")
