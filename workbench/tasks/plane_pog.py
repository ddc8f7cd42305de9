"""`plane_pog`: EVG's end-to-end PoG on a virtual plane from the full camera frame (CenterNet style).

The frame is padded with black to CenterNet's stride-32 size (480x270 -> 512x288), centred. The PoG on
the screen is moved into camera-plane millimetres with the camera-screen offset, onto the virtual plane
raster (clamped to the plane), and through CenterNet's affine transform onto the output grid (stride 4),
where it is drawn as a Gaussian with a sub-cell offset. Decoding inverts each step.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.geometry import VirtualPlane, affine_transform, get_affine_transform, pad_to_stride
from workbench.errors import DataError, WorkbenchError
from workbench.tasks.base import Task, TaskData, finite_labels, require, to_float_image
from workbench.tasks.registry import register_task

OUTPUT_STRIDE = 4


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on heatmap logits against a Gaussian target with peaks of 1."""
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * neg
    num_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def spatial_softmax_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the softmax over each map's cells and the Gaussian target normalized to sum to
    1 (heatmap as a classification over cells): every cell gets a gradient p - t of the same scale."""
    t = target.flatten(1).float()
    t = t / t.sum(-1, keepdim=True).clamp(min=1e-12)
    return -(t * F.log_softmax(logits.flatten(1).float(), -1)).sum(-1).mean()


HM_LOSSES = {"focal": focal_loss, "softmax": spatial_softmax_loss}


@register_task
class PlanePoG(Task):
    name = "plane_pog"
    view = "frame"
    input_names = ("frame",)
    output_names = ("hm", "offset")
    target_names = ("hm", "offset")
    metric_keys = ("pog_cam", "eye_center", "hm_xy", "mm_per_px")
    primary_metric = "pog_error_mm"
    explain_names = ("pog_x_mm", "pog_y_mm", "peak")
    eye_box_keys = {"frame": "eye_boxes"}  # shifted by the stride-32 padding in prepare()
    full_frame = "frame"

    def __init__(self, **options):
        super().__init__(**options)
        p = options.get("plane") or {}
        self.plane = VirtualPlane(**{"width_mm": 400.0, "height_mm": 250.0, "pixel_per_mm": 0.32,
                                     "origin_mm": (-200.0, -20.0), **p})
        self.sigma = float(options.get("sigma", 1.5))  # Gaussian radius on the output grid, cells
        # Not in the write-up (issue 17's "wider-then-narrower Gaussians"): the PoG Gaussian's radius starts at
        # sigma_start cells and shrinks geometrically to sigma over the first sigma_epochs training epochs, so
        # the focal term rewards a roughly right peak early; outside training the radius is sigma.
        self.sigma_start = options.get("sigma_start")
        self.sigma_epochs = options.get("sigma_epochs", 0)
        if self.sigma_start is not None and (isinstance(self.sigma_start, bool) or not isinstance(
                self.sigma_start, (int, float)) or not self.sigma_start > 0):
            raise WorkbenchError(f"plane_pog option sigma_start expects a radius in cells > 0, got {self.sigma_start!r}")
        if not isinstance(self.sigma_epochs, int) or isinstance(self.sigma_epochs, bool) or self.sigma_epochs < 0:
            raise WorkbenchError(f"plane_pog option sigma_epochs expects an integer >= 0, got {self.sigma_epochs!r}")
        self.face_sigma = float(options.get("face_sigma", 2.0))  # the face-centre Gaussian's radius, cells
        self.weights = {"hm": 1.0, "offset": 1.0, "pog": 1.0, "face_hm": 1.0, "context_pog": 1.0,
                        **options.get("loss_weights", {})}
        # The PoG heatmap's loss: "focal" (the write-up's, CenterNet's focal loss on per-cell sigmoids) or
        # "softmax" (not in the write-up: spatial-softmax cross-entropy against the normalized Gaussian). With
        # a global vector that already holds the PoG, EVG's heads placed the peak within 12 mm in 150 steps with
        # "softmax" and stayed above 250 mm with "focal" (benchmarks/evg_heads.py): the focal term's negatives
        # over every cell drown the one positive cell's signal (issue 17).
        self.hm_loss = options.get("hm_loss", "focal")
        if self.hm_loss not in HM_LOSSES:
            raise WorkbenchError(f"plane_pog option hm_loss expects one of {', '.join(HM_LOSSES)}, got {self.hm_loss!r}")
        # The write-up's face_crop_ratio: everything outside the face box enlarged this many times about its
        # centre is set to the mean colour (0 after ImageNet normalization); None keeps the whole frame.
        ratio = options.get("face_crop_ratio")
        if ratio is not None and not (isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and ratio >= 1):
            raise WorkbenchError(f"plane_pog option face_crop_ratio expects a number >= 1 (1: the face box "
                                 f"itself), got {ratio!r}")
        self.face_crop_ratio = None if ratio is None else float(ratio)
        # Not in the write-up (a curriculum): for the first pog_lead_epochs training epochs only the decoded-PoG
        # term (and face_hm) trains; the heatmap's focal term and the offset join after.
        lead = options.get("pog_lead_epochs", 0)
        if not isinstance(lead, int) or isinstance(lead, bool) or lead < 0:
            raise WorkbenchError(f"plane_pog option pog_lead_epochs expects an integer >= 0, got {lead!r}")
        self.pog_lead_epochs = lead
        self.epoch: int | None = None  # the training epoch (Task.set_epoch); None outside training
        self.frame_size: tuple[int, int] | None = None  # (W, H) raw; set by prepare

    # ---- geometry ---------------------------------------------------------------------------------
    def padded(self, width: int, height: int) -> tuple[int, int]:
        return pad_to_stride(width, height, 32)

    def grid_size(self, width: int, height: int) -> tuple[int, int]:
        pw, ph = self.padded(width, height)
        return pw // OUTPUT_STRIDE, ph // OUTPUT_STRIDE

    def _affines(self, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Plane raster -> output grid (and back): the plane's centre to the grid's centre, fit inside."""
        rw, rh = self.plane.size_px
        gw, gh = grid
        scale = max(rw, rh * gw / gh)
        c = (rw / 2.0, rh / 2.0)
        return get_affine_transform(c, scale, 0, grid), get_affine_transform(c, scale, 0, grid, inv=True)

    def camera_to_grid(self, xy_mm: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(N, 2) camera-plane mm -> (N, 2) output-grid coordinates (clamped to the plane)."""
        fwd, _ = self._affines(grid)
        return affine_transform(self.plane.camera_to_plane(xy_mm.double(), clamp=True), fwd)

    def grid_to_camera(self, xy: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        _, inv = self._affines(grid)
        return self.plane.plane_to_camera(affine_transform(xy.double(), inv))

    # ---- data -------------------------------------------------------------------------------------
    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        require(data, ("image", "pog_px", "screen_mm", "screen_px", "offset_mm"), self.name)
        img = torch.from_numpy(np.ascontiguousarray(data["image"]))
        if img.ndim != 4 or img.shape[1] != 3:
            raise DataError(f"image: expected (N, 3, H, W) frames, got {tuple(img.shape)}")
        n, _, h, w = img.shape
        self.frame_size = (w, h)
        grid = self.grid_size(w, h)
        pog_px = finite_labels("pog_px", data["pog_px"]).double()
        screen_mm = finite_labels("screen_mm", data["screen_mm"]).double()
        screen_px = finite_labels("screen_px", data["screen_px"]).double()
        offset = finite_labels("offset_mm", data["offset_mm"]).double()
        mm_per_px = screen_mm / screen_px
        pog_cam = pog_px * mm_per_px + offset
        eye_center = data.get("eye_center")
        tensors = {
            "frame": img,
            "pog_cam": pog_cam.float(),
            "hm_xy": self.camera_to_grid(pog_cam, grid).float(),
            "mm_per_px": mm_per_px.float(),
            # Without the eye position (real data rarely has it) the angular error is not defined: NaN.
            "eye_center": (finite_labels("eye_center", eye_center) if eye_center is not None
                           else torch.full((n, 3), float("nan"))),
        }
        pw, ph = self.padded(w, h)
        pad = torch.tensor([(pw - w) // 2, (ph - h) // 2], dtype=torch.float64)
        # The face-box centre on the output grid: the target of the write-up's optional face_hm head
        # (NaN where the data has no face box; the loss then skips it).
        box = data.get("face_box")
        if self.options.get("detect_face_boxes"):
            # Frames without an annotated face box (missing, or NaN rows) get the face detector's box, so the
            # face_hm head still has a target on data sets that ship none (NaN where no face is found either).
            from workbench.faces.images import fill_face_boxes

            box = torch.from_numpy(fill_face_boxes(data["image"], box))
        elif box is not None:
            box = finite_labels("face_box", box)
        tensors["face_xy"] = (((box.double().view(n, 2, 2).mean(1) + pad) / OUTPUT_STRIDE).float()
                              if box is not None else torch.full((n, 2), float("nan")))
        if self.face_crop_ratio is not None:  # the box in the raw frame's pixels (x0, y0, x1, y1), NaN: none
            tensors["face_box"] = box.float() if box is not None else torch.full((n, 4), float("nan"))
        meta = {"subject": np.asarray(data.get("subject", np.full(n, -1))), "pad_offset": ((pw - w) // 2, (ph - h) // 2)}
        if "eye_boxes" in data:
            meta["eye_boxes"] = np.asarray(data["eye_boxes"]) + np.tile(meta["pad_offset"], 2)
        if "gaze" in data and np.shape(data["gaze"])[-1] == 3:  # the gaze direction, for embedding probes
            from workbench.data.geometry import vector_to_pitchyaw

            meta["gaze_pitchyaw"] = vector_to_pitchyaw(np.asarray(data["gaze"], dtype=np.float64))
        return TaskData(tensors, meta)

    def inputs(self, batch, *, train=False):
        frame = batch["frame"]
        h, w = frame.shape[-2:]
        pw, ph = self.padded(w, h)
        left, top = (pw - w) // 2, (ph - h) // 2
        # Pad the uint8 frame with black (0) before normalization, as the write-up pads the image.
        padded = F.pad(frame, (left, pw - w - left, top, ph - h - top), value=0)
        x = to_float_image(padded)
        if self.face_crop_ratio is not None and "face_box" in batch:
            x = x * self.face_mask(batch["face_box"], (w, h), (left, top), (pw, ph)).to(x.dtype)
        return (x,)

    def face_mask(self, box: torch.Tensor, size: tuple[int, int], pad: tuple[int, int], padded: tuple[int, int],
                  ) -> torch.Tensor:
        """(B, 1, PH, PW) 1 inside the face box (B, 4 raw-frame x0, y0, x1, y1) enlarged ``face_crop_ratio``
        times about its centre, 0 elsewhere; all 1 for a frame without a box."""
        b = box.double()
        c = (b[:, :2] + b[:, 2:]) / 2 + torch.tensor(pad, dtype=torch.float64)
        half = (b[:, 2:] - b[:, :2]).abs() * (self.face_crop_ratio / 2)
        lo, hi = c - half, c + half
        xs = torch.arange(padded[0], dtype=torch.float64).view(1, 1, -1) + 0.5
        ys = torch.arange(padded[1], dtype=torch.float64).view(1, -1, 1) + 0.5
        inside = ((xs >= lo[:, 0, None, None]) & (xs <= hi[:, 0, None, None]) & (ys >= lo[:, 1, None, None])
                  & (ys <= hi[:, 1, None, None]))
        none = ~torch.isfinite(b).all(-1)
        return (inside | none.view(-1, 1, 1)).unsqueeze(1).to(box.device)

    # ---- objective --------------------------------------------------------------------------------
    def train_sigma(self) -> float:
        """The PoG Gaussian's radius (cells) at the current training epoch: ``sigma_start`` shrinking
        geometrically to ``sigma`` over ``sigma_epochs`` epochs, then ``sigma``; ``sigma`` outside training."""
        if self.sigma_start is None or self.epoch is None or self.epoch >= self.sigma_epochs:
            return self.sigma
        return float(self.sigma_start) * (self.sigma / float(self.sigma_start)) ** (self.epoch / self.sigma_epochs)

    def targets(self, hm_xy: torch.Tensor, grid: tuple[int, int], sigma: float | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Gaussian heatmap (B,1,gh,gw), integer peak cells (B,2), sub-cell offsets (B,2))."""
        sigma = self.sigma if sigma is None else sigma
        gw, gh = grid
        cell = hm_xy.floor().clamp(min=0)
        cell = torch.stack([cell[:, 0].clamp(max=gw - 1), cell[:, 1].clamp(max=gh - 1)], -1)
        off = hm_xy - cell
        ys = torch.arange(gh, device=hm_xy.device, dtype=hm_xy.dtype).view(1, gh, 1)
        xs = torch.arange(gw, device=hm_xy.device, dtype=hm_xy.dtype).view(1, 1, gw)
        d2 = (xs - cell[:, 0].view(-1, 1, 1)) ** 2 + (ys - cell[:, 1].view(-1, 1, 1)) ** 2
        hm = torch.exp(-d2 / (2 * sigma ** 2)).unsqueeze(1)
        return hm, cell.long(), off

    @staticmethod
    def _gather(maps: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) values at integer cells (B, 2) [x, y] -> (B, C)."""
        b = torch.arange(len(maps), device=maps.device)
        return maps[b, :, cell[:, 1], cell[:, 0]]

    def loss(self, outputs, batch):
        hm_logits, offset = outputs["hm"], outputs["offset"]
        grid = (hm_logits.shape[-1], hm_logits.shape[-2])
        hm_t, cell, off_t = self.targets(batch["hm_xy"].to(hm_logits.dtype), grid, self.train_sigma())
        l_hm = HM_LOSSES[self.hm_loss](hm_logits, hm_t)
        off_pred = self._gather(offset, cell)
        l_off = F.l1_loss(off_pred, off_t)
        # PoG after decoding, in mm (scaled to ~unit size). Decoding by soft-argmax keeps it differentiable
        # with respect to the heatmap itself, so the heatmap gets a dense signal towards the true PoG from
        # the first step (the focal term alone has one positive cell per image).
        pog_pred = self.decode(outputs, soft=True)
        target_cam = self.grid_to_camera(batch["hm_xy"].double(), grid)  # the clamped true PoG
        l_pog = F.l1_loss(pog_pred.double(), target_cam) / 100.0
        w = dict(self.weights)
        if self.epoch is not None and self.epoch < self.pog_lead_epochs:
            w["hm"] = w["offset"] = 0.0
        total = w["hm"] * l_hm + w["offset"] * l_off + w["pog"] * l_pog.to(l_hm.dtype)
        parts = {"hm": float(l_hm.detach()), "offset": float(l_off.detach()), "pog": float(l_pog.detach())}
        if "context_pog" in outputs:  # a model's direct PoG read-out (mm / 100), e.g. evg's context_pog option
            l_ctx = F.l1_loss(outputs["context_pog"].double() * 100.0, target_cam) / 100.0
            total = total + w["context_pog"] * l_ctx.to(total.dtype)
            parts["context_pog"] = float(l_ctx.detach())
        face = batch.get("face_xy")
        if "face_hm" in outputs and face is not None:
            ok = torch.isfinite(face).all(-1)
            if ok.any():
                face_t, _, _ = self.targets(face[ok].to(hm_logits.dtype), grid, self.face_sigma)
                l_face = focal_loss(outputs["face_hm"][ok], face_t)
                total = total + w["face_hm"] * l_face
                parts["face_hm"] = float(l_face.detach())
        return total, parts

    # ---- decoding and metrics ---------------------------------------------------------------------
    def decode(self, outputs: dict[str, torch.Tensor], *, soft: bool = False) -> torch.Tensor:
        """(B, 2) predicted PoG in camera-plane mm: the heatmap peak + its offset (``soft``: soft-argmax,
        differentiable, for attribution and distillation)."""
        hm, offset = outputs["hm"], outputs["offset"]
        b, _, gh, gw = hm.shape
        if soft:
            p = torch.softmax(hm.reshape(b, -1).float(), -1).reshape(b, 1, gh, gw)
            ys = torch.arange(gh, device=hm.device, dtype=p.dtype).view(1, 1, gh, 1)
            xs = torch.arange(gw, device=hm.device, dtype=p.dtype).view(1, 1, 1, gw)
            xy = torch.stack([(p * (xs + offset[:, :1])).sum((1, 2, 3)), (p * (ys + offset[:, 1:])).sum((1, 2, 3))], -1)
        else:
            flat = hm.reshape(b, -1).argmax(-1)
            cell = torch.stack([flat % gw, flat // gw], -1)
            xy = cell.to(offset.dtype) + self._gather(offset, cell)
        return self.grid_to_camera(xy, (gw, gh))

    def metrics(self, outputs, targets):
        pred = self.decode(outputs)
        true = targets["pog_cam"].double()
        d = pred - true
        err_mm = d.norm(dim=-1)
        err_px = (d / targets["mm_per_px"].double()).norm(dim=-1)
        eye = targets["eye_center"].double()
        zero = torch.zeros(len(pred), 1, dtype=torch.float64)
        a = torch.cat([pred, zero], -1) - eye
        g = torch.cat([true, zero], -1) - eye
        cos = torch.linalg.vector_norm(torch.linalg.cross(a, g, dim=-1), dim=-1)
        ang = torch.rad2deg(torch.atan2(cos, (a * g).sum(-1)))
        return {"pog_error_mm": float(err_mm.mean()), "pog_error_px": float(err_px.mean()),
                "angular_error": float(ang.mean())}

    def kd_loss(self, student, teacher, *, temperature=4.0, mse=False):
        s_hm, t_hm = student["hm"], teacher["hm"]
        if mse:
            return {"hm": F.mse_loss(torch.sigmoid(s_hm), torch.sigmoid(t_hm)),
                    "offset": F.mse_loss(student["offset"], teacher["offset"])}
        # The spatial KL of softmax(logits / T) (times T^2), per map.
        s = F.log_softmax(s_hm.float().flatten(2) / temperature, -1)
        t = F.log_softmax(t_hm.float().flatten(2) / temperature, -1)
        hm = (t.exp() * (t - s)).sum(-1).mean() * temperature ** 2
        # Offsets only matter where the peak is: weight each cell by the teacher's spatial softmax.
        w = torch.softmax(t_hm.float().flatten(2), -1).unsqueeze(2)  # (B, 1, 1, HW)
        diff = (student["offset"].float() - teacher["offset"].float()).abs().flatten(2).unsqueeze(1)
        return {"hm": hm, "offset": (w * diff).sum(-1).mean()}

    def label_columns(self, data: TaskData):
        """Gaze pitch/yaw in degrees where the data has the gaze direction, else the PoG (camera-plane mm)."""
        if "gaze_pitchyaw" in data.meta:
            from workbench.tasks.base import gaze_pitchyaw_degrees

            return gaze_pitchyaw_degrees(data.meta["gaze_pitchyaw"])
        return data.tensors["pog_cam"].numpy().astype(np.float32), ("pog_x_mm", "pog_y_mm")

    def write_predictions(self, path, outputs, data, names):
        """CSV ``name, pog_x_mm, pog_y_mm``: the decoded PoG in camera-plane millimetres."""
        from workbench.tasks.base import write_csv

        pog = self.decode(outputs).numpy()
        write_csv(path, ["name", "pog_x_mm", "pog_y_mm"],
                  ([n, *(f"{v:.6f}" for v in row)] for n, row in zip(names, pog)))

    def explain_target(self, outputs):
        pog = self.decode(outputs, soft=True)
        peak = outputs["hm"].flatten(1).max(-1).values
        return torch.cat([pog.to(peak.dtype), peak.unsqueeze(-1)], -1)

    def constant_predictor(self, train: TaskData):
        """The heatmap/offset that decodes to the training mean PoG (at the default grid of this data)."""
        w, h = self.frame_size or (480, 270)
        gw, gh = self.grid_size(w, h)
        xy = train.tensors["hm_xy"].double().mean(0)
        cell = xy.floor().long()
        hm = torch.full((1, gh, gw), -10.0)
        hm[0, cell[1].clamp(0, gh - 1), cell[0].clamp(0, gw - 1)] = 10.0
        offset = torch.zeros(2, gh, gw)
        offset[:, :, :] = (xy - cell.double()).float().view(2, 1, 1)
        return {"hm": hm, "offset": offset}
