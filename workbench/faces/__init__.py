"""Real faces in: face and eye detection (OpenCV cascades, pluggable), MPIIFaceGaze-style normalization
to a model's training crops, and photos/videos through a run's model (predict, saliency, visualize, live)."""

from workbench.faces.detect import CascadeDetector, Detector, Face, load_detector
from workbench.faces.normalize import CropGeometry, Normalized, crop_geometry, normalize, warp_back

__all__ = ["CascadeDetector", "Detector", "Face", "load_detector", "CropGeometry", "Normalized", "crop_geometry",
           "normalize", "warp_back"]
