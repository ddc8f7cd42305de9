"""Gaze Workbench: train, explain and compress gaze-estimation models."""

__version__ = "0.1.0"
