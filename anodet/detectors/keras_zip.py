"""Make a ``.keras`` file Keras wrote byte-reproducible: the same model gives the same bytes.

Keras 3 writes three things that change from one save to the next although the model does not:
the save time (``metadata.json``'s ``date_saved``, and the zip timestamp of ``model.weights.h5``)
and Python object ids (``config.json``'s ``shared_object_id``, which only pairs up objects shared
by several layers). :func:`make_reproducible` rewrites the zip with a fixed time (the zip epoch,
1980-01-01, which Keras already uses for its other entries) and the ids numbered 1, 2, ... in
order of appearance. The weights and the rest of the config are copied unchanged; the file loads
with ``safe_mode=True`` as before. When the store was written is in ``run.json``.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SAVED_AT = "1980-01-01@00:00:00"
_SHARED_ID = re.compile(rb'"shared_object_id": (\d+)')


def _renumbered(config: bytes) -> bytes:
    numbers: dict[bytes, int] = {}

    def number(match: re.Match[bytes]) -> bytes:
        return b'"shared_object_id": %d' % numbers.setdefault(match.group(1), len(numbers) + 1)

    return _SHARED_ID.sub(number, config)


def make_reproducible(path: Path) -> None:
    """Rewrite the ``.keras`` zip at ``path`` without its save time and object ids (see the module)."""
    path = Path(path)
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as target:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                if "date_saved" in meta:
                    meta["date_saved"] = SAVED_AT
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = _renumbered(data)
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            target.writestr(fixed, data)
    tmp.replace(path)
