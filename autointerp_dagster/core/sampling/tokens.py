"""Token ids to the strings examples show, each vocabulary id decoded once per process."""

from __future__ import annotations

import functools

import numpy as np


class TokenDecoder:
    """Token ids to strings, decoding each vocabulary id once (`tokenizer.decode([id])`) and keeping it."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._strings = np.empty(0, dtype=object)
        self._known = np.zeros(0, dtype=bool)

    def strings(self, ids: np.ndarray) -> np.ndarray:
        """An object array of the same shape as `ids` holding each token's string."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size:
            self._learn(ids)
        return self._strings[ids]

    def _learn(self, ids: np.ndarray) -> None:
        top = int(ids.max()) + 1
        if top > len(self._strings):
            self._strings = np.concatenate([self._strings, np.full(top - len(self._strings), None, dtype=object)])
            self._known = np.concatenate([self._known, np.zeros(top - len(self._known), dtype=bool)])
        new = np.unique(ids[~self._known[ids]])
        if new.size:
            decoded = self.tokenizer.batch_decode([[i] for i in new.tolist()], clean_up_tokenization_spaces=False)
            self._strings[new] = np.array(decoded, dtype=object)
            self._known[new] = True


@functools.cache
def token_decoder(tokenizer) -> TokenDecoder:
    """The one decoder of a tokenizer in this process, so its decoded vocabulary is shared."""
    return TokenDecoder(tokenizer)
