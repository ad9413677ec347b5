"""The iteration-indexed data stream: resumable at any iteration, disjoint shards across processes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liteseg.data.sampling import AugmentedDataset, IterationBatchSampler
from liteseg.data.transforms import Compose, Normalize, RandomPaddingCrop


def test_starting_mid_run_gives_the_same_batches():
    full = list(IterationBatchSampler(10, 3, iters=12, seed=5))
    assert len(full) == 12 and all(len(b) == 3 for b in full)  # 3 batches per epoch, last partial one dropped
    assert list(IterationBatchSampler(10, 3, iters=12, seed=5, start_iter=7)) == full[7:]
    epoch0 = [i for b in full[:3] for i, *_ in b]
    epoch1 = [i for b in full[3:6] for i, *_ in b]
    assert len(set(epoch0)) == 9 and epoch0 != epoch1  # reshuffled every epoch


def test_processes_share_out_the_single_process_global_batch():
    single = list(IterationBatchSampler(8, 4, iters=4, seed=0))
    ranks = [list(IterationBatchSampler(8, 2, iters=4, seed=0, world_size=2, rank=r)) for r in (0, 1)]
    for t in range(4):
        assert sorted(ranks[0][t] + ranks[1][t], key=lambda k: k[2]) == single[t]


def test_too_small_dataset():
    with pytest.raises(ValueError, match="fewer than one batch"):
        IterationBatchSampler(3, 2, iters=1, world_size=2)


def test_augmentation_depends_only_on_the_sample_key():
    rng = np.random.default_rng(0)
    items = [{"image": rng.integers(0, 255, (20, 20, 3), dtype=np.uint8),
              "label": rng.integers(0, 3, (20, 20), dtype=np.uint8)} for _ in range(2)]
    data = AugmentedDataset(items, Compose([RandomPaddingCrop((8, 8))]), Normalize(), seed=1)
    a, b = data[(1, 5, 0)], data[(1, 5, 0)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], data[(1, 6, 0)][0])
