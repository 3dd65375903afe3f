"""How the client commands show jobs and events to people (rich): a table of jobs, one job's
fields, a log line, and the live progress bar of `jobtrail watch`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from service.sdk.models import Event, Job

STATUS_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}
LEVEL_STYLE = {"debug": "dim", "warning": "yellow", "error": "red", "success": "green"}


def console() -> Console:
    """A console on stdout; as wide as the terminal, or wide enough for ids when piped."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = max(out.width, 160)
    return out


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _status(job: Job) -> str:
    style = STATUS_STYLE.get(job.status, "default")
    text = job.status + (" (cancel requested)" if job.cancel_requested else "")
    return f"[{style}]{text}[/]"


def percent(progress: Mapping[str, Any]) -> float | None:
    """A job's `progress` in percent: `percent`, else `completed` of `total`."""
    if progress.get("percent") is not None:
        return float(progress["percent"])
    total, completed = progress.get("total"), progress.get("completed")
    if total and completed is not None:
        return float(100.0 * completed / total)
    return None


def jobs_table(jobs: list[Job], caption: str | None = None) -> Table:
    """Jobs, one a row."""
    table = Table(caption=caption, caption_justify="left")
    table.add_column("id", no_wrap=True)
    for name in ("type", "status", "priority", "progress", "name", "created"):
        table.add_column(name)
    for job in jobs:
        done = percent(job.raw.get("progress") or {})
        table.add_row(
            job.id,
            escape(job.type),
            _status(job),
            job.priority,
            "" if done is None else f"{done:.0f}%",
            escape(job.name or ""),
            _time(job.created_at),
        )
    return table


def _json(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False))


def job_fields(job: Job) -> Table:
    """One job, a field a row."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    progress = {k: v for k, v in job.raw.get("progress", {}).items() if v is not None}
    rows: list[tuple[str, str | None]] = [
        ("id", job.id),
        ("type", escape(job.type)),
        ("name", escape(job.name) if job.name else None),
        ("status", _status(job)),
        ("priority", job.priority),
        ("owner", escape(job.owner)),
        ("category", escape(job.category) if job.category else None),
        ("parent", job.parent_id),
        ("replayed from", job.replayed_from),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("progress", _json(progress) if progress else None),
        ("children", _json(job.raw.get("children")) if job.children else None),
        ("payload", _json(job.payload)),
        ("metadata", _json(job.metadata) if job.metadata else None),
        ("result", _json(job.result) if job.result is not None else None),
        ("result type", job.result_type),
        ("error", _json(job.raw.get("error")) if job.error else None),
        ("version", f"{job.version} (last event {job.last_event_id})"),
        ("created", _time(job.created_at)),
        ("started", _time(job.started_at) or None),
        ("finished", _time(job.finished_at) or None),
    ]
    for name, value in rows:
        if value is not None:
            table.add_row(name, value)
    return table


def log_line(event: Event) -> Text:
    """A log event as one line: time, level, message."""
    level = event.level or "info"
    return Text.assemble(
        (_time(event.timestamp), "dim"),
        " ",
        (f"{level:<7}", LEVEL_STYLE.get(level, "")),
        " ",
        event.message or "",
    )


def progress_bar(out: Console) -> Progress:
    """The live bar of `watch`: stage, bar, percent, message."""
    return Progress(
        TextColumn("{task.fields[stage]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[message]}"),
        console=out,
    )


def outcome(job: Job) -> str:
    """The final line of `watch`: how the job ended."""
    line = _status(job)
    if job.status == "succeeded" and job.result is not None:
        line += f"  result: {_json(job.result)}"
    if job.status == "failed" and job.error is not None:
        line += f"  {escape(job.error.message)} ({escape(job.error.code)})"
    return line
