"""See the predictions: ground truth and prediction drawn per task (`visualize`), and a live camera mode (`live`)."""

from workbench.visualize.live import live
from workbench.visualize.render import visualize

__all__ = ["live", "visualize"]
