"""`hypomimia audit`: read and verify the append-only audit log (registrations, promotions, rollbacks,
deletion requests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hypomimia.errors import UserError


def audit_cmd(
    log: Annotated[
        Path | None, typer.Option(help="audit log [default: HYPOMIMIA_AUDIT_LOG or work/audit/audit.jsonl]")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="only this action (register, promote, rollback, ...)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="only records about this model name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the records as JSON lines")] = False,
    verify: Annotated[
        bool, typer.Option(help="check the hash chain; exit 1 when a record was edited or removed")
    ] = True,
) -> None:
    """List the audit log's records (who, when, what, why, evidence) and verify its hash chain."""
    from hypomimia.lineage import audit

    path = audit.audit_path(log)
    records = [
        r
        for r in audit.read(log)
        if (action is None or r["action"] == action)
        and (model is None or (r.get("what") or {}).get("model") == model)
    ]
    console = Console(soft_wrap=True)
    if as_json:
        for r in records:
            typer.echo(json.dumps(r, sort_keys=True))
    else:
        table = Table(title=f"audit log {path} ({len(records)} records)")
        for col in ("seq", "time", "actor", "action", "what", "why", "evidence"):
            table.add_column(col)
        for r in records:
            what = ", ".join(f"{k}={v}" for k, v in (r.get("what") or {}).items() if v is not None)
            table.add_row(
                str(r["seq"]), r["time"], r["actor"], r["action"], what, r["why"], r.get("evidence") or ""
            )
        console.print(table)
    if verify:
        check = audit.verify_chain(log)
        if not check.ok:
            raise UserError(
                f"audit log {path} is broken at record {check.first_broken}: a record was edited, removed or reordered",
                "restore the log from backup; records are append-only",
            )
        if not as_json:
            console.print(f"[green]chain intact[/green]: {check.records} records", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)
