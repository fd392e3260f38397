"""Driving the threshold control (a Components v2 element) from Streamlit's AppTest.

AppTest shows a Components v2 element as an unknown element and has no setter for its state,
so these read what the element was sent and send a release as the browser's
``setStateValue('threshold', …)`` would.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from anodet.app.threshold_control.payload import STATIC_PARTS

DETECTOR = "autoencoder"


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def control(at: AppTest, name: str = DETECTOR, view: str = "reference", prefix: str = "threshold_control"):
    """The threshold control of one detector (``prefix`` is the page's key: the Live monitor uses ``live_control``)."""
    return next(e for e in at.get("bidi_component") if e.key == f"{prefix}_{name}_{view}")


_static_parts: dict[str, dict] = {}


def sent(at: AppTest, name: str = DETECTOR, view: str = "reference", prefix: str = "threshold_control") -> dict:
    """What the control was last sent: the full payload (grid decoded from Arrow) or the light one."""
    proto = control(at, name, view, prefix).proto
    if proto.WhichOneof("data") == "mixed":
        data = json.loads(proto.mixed.json)
        blob = proto.mixed.arrow_blobs[data["grid"]["__streamlit_arrow_ref__"]].data
        data["grid"] = pa.ipc.open_stream(io.BytesIO(blob)).read_pandas()
        _static_parts[data["version"]] = {k: data[k] for k in STATIC_PARTS}
    else:  # sent earlier in this session; the browser keeps it
        data = {**_static_parts[json.loads(proto.json)["version"]], **json.loads(proto.json)}
    return data


def release(at: AppTest, value: float, name: str = DETECTOR, view: str = "reference",
            prefix: str = "threshold_control") -> AppTest:
    """What the browser does when the handle is released at ``value``: ``setStateValue('threshold', …)``."""
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = control(at, name, view, prefix).proto.id
    state.json_value = json.dumps({"threshold": {"value": value, "at": len(states.widgets)}})
    at._run(states)
    assert not problems(at), problems(at)
    return at
