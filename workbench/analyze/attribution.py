"""Gradient attribution on Captum for every model of every task, in batches of bounded size.

Captum sees a wrapper ``forward(*images, *others) -> (B, K)``: the model's image inputs are attributed,
its other inputs (GazePose's head-pose and landmark priors) ride along as ``additional_forward_args``,
and the output is the task's ``explain_target`` (``target`` picks the column). The priors are not
attributed: they enter the model through binning (round -> Embedding lookup), whose gradient is zero,
so no gradient method can attribute them.

Methods (``METHODS``): ``saliency`` (|gradient|), ``ig`` (IntegratedGradients, zero baseline = the
normalized data mean), ``gradshap`` (GradientShap), ``smoothgrad`` (NoiseTunnel over the gradient),
``gradcam`` (LayerGradCam on a conv layer per image input: the one the model's registration names, else
the last conv on that input's path; upsampled bilinearly to the input) and
``occlusion`` (a sliding zero patch of 1/8 of the image side, stride half of it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.analyze.subject import Subject
from workbench.errors import WorkbenchError
from workbench.facts import registered_gradcam_layers
from workbench.utils.hooks import find_module, forward_hooks, frozen, no_inplace
from workbench.utils.registry import ClassRegistry

_REGISTRY = ClassRegistry("attribution method")
_ALIASES: dict[str, str] = {}


def register_method(cls: type["Method"]) -> type["Method"]:
    """Class decorator: register an attribution method under ``cls.name`` (and its ``aliases``)."""
    taken = [k for k in (cls.name, *cls.aliases) if k in _ALIASES or (k != cls.name and k in _REGISTRY)]
    if taken:
        raise ValueError(f"attribution method name {taken[0]!r} is already registered")
    _REGISTRY.register(cls)
    _ALIASES.update({a: cls.name for a in cls.aliases})
    return cls


def canonical_method(method: str) -> str:
    key = method.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise WorkbenchError(f"unknown attribution method {method!r}; expected one of {', '.join(_REGISTRY)}")
    return key


@dataclass
class Settings:
    """Knobs of the methods. ``internal_batch_size`` bounds the rows per forward pass of IG and of
    conductance (examples x steps)."""

    steps: int = 32
    internal_batch_size: int = 64
    smooth_samples: int = 16
    smooth_noise: float = 0.15  # SmoothGrad noise sigma as a fraction of the input's value range
    shap_samples: int = 16
    baseline: str = "zero"  # IG / conductance baseline: "zero" (the data mean) or "blur"
    seed: int = 0


def is_image(x: torch.Tensor) -> bool:
    """A model input is an image (B, C, H, W) or an image sequence (B, T, C, H, W) with C in 1..4."""
    return x.is_floating_point() and x.dim() in (4, 5) and x.shape[-3] in (1, 2, 3, 4) and min(x.shape[-2:]) >= 8


def split_inputs(inputs: Sequence[torch.Tensor]) -> tuple[list[int], list[int]]:
    """(indices of image inputs, indices of the rest); a model without images attributes every float input."""
    images = [i for i, x in enumerate(inputs) if is_image(x)]
    if not images:
        images = [i for i, x in enumerate(inputs) if x.is_floating_point()]
    return images, [i for i in range(len(inputs)) if i not in images]


def make_forward(subject: Subject, n_inputs: int, attributed: Sequence[int]) -> Callable[..., torch.Tensor]:
    """``f(*attributed_inputs, *other_inputs) -> (B, K)`` explain target, inputs back in model order."""
    others = [i for i in range(n_inputs) if i not in attributed]

    def forward(*args: torch.Tensor) -> torch.Tensor:
        full: list[Any] = [None] * n_inputs
        for i, x in zip(list(attributed) + others, args):
            full[i] = x
        return subject.explain(subject.model(*full))

    return forward


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur the last two dims of (..., H, W) with a separable Gaussian (edge pixels replicated)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    shape = x.shape
    y = F.pad(x.reshape(-1, 1, *shape[-2:]), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return y.reshape(shape)


def baseline_of(x: torch.Tensor, kind: str) -> torch.Tensor:
    """IG's baseline for input ``x``: zeros (the normalized data mean) or a blurred copy."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blur":
        return gaussian_blur(x, max(1.0, min(x.shape[-2:]) / 16))
    raise WorkbenchError(f"unknown baseline {kind!r}; expected zero or blur")


def _depends_on(out: torch.Tensor, x: torch.Tensor) -> bool:
    if not out.requires_grad:
        return False
    (g,) = torch.autograd.grad(out.float().sum(), x, retain_graph=True, allow_unused=True)
    return g is not None


def gradcam_layers(subject: Subject, inputs: Sequence[torch.Tensor], image_idx: Sequence[int],
                   layer: str | None = None) -> dict[int, tuple[str, nn.Module]]:
    """The conv layer GradCam reads for each image input (``layer`` overrides; it must be on that path)."""
    model = subject.model
    names = subject.input_names
    if layer is not None:
        chosen = {i: layer for i in image_idx}
    else:
        # The model's registration names its GradCam layer per input; a model without one (a user's
        # model, a student) gets the last conv on each input's path, found below.
        table = registered_gradcam_layers(subject.config or {})
        chosen = {i: table.get(names[i]) for i in image_idx if i < len(names)}
    # Trace: which modules' outputs depend on which image input (one sample, parameters frozen).
    probe = [x[:1].detach().clone().requires_grad_(is_image(x)) for x in inputs]
    records: list[tuple[str, nn.Module, torch.Tensor]] = []

    def record(name: str, m: nn.Module, _args: tuple, o: Any) -> None:
        records.append((name, m, o[0] if isinstance(o, tuple) else o))

    with forward_hooks([(n, m) for n, m in model.named_modules() if n], record), no_inplace(model), \
            frozen(model), torch.enable_grad():
        model(*probe)
    by_name = {name: (mod, out) for name, mod, out in records}
    result: dict[int, tuple[str, nn.Module]] = {}
    for i in image_idx:
        want = chosen.get(i)
        if want is not None:
            mod = find_module(model, want)
            if want not in by_name:
                raise WorkbenchError(f"LayerGradCam: layer {want!r} does not run in the forward pass")
            out = by_name[want][1]
            if not isinstance(out, torch.Tensor) or out.dim() != 4 or min(out.shape[-2:]) < 2:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise WorkbenchError(f"LayerGradCam needs a conv layer with a spatial output (B, C, h, w); "
                                     f"layer {want!r} gives {shape}")
            if not _depends_on(out, probe[i]):
                if layer is not None and len(image_idx) > 1:
                    continue  # an explicit layer explains the inputs on its path only
                raise WorkbenchError(f"LayerGradCam: layer {want!r} does not depend on input {names[i]!r}")
            result[i] = (want, mod)
            continue
        convs = [(n, m, o) for n, m, o in records if isinstance(m, nn.Conv2d) and m.out_channels > 1
                 and isinstance(o, torch.Tensor) and o.dim() == 4 and min(o.shape[-2:]) >= 2]
        convs = [(n, m) for n, m, o in convs if _depends_on(o, probe[i])]
        if not convs:
            raise WorkbenchError(f"LayerGradCam needs a conv layer with a spatial output, and input "
                                 f"{names[i]!r} of this model reaches none (use another method)")
        result[i] = convs[-1]
    if not result:
        raise WorkbenchError(f"LayerGradCam: layer {layer!r} is on the path of no image input")
    return result


def attribute(subject: Subject, inputs: Sequence[torch.Tensor], target: int, method: str, *,
              settings: Settings | None = None, layers: dict[int, tuple[str, nn.Module]] | None = None,
              ) -> dict[int, torch.Tensor]:
    """Attributions of explain-target column ``target`` for one batch: {input index: tensor}.

    Each tensor has its input's shape (B, [T,] C, H, W); GradCam's have one channel. Inputs not in the
    result were not attributed (see the module docstring).
    """
    s = settings or Settings()
    method = canonical_method(method)
    inputs = [x.detach() for x in inputs]
    attributed, others = split_inputs(inputs)
    impl = _REGISTRY[method]()
    if impl.reads_layers:
        layers = layers or gradcam_layers(subject, inputs, attributed)
        attributed = [i for i in attributed if i in layers]
        others = [i for i in range(len(inputs)) if i not in attributed]
    forward = make_forward(subject, len(inputs), attributed)
    xs = tuple(inputs[i] for i in attributed)
    extra = tuple(inputs[i] for i in others) or None
    model = subject.model
    with no_inplace(model), frozen(model), torch.enable_grad(), warnings.catch_warnings():
        # Captum warns that the inputs did not require gradients; it sets that itself.
        warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
        attrs = impl.attribute(forward, xs, target, extra, s,
                               layers=[layers[i][1] for i in attributed] if impl.reads_layers else None)
    return {i: a.detach() for i, a in zip(attributed, attrs)}


# ---- the methods: one class each, one verb ---------------------------------------------------------
class Method:
    """An attribution method. ``attribute(forward, xs, target, extra, settings)`` returns one tensor per
    attributed input in ``xs`` (Captum's conventions: ``extra`` rides along as additional forward args).
    A method that ``reads_layers`` (GradCam) also gets ``layers``: one module per input in ``xs``.
    Adding a method is one class here with ``@register_method``."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    reads_layers: bool = False

    def attribute(self, forward: Callable[..., torch.Tensor], xs: tuple[torch.Tensor, ...], target: int,
                  extra: tuple[torch.Tensor, ...] | None, s: Settings,
                  layers: Sequence[nn.Module] | None = None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


def _tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


@register_method
class SaliencyMethod(Method):
    name, aliases = "saliency", ("gradient",)

    def attribute(self, forward, xs, target, extra, s, layers=None):
        from captum.attr import Saliency

        return _tuple(Saliency(forward).attribute(xs, target=target, additional_forward_args=extra, abs=True))


@register_method
class IntegratedGradientsMethod(Method):
    name, aliases = "ig", ("integratedgradients", "integrated_gradients", "integrated-gradients")

    def attribute(self, forward, xs, target, extra, s, layers=None):
        from captum.attr import IntegratedGradients

        base = tuple(baseline_of(x, s.baseline) for x in xs)
        return _tuple(IntegratedGradients(forward).attribute(
            xs, baselines=base, target=target, additional_forward_args=extra, n_steps=s.steps,
            internal_batch_size=s.internal_batch_size))


@register_method
class GradientShapMethod(Method):
    name, aliases = "gradshap", ("gradientshap", "shap")

    def attribute(self, forward, xs, target, extra, s, layers=None):
        from captum.attr import GradientShap

        gen = torch.Generator().manual_seed(s.seed)
        base = tuple(torch.cat([torch.zeros_like(x[:1]), 0.5 * torch.randn((3, *x.shape[1:]), generator=gen)])
                     for x in xs)
        torch.manual_seed(s.seed)
        return _tuple(GradientShap(forward).attribute(xs, baselines=base, n_samples=s.shap_samples, stdevs=0.1,
                                                      target=target, additional_forward_args=extra))


@register_method
class SmoothGradMethod(Method):
    name, aliases = "smoothgrad", ("noisetunnel",)

    def attribute(self, forward, xs, target, extra, s, layers=None):
        from captum.attr import NoiseTunnel, Saliency

        torch.manual_seed(s.seed)
        sd = tuple(float(s.smooth_noise * (x.max() - x.min()).clamp(min=1e-6)) for x in xs)
        return _tuple(NoiseTunnel(Saliency(forward)).attribute(
            xs, nt_type="smoothgrad", nt_samples=s.smooth_samples,
            nt_samples_batch_size=max(1, s.internal_batch_size // len(xs[0])),
            stdevs=sd, target=target, additional_forward_args=extra, abs=False))


@register_method
class GradCamMethod(Method):
    """LayerGradCam at each input's layer, upsampled to the input's (H, W): (B, [T,] 1, H, W), ReLU'd."""

    name, aliases, reads_layers = "gradcam", ("layergradcam", "grad_cam", "grad-cam"), True

    def attribute(self, forward, xs, target, extra, s, layers=None):
        return tuple(_gradcam(forward, layer, xs, x, target, extra) for layer, x in zip(layers or (), xs))


@register_method
class OcclusionMethod(Method):
    """A sliding zero patch of 1/8 of the image side, stride half of it (one frame of a track at a time)."""

    name = "occlusion"

    def attribute(self, forward, xs, target, extra, s, layers=None):
        from captum.attr import Occlusion

        windows, strides = [], []
        for x in xs:
            w = max(2, round(min(x.shape[-2:]) / 8))
            lead = (1,) if x.dim() == 5 else ()  # one frame of a track at a time
            windows.append((*lead, x.shape[-3], w, w))
            strides.append((*lead, x.shape[-3], max(1, w // 2), max(1, w // 2)))
        return _tuple(Occlusion(forward).attribute(
            xs, sliding_window_shapes=tuple(windows), strides=tuple(strides), baselines=tuple(0.0 for _ in xs),
            target=target, additional_forward_args=extra,
            perturbations_per_eval=max(1, s.internal_batch_size // len(xs[0]))))


METHODS = tuple(_REGISTRY)  # saliency, ig, gradshap, smoothgrad, gradcam, occlusion


def _gradcam(forward, layer: nn.Module, xs, x: torch.Tensor, target: int, extra) -> torch.Tensor:
    """LayerGradCam at ``layer`` upsampled to ``x``'s (H, W): (B, [T,] 1, H, W) (ReLU'd, as Grad-CAM)."""
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(forward, layer).attribute(xs, target=target, additional_forward_args=extra, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    lead = x.shape[:-3]
    if cam.shape[0] != lead.numel():
        raise WorkbenchError(f"LayerGradCam: the layer's batch ({cam.shape[0]}) does not match the input's {tuple(lead)}")
    return cam.reshape(*lead, 1, *x.shape[-2:])


def heat(attr: torch.Tensor) -> torch.Tensor:
    """(B, [T,] C, H, W) attribution -> (B, [T,] H, W) non-negative map: |attr| summed over channels."""
    return attr.abs().sum(-3)
