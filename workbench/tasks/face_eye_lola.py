"""`face_eye_lola`: head and eye longitude/latitude from a grey face and a grey eye, composed into the
gaze with MC4's closed form; all angles normalized by (a + 90) / 180 as in the write-up."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.geometry import angular_error, denormalize_angle01, lola_to_vector, normalize_angle01
from workbench.errors import DataError
from workbench.tasks.base import FaceCrop, Task, TaskData, finite_labels, require, to_float_image
from workbench.tasks.registry import register_task


@register_task
class FaceEyeLola(Task):
    name = "face_eye_lola"
    view = "mc4"
    input_names = ("face", "eye")
    output_names = ("head", "eye", "gaze")
    target_names = ("head", "eye", "gaze")
    metric_keys = ("head", "eye", "gaze")
    primary_metric = "gaze_error"
    explain_names = ("gaze_lo", "gaze_la")
    # The evaluation's eye input is the left-eye crop: its boxes are the renderer's (or reader's) l_eye_boxes.
    eye_box_keys = {"face": "eye_boxes", "eye": "l_eye_boxes"}
    # The subject's left eye is the image-right one; an eye crop spans 44 mm of the 170 mm a face crop does
    # (SynthConfig eye_span / face_span).
    face_crop = FaceCrop("face", "face", grey=True, eyes=("r_eye", "l_eye"), eye_span=44.0 / 170.0,
                         eye_input=("eye", "l_eye"), gaze="lola01")

    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("face", "l_eye", "r_eye", "head_lola", "eye_lola", "gaze_lola"), self.name)
        face = torch.from_numpy(np.ascontiguousarray(data["face"]))
        if face.ndim != 4 or face.shape[1] != 1:
            raise DataError(f"face: expected grey images (N, 1, H, W), got {tuple(face.shape)}")
        tensors = {
            "face": face,
            "l_eye": torch.from_numpy(np.ascontiguousarray(data["l_eye"])),
            "r_eye": torch.from_numpy(np.ascontiguousarray(data["r_eye"])),
            **{k: normalize_angle01(finite_labels(f"{k}_lola", data[f"{k}_lola"])) for k in ("head", "eye", "gaze")},
        }
        meta = {"subject": np.asarray(data.get("subject", np.full(len(face), -1)))}
        meta.update({k: np.asarray(data[k]) for k in ("eye_boxes", "l_eye_boxes", "r_eye_boxes") if k in data})
        return TaskData(tensors, meta)

    def inputs(self, batch, *, train=False):
        # The write-up feeds one eye, picked at random per sample while training; evaluation uses the left.
        eye = batch["l_eye"]
        if train:
            pick = torch.rand(len(eye), device=eye.device) < 0.5
            eye = torch.where(pick.view(-1, 1, 1, 1), batch["r_eye"], eye)
        return to_float_image(batch["face"]), to_float_image(eye)

    def loss(self, outputs, batch):
        parts = {k: F.smooth_l1_loss(outputs[k], batch[k]) for k in ("head", "eye", "gaze")}
        total = parts["head"] + parts["eye"] + parts["gaze"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def metrics(self, outputs, targets):
        res = {}
        for k in ("gaze", "head", "eye"):
            pred = lola_to_vector(denormalize_angle01(outputs[k].double()))
            true = lola_to_vector(denormalize_angle01(targets[k].double()))
            res[f"{k}_error"] = float(angular_error(pred, true).mean())
        return res

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        # The task's own ground-truth loss form (SmoothL1 on head, eye and gaze) against the teacher.
        loss = F.mse_loss if mse else F.smooth_l1_loss
        return {k: loss(student[k], teacher[k]) for k in ("head", "eye", "gaze")}

    def label_columns(self, data: TaskData):
        """Gaze pitch/yaw in degrees (latitude is the pitch, longitude the yaw)."""
        lola = denormalize_angle01(data.tensors["gaze"].double()).numpy()
        return np.stack([lola[:, 1], lola[:, 0]], -1).astype(np.float32), ("pitch_deg", "yaw_deg")

    def write_predictions(self, path, outputs, data, names):
        """MC4's three-line file: name, gaze longitude, gaze latitude (degrees)."""
        from workbench.data.formats.mc4 import write_mc4_predictions

        write_mc4_predictions(path, list(names), denormalize_angle01(outputs["gaze"]).numpy())

    def explain_target(self, outputs):
        return outputs["gaze"]

    def constant_predictor(self, train: TaskData):
        return {k: train.tensors[k].mean(0) for k in ("head", "eye", "gaze")}
