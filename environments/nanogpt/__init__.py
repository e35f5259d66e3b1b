"""The nanogpt environment plugin: a protected harness around an evolvable GPT training script.

Variants: ``tiny`` (CPU, a corpus generated here with a known entropy floor) and ``speedrun``
(FineWeb10B, the modded-nanogpt target of 3.28 validation loss, torchrun over the GPUs).
"""
