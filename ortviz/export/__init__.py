"""The exporter: classifier (torch module or ONNX file) -> bundle of portable gradient graphs.

Pipeline: frontends (torch/ONNX -> ONNX) -> canonical (static, standard forward graph) ->
layers (the layer table) -> gradients (objective + onnxruntime-training builder) -> lowering
(default-domain ops only) -> writer (bundle directory). Needs the export environment.
"""
