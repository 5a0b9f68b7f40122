"""The committed generated code is what grpc_tools.protoc makes from proto/ today."""

from __future__ import annotations

from rftkit.grader_service import protogen
from rftkit.grader_service.pb import grader_pb2


def test_generated_code_matches_the_proto() -> None:
    assert protogen.differences() == []


def test_regeneration_detects_a_stale_file(tmp_path) -> None:
    protogen.generate(tmp_path)
    (tmp_path / "grader_pb2.py").write_text("# edited by hand\n")
    assert protogen.differences(tmp_path) == ["grader_pb2.py"]


def test_package_and_methods() -> None:
    service = grader_pb2.DESCRIPTOR.services_by_name["GraderService"]
    assert service.full_name == "rft.grader.v1.GraderService"
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    for unary in ("CreateGrader", "ValidateGrader", "GetGrader", "ListGraders", "DeleteGrader", "RunGrader"):
        assert methods[unary] == (False, False)
    assert methods["GradeBatch"] == (False, False)
    assert methods["GradeStream"] == (True, True)
