"""`face_angles`: gaze pitch/yaw from a normalized face crop (MPIIFaceGaze full-face regression)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.geometry import angular_error
from workbench.tasks.base import FaceCrop, Task, TaskData, finite_labels, gaze_pitchyaw_degrees, require, to_float_image
from workbench.tasks.registry import register_task


@register_task
class FaceAngles(Task):
    name = "face_angles"
    view = "face"
    input_names = ("face",)
    output_names = ("gaze",)
    target_names = ("gaze",)
    metric_keys = ("gaze",)
    primary_metric = "angular_error"
    explain_names = ("pitch", "yaw")
    eye_box_keys = {"face": "eye_boxes"}
    face_crop = FaceCrop("face", "image", gaze="pitchyaw")

    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("image", "gaze_pitchyaw"), self.name)
        img = torch.from_numpy(np.ascontiguousarray(data["image"]))
        if img.ndim != 4 or img.shape[1] != 3:
            raise_shape("image", "(N, 3, H, W)", tuple(img.shape))
        tensors = {"face": img, "gaze": finite_labels("gaze_pitchyaw", data["gaze_pitchyaw"])}
        meta = {"subject": np.asarray(data.get("subject", np.full(len(img), -1)))}
        if "eye_boxes" in data:
            meta["eye_boxes"] = np.asarray(data["eye_boxes"])
        return TaskData(tensors, meta)

    def inputs(self, batch, *, train=False):
        return (to_float_image(batch["face"]),)

    def loss(self, outputs, batch):
        # The write-up trains with L1 on pitch and yaw.
        loss = F.l1_loss(outputs["gaze"], batch["gaze"])
        return loss, {"l1": float(loss.detach())}

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        # The task's own ground-truth loss form (L1) with the teacher's output as the target, so alpha
        # interpolates between terms of the same scale.
        loss = F.mse_loss if mse else F.l1_loss
        return {"gaze": loss(student["gaze"], teacher["gaze"])}

    def label_columns(self, data: TaskData):
        return gaze_pitchyaw_degrees(data.tensors["gaze"].numpy())

    def metrics(self, outputs, targets):
        err = angular_error(outputs["gaze"].double(), targets["gaze"].double())
        return {"angular_error": float(err.mean()), "angular_error_median": float(err.median())}

    def explain_target(self, outputs):
        return outputs["gaze"]

    def constant_predictor(self, train: TaskData):
        return {"gaze": train.tensors["gaze"].mean(0)}


def raise_shape(name: str, expected: str, got: tuple) -> None:
    from workbench.errors import DataError

    raise DataError(f"{name}: expected shape {expected}, got {got}")
