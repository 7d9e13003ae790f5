"""The encoder cut in two: a frozen bottom whose output is cached (stt.finetune.state_files) and a trained top.

Whisper's encoder reads a fixed 30 s window through two convolutions and N
transformer layers: on a CPU it is most of the model's compute. The modes
"decoder" and "adapt" freeze its bottom N - k layers (all of them in
"decoder") and train the top k layers and the decoder. The bottom's output for
a clip then never changes, so it is computed once, written to disk, and read
back in every epoch, for both evaluations, and in later runs while that frozen
part stays the same. Memory no longer grows with the number of clips: a batch
is read from memory-mapped files when it is needed.

The cache's folder is named for `EncoderSplit.fingerprint`, a digest of the frozen weights and the
feature settings; a change to either (a full fine-tune, a rollback to another lineage, another split
point) makes a new folder and the stale ones are removed.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def default_trained_layers(num_layers: int) -> int:
    """Half of a small encoder, a quarter of a larger one (tiny.en: 2 of 4; base.en: 3 of 6;
    distil-small.en: 3 of 12).

    Measured on tiny.en with built-in rehearsal (docs/performance.md, "Training"): training
    the top half instead of the top layer took held-out WER from 12.3% to 5.8% and ordinary
    speech from 28.4% to 21.6%, close to a full fine-tune's 18.5%. A layer's cost grows
    with the square of the width, so on a CPU a larger encoder keeps to its top quarter
    (distil-small.en's three layers of 768 already cost about as much as four of tiny.en's
    whole encoders); `adapt_layers` sets any other number.
    """
    return max(1, num_layers // 2) if num_layers <= 6 else round(num_layers / 4)


class EncoderSplit:
    """The encoder as a frozen bottom (cached) and a trainable top of `trained_layers` layers.

    With 0 trained layers the whole encoder, final layer norm included, is the
    bottom, and `top` is the identity: that is the "decoder" mode.
    """

    def __init__(self, model: Any, trained_layers: int) -> None:
        self.encoder = model.get_encoder()
        self.num_layers = len(self.encoder.layers)
        self.trained_layers = max(0, min(trained_layers, self.num_layers))
        self.cut = self.num_layers - self.trained_layers

    @property
    def top_layers(self) -> Sequence[Any]:
        """The encoder layers that train, bottom first (none in the "decoder" mode)."""
        return self.encoder.layers[self.cut:]

    def freeze(self) -> None:
        """Only the top layers and the final layer norm train; the bottom's cached output stays valid."""
        self.encoder.requires_grad_(False)
        if self.trained_layers:
            for layer in self.top_layers:
                layer.requires_grad_(True)
            self.encoder.layer_norm.requires_grad_(True)

    def bottom(self, features: torch.Tensor) -> torch.Tensor:
        """Output of the frozen part for a batch of log-mel features, without gradients.

        Runs the encoder's own forward (convolutions, positions) over the bottom
        layers only, so the cached states are exactly what the full model computes.
        """
        encoder = self.encoder
        layers, norm = encoder.layers, encoder.layer_norm
        if self.trained_layers:
            encoder.layers, encoder.layer_norm = nn.ModuleList(layers[:self.cut]), nn.Identity()
        try:
            with torch.no_grad():  # not inference_mode: these tensors later feed layers that need grad
                return encoder(features).last_hidden_state
        finally:
            encoder.layers, encoder.layer_norm = layers, norm

    def top(self, states: torch.Tensor) -> torch.Tensor:
        """The encoder's output from the bottom's states: the trained layers and the final layer norm."""
        if not self.trained_layers:
            return states
        return self.encoder.layer_norm(self.top_hidden(states)[-1])

    def top_hidden(self, states: torch.Tensor) -> list[torch.Tensor]:
        """What each trained layer outputs for the bottom's `states`, bottom first (WhisperEncoderLayer's own
        forward, so its fp16 clamp and dropout are the model's)."""
        hidden, out = states, []
        for layer in self.top_layers:
            hidden = layer(hidden, None)
            out.append(hidden)
        return out

    def fingerprint(self, feature_extractor: Any) -> str:
        """A digest of everything the cached states depend on: the frozen weights, the split point
        and the feature extractor's settings."""
        settings = {k: v for k, v in feature_extractor.to_dict().items() if isinstance(v, (int, float, str))}
        header = json.dumps({"cut": self.cut, "layers": self.num_layers, **settings}, sort_keys=True).encode()
        return self._digest(header, top=False)

    def top_fingerprint(self) -> str:
        """A digest of the trained top's weights (layers and final norm): with the bottom's states, all
        that the top's output depends on, so what the top computed once stays valid while this holds."""
        return self._digest(b"", top=True)

    def _in_top(self, name: str) -> bool:
        """Whether an encoder weight trains: a layer from the cut up, and the final norm when any layer trains."""
        if name.startswith("layer_norm."):
            return bool(self.trained_layers)
        return name.startswith("layers.") and int(name.split(".")[1]) >= self.cut

    def _digest(self, header: bytes, top: bool) -> str:
        """A digest of `header` and of the encoder weights in the top (or, with top False, outside it)."""
        digest = hashlib.blake2b(digest_size=12)
        digest.update(header)
        for name, tensor in self.encoder.state_dict().items():
            if self._in_top(name) == top:
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()
