"""Choosing the examples each latent is explained and scored on (see build.py), and the Example they are made of."""

from .build import ExampleSets, LeakageError, build_examples, stable_key_hash
from .examples import (
                       ACTIVATING,
                       HARD_NEGATIVE,
                       NEIGHBOUR_NEGATIVE,
                       RANDOM_NEGATIVE,
                       Example,
                       evenly_spaced,
                       order_for_explainer,
)
from .negatives import window_pool_embeddings
from .rows import examples_to_rows, rows_to_latent_examples
from .selection import RangeSample, sample_latent_range
from .tokens import TokenDecoder, token_decoder
from .windows import activating_windows, split_train_test

__all__ = [
    "RangeSample",
    "sample_latent_range",
    "ExampleSets",
    "ACTIVATING",
    "HARD_NEGATIVE",
    "NEIGHBOUR_NEGATIVE",
    "RANDOM_NEGATIVE",
    "Example",
    "LeakageError",
    "TokenDecoder",
    "activating_windows",
    "build_examples",
    "evenly_spaced",
    "examples_to_rows",
    "order_for_explainer",
    "rows_to_latent_examples",
    "split_train_test",
    "stable_key_hash",
    "token_decoder",
    "window_pool_embeddings",
]
