"""``ssp profile VIEWS LOG --profiler pyinstrument|py-spy|circuit -o PATH``.

Three ways to see where replay time goes, the output format chosen by the
output file's extension (as pyinstrument's ``guess_renderer_from_outfile``):

- ``pyinstrument`` samples Python frames in this process: ``.html``, ``.txt``,
  ``.speedscope.json``;
- ``py-spy`` samples a child process running ``ssp replay`` (it reads the
  child's memory through ptrace, which containers often forbid): ``.svg``,
  ``.speedscope.json``, ``.folded``;
- ``circuit`` draws the engine's own per-operator timings, a flamegraph of the
  dataflow (view, then operator path) rather than of Python frames:
  ``.folded``, ``.speedscope.json``.

A sampler slows what it measures, so unless ``--no-baseline`` is given the
log is first replayed once without it and the summary says how much slower
the profiled replay's ingest time was. The circuit profiler adds nothing: its
timings are taken in every replay.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.text import Text

from circuit.errors import CircuitError, ReplayError, escape_control
from circuit.replay import ReplayOptions
from circuit.report import ReportFormatError, read_report, write_atomic
from circuit.report.folded import circuit_stacks, render_folded
from circuit.report.run import Run
from circuit.report.speedscope import render_speedscope

from . import console
from .options import OUTPUT_PANEL, LogArg, Markdown, Quiet, Report, ViewsArg, with_replay_options
from .replay import execute, finish, refuse_overwriting_inputs

Profiler = Literal["pyinstrument", "py-spy", "circuit"]

EXIT_USAGE = 2
CHILD_GRACE_S = 30.0
"""How long py-spy and its child get to write their files after Ctrl-C."""

FORMATS: dict[str, dict[str, str]] = {
    "pyinstrument": {".html": "html", ".txt": "text", ".speedscope.json": "speedscope"},
    "py-spy": {".svg": "flamegraph", ".speedscope.json": "speedscope", ".folded": "raw"},
    "circuit": {".folded": "folded", ".speedscope.json": "speedscope"},
}
"""Per profiler: output extension -> format (py-spy's own names for py-spy)."""

DEFAULT_RATE = {"pyinstrument": 1000, "py-spy": 100}
"""Samples per second when --rate is not given: each tool's own default."""

PTRACE_SIGNS = ("permission denied", "operation not permitted", "ptrace", "eperm")

EXAMPLES = """Examples:

ssp profile views.sql log.jsonl --profiler pyinstrument -o profile.html
ssp profile views.sql log.jsonl --profiler circuit -o circuit.folded
ssp profile views.sql log.jsonl --profiler circuit -o flame.speedscope.json
ssp profile views.sql log.jsonl --profiler py-spy -o replay.svg --rate 250
ssp profile views.sql log.jsonl -o profile.txt --mode single --report run.json
"""

ProfilerOpt = Annotated[
    Profiler,
    typer.Option(
        "--profiler",
        case_sensitive=False,
        help="pyinstrument (Python frames, in process), py-spy (Python frames, child process) "
        "or circuit (the engine's view and operator self time, no sampling).",
    ),
]
Output = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        dir_okay=False,
        help="Profile file; its extension picks the format: pyinstrument .html .txt "
        ".speedscope.json; py-spy .svg .speedscope.json .folded; circuit .folded "
        ".speedscope.json.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Rate = Annotated[
    int | None,
    typer.Option(
        "--rate",
        min=1,
        metavar="HZ",
        help="Samples per second (pyinstrument 1000, py-spy 100 by default).",
    ),
]
Baseline = Annotated[
    bool,
    typer.Option(
        "--baseline/--no-baseline",
        help="First replay once without the profiler, to measure how much it slows the run.",
    ),
]


@dataclass(slots=True)
class Profiled:
    """The profiled replay's record, and the error or interruption that ended it, if any."""

    run: Run
    failure: CircuitError | None = None
    interrupted: bool = False

    def exit(self) -> None:
        """Exit 1 after a failure (printing its error), 130 after Ctrl-C; else return."""
        console.exit_after(self.run, self.failure, self.interrupted)


@with_replay_options
def profile_command(
    views: ViewsArg,
    log: LogArg,
    options: ReplayOptions,
    output: Output,
    profiler: ProfilerOpt = "pyinstrument",
    rate: Rate = None,
    baseline: Baseline = True,
    report: Report = None,
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Profile a replay and write the profile in the format of the output's extension.

    pyinstrument and py-spy sample Python frames (py-spy from outside, in a
    child process running `ssp replay`); circuit writes the engine's own
    flamegraph of view and operator self time, in nanoseconds, with no
    sampling. The summary says how much the profiler slowed the replay,
    measured against a replay without it (skip it with --no-baseline).
    """
    with console.handle_errors():
        fmt = output_format(profiler, output)
        if fmt is None:
            choices = " ".join(FORMATS[profiler])
            console.print_error(
                f"the {profiler} profiler cannot write {output.name!r}",
                location="--output",
                hint=f"name a file ending in one of: {choices}",
            )
            raise typer.Exit(EXIT_USAGE)
        refuse_overwriting_inputs(
            {"--output": output, "--report": report, "--markdown": markdown}, views, log
        )
        hz = rate or DEFAULT_RATE.get(profiler)
        unprofiled: Run | None = None
        note = None
        if profiler == "circuit":
            note = "no sampling: the engine's own timings, taken in every replay"
        elif not baseline:
            note = "slowdown not measured (--no-baseline)"
        elif log == "-":
            note = "slowdown not measured: standard input can be replayed only once"
        else:
            first = execute(views, log, options, command="profile", quiet=quiet)
            if first.failure is not None or first.interrupted:
                finish(first.run, report=report, markdown=markdown, quiet=True)
                first.exit()
            unprofiled = first.run
        if profiler == "pyinstrument":
            done = _pyinstrument(views, log, options, output, fmt, hz, quiet)
        elif profiler == "py-spy":
            done = _py_spy(views, log, options, output, fmt, hz)
        else:
            done = _circuit(views, log, options, output, fmt, quiet)
        section = profile_section(profiler, output, fmt, hz, done.run, unprofiled, note)
        done.run.extra["profile"] = section
        finish(done.run, report=report, markdown=markdown, quiet=quiet)
        if not quiet:
            console.stdout().print(Text(escape_control(summary_line(section))), soft_wrap=True)
        done.exit()


def output_format(profiler: str, path: Path) -> str | None:
    """The format ``profiler`` writes for ``path``'s extension, or None if it has none."""
    name = path.name.lower()
    for extension, fmt in FORMATS[profiler].items():
        if name.endswith(extension) and len(name) > len(extension):
            return fmt
    return None


def profile_section(
    profiler: str,
    output: Path,
    fmt: str,
    rate: int | None,
    profiled: Run,
    unprofiled: Run | None,
    note: str | None,
) -> dict[str, Any]:
    """The report's ``profile`` section: what was written, and the profiler's cost."""
    slowdown = None
    if unprofiled is not None and unprofiled.totals.ingest_s > 0:
        slowdown = round(profiled.totals.ingest_s / unprofiled.totals.ingest_s, 3)
    return {
        "profiler": profiler,
        "output": str(output),
        "format": fmt,
        "rate_hz": rate if profiler != "circuit" else None,
        "profiled": _timings(profiled),
        "baseline": _timings(unprofiled) if unprofiled is not None else None,
        "slowdown": slowdown,
        "note": note,
    }


def _timings(run: Run) -> dict[str, float]:
    t = run.totals
    return {"ingest_s": t.ingest_s, "wall_s": t.wall_s, "entries_per_s": t.entries_per_s}


def summary_line(section: dict[str, Any]) -> str:
    """``profile: pyinstrument html -> out.html; ... slowed the replay 1.8x``."""
    head = f"profile: {section['profiler']} ({section['format']}) -> {section['output']}"
    slowdown, profiled = section["slowdown"], section["profiled"]["ingest_s"]
    if slowdown is not None:
        base = section["baseline"]["ingest_s"]
        return (
            f"{head}; ingest {profiled:.3f} s profiled vs {base:.3f} s without the profiler: "
            f"it slowed the replay {slowdown:.2f}x ({(slowdown - 1) * 100:+.0f}%)"
        )
    return f"{head}; ingest {profiled:.3f} s; {section['note']}"


# -- the profilers -------------------------------------------------------------


def _pyinstrument(
    views: Path,
    log: str,
    options: ReplayOptions,
    output: Path,
    fmt: str,
    rate: int | None,
    quiet: bool,
) -> Profiled:
    """Sample this process's Python frames around an in-process replay."""
    from pyinstrument import Profiler as Sampler
    from pyinstrument.renderers import (
        ConsoleRenderer,
        HTMLRenderer,
        Renderer,
        SpeedscopeRenderer,
    )

    sampler = Sampler(interval=1 / (rate or DEFAULT_RATE["pyinstrument"]), async_mode="disabled")
    sampler.start()
    try:
        outcome = execute(views, log, options, command="profile", quiet=quiet)
    finally:
        sampler.stop()
    renderer: Renderer
    if fmt == "html":
        renderer = HTMLRenderer()
    elif fmt == "text":
        renderer = ConsoleRenderer(unicode=True, color=False)
    else:
        renderer = SpeedscopeRenderer()
    write_atomic(output, sampler.output(renderer).encode("utf-8"))
    return Profiled(outcome.run, outcome.failure, outcome.interrupted)


def _circuit(
    views: Path, log: str, options: ReplayOptions, output: Path, fmt: str, quiet: bool
) -> Profiled:
    """Replay, then draw the run's own view and operator timings."""
    outcome = execute(views, log, options, command="profile", quiet=quiet)
    stacks = circuit_stacks(outcome.run)
    if fmt == "folded":
        data = render_folded(stacks).encode("utf-8")
    else:
        data = render_speedscope(stacks, f"ssp circuit: {views.name} x {Path(log).name}")
    write_atomic(output, data)
    return Profiled(outcome.run, outcome.failure, outcome.interrupted)


def _py_spy(
    views: Path, log: str, options: ReplayOptions, output: Path, fmt: str, rate: int | None
) -> Profiled:
    """Run ``py-spy record -- python -m ssp_cli replay ...`` and read the child's report."""
    spy = _find_py_spy()
    with tempfile.TemporaryDirectory(prefix="ssp-profile-") as tmp:
        child_report = Path(tmp) / "run.json"
        command = [
            spy, "record", "--output", str(output), "--format", fmt,
            "--rate", str(rate or DEFAULT_RATE["py-spy"]), "--",
            sys.executable, "-m", "ssp_cli", "replay", str(views), log,
            *replay_argv(options), "--quiet", "--report", str(child_report),
        ]  # fmt: skip
        interrupted = False
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            try:
                _, err = proc.communicate()
            except KeyboardInterrupt:
                interrupted = True
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=CHILD_GRACE_S)
        stderr = err.decode("utf-8", "replace")
        run = _child_run(child_report)
    if run is None:
        if interrupted:
            raise KeyboardInterrupt
        raise _py_spy_error(stderr, proc.returncode)
    run.run.command, run.run.argv = "profile", list(sys.argv)
    failure = None
    if run.stop_reason == "error":
        failure = _child_error(stderr)
    return Profiled(run, failure, interrupted or run.stop_reason == "interrupted")


def _find_py_spy() -> str:
    """py-spy beside this Python (a virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise ReplayError(
            "py-spy is not installed",
            location="--profiler",
            hint="pip install py-spy, or use --profiler pyinstrument",
        )
    return found


def _child_run(path: Path) -> Run | None:
    """The child replay's report, or None when it never got to write one."""
    try:
        return read_report(path)
    except (OSError, orjson.JSONDecodeError, ReportFormatError):
        return None


def _py_spy_error(stderr: str, returncode: int | None) -> CircuitError:
    """Why py-spy produced no replay: ptrace forbidden (the usual case), or its own words."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(sign in stderr.lower() for sign in PTRACE_SIGNS):
        return ReplayError(
            "py-spy cannot sample the replay: ptrace is not permitted here",
            location="--profiler py-spy",
            hint="run the container with --cap-add SYS_PTRACE (or as root), "
            "or use --profiler pyinstrument",
        )
    last = lines[-1] if lines else f"exit status {returncode}"
    return ReplayError(f"py-spy failed: {last}", location="--profiler py-spy")


def _child_error(stderr: str) -> CircuitError:
    """The child's ``error:`` line (and ``hint:``), as an error to print again."""
    message, hint = "the replay failed", None
    for line in stderr.splitlines():
        if line.startswith("error: "):
            message = line.removeprefix("error: ")
        elif line.startswith("hint: "):
            hint = line.removeprefix("hint: ")
    return ReplayError(message, hint=hint)


def replay_argv(options: ReplayOptions) -> list[str]:
    """``ssp replay`` flags that rebuild ``options`` (the inverse of ``build_options``)."""
    o = options
    argv = [
        "--mode", o.mode, "--batch-size", str(o.batch_size),
        "--pending-limit", str(o.pending_limit),
        "--coalesce" if o.coalesce else "--no-coalesce",
        "--executor", o.executor, "--parallel-threshold", str(o.parallel_threshold),
        "--pipeline-depth", str(o.pipeline_depth),
        "--on-error", o.on_error,
    ]  # fmt: skip
    optional: list[tuple[str, object]] = [
        ("--flush-every", o.flush_every),
        ("--frame-ms", o.frame_ms),
        ("--workers", o.workers),
        ("--initial", o.initial),
        ("--format", o.format),
        ("--rejects", o.rejects),
        ("--max-entries", o.max_entries),
        ("--dialect", o.dialect),
    ]
    argv += [part for flag, value in optional if value is not None for part in (flag, str(value))]
    if o.strict:
        argv.append("--strict")
    for name, value in o.params.items():
        argv += ["--param", f"{name}={orjson.dumps(value).decode()}"]
    return argv


def register(app: typer.Typer) -> None:
    """Add ``ssp profile`` to the app."""
    app.command("profile", epilog=EXAMPLES)(profile_command)
