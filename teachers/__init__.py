"""The five write-ups' models ("teachers"), registered by name, each with a `paper` and a `cpu` preset.

    >>> from teachers import get_teacher, example_inputs
    >>> model = get_teacher("gazenet", preset="cpu")
    >>> out = model(*example_inputs("gazenet").values())   # {"gaze": (2, 2)}

Every model takes its task's named inputs positionally (``model.input_names``), returns a dict of
named tensors (``model.output_names``) and carries a JSON-native ``model.config`` that
:func:`build_from_config` turns back into the same architecture.
"""

from teachers.registry import (
    TeacherSpec,
    build_from_config,
    example_inputs,
    get_teacher,
    list_teachers,
    register_teacher,
    teacher_spec,
)

# Importing the family modules registers them.
from teachers.evg import EVGNet, evg  # noqa: E402
from teachers.gazelstm import GazeLSTM, GazePose, gaussian_drop_probs, gaussian_keep_mask, gazelstm, gazepose  # noqa: E402
from teachers.gazenet import GazeNet, gazenet  # noqa: E402
from teachers.itracker import ITracker, itracker  # noqa: E402
from teachers.mc4 import MC4Net, mc4  # noqa: E402

__all__ = [
    "EVGNet",
    "GazeLSTM",
    "GazeNet",
    "GazePose",
    "ITracker",
    "MC4Net",
    "TeacherSpec",
    "build_from_config",
    "evg",
    "example_inputs",
    "gaussian_drop_probs",
    "gaussian_keep_mask",
    "gazelstm",
    "gazenet",
    "gazepose",
    "get_teacher",
    "itracker",
    "list_teachers",
    "mc4",
    "register_teacher",
    "teacher_spec",
]
