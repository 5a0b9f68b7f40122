"""agent.servers: a run's own tool servers start on a free loopback port and stop with the runner.

Tools reach them through `{name}` in server_url; python_file reads a tool's source from the
config's folder.
"""

from __future__ import annotations

import json
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from rftkit.trainer.agent.config import AgentConfig
from rftkit.trainer.agent.servers import ToolServerConfig, ToolServerError, ToolServers
from rftkit.trainer.config import load_config

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "agent"

SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            data = json.dumps({"echo": body["arguments"]}).encode()
            self.send_response(200); self.send_header("content-length", str(len(data))); self.end_headers()
            self.wfile.write(data)

    HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_a_server_starts_on_a_free_port_and_stops(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(SERVER)
    config = ToolServerConfig(name="echo", command=["{python}", "echo.py", "{port}"])
    with ToolServers([config], tmp_path) as servers:
        address = servers.addresses["echo"]
        assert address.startswith("127.0.0.1:")
        assert _post(f"http://{address}/x", {"arguments": {"a": 1}}) == {"echo": {"a": 1}}
        proc = servers._procs[0][1]
    assert proc.poll() is not None  # stopped


def test_a_server_that_exits_fails_with_its_output(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('no table'); raise SystemExit(3)"]
    config = ToolServerConfig(name="bad", command=command)
    with pytest.raises(ToolServerError, match=r"(?s)exited with status 3.*no table"):
        ToolServers([config], tmp_path)


def test_a_server_that_never_listens_times_out(tmp_path: Path) -> None:
    config = ToolServerConfig(
        name="slow", command=[sys.executable, "-c", "import time; time.sleep(30)"], startup_timeout_s=0.5
    )
    with pytest.raises(ToolServerError, match="did not listen"):
        ToolServers([config], tmp_path)


def test_tools_name_servers_and_unknown_names_are_refused() -> None:
    tool = {"name": "lookup", "parameters": {"type": "object"}, "server_url": "http://{lookup}/lookup"}
    server = {"name": "lookup", "command": ["x"]}
    config = AgentConfig(tools=[tool], servers=[server])
    (spec,) = config.tool_specs({"lookup": "127.0.0.1:9"})
    assert spec.server_url == "http://127.0.0.1:9/lookup"
    with pytest.raises(ValueError, match=r"names \['lookup'\], which are not in agent.servers"):
        AgentConfig(tools=[tool])


def test_python_file_is_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text("def double(x):\n    return 2 * x\n")
    tool = {"name": "double", "parameters": {"type": "object"}, "python_file": "tool.py"}
    config = AgentConfig(tools=[tool], base_dir=str(tmp_path))
    assert "return 2 * x" in (config.tool_specs()[0].python or "")
    with pytest.raises(ValueError, match="cannot be read"):
        AgentConfig(tools=[{**tool, "python_file": "missing.py"}], base_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["config.yaml", "python_tool.yaml"])
def test_the_examples_load_with_their_folder_as_base_dir(name: str) -> None:
    config = load_config(EXAMPLE / name)
    assert config.agent is not None and Path(config.agent.base_dir or "") == EXAMPLE
    assert [t.name for t in config.agent.tool_specs({"lookup": "127.0.0.1:1"})] == ["lookup"]
