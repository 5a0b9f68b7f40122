from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GraderSource(_message.Message):
    __slots__ = ("spec_json", "python_source", "name")
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    PYTHON_SOURCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    spec_json: str
    python_source: str
    name: str
    def __init__(self, spec_json: _Optional[str] = ..., python_source: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateGraderRequest(_message.Message):
    __slots__ = ("source", "grader_id", "strict")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    source: GraderSource
    grader_id: str
    strict: bool
    def __init__(self, source: _Optional[_Union[GraderSource, _Mapping]] = ..., grader_id: _Optional[str] = ..., strict: _Optional[bool] = ...) -> None: ...

class GraderVersion(_message.Message):
    __slots__ = ("version", "created_unix_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    version: str
    created_unix_ms: int
    def __init__(self, version: _Optional[str] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class Grader(_message.Message):
    __slots__ = ("id", "version", "name", "type", "spec_json", "versions", "created_unix_ms", "warnings")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    name: str
    type: str
    spec_json: str
    versions: _containers.RepeatedCompositeFieldContainer[GraderVersion]
    created_unix_ms: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., spec_json: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[GraderVersion, _Mapping]]] = ..., created_unix_ms: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class ValidateGraderRequest(_message.Message):
    __slots__ = ("source", "samples_json", "items_json", "strict")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_JSON_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    source: GraderSource
    samples_json: bytes
    items_json: bytes
    strict: bool
    def __init__(self, source: _Optional[_Union[GraderSource, _Mapping]] = ..., samples_json: _Optional[bytes] = ..., items_json: _Optional[bytes] = ..., strict: _Optional[bool] = ...) -> None: ...

class ValidateGraderResponse(_message.Message):
    __slots__ = ("valid", "errors", "type", "name", "version", "results_json", "warnings")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESULTS_JSON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedScalarFieldContainer[str]
    type: str
    name: str
    version: str
    results_json: bytes
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., results_json: _Optional[bytes] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetGraderRequest(_message.Message):
    __slots__ = ("grader_id", "version")
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    grader_id: str
    version: str
    def __init__(self, grader_id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListGradersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGradersResponse(_message.Message):
    __slots__ = ("graders",)
    GRADERS_FIELD_NUMBER: _ClassVar[int]
    graders: _containers.RepeatedCompositeFieldContainer[Grader]
    def __init__(self, graders: _Optional[_Iterable[_Union[Grader, _Mapping]]] = ...) -> None: ...

class DeleteGraderRequest(_message.Message):
    __slots__ = ("grader_id",)
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    grader_id: str
    def __init__(self, grader_id: _Optional[str] = ...) -> None: ...

class DeleteGraderResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class GraderRef(_message.Message):
    __slots__ = ("grader_id", "inline", "version")
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    grader_id: str
    inline: GraderSource
    version: str
    def __init__(self, grader_id: _Optional[str] = ..., inline: _Optional[_Union[GraderSource, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class RunGraderRequest(_message.Message):
    __slots__ = ("grader", "sample_json", "item_json")
    GRADER_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEM_JSON_FIELD_NUMBER: _ClassVar[int]
    grader: GraderRef
    sample_json: bytes
    item_json: bytes
    def __init__(self, grader: _Optional[_Union[GraderRef, _Mapping]] = ..., sample_json: _Optional[bytes] = ..., item_json: _Optional[bytes] = ...) -> None: ...

class RunGraderResponse(_message.Message):
    __slots__ = ("result_json", "reward", "grader_id", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: bytes
    reward: float
    grader_id: str
    version: str
    def __init__(self, result_json: _Optional[bytes] = ..., reward: _Optional[float] = ..., grader_id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GradeBatchRequest(_message.Message):
    __slots__ = ("grader", "samples_json", "items_json", "request_id", "rewards_only", "item_index", "compact")
    GRADER_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REWARDS_ONLY_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMPACT_FIELD_NUMBER: _ClassVar[int]
    grader: GraderRef
    samples_json: bytes
    items_json: bytes
    request_id: str
    rewards_only: bool
    item_index: _containers.RepeatedScalarFieldContainer[int]
    compact: bool
    def __init__(self, grader: _Optional[_Union[GraderRef, _Mapping]] = ..., samples_json: _Optional[bytes] = ..., items_json: _Optional[bytes] = ..., request_id: _Optional[str] = ..., rewards_only: _Optional[bool] = ..., item_index: _Optional[_Iterable[int]] = ..., compact: _Optional[bool] = ...) -> None: ...

class GradeBatchResponse(_message.Message):
    __slots__ = ("results_json", "rewards", "error_indices", "request_id", "grader_id", "version", "error_code", "error_message", "result_indices", "grader_name", "grader_type", "pass_threshold", "sample_seconds")
    RESULTS_JSON_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_INDICES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GRADER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_INDICES_FIELD_NUMBER: _ClassVar[int]
    GRADER_NAME_FIELD_NUMBER: _ClassVar[int]
    GRADER_TYPE_FIELD_NUMBER: _ClassVar[int]
    PASS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    results_json: bytes
    rewards: _containers.RepeatedScalarFieldContainer[float]
    error_indices: _containers.RepeatedScalarFieldContainer[int]
    request_id: str
    grader_id: str
    version: str
    error_code: int
    error_message: str
    result_indices: _containers.RepeatedScalarFieldContainer[int]
    grader_name: str
    grader_type: str
    pass_threshold: float
    sample_seconds: float
    def __init__(self, results_json: _Optional[bytes] = ..., rewards: _Optional[_Iterable[float]] = ..., error_indices: _Optional[_Iterable[int]] = ..., request_id: _Optional[str] = ..., grader_id: _Optional[str] = ..., version: _Optional[str] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., result_indices: _Optional[_Iterable[int]] = ..., grader_name: _Optional[str] = ..., grader_type: _Optional[str] = ..., pass_threshold: _Optional[float] = ..., sample_seconds: _Optional[float] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("server_version", "max_receive_message_bytes", "max_send_message_bytes", "sandbox", "grader_types", "tenant")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_RECEIVE_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SEND_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    GRADER_TYPES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    max_receive_message_bytes: int
    max_send_message_bytes: int
    sandbox: str
    grader_types: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    def __init__(self, server_version: _Optional[str] = ..., max_receive_message_bytes: _Optional[int] = ..., max_send_message_bytes: _Optional[int] = ..., sandbox: _Optional[str] = ..., grader_types: _Optional[_Iterable[str]] = ..., tenant: _Optional[str] = ...) -> None: ...
