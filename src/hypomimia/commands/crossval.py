"""`hypomimia crossval`: pool the test folds of several training runs."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia import jsonio


def crossval(
    runs: Annotated[list[Path], typer.Argument(help="train output folders, one per test fold")],
    out: Annotated[Path | None, typer.Option(help="write the report here (JSON)")] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the 95% CIs")] = 1000,
) -> None:
    """Evaluate every held-out subject once: pooled subject-level metrics with 95% bootstrap CIs."""
    from hypomimia.learning.crossval import pool_folds

    report = pool_folds(runs, n_bootstrap=bootstrap)
    console = Console()
    for f in report["folds"]:
        lo, hi = f["subject_auroc_ci95"]
        console.print(
            f"fold {f['test_fold']}: subject AUROC {f['subject_auroc']:.3f} (95% CI {lo:.2f}-{hi:.2f}), "
            f"balanced accuracy {f['subject_balanced_accuracy']:.3f}, {f['subjects']} subjects"
        )
    s = report["pooled"]["overall"]["subject"]
    lo, hi = s["auroc_ci95"]
    blo, bhi = s["balanced_accuracy_ci95"]
    console.print(
        f"pooled: subject AUROC [bold]{s['auroc']:.3f}[/bold] (95% CI {lo:.2f}-{hi:.2f}), balanced accuracy "
        f"{s['balanced_accuracy']:.3f} (95% CI {blo:.2f}-{bhi:.2f}), {s['n']} subjects"
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(jsonio.dumps(report))
        console.print(f"report: {out}")


def register(app: typer.Typer) -> None:
    app.command("crossval")(crossval)
