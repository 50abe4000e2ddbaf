"""What decoding did, as data: a record per emitted token and counts that add up over calls (timing lives outside)."""

from dataclasses import dataclass, field

import torch

@dataclass
class TokenRecord:
    exit_layer: int
    confidence: float | None = None
    parallel: bool = False  # its deep K/V were filled by a later parallel pass


def exit_tensors(records: list, steps: int):
    """(exit layers, confidences) of shape (rows, steps) from each row's TokenRecords (None or absent: padding,
    -1 and NaN), as generate() returns them."""
    layers = torch.full((len(records), steps), -1, dtype=torch.long)
    conf = torch.full((len(records), steps), float("nan"))
    for b, row in enumerate(records):
        for s, rec in enumerate(row):
            if rec is not None:
                layers[b, s] = rec.exit_layer
                if rec.confidence is not None:
                    conf[b, s] = rec.confidence
    return layers, conf


@dataclass
class DecodeStats:
    """Counts over one or more generate calls (sums, so they aggregate by addition)."""

    num_layers: int = 0
    sequences: int = 0
    tokens: int = 0  # emitted and kept
    steps: int = 0  # decoding steps, including those later rolled back or discarded
    sequential_layers: int = 0  # layers on each step's critical path
    block_tokens: int = 0  # (layer, token) pairs run through a full block, parallel fill included (rows riding
    # along in a batch are not counted: their work is what a single row would skip)
    kv_fill_tokens: int = 0  # (layer, token) pairs that only got K/V (state propagation / copying)
    exits: int = 0
    parallel_passes: int = 0
    parallel_tokens: int = 0
    rollbacks: int = 0  # exited tokens the deep layers rejected (verification) or rolled back
    checked: int = 0  # exited tokens the deep layers checked (verification)
    rolled_back_tokens: int = 0
    discarded_tokens: int = 0  # FREE in a batch: tokens decoded past a deep-layer token that the deep pass changed
    thresholds: list = field(default_factory=list)
    records: list = field(default_factory=list)

    def add(self, other: "DecodeStats") -> None:
        for k, v in vars(other).items():
            if k == "num_layers":
                self.num_layers = v
            elif isinstance(v, list):
                getattr(self, k).extend(v)
            else:
                setattr(self, k, getattr(self, k) + v)

    def summary(self) -> dict:
        t = max(self.tokens, 1)
        return {
            "avg_layers_per_token": round(self.sequential_layers / t, 4),
            "layer_flops_per_token": round(self.block_tokens / t, 4),
            "kv_fill_per_token": round(self.kv_fill_tokens / t, 4),
            "exit_ratio": round(self.exits / max(self.steps, 1), 4),
            "parallel_passes": self.parallel_passes,
            "parallel_tokens": self.parallel_tokens,
            "rollbacks": self.rollbacks,
            "checked": self.checked,  # acceptance rate of verified exits: 1 - rollbacks / checked
            "rolled_back_tokens": self.rolled_back_tokens,
            "discarded_tokens": self.discarded_tokens,
            "generated_tokens": self.tokens,
            "num_layers": self.num_layers,
        }

