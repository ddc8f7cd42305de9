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
    eye_box_keys = {"frames": "eye_boxes"}  # (N, T, K, 4) per frame
    input_notes = {k: "GazePose bins its priors (round -> Embedding lookup), whose gradient is zero, so gradient "
                      "methods cannot attribute them (GazeLSTM ignores them)" for k in ("head_pose", "landmarks")}
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
                                  **({"frame_labels": np.asarray(data["frame_labels"])} if "frame_labels" in data else {}),
                                  # the labelled centre frame's gaze, for embedding probes
                                  **({"gaze_pitchyaw": np.asarray(data["gaze_pitchyaw"])[:, t // 2]}
                                     if "gaze_pitchyaw" in data and np.ndim(data["gaze_pitchyaw"]) == 3 else {})})

    def inputs(self, batch, *, train=False):
        return to_float_image(batch["frames"]), batch["head_pose"], batch["landmarks"]

    def loss(self, outputs, batch):
        loss = F.binary_cross_entropy_with_logits(outputs["logit"].flatten(), batch["label"].flatten())
        return loss, {"bce": float(loss.detach())}

    def metrics(self, outputs, targets):
        logit, label = outputs["logit"].flatten(), targets["label"].flatten()
        return {"ap": average_precision(logit, label), "accuracy": binary_accuracy(logit, label)}

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        s, t = student["logit"].flatten().float(), teacher["logit"].flatten().float()
        if mse:
            return {"logit": F.mse_loss(s, t)}
        # Bernoulli KL of sigmoid(logit / T), times T^2: zero when the logits agree (a soft-target BCE
        # would not be: it keeps the teacher's entropy).
        s, t = s / temperature, t / temperature
        p = torch.sigmoid(t)
        kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
        return {"logit": kl.mean() * temperature ** 2}

    def label_columns(self, data: TaskData):
        if "gaze_pitchyaw" in data.meta:
            from workbench.tasks.base import gaze_pitchyaw_degrees

            return gaze_pitchyaw_degrees(data.meta["gaze_pitchyaw"])
        return data.tensors["label"].reshape(-1, 1).numpy().astype(np.float32), ("label",)

    def write_predictions(self, path, outputs, data, names):
        """The Looking-At-Me CSV: uid, track, score, label (score = sigmoid of the logit); for a data set
        whose samples are named ``<clip_uid>/<track_id>/<frame>[/<unique_id>]`` (a Looking-At-Me folder),
        uid, track, frame, unique_id, score, label."""
        from workbench.tasks.base import write_csv

        score = torch.sigmoid(outputs["logit"].flatten().float()).numpy()
        if "name" in data.meta:
            def rows():
                for name, p in zip(names, score):
                    uid, track, frame, *uniq = str(name).split("/")
                    yield [uid, track, frame, uniq[0] if uniq else "", f"{p:.6f}", int(p > 0.5)]

            write_csv(path, ["uid", "track", "frame", "unique_id", "score", "label"], rows())
            return
        subj = np.asarray(data.meta.get("subject", np.full(len(data), -1)))
        write_csv(path, ["uid", "track", "score", "label"],
                  ([f"s{int(s):03d}", i, f"{p:.6f}", int(p > 0.5)] for i, (s, p) in enumerate(zip(subj, score))))

    def explain_target(self, outputs):
        return outputs["logit"].reshape(-1, 1)

    def constant_predictor(self, train: TaskData):
        p = train.tensors["label"].mean().clamp(1e-4, 1 - 1e-4)
        return {"logit": torch.log(p / (1 - p))}
