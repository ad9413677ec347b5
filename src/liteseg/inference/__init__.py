"""Running a model on images: backends (torch, ONNX Runtime, OpenVINO), preprocessing, test-time augmentation,
inputs (images, folders, videos), the ``Segmenter`` and its visualisations."""
