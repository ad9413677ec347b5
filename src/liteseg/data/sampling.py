"""The training data stream: an iteration-indexed batch sampler and a dataset wrapper with per-sample seeds.

Iteration ``t`` always reads the same samples with the same augmentation, whatever happened before: the
order of epoch ``e`` is ``DistributedSampler``'s shuffle with ``set_epoch(e)`` (last partial batch dropped),
and the sample at position ``g`` of iteration ``t``'s global batch is augmented with
``numpy.random.default_rng((seed, t, g))``. So a run resumed at iteration ``t`` sees exactly the data an
uninterrupted run sees, with any number of workers, and N processes with batch B see exactly the global batch
one process with batch N x B sees (process ``r`` holds global positions ``r, r + N, r + 2N, ...``).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .transforms import (Compose, Normalize, RandomDistort, RandomHorizontalFlip, RandomPaddingCrop,
                         ResizeStepScaling)

SampleKey = tuple[int, int, int]  # (dataset index, iteration, position in the global batch)


class IterationBatchSampler(Sampler[list[SampleKey]]):
    """Yields the batches of iterations ``start_iter .. iters - 1`` of one process (``rank`` of ``world_size``)."""

    def __init__(self, dataset_len: int, batch_size: int, iters: int, *, seed: int = 0, start_iter: int = 0,
                 world_size: int = 1, rank: int = 0) -> None:
        self.sampler = DistributedSampler(range(dataset_len), num_replicas=world_size, rank=rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.batches_per_epoch = len(self.sampler) // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"the dataset has {dataset_len} samples, fewer than one batch of {batch_size} per "
                             f"process x {world_size} processes; lower data.batch_size or add data")
        self.iters, self.start_iter, self.rank, self.world_size = iters, start_iter, rank, world_size

    def epoch_of(self, iteration: int) -> int:
        return iteration // self.batches_per_epoch

    def __len__(self) -> int:
        return max(self.iters - self.start_iter, 0)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        epoch, order = -1, []
        for t in range(self.start_iter, self.iters):
            if self.epoch_of(t) != epoch:
                epoch = self.epoch_of(t)
                self.sampler.set_epoch(epoch)
                order = list(self.sampler)
            b = t % self.batches_per_epoch
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(int(i), t, self.rank + self.world_size * j) for j, i in enumerate(indices)]


class AugmentedDataset(Dataset):
    """Wraps a dataset of ``{"image", "label"}`` items; ``dataset[(index, t, g)]`` -> normalised tensors."""

    def __init__(self, dataset: Any, transforms: Compose, normalize: Normalize, seed: int = 0) -> None:
        self.dataset, self.transforms, self.normalize, self.seed = dataset, transforms, normalize, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        index, t, position = key
        item = self.dataset[index]
        if item.get("label") is None:
            raise ValueError(f"{item.get('path', index)}: training needs labels, this sample has none")
        rng = np.random.default_rng((self.seed, t, position))
        image, label = self.transforms(item["image"], item["label"], rng)
        return self.normalize(image, label)


def build_train_transforms(augment: Any) -> Compose:
    """The PaddleSeg training pipeline (minus Normalize) from an ``AugmentConfig``."""
    steps: list[Callable] = [ResizeStepScaling(augment.min_scale_factor, augment.max_scale_factor,
                                               augment.scale_step_size),
                             RandomPaddingCrop(augment.crop_size)]
    if augment.flip_prob > 0:
        steps.append(RandomHorizontalFlip(augment.flip_prob))
    if augment.distort:
        steps.append(RandomDistort(augment.brightness_range, augment.brightness_prob, augment.contrast_range,
                                   augment.contrast_prob, augment.saturation_range, augment.saturation_prob,
                                   augment.hue_range, augment.hue_prob))
    return Compose(steps)


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*batch)
    return torch.stack(images), torch.stack(labels)
