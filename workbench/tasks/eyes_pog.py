"""`eyes_pog`: the point of gaze on the screen from four eye images (two eyes, two camera views)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.geometry import Screen
from workbench.errors import DataError
from workbench.tasks.base import Task, TaskData, finite_labels, require, to_float_image
from workbench.tasks.registry import register_task

_INPUTS = ("v0_left", "v0_right", "v1_left", "v1_right")


@register_task
class EyesPoG(Task):
    """Models predict the PoG as a fraction of the screen (x / width, y / height); metrics are in pixels
    and millimetres of the screen (``screen`` option, default the SynthGaze laptop screen)."""

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

    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("eyes", "pog_px"), self.name)
        eyes = torch.from_numpy(np.ascontiguousarray(data["eyes"]))
        if eyes.ndim != 5 or eyes.shape[1] != 4:
            raise DataError(f"eyes: expected 4 eye images per sample (N, 4, C, H, W), got {tuple(eyes.shape)}")
        pog = finite_labels("pog_px", data["pog_px"]) / torch.tensor([self.screen.width_px, self.screen.height_px])
        tensors = {name: eyes[:, k] for k, name in enumerate(_INPUTS)}
        tensors["pog"] = pog.float()
        meta = {"subject": np.asarray(data.get("subject", np.full(len(eyes), -1)))}
        boxes = data.get("eye_boxes")
        if boxes is not None and np.ndim(boxes) == 4 and np.shape(boxes)[1] == len(_INPUTS):
            meta.update({f"eye_boxes_{name}": np.asarray(boxes[:, k]) for k, name in enumerate(_INPUTS)})
        return TaskData(tensors, meta)

    def inputs(self, batch, *, train=False):
        return tuple(to_float_image(batch[k]) for k in _INPUTS)

    def loss(self, outputs, batch):
        loss = F.smooth_l1_loss(outputs["pog"], batch["pog"], beta=0.02)
        return loss, {"smooth_l1": float(loss.detach())}

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        # The task's own ground-truth loss form (SmoothL1, beta 0.02) against the teacher's PoG.
        if mse:
            return {"pog": F.mse_loss(student["pog"], teacher["pog"])}
        return {"pog": F.smooth_l1_loss(student["pog"], teacher["pog"], beta=0.02)}

    def label_columns(self, data: TaskData):
        """The PoG in screen millimetres."""
        s = self.screen
        mm = data.tensors["pog"].double() * torch.tensor([s.width_mm, s.height_mm], dtype=torch.float64)
        return mm.numpy().astype(np.float32), ("pog_x_mm", "pog_y_mm")

    def metrics(self, outputs, targets):
        scale = torch.tensor([self.screen.width_px, self.screen.height_px], dtype=torch.float64)
        d_px = (outputs["pog"].double() - targets["pog"].double()) * scale
        mm_per_px = torch.tensor([self.screen.width_mm / self.screen.width_px, self.screen.height_mm / self.screen.height_px],
                                 dtype=torch.float64)
        return {"pog_error_px": float(d_px.norm(dim=-1).mean()), "pog_error_mm": float((d_px * mm_per_px).norm(dim=-1).mean())}

    def explain_target(self, outputs):
        return outputs["pog"]

    def constant_predictor(self, train: TaskData):
        return {"pog": train.tensors["pog"].mean(0)}
