"""Detectors: each finds every face in a batch of images (a box, five landmarks when it has them, a
score). One module per detector; the built-in ones are registered below, one line each, the same
call a plugin makes (see docs/architecture.md, "Adding a detector").

``mtcnn`` (default) is the batched MTCNN (ONNX Runtime and NumPy on a CPU, PyTorch on a GPU); ``mtcnn-reference`` is
facenet-pytorch's own MTCNN, the oracle tests compare against; ``dlib`` is dlib's HOG detector;
``dlib+mtcnn`` runs HOG and lets MTCNN find the faces HOG misses; ``yunet`` is OpenCV's YuNet
(several times MTCNN's speed on a CPU) run in batches on ONNX Runtime, ``yunet-opencv`` the same
network through ``cv2.FaceDetectorYN``; ``yunet+onet`` is YuNet with each box re-framed by MTCNN's
O-Net; ``resize`` takes the whole image as the face (the seed's option).
"""

from __future__ import annotations

from facerec.detect.base import Detection, Detector, box_iou, by_prominence, prominence
from facerec.detect.cascade import dlib_then_mtcnn
from facerec.detect.dlib_hog import DlibHOGDetector
from facerec.detect.mtcnn import BatchedMTCNNDetector, ReferenceMTCNNDetector
from facerec.detect.registry import create_detector, detector_names, register_detector
from facerec.detect.whole_image import WholeImageDetector
from facerec.detect.yunet import OpenCVYuNetDetector, ReframedYuNetDetector, YuNetDetector

register_detector("mtcnn", BatchedMTCNNDetector)
register_detector("mtcnn-reference", ReferenceMTCNNDetector)
register_detector("dlib", DlibHOGDetector)
register_detector("dlib+mtcnn", dlib_then_mtcnn)
register_detector("yunet", YuNetDetector)
register_detector("yunet-opencv", OpenCVYuNetDetector)
register_detector("yunet+onet", ReframedYuNetDetector)
register_detector("resize", WholeImageDetector)

__all__ = [
    "Detection",
    "Detector",
    "box_iou",
    "by_prominence",
    "create_detector",
    "detector_names",
    "prominence",
    "register_detector",
]
