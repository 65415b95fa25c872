"""Hidden checks for unit 5.14 `clip` (Radford et al., 2021).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``clip_loss``: features (B, D) with B = 8, 5, 13, 1, 2, 3 and D = 16, 3, 32, 4, 7, 1 (batch
  1, a single feature, B > D and B < D), rows with norms spread over 0.1 to 10 (so that a
  missing or misplaced normalisation shows), float32 and float64; logit_scale s as a Python
  float (0, log(1/0.07), 1.3, log 100) and as a 0-dim tensor in the features' dtype;
  gradients w.r.t. both features and a tensor s; stability: nearly aligned pairs with s =
  log 100 and s = 8, where exp(logits) overflows (float32, then also float64).
- ``zero_shot_classify``: images (B, D) and prompts (C, D) with B in {1, 4, 6, 9, 12}, C in
  {1, 3, 10}, both orders of B and C; prompt norms spread over 0.05 to 20 (so that a dot
  product picks other classes than the cosine); exact comparison of the int64 indices.

Forbidden: the library cross-entropy (``F.cross_entropy``, ``F.nll_loss`` and their modules)
in ``clip_loss``, and ``F.cosine_similarity`` / ``nn.CosineSimilarity`` in
``zero_shot_classify``.

The master was compared, in ``tests/test_oracle_clip.py``, with a loss written as an explicit
loop over rows of log-softmax, with ``F.cross_entropy`` on both directions of a matrix of
``F.cosine_similarity``, and with a per-image loop of cosines for the classifier.
"""

import math

import torch

from course.grading.dsl import CROSS_ENTROPY_ATEN, CROSS_ENTROPY_CALLS, Call, Forbid, Mistake, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "clip"

FORBIDDEN = [
    # the library cross-entropy would hide the two log-softmaxes the exercise asks for
    Forbid(calls=CROSS_ENTROPY_CALLS, aten=CROSS_ENTROPY_ATEN, within=("clip_loss",)),
    # the library cosine would hide the normalisation the classifier turns on
    Forbid(
        calls=("torch.nn.functional.cosine_similarity", "torch.cosine_similarity",
               "torch.nn.CosineSimilarity"),
        aten=("cosine_similarity",),
        within=("zero_shot_classify",),
    ),
]

MISTAKES = [
    # -- clip_loss
    Mistake(
        "no-normalisation",
        "Your loss matches logits computed from the raw features, without L2-normalising "
        "them: the logits are then dot products, not cosines, and grow with the features' "
        "norms. Divide each row of both features by its norm (dim=-1) first.",
        {"image = image_features / image_features.norm(dim=-1, keepdim=True)":
         "image = image_features",
         "text = text_features / text_features.norm(dim=-1, keepdim=True)":
         "text = text_features"},
    ),
    Mistake(
        "normalised-over-batch",
        "Your loss matches features normalised along the batch (dim=0) instead of along "
        "the features (dim=-1): each column, not each row, has unit length. Every image's "
        "and every caption's own vector must have norm 1.",
        {"image_features.norm(dim=-1, keepdim=True)": "image_features.norm(dim=0, keepdim=True)",
         "text_features.norm(dim=-1, keepdim=True)": "text_features.norm(dim=0, keepdim=True)"},
    ),
    Mistake(
        "one-direction-only",
        "Your loss matches the image→text cross-entropy alone. CLIP's loss is symmetric: "
        "also classify, for every caption, its image among the B images (the cross-entropy "
        "of logits.T), and take the mean of the two directions.",
        {"return (loss_image + loss_text) / 2": "return loss_image"},
    ),
    Mistake(
        "directions-not-halved",
        "Your loss is the sum of the two directions' cross-entropies, twice the expected "
        "value. Take their mean: (CE(logits) + CE(logits.T)) / 2.",
        {"return (loss_image + loss_text) / 2": "return loss_image + loss_text"},
    ),
    Mistake(
        "scale-not-exponentiated",
        "Your logits are multiplied by logit_scale itself. logit_scale is the log of the "
        "inverse temperature: multiply the cosines by exp(logit_scale) (s = log(1/0.07) "
        "gives 14.3, s = 0 gives 1).",
        {"logits = s.exp() * image @ text.T": "logits = s * image @ text.T"},
    ),
    Mistake(
        "scale-divides",
        "Your logits are divided by exp(logit_scale), as if it were the temperature τ. "
        "exp(logit_scale) is the inverse temperature 1/τ: multiply the cosines by it.",
        {"logits = s.exp() * image @ text.T": "logits = image @ text.T / s.exp()"},
    ),
    Mistake(
        "ce-summed",
        "Your loss grows with the batch size: the cross-entropies are summed over the B "
        "rows instead of averaged. Each direction is the mean over its rows.",
        {"loss_image = -log_p_image.diagonal().mean()":
         "loss_image = -log_p_image.diagonal().sum()",
         "loss_text = -log_p_text.diagonal().mean()":
         "loss_text = -log_p_text.diagonal().sum()"},
    ),
    Mistake(
        "naive-softmax",
        "Your loss is right for small scales but NaN or inf when exp(logit_scale) is large: "
        "exp(logits) overflows (float32 above 88, float64 above 709) and inf / inf is NaN. "
        "Compute log-softmax stably: F.log_softmax or torch.logsumexp subtract the maximum "
        "first.",
        {"log_p_image = F.log_softmax(logits, dim=1)":
         "log_p_image = (logits.exp() / logits.exp().sum(1, keepdim=True)).log()",
         "log_p_text = F.log_softmax(logits, dim=0)":
         "log_p_text = (logits.exp() / logits.exp().sum(0, keepdim=True)).log()"},
    ),
    Mistake(
        "normalised-in-place",
        "Your clip_loss divides image_features by its norm in place (div_ or /=): the "
        "caller's features are destroyed (and autograd refuses it on a tensor that requires "
        "grad). Compute the normalised features into a new tensor.",
        {"image = image_features / image_features.norm(dim=-1, keepdim=True)":
         "image = image_features.div_(image_features.norm(dim=-1, keepdim=True))"},
    ),
    # -- zero_shot_classify
    Mistake(
        "zero-shot-dot-product",
        "Your classes match the largest dot product I·T_c instead of the largest cosine: "
        "a prompt with a long feature vector wins too often. Normalise the class text "
        "features (dim=-1) before comparing.",
        {"prompts = F.normalize(class_text_features, dim=-1)": "prompts = class_text_features"},
    ),
    Mistake(
        "zero-shot-wrong-dim",
        "Your argmax runs over the images (dim=0) instead of over the classes: you get, for "
        "each class, its most similar image. Take the argmax along the classes, dim=-1 of "
        "the (B, C) similarities, one class per image.",
        {"return cosine.argmax(dim=-1)": "return cosine.argmax(dim=0)"},
    ),
    Mistake(
        "zero-shot-argmin",
        "Your classes are the least similar prompts: argmin where argmax belongs. A cosine "
        "is a similarity (larger is closer), not a distance.",
        {"return cosine.argmax(dim=-1)": "return cosine.argmin(dim=-1)"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _features(grader, b, d, dtype, low=0.1, high=10.0):
    """(b, d) gaussian rows rescaled to norms log-uniform in [low, high]."""
    x = grader.randn(b, d)
    norms = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * grader.rand(b, 1))
    return (x / x.norm(dim=-1, keepdim=True) * norms).to(dtype)


def _pairs(grader, b, d, dtype):
    return _features(grader, b, d, dtype), _features(grader, b, d, dtype)


def _aligned(grader, b, d, dtype, noise=0.05):
    """Nearly aligned pairs (cosines about 0.99 on the diagonal), as after training."""
    image = grader.randn(b, d)
    text = image + noise * grader.randn(b, d)
    return (image * 3).to(dtype), (text * 0.5).to(dtype)


def _scalar(value, dtype):
    return torch.tensor(value, dtype=dtype)


# -- clip_loss ----------------------------------------------------------------------------

LOSS_CASES = [((8, 16), 2.6593), ((5, 3), 0.0), ((13, 32), 1.3), ((1, 4), 2.6593),
              ((2, 7), math.log(100)), ((3, 1), 1.3), ((6, 5), -0.7)]


@check(points=2, public=True, task="clip_loss")
def test_clip_loss(grader):
    """clip_loss(image_features, text_features, logit_scale) with s a Python float"""
    for (b, d), s in LOSS_CASES:
        for dtype in DTYPES:
            image, text = _pairs(grader, b, d, dtype)
            grader.compare(Call("clip_loss", (image, text, s)),
                           case=f"clip_loss(image[{b}, {d}], text[{b}, {d}], "
                           f"logit_scale={s:.4g}), {_dt(dtype)}")


@check(points=1, public=True, task="clip_loss")
def test_clip_loss_tensor_scale(grader):
    """clip_loss with logit_scale a 0-dim tensor in the features' dtype"""
    for (b, d), s in [((7, 9), 2.6593), ((1, 3), 0.5), ((4, 2), 3.2)]:
        for dtype in DTYPES:
            image, text = _pairs(grader, b, d, dtype)
            grader.compare(Call("clip_loss", (image, text, _scalar(s, dtype))),
                           case=f"clip_loss(image[{b}, {d}], text[{b}, {d}], "
                           f"logit_scale=tensor({s})), {_dt(dtype)}")


@check(points=2, task="clip_loss")
def test_clip_loss_gradients(grader):
    """gradients of clip_loss w.r.t. both features and a tensor logit_scale"""
    for (b, d), s in [((6, 8), 2.6593), ((3, 5), 0.4), ((1, 2), 1.0), ((9, 3), 3.5)]:
        for dtype in DTYPES:
            image, text = _pairs(grader, b, d, dtype)
            grader.compare(Call("clip_loss", (image, text, _scalar(s, dtype)), grad=(0, 1, 2)),
                           case=f"d/dimage, d/dtext, d/dlogit_scale of clip_loss on "
                           f"[{b}, {d}], s={s}, {_dt(dtype)}")
    for dtype in DTYPES:
        image, text = _pairs(grader, 5, 4, dtype)
        grader.compare(Call("clip_loss", (image, text, 1.7), grad=(0, 1)),
                       case=f"d/dimage, d/dtext of clip_loss on [5, 4], "
                       f"logit_scale=1.7 (float), {_dt(dtype)}")


@check(points=1, task="clip_loss")
def test_clip_loss_large_scale(grader):
    """clip_loss stays finite for nearly aligned pairs and logit_scale up to 8"""
    for b, d, s, dtype in [(6, 8, 8.0, torch.float64), (6, 8, 8.0, torch.float32),
                           (10, 16, math.log(100), torch.float32), (4, 3, 6.0, torch.float32)]:
        image, text = _aligned(grader, b, d, dtype)
        grader.compare(Call("clip_loss", (image, text, _scalar(s, dtype)), grad=(0, 1, 2)),
                       case=f"clip_loss and its gradients on nearly aligned pairs "
                       f"[{b}, {d}], logit_scale={s:.4g}, {_dt(dtype)}")


# -- zero_shot_classify -------------------------------------------------------------------

ZS_CASES = [(12, 10, 16), (4, 10, 8), (9, 3, 5), (1, 10, 6), (6, 1, 4), (1, 1, 3), (10, 3, 2)]


@check(points=2, public=True, task="zero_shot_classify")
def test_zero_shot_classify(grader):
    """zero_shot_classify(image_features (B, D), class_text_features (C, D)): (B,) int64"""
    for b, c, d in ZS_CASES:
        for dtype in DTYPES:
            image = _features(grader, b, d, dtype)
            prompts = _features(grader, c, d, dtype, low=0.05, high=20.0)
            grader.compare(Call("zero_shot_classify", (image, prompts)),
                           case=f"zero_shot_classify(image[{b}, {d}], "
                           f"class_text[{c}, {d}]), {_dt(dtype)}")


@check(points=1, task="zero_shot_classify")
def test_zero_shot_classify_near_prompts(grader):
    """zero_shot_classify when each image lies near one prompt and prompt norms differ"""
    for b, c, d in [(20, 10, 12), (7, 3, 4)]:
        for dtype in DTYPES:
            prompts = _features(grader, c, d, torch.float64, low=0.05, high=20.0)
            which = grader.randint(0, c, (b,))
            unit = prompts / prompts.norm(dim=-1, keepdim=True)
            image = (unit[which] + 0.3 * grader.randn(b, d)) * (1 + 4 * grader.rand(b, 1))
            grader.compare(Call("zero_shot_classify", (image.to(dtype), prompts.to(dtype))),
                           case=f"zero_shot_classify of {b} images near {c} prompts "
                           f"(D = {d}), {_dt(dtype)}")
