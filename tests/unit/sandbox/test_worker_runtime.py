"""The in-sandbox runtime: framing, output capping, and the protocol over a real child process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from rftkit.sandbox.backends import RUNTIME_SOURCE
from rftkit.sandbox.channel import FrameBuffer, frame
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


def _talk(source: str, pairs: list, timeout_s: float = 2.0) -> tuple[dict, list[dict]]:
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", RUNTIME_SOURCE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    init = {"op": "init", "source": source, "sample_timeout_s": timeout_s, "output_max_bytes": 100}
    payload = frame(json.dumps(init).encode()) + frame(json.dumps({"op": "grade", "pairs": pairs}).encode())
    out, _ = proc.communicate(payload, timeout=30)
    r, w = os.pipe()
    os.write(w, out)
    os.close(w)
    assert json.loads(read_frame(r)) == {"loading": True}
    ready = json.loads(read_frame(r))
    results = []
    while (f := read_frame(r)) is not None:
        results.append(json.loads(f))
    os.close(r)
    return ready, results


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
