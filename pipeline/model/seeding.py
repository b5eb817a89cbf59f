"""The only place random generators are made.

A run has one root entropy (128 bits from ``secrets`` unless a seed is given), recorded with
the outputs. Block ``b`` of trials always uses ``SeedSequence(entropy, spawn_key=(b, stream))``,
built directly (``spawn()`` is stateful), so results do not depend on which worker runs which
block or in which order.
"""

from __future__ import annotations

import secrets

import numpy as np

#: Independent streams within a block.
INPUT_STREAM = 0
"""Uniforms for the sampled inputs (and scrambling of quasi-random samplers)."""
EVENT_STREAM = 1
"""Uniforms for the model's own chance events (reopening, troop threat, furlough)."""


def root_entropy(seed: int | None) -> int:
    """The run's root entropy: the seed itself, or 128 fresh bits when none is given."""
    if seed is None:
        return secrets.randbits(128)
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    return int(seed)


def block_rng(entropy: int, block: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one block."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(block, stream)))
    )


def sampler_seed(entropy: int) -> np.random.SeedSequence:
    """Seed for run-wide quasi-random scrambling (shared by all blocks)."""
    return np.random.SeedSequence(entropy, spawn_key=(2**32 - 1,))
