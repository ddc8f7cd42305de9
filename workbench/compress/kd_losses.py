"""Knowledge-distillation losses: the response term, FitNets feature hints and saliency maps.

A distilled student (:func:`workbench.compress.distill.distill`) trains with the loss

    loss = (1 - alpha) * task_loss(student, ground truth)
           + alpha * (response + hint_weight * feature + saliency_weight * saliency)

* ``response`` (:func:`response_kd`): the task's outputs matched to the frozen teacher's by the task's own
  terms (:meth:`workbench.tasks.Task.kd_loss`). Regressions (angles, PoG, lo/la) use the task's ground-truth
  loss form with the teacher's output as the target, so alpha interpolates between terms of the same
  scale; heat maps use the spatial KL of softmax(logits / T) (times T^2), their offsets L1 weighted by the
  teacher's spatial softmax; binary logits use the Bernoulli KL of sigmoid(logit / T) (times T^2).
  ``response_loss="mse"`` switches every term to a mean squared error (of probabilities for heat maps).
* ``feature`` (FitNets hints, :class:`FeatureHints`): forward hooks on a teacher layer and a student layer; a
  learned 1x1 conv (maps) or linear (vectors, sequences) adapter takes the student's features to the
  teacher's shape; the hint loss is their mean squared error divided by the teacher features' mean square
  (scale-free).
* ``saliency`` (:func:`saliency_maps`, :func:`saliency_kd`): the student looks where the teacher looks. For
  every image input and every column of the task's ``explain_target`` (what ``workbench analyze saliency``
  explains), the map |d target / d input| summed over channels, averaged over blocks of pixels down to at
  most ``grid`` x ``grid`` cells (16: where a model looks, without the pixel noise of raw gradients that no
  other model can match), is L2-normalized per sample (scale-free: only where a model looks counts, not
  how steep it is); the loss is the mean over samples, columns and
  image inputs of ``1 - cos(student map, teacher map)`` (0 for identical maps, 1 for disjoint ones). The
  student's maps are built with ``create_graph=True`` (double backward), so the loss trains the student.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import WorkbenchError
from workbench.tasks import Task
from workbench.utils.hooks import find_module

__all__ = ["RESPONSE_LOSSES", "FeatureHints", "HintCapture", "image_inputs", "parse_hint", "response_kd",
           "native_rnn_kernels", "saliency_kd", "saliency_maps"]

RESPONSE_LOSSES = ("auto", "mse")


# ---- response KD ---------------------------------------------------------------------------------
def response_kd(task: Task | str, student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], *,
                temperature: float = 4.0, loss: str = "auto") -> tuple[torch.Tensor, dict[str, float]]:
    """Response-KD loss of ``student`` outputs against ``teacher`` outputs (same dict keys and shapes):
    the sum of the task's own terms (:meth:`Task.kd_loss`).

    Returns (scalar loss, {"kd_<output>": float}); zero when the outputs are equal.
    """
    if loss not in RESPONSE_LOSSES:
        raise WorkbenchError(f"unknown response loss {loss!r}; expected one of {', '.join(RESPONSE_LOSSES)}")
    if temperature <= 0:
        raise WorkbenchError(f"temperature must be > 0, got {temperature}")
    if isinstance(task, str):
        from workbench.tasks import get_task

        try:
            task = get_task(task)
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from None
    terms = task.kd_loss(student, teacher, temperature=temperature, mse=loss == "mse")
    if not terms:
        raise WorkbenchError(f"task {task.name!r} defines no response distillation terms")
    total = sum(terms.values())
    return total, {f"kd_{k}": float(v.detach()) for k, v in terms.items()}


# ---- hooks and hints -----------------------------------------------------------------------------
def _first(x: Any) -> torch.Tensor:
    """A layer's output as one tensor (an LSTM returns (output, (h, c)): its output sequence)."""
    while isinstance(x, (tuple, list)):
        x = x[0]
    if not isinstance(x, torch.Tensor):
        raise WorkbenchError(f"hint layer output is {type(x).__name__}, not a tensor")
    return x


def parse_hint(text: str) -> tuple[str, str]:
    """``"TEACHER_LAYER:STUDENT_LAYER"`` -> (teacher layer, student layer)."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise WorkbenchError(f"a hint is TEACHER_LAYER:STUDENT_LAYER, got {text!r}")
    return parts[0].strip(), parts[1].strip()


class HintCapture:
    """A forward hook on ``model``'s layer ``name`` keeping its last output (a clone: later in-place ops must
    not change it). ``who`` ("teacher" or "student") names the side when the layer is unknown."""

    def __init__(self, model: nn.Module, name: str, who: str, *, detach: bool) -> None:
        module = find_module(model, name, what=f"{who} layer", more="any name from named_modules() works")
        self.value: torch.Tensor | None = None
        self.detach = detach
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, _mod, _args, out) -> None:
        x = _first(out)
        self.value = x.detach().clone() if self.detach else x.clone()

    def take(self) -> torch.Tensor:
        if self.value is None:
            raise WorkbenchError("a hint layer did not run in the forward pass")
        x, self.value = self.value, None
        return x


def _adapter(s_shape: torch.Size, t_shape: torch.Size) -> nn.Module:
    """A learned map from student features (shape without batch) to the teacher's."""
    if len(s_shape) == 3 and len(t_shape) == 3:
        return nn.Conv2d(s_shape[0], t_shape[0], 1)
    if len(s_shape) == 2 and len(t_shape) == 2 and s_shape[0] == t_shape[0]:
        return nn.Linear(s_shape[1], t_shape[1])  # sequences: per step
    if len(s_shape) == 1 and len(t_shape) == 1:
        return nn.Linear(s_shape[0], t_shape[0])
    ns, nt = int(torch.tensor(s_shape).prod()), int(torch.tensor(t_shape).prod())
    if ns * nt > 4_000_000:
        raise WorkbenchError(f"hint shapes {tuple(s_shape)} (student) and {tuple(t_shape)} (teacher) differ in kind and "
                             f"a dense adapter would need {ns * nt:,} weights; pick layers of matching kind")
    return nn.Sequential(nn.Flatten(), nn.Linear(ns, nt))


class FeatureHints(nn.Module):
    """FitNets hints between ``pairs`` of (teacher layer, student layer), through learned adapters.

    Hooks capture the student's features in the engine's forward pass; the teacher's come from
    :class:`~workbench.compress.teacher_cache.TeacherCache`. ``loss(teacher_features)`` -> mean over pairs of
    ``mse(adapter(student), teacher) / mean(teacher^2)``.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], shapes: Sequence[tuple[torch.Size, torch.Size]]) -> None:
        super().__init__()
        self.pairs = list(pairs)
        self.adapters = nn.ModuleList(_adapter(s, t) for s, t in shapes)
        self.t_shapes = [t for _, t in shapes]
        self._captures: list[HintCapture] = []

    def attach(self, student: nn.Module) -> None:
        """Register the student-side hooks (on the model the engine trains)."""
        self.detach_hooks()
        self._captures = [HintCapture(student, s, "student", detach=False) for _, s in self.pairs]

    def detach_hooks(self) -> None:
        for c in self._captures:
            c.handle.remove()
        self._captures = []

    def adapt(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Student features of pair k -> the teacher's shape (maps are also resized to its grid)."""
        y = self.adapters[k](x)
        t = self.t_shapes[k]
        if y.dim() == 4 and tuple(y.shape[-2:]) != tuple(t[-2:]):
            big = y.shape[-2] >= t[-2] and y.shape[-1] >= t[-1]
            y = F.adaptive_avg_pool2d(y, t[-2:]) if big else F.interpolate(y, size=tuple(t[-2:]), mode="bilinear")
        return y.reshape(len(y), *t)

    def loss(self, teacher_features: Sequence[torch.Tensor]) -> torch.Tensor:
        terms = []
        for k, (cap, t) in enumerate(zip(self._captures, teacher_features)):
            s = self.adapt(k, cap.take())
            t = t.to(s.dtype)
            terms.append(F.mse_loss(s, t) / t.pow(2).mean().clamp(min=1e-8))
        return torch.stack(terms).mean()


# ---- saliency KD ---------------------------------------------------------------------------------
def image_inputs(inputs: Sequence[torch.Tensor]) -> list[int]:
    """Indices of the image inputs ((B, C, H, W) or tracks (B, T, C, H, W)) whose maps saliency KD matches;
    the same test as ``workbench analyze saliency`` (head pose, landmarks and other vectors are left out)."""
    from workbench.analyze.attribution import is_image

    return [i for i, x in enumerate(inputs) if is_image(x)]


def saliency_maps(target: torch.Tensor, inputs: Sequence[torch.Tensor], which: Sequence[int], *,
                  create_graph: bool, grid: int = 0) -> list[torch.Tensor]:
    """Input-gradient saliency of ``target`` (B, K), the task's explain_target, on ``inputs[i]`` for i in
    ``which`` (each must require grad and be in ``target``'s graph).

    Returns one (B, K, [T,] h, w) map per input: |d target[:, k] / d input| summed over channels, averaged
    down to at most ``grid`` x ``grid`` cells (0: full resolution) and L2-normalized per sample and column
    (a map the column does not depend on is all zero). Per-sample gradients come from one backward of
    ``target[:, k].sum()`` per column: exact for a model in eval mode, whose samples do not interact;
    BatchNorm in train mode adds the (O(1/B)) gradient through the batch statistics. ``create_graph=True``
    keeps the graph so a loss on the maps trains the model.
    """
    target = target.reshape(len(target), -1)
    xs = [inputs[i] for i in which]
    per_col: list[list[torch.Tensor]] = [[] for _ in xs]
    for k in range(target.shape[1]):
        if target.requires_grad:
            grads = torch.autograd.grad(target[:, k].sum(), xs, create_graph=create_graph, retain_graph=True,
                                        allow_unused=True)
        else:  # a target that does not depend on any input (or on anything trainable)
            grads = (None,) * len(xs)
        for j, (x, g) in enumerate(zip(xs, grads)):
            heat = (torch.zeros_like(x) if g is None else g).abs().sum(-3)  # (B, [T,] H, W)
            if grid:
                heat = _pool(heat, grid)
            norm = heat.flatten(1).norm(dim=1).clamp(min=1e-12)
            per_col[j].append(heat / norm.view(-1, *[1] * (heat.dim() - 1)))
    return [torch.stack(maps, 1) for maps in per_col]


def _pool(heat: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, [T,] H, W) -> (B, [T,] h, w) with h, w <= ``grid``: the mean over blocks of pixels."""
    h, w = heat.shape[-2:]
    if h <= grid and w <= grid:
        return heat
    size = (min(h, grid), min(w, grid))
    flat = heat.reshape(-1, 1, h, w)
    return F.adaptive_avg_pool2d(flat, size).reshape(*heat.shape[:-2], *size)


@contextmanager
def native_rnn_kernels(*models: nn.Module) -> Iterator[None]:
    """Run the RNN layers of ``models`` on PyTorch's native kernels while inside: cuDNN's RNN has no second
    derivative (the student's maps need one) and no backward in eval mode (the frozen teacher's maps need
    one). Only the RNN layers leave cuDNN, and only on CUDA does it change anything."""
    saved: list[bool] = []

    def before(_mod, _args) -> None:
        saved.append(torch.backends.cudnn.enabled)
        torch.backends.cudnn.enabled = False

    def after(_mod, _args, _out) -> None:
        torch.backends.cudnn.enabled = saved.pop()

    handles = []
    for model in models:
        for mod in model.modules():
            if isinstance(mod, nn.RNNBase):
                handles.append(mod.register_forward_pre_hook(before))
                handles.append(mod.register_forward_hook(after, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def saliency_kd(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Saliency-KD loss of ``student`` maps against ``teacher`` maps (:func:`saliency_maps`, same shapes):
    the mean over inputs, samples and columns of ``1 - cos`` (= half the squared distance of the unit maps)."""
    if len(student) != len(teacher) or not student:
        raise WorkbenchError(f"saliency KD needs one teacher map per student map, got {len(teacher)} "
                             f"and {len(student)}")
    terms = []
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise WorkbenchError(f"student saliency map {tuple(s.shape)} and teacher map {tuple(t.shape)} differ: "
                                 "the models must take the same inputs")
        d = (s - t.to(s.dtype)).pow(2).flatten(2).sum(-1)  # (B, K)
        terms.append(0.5 * d.mean())
    return torch.stack(terms).mean()
