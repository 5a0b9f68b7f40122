"""`/v1/files`: upload (purpose `fine-tune` or `evals`), list, retrieve, content, delete.

Contents are stored once per SHA-256 under DATA_DIR/http/files/ab/abcdef… (filestore.py); the
rows (who owns which file under which name) are in the database. A `fine-tune` file is checked
line by line on upload with the trainer's own dataset loader, and refused with every bad line named.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from ...trainer.data.loader import DatasetError, load_dataset
from .context import Ctx, HttpContext, Tenant, context
from .db import FileRow, list_object, new_id, now, page
from .errors import APIError, invalid, not_found

router = APIRouter()
PURPOSES = ("fine-tune", "evals")
CHUNK = 1 << 20


_LOCATION = re.compile(r"^.*?:(\d+): ")


def check_fine_tune_file(path: Path) -> int:
    """Number of lines of a valid RFT dataset; a 400 naming each bad line (`line N: ...`) otherwise."""
    try:
        return len(load_dataset(path))
    except DatasetError as exc:
        problems = [_LOCATION.sub(r"line \1: ", p.replace(str(path), "file", 1)) for p in exc.problems]
        shown = "; ".join(problems[:20])
        more = f"; ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise invalid(
            f"Invalid file format for fine-tuning: {len(problems)} bad line(s): {shown}{more}",
            param="file",
            code="invalid_file_format",
        ) from None


def check_evals_file(path: Path) -> int:
    """Number of lines of an evals JSONL file (one JSON object a line); a 400 naming each bad line."""
    problems: list[str] = []
    count = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(data, dict):
                problems.append(f"line {number}: expected a JSON object, got {type(data).__name__}")
            count += 1
    if problems or not count:
        problems = problems or ["the file holds no lines"]
        raise invalid(
            f"Invalid file format for evals: {'; '.join(problems[:20])}",
            param="file",
            code="invalid_file_format",
        )
    return count


def _owned(ctx: HttpContext, tenant: str, file_id: str) -> FileRow:
    with ctx.db.session() as session:
        row = session.scalar(
            select(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant, FileRow.deleted.is_(False))
        )
    if row is None:
        raise not_found("file", file_id, param="file_id")
    return row


def owned_file(ctx: HttpContext, tenant: str, file_id: str, param: str) -> FileRow:
    """The tenant's file `file_id` (404 naming `param` when there is none)."""
    try:
        return _owned(ctx, tenant, file_id)
    except APIError as exc:
        exc.param = param
        raise


def _check_length(request: Request) -> None:
    limit = context(request).settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + CHUNK:
        raise APIError(
            413, f"File too large: the limit is {limit} bytes (--max-upload-mb).", code="file_too_large"
        )


def _check_storage(ctx: HttpContext, tenant: str, size: int) -> None:
    """413 when the tenant's files would pass --max-storage-mb-per-tenant."""
    limit_mb = ctx.settings.max_storage_mb_per_tenant
    if limit_mb is None:
        return
    with ctx.db.session() as session:
        used = session.scalar(
            select(func.coalesce(func.sum(FileRow.bytes), 0)).where(
                FileRow.tenant == tenant, FileRow.deleted.is_(False)
            )
        )
    limit = int(limit_mb * 1024 * 1024)
    if used + size > limit:
        raise APIError(
            413,
            f"Storage limit reached: this tenant keeps {used} bytes of files and the limit is {limit} "
            "(--max-storage-mb-per-tenant); delete files it no longer needs.",
            code="storage_limit_exceeded",
        )


@router.post("/files", dependencies=[Depends(_check_length)])
def create_file(
    file: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form()],
    ctx: Ctx,
    tenant: Tenant,
) -> dict[str, Any]:
    if purpose not in PURPOSES:
        raise invalid(
            f"purpose {purpose!r} is not supported here; use one of: {', '.join(PURPOSES)}", param="purpose"
        )
    limit = ctx.settings.max_upload_bytes
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=ctx.files.root, prefix=".upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := file.file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise APIError(
                        413,
                        f"File too large: the limit is {limit} bytes (--max-upload-mb).",
                        code="file_too_large",
                    )
                digest.update(chunk)
                out.write(chunk)
        _check_storage(ctx, tenant, size)
        lines = check_fine_tune_file(tmp) if purpose == "fine-tune" else check_evals_file(tmp)
        sha = digest.hexdigest()
        ctx.files.put(tmp, sha)
    finally:
        tmp.unlink(missing_ok=True)
    row = FileRow(
        id=new_id("file-"), tenant=tenant, purpose=purpose,
        filename=Path(file.filename or "upload.jsonl").name,
        bytes=size, sha256=sha, lines=lines, created_at=now(), deleted=False,
    )  # fmt: skip
    with ctx.db.session() as session:
        session.add(row)
    return row.to_api()


@router.get("/files")
def list_files(
    ctx: Ctx,
    tenant: Tenant,
    purpose: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> dict[str, Any]:
    where = [FileRow.tenant == tenant, FileRow.deleted.is_(False)]
    if purpose:
        where.append(FileRow.purpose == purpose)
    with ctx.db.session() as session:
        rows, more = page(session, FileRow, where, after=after, limit=limit, newest_first=order == "desc")
        return list_object([r.to_api() for r in rows], more)


@router.get("/files/{file_id}")
def retrieve_file(file_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    return _owned(ctx, tenant, file_id).to_api()


@router.get("/files/{file_id}/content")
def file_content(file_id: str, ctx: Ctx, tenant: Tenant) -> FileResponse:
    row = _owned(ctx, tenant, file_id)
    path = ctx.files.path(row.sha256)
    if not path.is_file():
        raise APIError(500, f"the content of {file_id} is missing from the data dir", type="server_error")
    return FileResponse(path, media_type="application/octet-stream", filename=row.filename)


@router.delete("/files/{file_id}")
def delete_file(file_id: str, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    row = _owned(ctx, tenant, file_id)
    with ctx.db.session() as session:
        stored = session.get(FileRow, row.seq)
        assert stored is not None
        stored.deleted = True
        session.flush()
        still_used = session.scalar(
            select(FileRow.seq).where(FileRow.sha256 == row.sha256, FileRow.deleted.is_(False)).limit(1)
        )
    if still_used is None:
        ctx.files.remove(row.sha256)
    return {"id": file_id, "object": "file", "deleted": True}
