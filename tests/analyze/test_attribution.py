"""Attribution methods are registered classes: a new one is one class plus one registration."""

import pytest
import torch
from torch import nn

from workbench.analyze import attribution as A
from workbench.analyze.subject import load_subject
from workbench.errors import WorkbenchError


class _Linear(nn.Module):
    input_names = ("x",)

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.arange(16.0).reshape(1, 4, 4))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_the_six_methods_and_their_aliases():
    assert A.METHODS == ("saliency", "ig", "gradshap", "smoothgrad", "gradcam", "occlusion")
    assert A.canonical_method("Integrated-Gradients") == "ig" and A.canonical_method("Grad-CAM") == "gradcam"
    with pytest.raises(WorkbenchError, match="unknown attribution method 'nope'; expected one of saliency, ig"):
        A.canonical_method("nope")


def test_a_registered_method_is_used_by_attribute_and_names_are_unique():
    @A.register_method
    class InputTimesOne(A.Method):
        name, aliases = "test-input", ("test-input-alias",)

        def attribute(self, forward, xs, target, extra, s, layers=None):
            return tuple(x.clone() for x in xs)

    try:
        subject = load_subject(_Linear(), input_shapes={"x": (1, 4, 4)})
        x = torch.randn(3, 1, 4, 4)
        got = A.attribute(subject, [x], 0, "test-input-alias")
        torch.testing.assert_close(got[0], x)
        with pytest.raises(ValueError, match="already registered"):
            A.register_method(InputTimesOne)
    finally:
        A._REGISTRY.pop("test-input", None)
        A._ALIASES.pop("test-input-alias", None)
