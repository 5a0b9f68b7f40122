"""Regenerate the Python code for proto/rft/grader/v1/grader.proto into rftkit.grader_service.pb.

    python -m rftkit.grader_service.protogen          # rewrite the committed files
    python -m rftkit.grader_service.protogen --check  # exit 1 if they differ from a fresh build

protoc writes `from rft.grader.v1 import grader_pb2` into the gRPC stubs (an absolute import
from the proto path); we rewrite it to a relative import so the code lives inside rftkit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[1] / "proto"
PROTO_FILE = "rft/grader/v1/grader.proto"
PACKAGE_DIR = Path(__file__).resolve().parent / "pb"
GENERATED = ("grader_pb2.py", "grader_pb2.pyi", "grader_pb2_grpc.py")
_ABSOLUTE_IMPORT = "from rft.grader.v1 import grader_pb2 as"
_RELATIVE_IMPORT = "from . import grader_pb2 as"


def generate(out_dir: Path) -> list[Path]:
    """Run grpc_tools.protoc on the proto and write the three generated files flat into out_dir."""
    from grpc_tools import protoc

    include = Path(protoc.__file__).resolve().parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(PROTO_ROOT / PROTO_FILE),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_ROOT / PROTO_FILE}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in GENERATED:
            src = Path(tmp) / Path(PROTO_FILE).parent / name
            text = src.read_text()
            if name.endswith("_grpc.py"):
                if _ABSOLUTE_IMPORT not in text:
                    raise RuntimeError("protoc's import line changed; update protogen._ABSOLUTE_IMPORT")
                text = text.replace(_ABSOLUTE_IMPORT, _RELATIVE_IMPORT)
            (out_dir / name).write_text(text)
            written.append(out_dir / name)
    return written


def differences(committed: Path = PACKAGE_DIR) -> list[str]:
    """Names of generated files whose committed text differs from a fresh build."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in GENERATED
            if not (committed / name).exists()
            or (committed / name).read_text() != (Path(tmp) / name).read_text()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        stale = differences()
        if stale:
            print(f"stale generated code: {', '.join(stale)}; run python -m rftkit.grader_service.protogen")
            return 1
        print("generated code is up to date")
        return 0
    for path in generate(PACKAGE_DIR):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
