"""`look_at_me`: is the person in a 7-frame face track looking at the camera wearer (Ego4D LAM)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import DataError
from workbench.tasks.base import FaceCrop, Task, TaskData, finite_labels, require, to_float_image
from workbench.tasks.metrics import average_precision, binary_accuracy
from workbench.tasks.registry import register_task


@register_task
class LookAtMe(Task):
    name = "look_at_me"
    view = "track"
    input_names = ("frames", "head_pose", "landmarks")
    output_names = ("logit",)
    target_names = ("label",)
    metric_keys = ("label",)
    primary_metric = "ap"
    higher_is_better = True
    explain_names = ("logit",)
    face_crop = FaceCrop("frames", "frames", frames=7, zeros=(("head_pose", (7, 3)), ("landmarks", (7, 5, 2))))

    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("frames", "label"), self.name)
        frames = torch.from_numpy(np.ascontiguousarray(data["frames"]))
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise DataError(f"frames: expected shape (N, T, 3, H, W), got {tuple(frames.shape)}")
        n, t = frames.shape[:2]
        label = np.asarray(data["label"])
        if not np.isin(label, (0, 1)).all():
            raise DataError(f"label: expected 0/1 values, got {np.unique(label)[:5].tolist()}")
        # Priors may be absent (no priors.csv): zeros keep the inputs well-defined, and a flag says so.
        head = data.get("head_pose")
        lms = data.get("landmarks")
        has_priors = head is not None and lms is not None and np.isfinite(head).all() and np.isfinite(lms).all()
        tensors = {
            "frames": frames,
            "head_pose": finite_labels("head_pose", head) if has_priors else torch.zeros(n, t, 3),
            "landmarks": finite_labels("landmarks", lms) if has_priors else torch.zeros(n, t, 5, 2),
            "label": torch.from_numpy(label.astype(np.float32)),
        }
        return TaskData(tensors, {"subject": np.asarray(data.get("subject", np.full(n, -1))), "has_priors": has_priors,
                                  **({"eye_boxes": np.asarray(data["eye_boxes"])} if "eye_boxes" in data else {}),
                                  # per-frame labels, for drawing a track (training uses the centre frame's)
                                  **({"frame_labels": np.asarray(data["frame_labels"])} if "frame_labels" in data else {})})

    def inputs(self, batch, *, train=False):
        return to_float_image(batch["frames"]), batch["head_pose"], batch["landmarks"]

    def loss(self, outputs, batch):
        loss = F.binary_cross_entropy_with_logits(outputs["logit"].flatten(), batch["label"].flatten())
        return loss, {"bce": float(loss.detach())}

    def metrics(self, outputs, targets):
        logit, label = outputs["logit"].flatten(), targets["label"].flatten()
        return {"ap": average_precision(logit, label), "accuracy": binary_accuracy(logit, label)}

    def explain_target(self, outputs):
        return outputs["logit"].reshape(-1, 1)

    def constant_predictor(self, train: TaskData):
        p = train.tensors["label"].mean().clamp(1e-4, 1 - 1e-4)
        return {"logit": torch.log(p / (1 - p))}
