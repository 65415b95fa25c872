"""Digits paired with short captions ("a seven", "a thin three"), for Part 05's conditional
generation units (CLIP, guidance, latent diffusion, DALL·E 2).

The caption of an image is a function of the image and its label, so what a caption says is
known exactly: the digit's name, and "thin" or "thick" when its ink (mean pixel value) lies in
the lowest or the highest third of its class, thresholds taken on the training split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from course.data.digits import load_digits

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
STROKE_WORDS = ("thin", "thick")
PAD = "<pad>"
VOCABULARY = (PAD, "a", *STROKE_WORDS, *DIGIT_WORDS)
CAPTION_LENGTH = 3  # "a", an optional stroke word, the digit's name; shorter ones are padded


@dataclass(frozen=True)
class CaptionedDigits:
    """A fixed split of captioned digits. Images float32 in [0, 1], shape (N, 1, size, size);
    labels int64 (N,); ``stroke`` int64 (N,): 0 thin, 1 plain, 2 thick; captions as strings and
    as token ids (N, CAPTION_LENGTH) into :data:`VOCABULARY` (0 is padding)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    stroke_train: torch.Tensor
    captions_train: tuple[str, ...]
    tokens_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    stroke_test: torch.Tensor
    captions_test: tuple[str, ...]
    tokens_test: torch.Tensor


def caption(label: int, stroke: int = 1) -> str:
    """The caption for a digit ``label`` (0–9) drawn with ``stroke`` 0 thin, 1 plain, 2 thick."""
    if not 0 <= label <= 9 or stroke not in (0, 1, 2):
        raise ValueError(f"label must be 0–9 and stroke 0, 1 or 2, got {label}, {stroke}")
    words = ["a"] + ([STROKE_WORDS[stroke // 2]] if stroke != 1 else []) + [DIGIT_WORDS[label]]
    return " ".join(words)


def class_captions() -> tuple[str, ...]:
    """The ten plain captions "a zero" … "a nine", in label order (zero-shot prompts)."""
    return tuple(caption(k) for k in range(10))


def tokenize(captions: Sequence[str]) -> torch.Tensor:
    """Token ids (N, CAPTION_LENGTH), int64, right-padded with 0; a word outside
    :data:`VOCABULARY` or a caption longer than CAPTION_LENGTH words is an error."""
    index = {w: i for i, w in enumerate(VOCABULARY)}
    rows = []
    for text in captions:
        words = text.split()
        unknown = [w for w in words if w not in index or w == PAD]
        if unknown or len(words) > CAPTION_LENGTH:
            raise ValueError(f"cannot tokenize {text!r}: unknown words {unknown} or more "
                             f"than {CAPTION_LENGTH} words")
        rows.append([index[w] for w in words] + [0] * (CAPTION_LENGTH - len(words)))
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), CAPTION_LENGTH)


def detokenize(tokens: torch.Tensor) -> tuple[str, ...]:
    """The captions of token ids (N, L), padding dropped."""
    return tuple(" ".join(VOCABULARY[i] for i in row if i != 0) for row in tokens.tolist())


def _strokes(ink: torch.Tensor, labels: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    low, high = cuts[labels, 0], cuts[labels, 1]
    return torch.where(ink <= low, 0, torch.where(ink > high, 2, 1)).to(torch.int64)


@lru_cache(maxsize=8)
def captioned_digits(size: int = 8, test_fraction: float = 0.25, seed: int = 0
                     ) -> CaptionedDigits:
    """:func:`course.data.load_digits` with a caption for every image. The ink thresholds of
    each class are its training images' 1/3 and 2/3 quantiles (measured at 8×8, so a caption
    does not depend on ``size``)."""
    split = load_digits(size, test_fraction, seed)
    small = load_digits(8, test_fraction, seed)
    ink_train = small.x_train.flatten(1).mean(1)
    ink_test = small.x_test.flatten(1).mean(1)
    q = torch.tensor([1 / 3, 2 / 3])
    cuts = torch.stack([torch.quantile(ink_train[small.y_train == k], q) for k in range(10)])
    s_train = _strokes(ink_train, small.y_train, cuts)
    s_test = _strokes(ink_test, small.y_test, cuts)
    c_train = tuple(caption(int(y), int(s)) for y, s in zip(split.y_train, s_train))
    c_test = tuple(caption(int(y), int(s)) for y, s in zip(split.y_test, s_test))
    return CaptionedDigits(split.x_train, split.y_train, s_train, c_train, tokenize(c_train),
                           split.x_test, split.y_test, s_test, c_test, tokenize(c_test))
