"""Hidden checks for unit 4.5 `gpt-2` (Radford et al., 2019).

``Block`` is built as ``Block(d_model, n_head)`` with a copied state dict (layer norms with
random weights and biases, so that ``ln_1`` and ``ln_2`` differ) and compared with the master
in float32 and float64 over several shapes (batch 1, L = 1, one head, heads of width 1):
``block.attn(x)``, ``block.mlp(x)`` and ``block(x)``, and the gradients w.r.t. x and every
parameter. The MLP's pre-activations have a spread of about 2, where the tanh approximation of
GELU and the exact (erf) GELU differ by far more than float32's tolerance.

``GPT`` is graded through a grader-owned driver (``course/grading/drivers/gpt_2.py``) that
builds the learner's model with stand-in blocks (``x + tanh(x Wᵀ + b)``, different per
layer) in ``h``, so a slip in ``Block`` does not cost ``GPT``'s checks; one combined check
(1 point) runs the learner's ``GPT`` with the learner's own blocks. Tying is checked by
identity (``lm_head.weight is wte.weight``) and through the gradient of ``wte.weight``, which
must collect both of its uses; the state dict's layout is compared by name, shape and dtype.

BPE is compared exactly: merges as (a, b, new_id) rows, encodings as id sequences, decodings
as strings. The texts include the synthetic language of Part 04, non-ASCII letters (2-, 3- and
4-byte UTF-8), runs that overlap ("aaa"), ties between pairs that are equally frequent, texts
too short for the requested merges, and hand-written merge lists on which applying the
leftmost mergeable pair differs from applying the lowest rank.
"""

from course.data.language import text as language_text
from course.grading.cell_checks import require_state_layout
from course.grading.dsl import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    TRANSFORMER_LAYERS,
    Call,
    Forbid,
    Make,
    Mistake,
    check,
    dtype_word,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES

UNIT = "gpt-2"

FORBIDDEN = [
    Forbid(calls=ATTENTION_CALLS + TRANSFORMER_LAYERS, aten=ATTENTION_ATEN),
]

MISTAKES = [
    # -- Block
    Mistake(
        "post-ln",
        "Your block matches the original Transformer's post-LN order, x = LN(x + sublayer(x)). "
        "GPT-2 normalises the input of each sub-layer and leaves the residual stream alone: "
        "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).",
        {"        x = x + self.attn(self.ln_1(x))\n        x = x + self.mlp(self.ln_2(x))\n":
         "        x = self.ln_1(x + self.attn(x))\n        x = self.ln_2(x + self.mlp(x))\n"},
    ),
    Mistake(
        "ln-1-reused",
        "Your block matches normalising the MLP's input with ln_1 instead of ln_2. Each "
        "sub-layer has its own layer norm: x = x + mlp(ln_2(x)).",
        {"x = x + self.mlp(self.ln_2(x))": "x = x + self.mlp(self.ln_1(x))"},
    ),
    Mistake(
        "mlp-no-residual",
        "Your block matches an MLP without its residual connection (x = mlp(ln_2(x))). Add "
        "the MLP's output to the stream: x = x + mlp(ln_2(x)).",
        {"x = x + self.mlp(self.ln_2(x))": "x = self.mlp(self.ln_2(x))"},
    ),
    Mistake(
        "no-causal-mask",
        "Your attention matches one without the causal mask: every position sees the future. "
        "Set the scores of keys j > i to -inf before the softmax.",
        {"        scores = scores.masked_fill(~causal, float(\"-inf\"))  # query i sees keys "
         "j <= i\n": ""},
    ),
    Mistake(
        "scale-by-d-model",
        "Your attention matches scores divided by √d_model. Each head scales by the square "
        "root of its own width, √(d_model / n_head).",
        {"/ math.sqrt(d // h)": "/ math.sqrt(d)"},
    ),
    Mistake(
        "softmax-over-queries",
        "Your attention matches a softmax over the query axis (dim=-2). Normalise over the "
        "keys, the last axis: each query's weights sum to one.",
        {"torch.softmax(scores, dim=-1)": "torch.softmax(scores, dim=-2)"},
    ),
    Mistake(
        "heads-without-transpose",
        "Your attention matches heads split by reshaping (B, L, d) straight to (B, h, L, d_h) "
        "(and merged back the same way), which mixes positions and features. View as "
        "(B, L, h, d_h) and transpose to (B, h, L, d_h); undo it the same way.",
        {"return t.view(B, L, h, d // h).transpose(1, 2)": "return t.reshape(B, h, L, d // h)",
         "(weights @ v).transpose(1, 2).reshape(B, L, d)": "(weights @ v).reshape(B, L, d)"},
    ),
    Mistake(
        "exact-gelu",
        "Your MLP matches the exact GELU, u·Φ(u) with the normal CDF (erf). GPT-2 uses the tanh "
        "approximation 0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³))), "
        "F.gelu(u, approximate=\"tanh\").",
        {"0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))":
         "0.5 * u * (1 + torch.erf(u / math.sqrt(2)))"},
    ),
    Mistake(
        "relu-mlp",
        "Your MLP matches a ReLU (the original Transformer's). GPT-2's MLP uses GELU, in its "
        "tanh approximation.",
        {"0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))":
         "torch.relu(u)"},
    ),
    # -- GPT
    Mistake(
        "weights-not-tied",
        "Your lm_head has its own weight: it is not tied to wte.weight (with equal values "
        "loaded, the logits agree but the gradient of wte.weight misses the output layer's "
        "part). Assign the parameter itself: self.lm_head.weight = self.wte.weight.",
        {"        self.lm_head.weight = self.wte.weight  # tied: one parameter, two uses\n": ""},
    ),
    Mistake(
        "no-positions",
        "Your logits match a model without position embeddings. Add wpe(arange(L)) to the "
        "token embeddings: x = wte(idx) + wpe(positions).",
        {"x = self.wte(idx) + self.wpe(pos)": "x = self.wte(idx)"},
    ),
    Mistake(
        "no-final-ln",
        "Your logits match the last block's output fed straight into lm_head. GPT-2 adds a "
        "final layer norm: logits = lm_head(ln_f(x)).",
        {"return self.lm_head(self.ln_f(x))": "return self.lm_head(x)"},
    ),
    # -- BPE
    Mistake(
        "merges-without-overlap",
        "Your merges match pair counts that skip overlapping occurrences (a, a, a counted as "
        "one (a, a), as str.count or bytes.count do). Count every adjacent pair: zip(ids, "
        "ids[1:]), so a, a, a holds (a, a) twice.",
        {"        for pair in zip(ids, ids[1:]):  # every adjacent pair, overlapping ones "
         "included\n            counts[pair] = counts.get(pair, 0) + 1\n":
         "        last = {}\n        for j, pair in enumerate(zip(ids, ids[1:])):\n"
         "            if last.get(pair) == j - 1:\n                continue\n"
         "            last[pair] = j\n            counts[pair] = counts.get(pair, 0) + 1\n"},
    ),
    Mistake(
        "ties-by-value",
        "Your merges break ties between equally frequent pairs by the pairs' values (the "
        "smallest first, as sorting, torch.unique or a min over the values give). The rule is "
        "the pair that occurs first in the current sequence.",
        {"pair = max(counts, key=counts.get)": "pair = max(sorted(counts), key=counts.get)"},
    ),
    Mistake(
        "codepoints-not-bytes",
        "Your ids match one id per character (ord(c)) rather than per UTF-8 byte: the same for "
        "ASCII, different for é, ö, 日 or 😀. Start from list(text.encode(\"utf-8\")), ids "
        "0–255.",
        {'ids = list(text.encode("utf-8"))': "ids = [ord(c) for c in text]"},
        count=2,
    ),
    Mistake(
        "merge-advances-one",
        "Your merging steps one position after replacing a pair instead of two, so the pair's "
        "second id is kept as well. After writing the new id, skip both ids of the pair.",
        {"                merged.append(new_id)\n                i += 2\n":
         "                merged.append(new_id)\n                i += 1\n"},
        count=2,
    ),
    Mistake(
        "encode-leftmost-pair",
        "Your encoding applies the leftmost mergeable pair first. Merges must be applied in "
        "the order they were learned: of the pairs present, always the one of lowest rank "
        "(earliest in the merges list).",
        {"pair = min(candidates, key=rank.get)": "pair = candidates[0]"},
    ),
    Mistake(
        "decode-token-by-token",
        "Your decoding turns each id into text on its own, so a character whose UTF-8 bytes "
        "are spread over several ids comes out as U+FFFD. Concatenate the bytes of all ids "
        "first, then decode once.",
        {'return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")':
         'return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)'},
    ),
    Mistake(
        "decode-latin-1",
        "Your decoding reads each byte as one character (latin-1, chr(b)): right for ASCII, "
        "wrong for every multi-byte character. Decode the bytes as UTF-8 "
        "(errors=\"replace\").",
        {'.decode("utf-8", errors="replace")': '.decode("latin-1")'},
    ),
]

_dt = dtype_word


# -- Block ------------------------------------------------------------------------------------

def _block_state(grader, d, dtype, prefix=""):
    s = {}
    for ln in ("ln_1", "ln_2"):
        s[f"{prefix}{ln}.weight"] = 1 + grader.randn(d, dtype=dtype, scale=0.3)
        s[f"{prefix}{ln}.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s[f"{prefix}attn.c_attn.weight"] = grader.randn(3 * d, d, dtype=dtype, scale=1.5 * d**-0.5)
    s[f"{prefix}attn.c_attn.bias"] = grader.randn(3 * d, dtype=dtype, scale=0.2)
    s[f"{prefix}attn.c_proj.weight"] = grader.randn(d, d, dtype=dtype, scale=d**-0.5)
    s[f"{prefix}attn.c_proj.bias"] = grader.randn(d, dtype=dtype, scale=0.1)
    s[f"{prefix}mlp.c_fc.weight"] = grader.randn(4 * d, d, dtype=dtype, scale=2 * d**-0.5)
    s[f"{prefix}mlp.c_fc.bias"] = grader.randn(4 * d, dtype=dtype, scale=0.2)
    s[f"{prefix}mlp.c_proj.weight"] = grader.randn(d, 4 * d, dtype=dtype, scale=(4 * d)**-0.5)
    s[f"{prefix}mlp.c_proj.bias"] = grader.randn(d, dtype=dtype, scale=0.1)
    return s


def _block(grader, d, heads, dtype):
    return Make("Block", (d, heads), state_dict=_block_state(grader, d, dtype), dtype=dtype,
                train=False)


# (B, L, d_model, n_head)
BLOCK_SHAPES = [
    (2, 5, 8, 2),
    (1, 7, 12, 3),
    (3, 1, 8, 2),
    (2, 6, 6, 1),
    (1, 4, 8, 8),
]


def _require_state_layout(grader, name, args, advice):
    require_state_layout(grader, Call("@gpt_2.state", (name, args)), f"{name}{args} state dict",
                         advice)


@check(points=1, public=True, task="Block")
def test_block_layout(grader):
    """Block(d_model, n_head) has ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj"""
    for args in [(8, 2), (12, 3)]:
        _require_state_layout(
            grader, "Block", args,
            "The block holds ln_1 and ln_2 (nn.LayerNorm(d)), attn.c_attn (nn.Linear(d, 3d)), "
            "attn.c_proj (nn.Linear(d, d)), mlp.c_fc (nn.Linear(d, 4d)) and mlp.c_proj "
            "(nn.Linear(4d, d)), all with biases, float32, and nothing else (a causal mask "
            "buffer must be registered with persistent=False, or built in forward).",
        )


@check(points=2, public=True, task="Block")
def test_attention_forward(grader):
    """block.attn(x), the causal self-attention, with copied weights"""
    for B, L, d, heads in BLOCK_SHAPES:
        for dtype in DTYPES:
            x = grader.randn(B, L, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, dtype), (x,), method="attn"),
                           case=f"Block({d}, {heads}).attn(x{list(x.shape)}), {_dt(dtype)}")


@check(points=1, public=True, task="Block")
def test_mlp_forward(grader):
    """block.mlp(x): c_fc, tanh-GELU, c_proj, with copied weights"""
    for B, L, d, heads in BLOCK_SHAPES[:3]:
        for dtype in DTYPES:
            x = grader.randn(B, L, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, dtype), (x,), method="mlp"),
                           case=f"Block({d}, {heads}).mlp(x{list(x.shape)}), {_dt(dtype)}")


@check(points=2, public=True, task="Block")
def test_block_forward(grader):
    """block(x), the pre-LN block, with copied weights"""
    for B, L, d, heads in BLOCK_SHAPES:
        for dtype in DTYPES:
            x = grader.randn(B, L, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, dtype), (x,)),
                           case=f"Block({d}, {heads})(x{list(x.shape)}), {_dt(dtype)}")


@check(points=2, task="Block")
def test_block_gradients(grader):
    """gradients of block(x) w.r.t. x and every parameter of the block"""
    for B, L, d, heads in [(2, 5, 8, 2), (1, 3, 6, 3)]:
        for dtype in DTYPES:
            x = grader.randn(B, L, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, dtype), (x,), grad=(0, "params")),
                           case=f"d/dx and d/dparams of Block({d}, {heads})(x{list(x.shape)}), "
                           f"{_dt(dtype)}")


# -- GPT --------------------------------------------------------------------------------------

# (vocab_size, block_size, n_layer, n_head, d_model), (B, L)
GPT_SHAPES = [
    ((11, 8, 2, 2, 8), (2, 5)),
    ((7, 4, 1, 1, 4), (1, 4)),
    ((13, 6, 3, 2, 6), (3, 1)),
]


def _gpt_state(grader, args, dtype, own_blocks=False):
    V, block_size, n_layer, _, d = args
    s = {"wte.weight": grader.randn(V, d, dtype=dtype, scale=0.7),
         "wpe.weight": grader.randn(block_size, d, dtype=dtype, scale=0.7)}
    for i in range(n_layer):
        if own_blocks:
            s.update(_block_state(grader, d, dtype, prefix=f"h.{i}."))
        else:
            s[f"h.{i}.weight"] = grader.randn(d, d, dtype=dtype, scale=1.2 * d**-0.5)
            s[f"h.{i}.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s["ln_f.weight"] = 1 + grader.randn(d, dtype=dtype, scale=0.3)
    s["ln_f.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s["lm_head.weight"] = s["wte.weight"]  # tied: the same values under both names
    return s


@check(points=1, public=True, task="GPT")
def test_gpt_layout(grader):
    """GPT(V, block_size, n_layer, n_head, d) state dict, stand-in blocks in h"""
    for args in [(11, 8, 2, 2, 8), (5, 3, 1, 1, 4)]:
        _require_state_layout(
            grader, "GPT", args,
            "GPT holds wte (nn.Embedding(V, d)), wpe (nn.Embedding(block_size, d)), h (an "
            "nn.ModuleList of n_layer blocks; here the grader's stand-ins, whose parameters "
            "are h.<i>.weight and h.<i>.bias), ln_f (nn.LayerNorm(d)) and lm_head "
            "(nn.Linear(d, V, bias=False), its weight tied to wte.weight), float32, and "
            "nothing else.",
        )


@check(points=1, public=True, task="GPT")
def test_gpt_tied(grader):
    """GPT's lm_head.weight is wte.weight (one parameter), stand-in blocks"""
    for args in [(11, 8, 2, 2, 8), (7, 4, 1, 1, 4)]:
        grader.compare(Call("@gpt_2.tied", (args,)), case=f"GPT{args}.lm_head.weight is "
                       "GPT.wte.weight", exact=True)


@check(points=2, public=True, task="GPT")
def test_gpt_forward(grader):
    """GPT logits with copied weights, its blocks replaced by the grader's stand-ins"""
    for args, (B, L) in GPT_SHAPES:
        for dtype in DTYPES:
            idx = grader.randint(0, args[0], (B, L))
            grader.compare(
                Call("@gpt_2.gpt_logits", (args, _gpt_state(grader, args, dtype), idx)),
                case=f"GPT{args} with stand-in blocks, idx{list(idx.shape)}, {_dt(dtype)}",
            )


@check(points=2, task="GPT")
def test_gpt_gradients(grader):
    """GPT gradients w.r.t. wte.weight (both uses), wpe.weight and ln_f, stand-in blocks"""
    for args, (B, L) in GPT_SHAPES[:2]:
        for dtype in DTYPES:
            idx = grader.randint(0, args[0], (B, L))
            cot = grader.randn(B, L, args[0], dtype=dtype)
            grader.compare(
                Call("@gpt_2.gpt_logits", (args, _gpt_state(grader, args, dtype), idx, cot)),
                case=f"gradients of GPT{args} with stand-in blocks, idx{list(idx.shape)}, "
                f"{_dt(dtype)}",
            )


@check(points=1, task="GPT")
def test_gpt_with_own_blocks(grader):
    """GPT logits with copied weights and your own Blocks (the whole model)"""
    for args, (B, L) in GPT_SHAPES[:2]:
        for dtype in DTYPES:
            idx = grader.randint(0, args[0], (B, L))
            model = Make("GPT", args, state_dict=_gpt_state(grader, args, dtype, True),
                         dtype=dtype, train=False)
            grader.compare(Call(model, (idx,)),
                           case=f"GPT{args} with your Blocks, idx{list(idx.shape)}, {_dt(dtype)}")


# -- BPE --------------------------------------------------------------------------------------

NON_ASCII = "café naïve Zürich — smörgås på 日本語, crêpes 😀 crêpes 😀 café"


def _merges(grader, text, k):
    """The reference's merges for ``text`` as a list of ((a, b), new_id)."""
    rows = grader.reference(Call("@gpt_2.merges", (text, k)), float64=False).out

    return [((a, b), new) for a, b, new in rows.tolist()]


def _train(grader, text, k, label):
    grader.compare(Call("@gpt_2.merges", (text, k)), exact=True,
                   case=f"bpe_train({label}, {k}) as rows (a, b, new_id)")


@check(points=2, public=True, task="bpe_train")
def test_bpe_train(grader):
    """bpe_train merges on ASCII texts, incl. 30 sentences of the synthetic language"""
    _train(grader, "aaabdaaabac", 3, "'aaabdaaabac'")
    _train(grader, "hello hello world, hello there", 8, "'hello hello world, hello there'")
    _train(grader, language_text(30, seed=3), 40, "text(30, seed=3) of the synthetic language")


@check(points=1, public=True, task="bpe_train")
def test_bpe_train_non_ascii(grader):
    """bpe_train on UTF-8 bytes: non-ASCII letters, CJK and emoji"""
    _train(grader, NON_ASCII, 25, repr(NON_ASCII))
    _train(grader, language_text(40, seed=5), 30, "text(40, seed=5), with ö, é, ï, ê, å")


@check(points=1, task="bpe_train")
def test_bpe_train_overlapping_counts(grader):
    """bpe_train counts overlapping occurrences of a pair (a, a) in runs"""
    _train(grader, "aaa bcbc", 2, "'aaa bcbc'")
    _train(grader, "xxxx yzyz yzyz xxx", 4, "'xxxx yzyz yzyz xxx'")


@check(points=1, task="bpe_train")
def test_bpe_train_ties(grader):
    """bpe_train breaks ties by the pair's first occurrence in the current sequence"""
    _train(grader, "zyxzyx", 2, "'zyxzyx'")
    _train(grader, "the cat, a dog; the cat", 6, "'the cat, a dog; the cat'")


@check(points=1, task="bpe_train")
def test_bpe_train_edges(grader):
    """bpe_train stops when fewer than two ids remain; 0 merges, empty and 1-byte texts"""
    _train(grader, "aaaa", 5, "'aaaa'")
    _train(grader, "abcab", 10, "'abcab'")
    _train(grader, "abc", 0, "'abc'")
    _train(grader, "", 3, "''")
    _train(grader, "q", 3, "'q'")
    _train(grader, "é", 3, "'é' (2 bytes)")


def _encode(grader, text, merges, label):
    grader.compare(Call("@gpt_2.encode", (text, merges)), exact=True,
                   case=f"bpe_encode({label}) as ids")


@check(points=2, public=True, task="bpe_encode")
def test_bpe_encode(grader):
    """bpe_encode with learned merges: the training text itself and new text"""
    train = language_text(30, seed=7)
    merges = _merges(grader, train, 40)
    _encode(grader, train, merges, "the training text text(30, seed=7), 40 merges")
    _encode(grader, language_text(10, seed=8), merges, "text(10, seed=8), merges of seed 7")
    _encode(grader, "the cats sleep . a dog waits .", merges, "'the cats sleep . a dog "
            "waits .', merges of seed 7")


@check(points=1, task="bpe_encode")
def test_bpe_encode_rank_order(grader):
    """bpe_encode applies the present pair of lowest merge rank first"""
    # rank 0 is (b, c), rank 1 (a, b): on "abcd" the leftmost mergeable pair is the wrong one
    merges = [((98, 99), 256), ((97, 98), 257), ((256, 100), 258), ((97, 258), 259)]
    _encode(grader, "abcd abc ab bcd", merges, "'abcd abc ab bcd', hand-written merges")
    merges = _merges(grader, "low lower lowest slow slowly", 12)
    _encode(grader, "slower lowly", merges, "'slower lowly', merges of 'low lower …'")


@check(points=1, task="bpe_encode")
def test_bpe_encode_edges(grader):
    """bpe_encode of non-ASCII text, unseen bytes, the empty string, and with no merges"""
    merges = _merges(grader, NON_ASCII, 25)
    _encode(grader, NON_ASCII, merges, "the non-ASCII training text")
    _encode(grader, "Malmö, Kraków! 🙂 {}", merges, "'Malmö, Kraków! 🙂 {}' (unseen bytes)")
    _encode(grader, "", merges, "''")
    _encode(grader, "café", [], "'café' with no merges")


@check(points=1, public=True, task="bpe_decode")
def test_bpe_decode(grader):
    """bpe_decode of ids: raw bytes, merged ids, and characters split across ids"""
    merges = _merges(grader, NON_ASCII, 25)
    for ids, label in [
        ([104, 105], "[104, 105]"),
        ([195, 169], "[195, 169], the two bytes of 'é'"),
        (list(range(256, 281)), "ids 256…280"),
        ([], "[]"),
    ]:
        grader.compare(Call("bpe_decode", (ids, merges)), exact=True,
                       case=f"bpe_decode({label})")


@check(points=1, task="bpe_decode")
def test_bpe_decode_invalid_utf8(grader):
    """bpe_decode replaces invalid UTF-8 by U+FFFD and joins bytes across ids first"""
    merges = _merges(grader, "日本語 日本語 ö ö", 6)
    for ids, label in [
        ([230, 151, 165, 230], "a 3-byte character and a lone lead byte"),
        ([169, 195], "[169, 195], the bytes of 'é' reversed"),
        (list(range(256, 262)) + [230, 151], "merged ids, then a cut character"),
    ]:
        grader.compare(Call("bpe_decode", (ids, merges)), exact=True,
                       case=f"bpe_decode({label})")


@check(points=2, public=True, task="bpe_decode")
def test_bpe_round_trip(grader):
    """bpe_decode(bpe_encode(s)) == s, for ASCII and non-ASCII s"""
    cases = [
        (NON_ASCII, 25, "the non-ASCII training text"),
        (language_text(20, seed=11), 30, "text(20, seed=11)"),
    ]
    for train, k, label in cases:
        merges = _merges(grader, train, k)
        for s, what in [(train, label), ("Zürich → Reykjavík, 🙂 ½ ✓", "new non-ASCII text")]:
            grader.compare(Call("@gpt_2.round_trip", (s, merges)), exact=True,
                           case=f"bpe_decode(bpe_encode({what})), merges of {label}")

