"""ortviz: see what an image classifier learned, on stock ONNX Runtime."""

__version__ = "0.1.0"
