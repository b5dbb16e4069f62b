"""The JSON report on disk: written atomically, read back as a :class:`Run`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson

from .run import Run


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same directory (``os.replace`` is
    only atomic within one file system), which is fsynced and then renamed over
    the target. A failure leaves no temporary file behind.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            # mkstemp makes the file private (0600); give it the mode a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), 0o666 & ~umask)
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report_bytes(run: Run) -> bytes:
    """The report's bytes: indented JSON with a final newline."""
    return orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def write_report(run: Run, path: str | os.PathLike[str]) -> None:
    """Write ``run`` as an ``ssp.report/1`` document, atomically."""
    write_atomic(path, report_bytes(run))


def read_report(path: str | os.PathLike[str]) -> Run:
    """Read a saved report; ``orjson.JSONDecodeError`` or ``ReportFormatError`` when it is not one."""
    return Run.from_json(orjson.loads(Path(path).read_bytes()))
