"""What the networks run on: model files fetched and checked, ONNX Runtime and PyTorch sessions,
dlib's model files, the device."""
