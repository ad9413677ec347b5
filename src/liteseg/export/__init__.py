"""Deployment exports: ONNX (fixed or dynamic shapes, several output modes), verification, INT8 quantization."""
