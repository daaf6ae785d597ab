"""A batch of decoded images of one shape, seen as host arrays or as one device tensor, whichever a stage needs.

The CPU path reads the host view only (``host``): it needs no PyTorch, which only the device view
(``tensor``, the GPU path) imports."""

from __future__ import annotations

from functools import cached_property

import numpy as np


class ImageBatch:
    """Images of one shape: uint8 (H, W, 3) numpy arrays (PIL decoding) or uint8 (3, H, W) CUDA
    tensors (nvJPEG). Each view is made once, on first use: ``tensor`` float32 (N, 3, H, W) with
    values 0..255 on ``device`` (PyTorch); ``host`` the list of uint8 (H, W, 3) arrays."""

    def __init__(self, images: list, device: str = "cpu"):
        if not images:
            raise ValueError("an ImageBatch holds at least one image")
        self.images, self.device = images, device
        self.on_host = isinstance(images[0], np.ndarray)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def height(self) -> int:
        return int(self.images[0].shape[0] if self.on_host else self.images[0].shape[1])

    @property
    def width(self) -> int:
        return int(self.images[0].shape[1] if self.on_host else self.images[0].shape[2])

    @cached_property
    def tensor(self):
        import torch

        if self.on_host:
            data = torch.from_numpy(np.stack(self.images))
            return data.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        for img in self.images:  # decoded on nvJPEG's side stream, read on this one: keep the memory until then
            img.record_stream(torch.cuda.current_stream())
        return torch.stack(self.images).float()

    @cached_property
    def host(self) -> list[np.ndarray]:
        if self.on_host:
            return self.images
        return [np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy()) for img in self.images]

    def subset(self, indices: list[int]) -> ImageBatch:
        return ImageBatch([self.images[i] for i in indices], self.device)
