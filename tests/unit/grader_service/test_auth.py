from __future__ import annotations

import hashlib

import pytest
from rftkit.grader_service.auth import (
    Authenticator,
    TokenFileError,
    Unauthenticated,
    is_loopback,
    load_tokens,
)

TOKEN_A = "a" * 20
TOKEN_B = "b-token-0123456789"


def tokens_file(tmp_path, text: str):
    path = tmp_path / "tokens"
    path.write_text(text)
    return path


def test_plain_and_hashed_tokens_map_to_tenants(tmp_path) -> None:
    hashed = hashlib.sha256(TOKEN_B.encode()).hexdigest()
    table = load_tokens(
        tokens_file(tmp_path, f"# comment\nteam-a {TOKEN_A}\n\nteam-b sha256:{hashed}  # trailing\n")
    )
    auth = Authenticator(table)
    assert auth.tenant([("authorization", f"Bearer {TOKEN_A}")]) == "team-a"
    assert auth.tenant([("authorization", f"bearer {TOKEN_B}")]) == "team-b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team-a\n", "expected 'TENANT TOKEN'"),
        ("team/a " + TOKEN_A, "tenant"),
        ("team-a short", "too short"),
        ("team-a sha256:zz", "64 hex digits"),
        (f"team-a {TOKEN_A}\nteam-b {TOKEN_A}\n", "already given"),
        ("# nothing\n", "holds no tokens"),
    ],
)
def test_bad_token_files_name_the_problem(tmp_path, text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message):
        load_tokens(tokens_file(tmp_path, text))


def test_missing_or_wrong_tokens_are_refused(tmp_path) -> None:
    auth = Authenticator(load_tokens(tokens_file(tmp_path, f"team-a {TOKEN_A}\n")))
    for metadata in ([], [("authorization", "Bearer nope-nope-nope-nope")], [("authorization", TOKEN_A)]):
        with pytest.raises(Unauthenticated):
            auth.tenant(metadata)


def test_anonymous_only_when_allowed() -> None:
    assert Authenticator(None, allow_anonymous=True).tenant([]) == "local"
    with pytest.raises(Unauthenticated):
        Authenticator(None).tenant([])


def test_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.com")
