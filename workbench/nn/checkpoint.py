"""Load torchvision-format checkpoints into the workbench backbones.

The backbones in :mod:`workbench.nn` use torchvision's key names, so a
torchvision ``.pth`` loads by key. What differs in gaze work is the ends of the
network: eye crops are often grey (1 input channel) and the head regresses 2-3
numbers instead of 1000 ImageNet logits. :func:`load_torchvision_state_dict`
bridges exactly those two differences, and refuses anything else loudly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import nn

__all__ = ["HEAD_PREFIXES", "LoadReport", "load_torchvision_state_dict", "read_state_dict"]

logger = logging.getLogger("workbench.nn")

# torchvision names its classification head ``fc`` (ResNet) or ``classifier`` (MobileNet).
HEAD_PREFIXES: tuple[str, ...] = ("fc.", "classifier.")

# Wrappers produced by common training loops around the actual state dict.
_WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "model")

StateDictSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]


@dataclass
class LoadReport:
    """What :func:`load_torchvision_state_dict` did, as lists of key names / lines.

    ``adapted``: human-readable lines, e.g. "conv1.weight: summed 3 input channels to 1";
    ``dropped``: checkpoint keys deliberately not loaded (a mismatching head);
    ``missing``: model keys the checkpoint did not provide (they keep their init);
    ``unexpected``: checkpoint keys the model has no place for.
    """

    adapted: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _is_head(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


def _load_error_reason(exc: BaseException) -> str:
    """One line saying why ``torch.load`` failed.

    The weights-only unpickler wraps the real cause in a paragraph advising
    ``weights_only=False``; that advice is wrong here (we never unpickle code),
    so keep only the line after its "WeightsUnpickler error:" marker.
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"


def read_state_dict(source: StateDictSource) -> dict[str, torch.Tensor]:
    """Return a flat ``{key: Tensor}`` state dict from a ``.pth`` path or a mapping.

    Files are read with ``torch.load(..., map_location="cpu", weights_only=True)``
    so a checkpoint cannot execute code. ``{"state_dict": ...}`` / ``{"model": ...}``
    wrappers are unwrapped and a DataParallel ``module.`` prefix is stripped.
    Raises ``ValueError`` for unreadable files and for anything that is not a
    mapping of str to Tensor; ``FileNotFoundError`` for a missing path.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"checkpoint not found: {name}")
        try:
            obj: Any = torch.load(name, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip/EOF errors all mean "not a checkpoint"
            raise ValueError(f"{name}: not a readable PyTorch state dict ({_load_error_reason(exc)})") from exc
    else:
        name = "<state dict>"
        obj = source

    # Bounded so a self-referencing mapping cannot loop forever.
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
                continue
        break

    if not isinstance(obj, Mapping):
        raise ValueError(f"{name}: expected a state dict (mapping of str to Tensor), got {type(obj).__name__}")
    if not obj:
        raise ValueError(f"{name}: state dict is empty")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{name}: not a state dict: entry {key!r} is a {type(value).__name__}, expected a Tensor"
            )
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def _first_conv_key(model_sd: Mapping[str, torch.Tensor]) -> str | None:
    # The stem conv is the first 4-D weight in registration order for every
    # torchvision-style backbone (``conv1.weight``, ``features.0.0.weight``).
    return next((k for k, v in model_sd.items() if k.endswith("weight") and v.ndim == 4), None)


def _fmt(shape: torch.Size) -> str:
    return str(tuple(shape))


def load_torchvision_state_dict(
    model: nn.Module,
    state_dict_or_path: StateDictSource,
    *,
    strict_backbone: bool = True,
) -> LoadReport:
    """Load a torchvision-format state dict into ``model``, adapting stem and head.

    Adaptations:
      * classifier keys (``fc.*`` / ``classifier.*``) are dropped when the model
        has no head or any head shape differs (e.g. 1000 -> 2 classes);
      * when the model's first conv has 1 input channel and the checkpoint's
        has C > 1, the checkpoint kernel is summed over its input channels, so
        the model on a grey image equals the original on that image repeated C times.

    With ``strict_backbone`` a missing or unexpected non-head key raises
    ``ValueError`` (before anything is copied); otherwise they are only reported.
    ``num_batches_tracked`` buffers are optional (old torchvision files lack them).
    Any other shape mismatch raises ``ValueError`` naming the key and both shapes.
    """
    ckpt = read_state_dict(state_dict_or_path)
    model_sd = model.state_dict()
    report = LoadReport()

    # --- head: all-or-nothing, a half-loaded Linear would be meaningless.
    ckpt_head = [k for k in ckpt if _is_head(k)]
    model_head = {k for k in model_sd if _is_head(k)}
    if ckpt_head:
        keep = bool(model_head) and set(ckpt_head) == model_head and all(
            ckpt[k].shape == model_sd[k].shape for k in ckpt_head
        )
        if not keep:
            for k in ckpt_head:
                del ckpt[k]
            report.dropped.extend(ckpt_head)
            why = "model has no head" if not model_head else "head shape differs"
            logger.info("dropped %d classifier keys (%s): %s", len(ckpt_head), why, ", ".join(ckpt_head))

    # --- stem: grey-input adaptation of the first conv.
    stem = _first_conv_key(model_sd)
    if stem is not None and stem in ckpt:
        src, dst = ckpt[stem], model_sd[stem]
        if src.shape != dst.shape and src.ndim == 4 and src.shape[0] == dst.shape[0] and src.shape[2:] == dst.shape[2:]:
            c_src, c_dst = src.shape[1], dst.shape[1]
            if c_dst == 1 and c_src > 1:
                # Linearity: conv(w, x repeated C times) == conv(sum_c w_c, x).
                ckpt[stem] = src.sum(dim=1, keepdim=True)
                line = f"{stem}: summed {c_src} input channels to 1"
                report.adapted.append(line)
                logger.info(line)
            else:
                raise ValueError(
                    f"{stem}: cannot adapt {c_src} checkpoint input channels to {c_dst} "
                    f"(only C -> 1 by summing); expected shape {_fmt(dst.shape)}, got {_fmt(src.shape)}"
                )

    # --- everything else must match exactly; check all before copying anything.
    for k, v in ckpt.items():
        if k in model_sd and v.shape != model_sd[k].shape:
            raise ValueError(
                f"shape mismatch for '{k}': model expects {_fmt(model_sd[k].shape)}, checkpoint has {_fmt(v.shape)}"
            )

    # An absent counter only matters for momentum=None BN; the model keeps its own.
    report.missing = [k for k in model_sd if k not in ckpt and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in ckpt if k not in model_sd]
    bad_missing = [k for k in report.missing if not _is_head(k)]
    if strict_backbone and (bad_missing or report.unexpected):
        parts = []
        if bad_missing:
            parts.append(f"{len(bad_missing)} missing backbone keys (e.g. {', '.join(bad_missing[:3])})")
        if report.unexpected:
            parts.append(f"{len(report.unexpected)} unexpected keys (e.g. {', '.join(report.unexpected[:3])})")
        raise ValueError("checkpoint does not match the backbone: " + "; ".join(parts))
    if report.missing:
        logger.info(
            "%d model keys not in checkpoint (keep their init): %s",
            len(report.missing), ", ".join(report.missing[:10]),
        )
    if report.unexpected:
        logger.warning("%d checkpoint keys ignored: %s", len(report.unexpected), ", ".join(report.unexpected[:10]))

    model.load_state_dict({k: v for k, v in ckpt.items() if k in model_sd}, strict=False)
    return report
