"""Captioned digits: what each caption says is a function of the image and its label."""

import pytest
import torch

from course.data.captions import (
    CAPTION_LENGTH,
    VOCABULARY,
    caption,
    captioned_digits,
    class_captions,
    detokenize,
    tokenize,
)
from course.data.digits import load_digits


def test_captions_name_the_digit_and_follow_the_split():
    data, plain = captioned_digits(), load_digits()
    assert torch.equal(data.x_train, plain.x_train) and torch.equal(data.y_test, plain.y_test)
    for captions, labels in ((data.captions_train, data.y_train), (data.captions_test,
                                                                   data.y_test)):
        assert len(captions) == len(labels)
        assert all(c.split()[-1] == class_captions()[y].split()[-1]
                   for c, y in zip(captions, labels.tolist()))


def test_thin_digits_have_less_ink_than_thick_ones_of_the_same_class():
    data = captioned_digits()
    ink = data.x_train.flatten(1).mean(1)
    for k in range(10):
        mine = data.y_train == k
        thin, thick = ink[mine & (data.stroke_train == 0)], ink[mine & (data.stroke_train == 2)]
        assert thin.max() < thick.min()
        counts = torch.bincount(data.stroke_train[mine], minlength=3)
        assert counts.min() >= mine.sum() // 4  # about a third each (ink is discrete: ties)
    assert {c.split()[1] for c in data.captions_test if len(c.split()) == 3} == {"thin", "thick"}


def test_captions_do_not_depend_on_the_image_size():
    assert captioned_digits(16).captions_test == captioned_digits(8).captions_test
    assert captioned_digits(16).x_test.shape[-2:] == (16, 16)


def test_tokens_round_trip_and_pad_with_zero():
    data = captioned_digits()
    assert data.tokens_train.shape == (len(data.captions_train), CAPTION_LENGTH)
    assert data.tokens_train.dtype == torch.int64
    assert detokenize(data.tokens_test) == data.captions_test
    assert tokenize(["a seven"]).tolist() == [[VOCABULARY.index("a"), VOCABULARY.index("seven"),
                                               0]]
    assert caption(3, 0) == "a thin three" and caption(7) == "a seven"


@pytest.mark.parametrize("bad", ["a purple seven", "a thin thick seven two", "<pad>"])
def test_unknown_or_long_captions_are_refused(bad):
    with pytest.raises(ValueError, match="cannot tokenize"):
        tokenize([bad])


def test_bad_labels_are_refused():
    with pytest.raises(ValueError):
        caption(10)
    with pytest.raises(ValueError):
        caption(1, 3)
