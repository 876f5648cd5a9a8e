"""From a trained model to the robot.

ONNX export, int8 quantization with its accuracy gate, calibration samples and the
Hailo Dataflow Compiler flow.
"""
