"""Folded stacks as a speedscope file (https://www.speedscope.app/file-format-schema.json).

One *sampled* profile whose samples are the stacks and whose weights are their
nanoseconds: speedscope's "left heavy" and "sandwich" views then show the
circuit's time by view and operator exactly as the folded file does. Frames
are shared (each distinct name once), as the schema requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from .folded import Stack, total_weight

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def render_speedscope(stacks: Sequence[Stack], name: str, exporter: str = "ssp") -> bytes:
    """The speedscope JSON document of ``stacks`` (weights in nanoseconds)."""
    index: dict[str, int] = {}
    samples = []
    for stack in stacks:
        samples.append([index.setdefault(frame, len(index)) for frame in stack.frames])
    document = {
        "$schema": SPEEDSCOPE_SCHEMA,
        "exporter": exporter,
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": [{"name": frame} for frame in index]},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "nanoseconds",
                "startValue": 0,
                "endValue": total_weight(stacks),
                "samples": samples,
                "weights": [stack.weight for stack in stacks],
            }
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
