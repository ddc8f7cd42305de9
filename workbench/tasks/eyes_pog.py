"""`eyes_pog`: the point of gaze from eye images: two eyes seen by two cameras (SynthGaze's `itracker`
view, four images) or by one camera (GazeCapture, two images)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.geometry import Screen
from workbench.errors import DataError, WorkbenchError
from workbench.tasks.base import Task, TaskData, finite_labels, require, to_float_image
from workbench.tasks.registry import register_task

_INPUTS = ("v0_left", "v0_right", "v1_left", "v1_right")
_UNITS = ("px", "cm")


@register_task
class EyesPoG(Task):
    """The PoG from 2 x ``views`` eye images ([view 0 image-left eye, view 0 image-right eye, view 1 ...]).

    Two label forms, each kept in its own unit:

    * ``pog_px`` (screen pixels, SynthGaze and the ``itracker`` layout): models predict the PoG as a fraction
      of the screen (x / width, y / height); metrics in pixels and millimetres of the ``screen`` option
      (default the SynthGaze laptop screen); primary ``pog_error_px``.
    * ``pog_cm`` (cm from the camera, x right, y up: GazeCapture's ``XCam``/``YCam``): models predict cm,
      as iTracker does; metric ``pog_error_cm``, the figure the GazeCapture paper reports.

    A one-camera task on two-camera data uses camera 0; a cm task on data with SynthGaze's ``pog_mm`` converts
    it with the ``screen`` geometry (so profiling, export and analysis on SynthGaze work for a GazeCapture run).

    Options (both fixed by the data when left out; :meth:`adapt` returns them so a run records them):
    ``views`` (1 or 2; default form 2), ``unit`` ("px" or "cm"; default "px"); and ``screen``. Images come
    at the model's size (``workbench.train.data.read_for_task`` fits a data set's images to the recipe's).
    """

    name = "eyes_pog"
    view = "itracker"
    input_names = _INPUTS
    output_names = ("pog",)
    target_names = ("pog",)
    metric_keys = ("pog",)
    primary_metric = "pog_error_px"
    explain_names = ("x", "y")
    # Each eye image has its own boxes: prepare() splits the data's (N, 4, K, 4) per input.
    eye_box_keys = {name: f"eye_boxes_{name}" for name in _INPUTS}

    def __init__(self, **options):
        super().__init__(**options)
        s = options.get("screen") or {}
        self.screen = Screen(**s) if isinstance(s, dict) else s
        self.views = options.get("views")
        self.unit = options.get("unit")
        if self.views not in (None, 1, 2):
            raise WorkbenchError(f"task eyes_pog: views must be 1 or 2 camera views, got {self.views!r}")
        if self.unit not in (None, *_UNITS):
            raise WorkbenchError(f"task eyes_pog: unit must be 'px' or 'cm', got {self.unit!r}")
        self.input_names = _INPUTS[: 2 * (self.views or 2)]
        self.primary_metric = "pog_error_cm" if self.unit == "cm" else "pog_error_px"

    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("eyes",), self.name)
        eyes = torch.from_numpy(np.ascontiguousarray(data["eyes"]))
        if eyes.ndim != 5 or eyes.shape[1] not in (2, 4):
            raise DataError(f"eyes: expected 2 or 4 eye images per sample (N, 2|4, C, H, W: one or two camera "
                            f"views), got {tuple(eyes.shape)}")
        views = eyes.shape[1] // 2
        if self.views == 1 and views == 2:
            # A one-camera model on two-camera data (SynthGaze: profiling, export, analysis) sees camera 0.
            eyes, views = eyes[:, :2], 1
        if self.views is not None and views != self.views:
            raise DataError(f"eyes: the data has {views} camera view(s) ({2 * views} eye images per sample), but "
                            f"this task takes {self.views} ({2 * self.views} images)")
        if "pog_cm" in data:
            unit, pog = "cm", finite_labels("pog_cm", data["pog_cm"])
        elif self.unit == "cm" and "pog_mm" in data:
            # SynthGaze's screen geometry is known: its PoG in GazeCapture's camera-centred cm, exactly.
            from workbench.data.formats.gazecapture import screen_mm_to_camera_cm

            unit = "cm"
            pog = finite_labels("pog_mm", screen_mm_to_camera_cm(np.asarray(data["pog_mm"], np.float64), self.screen))
        elif "pog_px" in data:
            unit = "px"
            pog = finite_labels("pog_px", data["pog_px"]) / torch.tensor([self.screen.width_px, self.screen.height_px])
        else:
            raise DataError(f"task {self.name!r} needs 'pog_px' (screen pixels) or 'pog_cm' (cm from the camera) "
                            f"in the data, got {sorted(data)}")
        if self.unit is not None and unit != self.unit:
            # cm -> screen pixels would need each device's screen geometry, which the data does not give.
            raise DataError(f"the data's PoG is in {unit}, but this task (and its model) works in {self.unit}")
        tensors = {name: eyes[:, k] for k, name in enumerate(_INPUTS[: 2 * views])}
        tensors["pog"] = pog.float()
        meta: dict[str, Any] = {"subject": np.asarray(data.get("subject", np.full(len(eyes), -1))),
                                "views": views, "pog_unit": unit}
        if isinstance(data.get("counts"), dict):
            meta["counts"] = dict(data["counts"])
        boxes = data.get("eye_boxes")
        if boxes is not None and np.ndim(boxes) == 4 and np.shape(boxes)[1] == 2 * views:
            meta.update({f"eye_boxes_{name}": np.asarray(boxes[:, k]) for k, name in enumerate(_INPUTS[: 2 * views])})
        return TaskData(tensors, meta)

    def adapt(self, data: TaskData, model_config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """One camera view instead of two, PoG in cm instead of screen pixels: the task options and the model
        hyper-parameter (``views``) that say so."""
        task: dict[str, Any] = {}
        model: dict[str, Any] = {}
        views = int(data.meta.get("views", 2))
        if views != (self.views or 2):
            task["views"] = views
        if views != model_config.get("views", 2):
            model["views"] = views
        unit = data.meta.get("pog_unit", "px")
        if unit != (self.unit or "px"):
            task["unit"] = unit
        return task, model

    def inputs(self, batch, *, train=False):
        return tuple(to_float_image(batch[k]) for k in self.input_names)

    def loss(self, outputs, batch):
        loss = F.smooth_l1_loss(outputs["pog"], batch["pog"], beta=self._beta())
        return loss, {"smooth_l1": float(loss.detach())}

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        # The task's own ground-truth loss form (SmoothL1, same beta as the loss) against the teacher's PoG.
        if mse:
            return {"pog": F.mse_loss(student["pog"], teacher["pog"])}
        return {"pog": F.smooth_l1_loss(student["pog"], teacher["pog"], beta=self._beta())}

    def _beta(self) -> float:
        # 2% of the screen for fractions, 0.5 cm for cm (about the same on a phone screen).
        return 0.5 if self.unit == "cm" else 0.02

    def label_columns(self, data: TaskData):
        """The PoG in screen millimetres (cm from the camera for a cm task)."""
        if self.unit == "cm":
            return data.tensors["pog"].numpy().astype(np.float32), ("pog_x_cm", "pog_y_cm")
        s = self.screen
        mm = data.tensors["pog"].double() * torch.tensor([s.width_mm, s.height_mm], dtype=torch.float64)
        return mm.numpy().astype(np.float32), ("pog_x_mm", "pog_y_mm")

    def metrics(self, outputs, targets):
        d = outputs["pog"].double() - targets["pog"].double()
        if self.unit == "cm":
            return {"pog_error_cm": float(d.norm(dim=-1).mean())}
        d_px = d * torch.tensor([self.screen.width_px, self.screen.height_px], dtype=torch.float64)
        mm_per_px = torch.tensor([self.screen.width_mm / self.screen.width_px, self.screen.height_mm / self.screen.height_px],
                                 dtype=torch.float64)
        return {"pog_error_px": float(d_px.norm(dim=-1).mean()), "pog_error_mm": float((d_px * mm_per_px).norm(dim=-1).mean())}

    def explain_target(self, outputs):
        return outputs["pog"]

    def constant_predictor(self, train: TaskData):
        return {"pog": train.tensors["pog"].mean(0)}
