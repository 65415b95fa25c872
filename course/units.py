"""Every unit of the syllabus (parts 00 to 06), in syllabus order.

Plain data: the catalogue (:mod:`course.catalogue`) reads ``UNITS`` and derives paths and status.
Authors are written "A. Surname, B. Surname and C. Surname"; more than six authors are cut to the
first three and "et al.". Links are arXiv abstract pages where the paper has one, otherwise a DOI
or the proceedings page.
"""

from __future__ import annotations

from course.catalogue import Paper, Unit

# Cited by two units (3.2 lstm and 3.3 forget-gate).
_GERS_2000 = Paper(
    authors="F. A. Gers, J. Schmidhuber and F. Cummins",
    year=2000,
    title="Learning to Forget: Continual Prediction with LSTM",
    url="https://doi.org/10.1162/089976600300015015",
    venue="Neural Computation 12(10):2451–2471",
)

UNITS: tuple[Unit, ...] = (
    # -- 00 Overview ---------------------------------------------------------------------------
    Unit(
        number="0.1",
        slug="constraints",
        title="The seven constraints",
        papers=(),
        constraints=(),
        lecture_only=True,
        summary=(
            "Frames deep learning as modelling a distribution from data and maps every unit of "
            "the course onto the seven constraints (data, parameters, optimization, architecture, "
            "compute, efficiency, energy) that its paper pushed."
        ),
    ),
    # -- 01 Deep neural networks ---------------------------------------------------------------
    Unit(
        number="1.1",
        slug="backprop",
        title="Backpropagation",
        papers=(
            Paper(
                authors="D. E. Rumelhart, G. E. Hinton and R. J. Williams",
                year=1986,
                title="Learning Internal Representations by Error Propagation",
                url="https://doi.org/10.7551/mitpress/5236.001.0001",
                venue="Parallel Distributed Processing, Vol. 1, ch. 8, MIT Press",
            ),
        ),
        constraints=("optimization", "architecture"),
        summary=(
            "Derives the gradients of a two-layer sigmoid network by hand with the generalized "
            "delta rule and momentum, enough to train hidden units that solve XOR."
        ),
    ),
    Unit(
        number="1.2",
        slug="conv",
        title="Convolutional networks",
        papers=(
            Paper(
                authors="Y. LeCun, B. Boser, J. S. Denker et al.",
                year=1989,
                title="Backpropagation Applied to Handwritten Zip Code Recognition",
                url="https://doi.org/10.1162/neco.1989.1.4.541",
                venue="Neural Computation 1(4):541–551",
            ),
        ),
        constraints=("architecture", "parameters"),
        summary=(
            "Builds a 2-D convolution from scratch and shows how weight sharing and local "
            "connectivity match a dense network's accuracy with far fewer parameters."
        ),
    ),
    Unit(
        number="1.3",
        slug="lenet",
        title="LeNet-5",
        papers=(
            Paper(
                authors="Y. LeCun, L. Bottou, Y. Bengio and P. Haffner",
                year=1998,
                title="Gradient-Based Learning Applied to Document Recognition",
                url="https://doi.org/10.1109/5.726791",
                venue="Proceedings of the IEEE 86(11):2278–2324",
            ),
        ),
        constraints=("architecture", "data"),
        summary=(
            "Assembles the LeNet-5 stack of convolutions, average pooling and scaled tanh and "
            "trains it to high accuracy on handwritten digits."
        ),
    ),
    Unit(
        number="1.4",
        slug="alexnet",
        title="AlexNet",
        papers=(
            Paper(
                authors="A. Krizhevsky, I. Sutskever and G. E. Hinton",
                year=2012,
                title="ImageNet Classification with Deep Convolutional Neural Networks",
                url=(
                    "https://papers.nips.cc/paper/2012/hash/"
                    "c399862d3b9d6b76c8436e924a68c45b-Abstract.html"
                ),
                venue="NIPS 2012",
            ),
        ),
        constraints=("compute", "data", "architecture"),
        summary=(
            "Implements the paper's local response normalization and ten-crop test-time "
            "averaging, and reproduces in miniature why ReLU trains faster than tanh."
        ),
    ),
    Unit(
        number="1.5",
        slug="unet",
        title="U-Net",
        papers=(
            Paper(
                authors="O. Ronneberger, P. Fischer and T. Brox",
                year=2015,
                title="U-Net: Convolutional Networks for Biomedical Image Segmentation",
                url="https://arxiv.org/abs/1505.04597",
                venue="MICCAI 2015",
            ),
        ),
        constraints=("architecture", "data"),
        summary=(
            "Builds the encoder-decoder with skip connections and the border-weighted loss that "
            "lets a segmentation network separate touching objects from few training images."
        ),
    ),
    # -- 02 Optimization and regularization ----------------------------------------------------
    Unit(
        number="2.1",
        slug="weight-decay",
        title="Weight decay",
        papers=(
            Paper(
                authors="A. Krogh and J. A. Hertz",
                year=1991,
                title="A Simple Weight Decay Can Improve Generalization",
                url=(
                    "https://papers.nips.cc/paper/1991/hash/"
                    "8eefcfdf5990e441f0fb6f3fad709e21-Abstract.html"
                ),
                venue="NIPS 1991",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Contrasts an L2 penalty with decoupled weight decay and shows on noisy regression "
            "that a well-chosen decay lowers test error."
        ),
    ),
    Unit(
        number="2.2",
        slug="relu",
        title="Rectified linear units",
        papers=(
            Paper(
                authors="X. Glorot, A. Bordes and Y. Bengio",
                year=2011,
                title="Deep Sparse Rectifier Neural Networks",
                url="https://proceedings.mlr.press/v15/glorot11a.html",
                venue="AISTATS 2011, PMLR 15:315–323",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Writes ReLU as an autograd function and measures the sparse, non-saturating code "
            "that lets deep networks train where sigmoid units stall."
        ),
    ),
    Unit(
        number="2.3",
        slug="residual",
        title="Residual networks",
        papers=(
            Paper(
                authors="K. He, X. Zhang, S. Ren and J. Sun",
                year=2015,
                title="Deep Residual Learning for Image Recognition",
                url="https://arxiv.org/abs/1512.03385",
                venue="CVPR 2016",
            ),
        ),
        constraints=("architecture", "optimization"),
        summary=(
            "Builds residual blocks and a CIFAR-style ResNet, and shows that identity shortcuts "
            "remove the degradation of plain networks as they grow deeper."
        ),
    ),
    Unit(
        number="2.4",
        slug="dropout",
        title="Dropout",
        papers=(
            Paper(
                authors=(
                    "N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov"
                ),
                year=2014,
                title="Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
                url="https://jmlr.org/papers/v15/srivastava14a.html",
                venue="JMLR 15:1929–1958",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Implements inverted dropout next to the paper's retention-probability convention "
            "and shows it narrowing the gap between training and test accuracy."
        ),
    ),
    Unit(
        number="2.5",
        slug="batch-norm",
        title="Batch normalization",
        papers=(
            Paper(
                authors="S. Ioffe and C. Szegedy",
                year=2015,
                title=(
                    "Batch Normalization: Accelerating Deep Network Training by Reducing "
                    "Internal Covariate Shift"
                ),
                url="https://arxiv.org/abs/1502.03167",
                venue="ICML 2015",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Derives batch normalization's forward pass, running statistics and backward pass by "
            "hand, and shows it allowing faster training at higher learning rates."
        ),
    ),
    Unit(
        number="2.6",
        slug="layer-norm",
        title="Layer normalization",
        papers=(
            Paper(
                authors="J. L. Ba, J. R. Kiros and G. E. Hinton",
                year=2016,
                title="Layer Normalization",
                url="https://arxiv.org/abs/1607.06450",
                venue="arXiv preprint",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Normalizes each sample over its own features, forward and backward by hand, so the "
            "output never depends on the batch, and shows where that beats batch norm."
        ),
    ),
    Unit(
        number="2.7",
        slug="gelu",
        title="Gaussian error linear units",
        papers=(
            Paper(
                authors="D. Hendrycks and K. Gimpel",
                year=2016,
                title="Gaussian Error Linear Units (GELUs)",
                url="https://arxiv.org/abs/1606.08415",
                venue="arXiv preprint",
            ),
        ),
        constraints=("optimization", "architecture"),
        summary=(
            "Implements the exact GELU, its tanh and sigmoid approximations and its derivative, "
            "and compares it honestly with ReLU and ELU."
        ),
    ),
    Unit(
        number="2.8",
        slug="adam",
        title="Adam",
        papers=(
            Paper(
                authors="D. P. Kingma and J. Ba",
                year=2014,
                title="Adam: A Method for Stochastic Optimization",
                url="https://arxiv.org/abs/1412.6980",
                venue="ICLR 2015",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Writes Adam and AdamW as a PyTorch optimizer with bias-corrected moment estimates "
            "and compares it with SGD, momentum and RMSProp."
        ),
    ),
    # -- 03 Sequence modeling ------------------------------------------------------------------
    Unit(
        number="3.1",
        slug="rnn",
        title="Recurrent networks",
        papers=(
            Paper(
                authors="R. J. Williams and D. Zipser",
                year=1989,
                title=(
                    "A Learning Algorithm for Continually Running Fully Recurrent Neural Networks"
                ),
                url="https://doi.org/10.1162/neco.1989.1.2.270",
                venue="Neural Computation 1(2):270–280",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Runs an Elman network and computes its gradients forward in time with real-time "
            "recurrent learning, then shows how gradients vanish with the time lag."
        ),
    ),
    Unit(
        number="3.2",
        slug="lstm",
        title="Long short-term memory",
        papers=(
            Paper(
                authors="S. Hochreiter and J. Schmidhuber",
                year=1997,
                title="Long Short-Term Memory",
                url="https://doi.org/10.1162/neco.1997.9.8.1735",
                venue="Neural Computation 9(8):1735–1780",
            ),
            _GERS_2000,
        ),
        constraints=("architecture", "optimization"),
        summary=(
            "Builds the modern gated LSTM cell with PyTorch's parameter layout and shows it "
            "carrying information across long time lags where a plain RNN fails."
        ),
    ),
    Unit(
        number="3.3",
        slug="forget-gate",
        title="Learning to forget",
        papers=(_GERS_2000,),
        constraints=("architecture",),
        summary=(
            "Uses the embedded Reber grammar on a continual stream to show why an LSTM needs a "
            "forget gate to reset its cell state."
        ),
    ),
    Unit(
        number="3.4",
        slug="word2vec",
        title="Word2vec",
        papers=(
            Paper(
                authors="T. Mikolov, K. Chen, G. Corrado and J. Dean",
                year=2013,
                title="Efficient Estimation of Word Representations in Vector Space",
                url="https://arxiv.org/abs/1301.3781",
                venue="ICLR 2013 Workshop",
            ),
        ),
        constraints=("data", "efficiency"),
        summary=(
            "Trains skip-gram and CBOW embeddings on a corpus with planted structure and "
            "recovers analogies by vector arithmetic."
        ),
    ),
    Unit(
        number="3.5",
        slug="negative-sampling",
        title="Negative sampling",
        papers=(
            Paper(
                authors="T. Mikolov, I. Sutskever, K. Chen, G. Corrado and J. Dean",
                year=2013,
                title=(
                    "Distributed Representations of Words and Phrases and their Compositionality"
                ),
                url="https://arxiv.org/abs/1310.4546",
                venue="NIPS 2013",
            ),
        ),
        constraints=("efficiency", "data"),
        summary=(
            "Replaces the full softmax with negative sampling and adds frequent-word subsampling "
            "and phrase detection, the tricks that made embeddings cheap at scale."
        ),
    ),
    Unit(
        number="3.6",
        slug="encoder-decoder",
        title="RNN encoder-decoder",
        papers=(
            Paper(
                authors="K. Cho, B. van Merriënboer, C. Gulcehre et al.",
                year=2014,
                title=(
                    "Learning Phrase Representations using RNN Encoder-Decoder for Statistical "
                    "Machine Translation"
                ),
                url="https://arxiv.org/abs/1406.1078",
                venue="EMNLP 2014",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Builds the GRU and an encoder-decoder with a fixed context vector, and shows its "
            "accuracy falling as sequences grow longer."
        ),
    ),
    Unit(
        number="3.7",
        slug="seq2seq",
        title="Sequence to sequence",
        papers=(
            Paper(
                authors="I. Sutskever, O. Vinyals and Q. V. Le",
                year=2014,
                title="Sequence to Sequence Learning with Neural Networks",
                url="https://arxiv.org/abs/1409.3215",
                venue="NIPS 2014",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Decodes with beam search over log-probabilities and shows how reversing the source "
            "sequence speeds up learning."
        ),
    ),
    Unit(
        number="3.8",
        slug="bahdanau-attention",
        title="Additive attention",
        papers=(
            Paper(
                authors="D. Bahdanau, K. Cho and Y. Bengio",
                year=2014,
                title="Neural Machine Translation by Jointly Learning to Align and Translate",
                url="https://arxiv.org/abs/1409.0473",
                venue="ICLR 2015",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Adds additive attention over the encoder states to the decoder, removing the "
            "fixed-vector bottleneck and yielding readable alignments."
        ),
    ),
    Unit(
        number="3.9",
        slug="mixture-of-experts",
        title="Sparsely-gated mixture of experts",
        papers=(
            Paper(
                authors="N. Shazeer, A. Mirhoseini, K. Maziarz et al.",
                year=2017,
                title=(
                    "Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts "
                    "Layer"
                ),
                url="https://arxiv.org/abs/1701.06538",
                venue="ICLR 2017",
            ),
        ),
        constraints=("parameters", "efficiency"),
        summary=(
            "Routes each token to a few experts with noisy top-k gating and shows that "
            "balancing losses keep expert use from collapsing."
        ),
    ),
    # -- 04 Transformers -----------------------------------------------------------------------
    Unit(
        number="4.1",
        slug="transformer",
        title="The Transformer",
        papers=(
            Paper(
                authors="A. Vaswani, N. Shazeer, N. Parmar et al.",
                year=2017,
                title="Attention Is All You Need",
                url="https://arxiv.org/abs/1706.03762",
                venue="NIPS 2017",
            ),
        ),
        constraints=("architecture", "efficiency"),
        summary=(
            "Implements scaled dot-product and multi-head attention with masks and sinusoidal "
            "positions, and trains a small transformer to reverse sequences."
        ),
    ),
    Unit(
        number="4.2",
        slug="bert",
        title="BERT",
        papers=(
            Paper(
                authors="J. Devlin, M.-W. Chang, K. Lee and K. Toutanova",
                year=2018,
                title=(
                    "BERT: Pre-training of Deep Bidirectional Transformers for Language "
                    "Understanding"
                ),
                url="https://arxiv.org/abs/1810.04805",
                venue="NAACL 2019",
            ),
        ),
        constraints=("data", "parameters"),
        summary=(
            "Pre-trains a bidirectional encoder with masked-token prediction on unlabeled text "
            "and shows fine-tuning with few labels beating training from scratch."
        ),
    ),
    Unit(
        number="4.3",
        slug="roberta",
        title="RoBERTa",
        papers=(
            Paper(
                authors="Y. Liu, M. Ott, N. Goyal et al.",
                year=2019,
                title="RoBERTa: A Robustly Optimized BERT Pretraining Approach",
                url="https://arxiv.org/abs/1907.11692",
                venue="arXiv preprint",
            ),
        ),
        constraints=("data", "optimization"),
        summary=(
            "Revisits BERT's training recipe with dynamic masking and full-sentence packing, "
            "showing how much pre-training choices matter."
        ),
    ),
    Unit(
        number="4.4",
        slug="t5",
        title="T5",
        papers=(
            Paper(
                authors="C. Raffel, N. Shazeer, A. Roberts et al.",
                year=2019,
                title=(
                    "Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
                    "Transformer"
                ),
                url="https://arxiv.org/abs/1910.10683",
                venue="JMLR 21(140):1–67",
            ),
        ),
        constraints=("data", "parameters"),
        summary=(
            "Casts every task as text to text, implementing span corruption and bucketed "
            "relative position biases."
        ),
    ),
    Unit(
        number="4.5",
        slug="gpt-2",
        title="GPT-2",
        papers=(
            Paper(
                authors="A. Radford, J. Wu, R. Child, D. Luan, D. Amodei and I. Sutskever",
                year=2019,
                title="Language Models are Unsupervised Multitask Learners",
                url=(
                    "https://cdn.openai.com/better-language-models/"
                    "language_models_are_unsupervised_multitask_learners.pdf"
                ),
                venue="OpenAI technical report",
            ),
        ),
        constraints=("parameters", "data"),
        summary=(
            "Builds a pre-LN causal decoder with tied embeddings and a byte-level BPE tokenizer, "
            "the recipe behind zero-shot language modelling."
        ),
    ),
    Unit(
        number="4.6",
        slug="gpt-3",
        title="GPT-3",
        papers=(
            Paper(
                authors="T. B. Brown, B. Mann, N. Ryder et al.",
                year=2020,
                title="Language Models are Few-Shot Learners",
                url="https://arxiv.org/abs/2005.14165",
                venue="NeurIPS 2020",
            ),
        ),
        constraints=("parameters", "data", "compute"),
        summary=(
            "Implements sampling with temperature, top-k and top-p, a KV cache and a power-law "
            "fit, and shows scaling curves and in-context learning in miniature."
        ),
    ),
    Unit(
        number="4.7",
        slug="lora",
        title="Low-rank adaptation",
        papers=(
            Paper(
                authors="E. J. Hu, Y. Shen, P. Wallis et al.",
                year=2021,
                title="LoRA: Low-Rank Adaptation of Large Language Models",
                url="https://arxiv.org/abs/2106.09685",
                venue="ICLR 2022",
            ),
        ),
        constraints=("efficiency", "parameters"),
        summary=(
            "Fine-tunes a frozen linear layer through a trainable low-rank update that can be "
            "merged back into the weights."
        ),
    ),
    Unit(
        number="4.8",
        slug="rlhf",
        title="Learning from human preferences",
        papers=(
            Paper(
                authors="D. M. Ziegler, N. Stiennon, J. Wu et al.",
                year=2019,
                title="Fine-Tuning Language Models from Human Preferences",
                url="https://arxiv.org/abs/1909.08593",
                venue="arXiv preprint",
            ),
        ),
        constraints=("data", "optimization"),
        summary=(
            "Trains a reward model on pairwise human preferences and optimizes a policy against "
            "it with a KL penalty towards the original model."
        ),
    ),
    Unit(
        number="4.9",
        slug="ppo",
        title="Proximal policy optimization",
        papers=(
            Paper(
                authors="J. Schulman, F. Wolski, P. Dhariwal, A. Radford and O. Klimov",
                year=2017,
                title="Proximal Policy Optimization Algorithms",
                url="https://arxiv.org/abs/1707.06347",
                venue="arXiv preprint",
            ),
        ),
        constraints=("optimization",),
        summary=(
            "Implements generalized advantage estimation and the clipped surrogate objective "
            "with value and entropy terms, and solves a tiny environment."
        ),
    ),
    Unit(
        number="4.10",
        slug="instructgpt",
        title="InstructGPT",
        papers=(
            Paper(
                authors="L. Ouyang, J. Wu, X. Jiang et al.",
                year=2022,
                title="Training language models to follow instructions with human feedback",
                url="https://arxiv.org/abs/2203.02155",
                venue="NeurIPS 2022",
            ),
        ),
        constraints=("data", "optimization"),
        summary=(
            "Assembles the instruction-following pipeline: a reward model trained on K-way "
            "rankings and the PPO objective mixed with pre-training gradients."
        ),
    ),
    Unit(
        number="4.11",
        slug="helpful-harmless",
        title="Helpful and harmless assistants",
        papers=(
            Paper(
                authors="Y. Bai, A. Jones, K. Ndousse et al.",
                year=2022,
                title=(
                    "Training a Helpful and Harmless Assistant with Reinforcement Learning from "
                    "Human Feedback"
                ),
                url="https://arxiv.org/abs/2204.05862",
                venue="arXiv preprint",
            ),
        ),
        constraints=("data", "optimization"),
        summary=(
            "Measures per-token KL from the base model and compares RL fine-tuning with "
            "best-of-n sampling against a reward model."
        ),
    ),
    Unit(
        number="4.12",
        slug="vit",
        title="Vision Transformer",
        papers=(
            Paper(
                authors="A. Dosovitskiy, L. Beyer, A. Kolesnikov et al.",
                year=2020,
                title=(
                    "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
                ),
                url="https://arxiv.org/abs/2010.11929",
                venue="ICLR 2021",
            ),
        ),
        constraints=("architecture", "data"),
        summary=(
            "Turns images into sequences of patch embeddings with a class token and learned "
            "positions, and shows a CNN winning when data is scarce."
        ),
    ),
    Unit(
        number="4.13",
        slug="moe-transformer",
        title="Mixture-of-experts transformers",
        papers=(
            Paper(
                authors="S. Shen, L. Hou, Y. Zhou et al.",
                year=2023,
                title=(
                    "Mixture-of-Experts Meets Instruction Tuning: A Winning Combination for "
                    "Large Language Models"
                ),
                url="https://arxiv.org/abs/2305.14705",
                venue="ICLR 2024",
            ),
        ),
        constraints=("parameters", "efficiency"),
        summary=(
            "Replaces a transformer's feed-forward block with top-k routed experts, capacity "
            "limits with token dropping, and an auxiliary load-balancing loss."
        ),
    ),
    # -- 05 Generative models ------------------------------------------------------------------
    Unit(
        number="5.1",
        slug="gan",
        title="Generative adversarial networks",
        papers=(
            Paper(
                authors="I. J. Goodfellow, J. Pouget-Abadie, M. Mirza et al.",
                year=2014,
                title="Generative Adversarial Nets",
                url="https://arxiv.org/abs/1406.2661",
                venue="NIPS 2014",
            ),
        ),
        constraints=("optimization", "architecture"),
        summary=(
            "Trains a generator against a discriminator on a 2-D mixture and shows why the "
            "non-saturating generator loss is needed early in training."
        ),
    ),
    Unit(
        number="5.2",
        slug="stylegan",
        title="StyleGAN",
        papers=(
            Paper(
                authors="T. Karras, S. Laine and T. Aila",
                year=2018,
                title="A Style-Based Generator Architecture for Generative Adversarial Networks",
                url="https://arxiv.org/abs/1812.04948",
                venue="CVPR 2019",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Builds the mapping network and AdaIN style injection, with truncation and style "
            "mixing to control what the generator draws."
        ),
    ),
    Unit(
        number="5.3",
        slug="stylegan2",
        title="StyleGAN2",
        papers=(
            Paper(
                authors="T. Karras, S. Laine, M. Aittala, J. Hellsten, J. Lehtinen and T. Aila",
                year=2019,
                title="Analyzing and Improving the Image Quality of StyleGAN",
                url="https://arxiv.org/abs/1912.04958",
                venue="CVPR 2020",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Replaces AdaIN with weight modulation and demodulation, implemented efficiently as "
            "a grouped convolution."
        ),
    ),
    Unit(
        number="5.4",
        slug="vae",
        title="Variational autoencoders",
        papers=(
            Paper(
                authors="D. P. Kingma and M. Welling",
                year=2013,
                title="Auto-Encoding Variational Bayes",
                url="https://arxiv.org/abs/1312.6114",
                venue="ICLR 2014",
            ),
        ),
        constraints=("optimization", "architecture"),
        summary=(
            "Trains an encoder and decoder on the ELBO with the reparameterization trick and an "
            "analytic KL term, and maps a 2-D latent space of digits."
        ),
    ),
    Unit(
        number="5.5",
        slug="vq-vae",
        title="Vector-quantized VAE",
        papers=(
            Paper(
                authors="A. van den Oord, O. Vinyals and K. Kavukcuoglu",
                year=2017,
                title="Neural Discrete Representation Learning",
                url="https://arxiv.org/abs/1711.00937",
                venue="NIPS 2017",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Quantizes latents to their nearest codebook vector and trains through the "
            "quantizer with a straight-through estimator plus codebook and commitment losses."
        ),
    ),
    Unit(
        number="5.6",
        slug="vq-vae-2",
        title="VQ-VAE-2",
        papers=(
            Paper(
                authors="A. Razavi, A. van den Oord and O. Vinyals",
                year=2019,
                title="Generating Diverse High-Fidelity Images with VQ-VAE-2",
                url="https://arxiv.org/abs/1906.00446",
                venue="NeurIPS 2019",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Updates the codebook by exponential moving averages with Laplace smoothing and "
            "stacks two levels of quantized latents."
        ),
    ),
    Unit(
        number="5.7",
        slug="diffusion",
        title="Diffusion probabilistic models",
        papers=(
            Paper(
                authors="J. Sohl-Dickstein, E. A. Weiss, N. Maheswaranathan and S. Ganguli",
                year=2015,
                title="Deep Unsupervised Learning using Nonequilibrium Thermodynamics",
                url="https://arxiv.org/abs/1503.03585",
                venue="ICML 2015",
            ),
        ),
        constraints=("architecture", "optimization"),
        summary=(
            "Derives the closed-form forward noising process, its tractable posterior and the "
            "Gaussian KL terms that make diffusion a trainable generative model."
        ),
    ),
    Unit(
        number="5.8",
        slug="ddpm",
        title="Denoising diffusion",
        papers=(
            Paper(
                authors="J. Ho, A. Jain and P. Abbeel",
                year=2020,
                title="Denoising Diffusion Probabilistic Models",
                url="https://arxiv.org/abs/2006.11239",
                venue="NeurIPS 2020",
            ),
        ),
        constraints=("optimization", "architecture"),
        summary=(
            "Trains a noise-predicting network with the simplified DDPM loss and samples by "
            "ancestral denoising, here on a 2-D swiss roll."
        ),
    ),
    Unit(
        number="5.9",
        slug="improved-ddpm",
        title="Improved DDPM",
        papers=(
            Paper(
                authors="A. Nichol and P. Dhariwal",
                year=2021,
                title="Improved Denoising Diffusion Probabilistic Models",
                url="https://arxiv.org/abs/2102.09672",
                venue="ICML 2021",
            ),
        ),
        constraints=("optimization", "efficiency"),
        summary=(
            "Adds the cosine noise schedule, learned interpolated variances and timestep "
            "respacing so that far fewer sampling steps suffice."
        ),
    ),
    Unit(
        number="5.10",
        slug="classifier-guidance",
        title="Classifier guidance",
        papers=(
            Paper(
                authors="P. Dhariwal and A. Nichol",
                year=2021,
                title="Diffusion Models Beat GANs on Image Synthesis",
                url="https://arxiv.org/abs/2105.05233",
                venue="NeurIPS 2021",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Shifts each reverse-diffusion mean along a classifier's gradient to trade sample "
            "diversity for fidelity to a class."
        ),
    ),
    Unit(
        number="5.11",
        slug="latent-diffusion",
        title="Latent diffusion",
        papers=(
            Paper(
                authors="R. Rombach, A. Blattmann, D. Lorenz, P. Esser and B. Ommer",
                year=2021,
                title="High-Resolution Image Synthesis with Latent Diffusion Models",
                url="https://arxiv.org/abs/2112.10752",
                venue="CVPR 2022",
            ),
        ),
        constraints=("efficiency", "compute"),
        summary=(
            "Runs diffusion in an autoencoder's compact latent space, conditioned through "
            "cross-attention and steered with classifier-free guidance."
        ),
    ),
    Unit(
        number="5.12",
        slug="controlnet",
        title="ControlNet",
        papers=(
            Paper(
                authors="L. Zhang, A. Rao and M. Agrawala",
                year=2023,
                title="Adding Conditional Control to Text-to-Image Diffusion Models",
                url="https://arxiv.org/abs/2302.05543",
                venue="ICCV 2023",
            ),
        ),
        constraints=("efficiency", "architecture"),
        summary=(
            "Attaches a trainable copy of a frozen diffusion model through zero-initialized "
            "convolutions, so new conditions are learned without disturbing the original."
        ),
    ),
    Unit(
        number="5.13",
        slug="sdxl",
        title="SDXL",
        papers=(
            Paper(
                authors="D. Podell, Z. English, K. Lacey et al.",
                year=2023,
                title=(
                    "SDXL: Improving Latent Diffusion Models for High-Resolution Image Synthesis"
                ),
                url="https://arxiv.org/abs/2307.01952",
                venue="arXiv preprint",
            ),
        ),
        constraints=("data", "parameters"),
        summary=(
            "Conditions a latent diffusion model on original image size and crop coordinates "
            "through sinusoidal embeddings, so training can use images it would have discarded."
        ),
    ),
    Unit(
        number="5.14",
        slug="clip",
        title="CLIP",
        papers=(
            Paper(
                authors="A. Radford, J. W. Kim, C. Hallacy et al.",
                year=2021,
                title="Learning Transferable Visual Models From Natural Language Supervision",
                url="https://arxiv.org/abs/2103.00020",
                venue="ICML 2021",
            ),
        ),
        constraints=("data", "efficiency"),
        summary=(
            "Aligns image and text embeddings with a symmetric contrastive loss and a learned "
            "temperature, then classifies zero-shot from text prompts."
        ),
    ),
    Unit(
        number="5.15",
        slug="dall-e",
        title="DALL·E",
        papers=(
            Paper(
                authors="A. Ramesh, M. Pavlov, G. Goh et al.",
                year=2021,
                title="Zero-Shot Text-to-Image Generation",
                url="https://arxiv.org/abs/2102.12092",
                venue="ICML 2021",
            ),
        ),
        constraints=("parameters", "data"),
        summary=(
            "Trains a discrete VAE with the Gumbel-softmax relaxation and models text followed "
            "by image tokens with one autoregressive transformer."
        ),
    ),
    Unit(
        number="5.16",
        slug="dall-e-2",
        title="DALL·E 2",
        papers=(
            Paper(
                authors="A. Ramesh, P. Dhariwal, A. Nichol, C. Chu and M. Chen",
                year=2022,
                title="Hierarchical Text-Conditional Image Generation with CLIP Latents",
                url="https://arxiv.org/abs/2204.06125",
                venue="arXiv preprint",
            ),
        ),
        constraints=("architecture",),
        summary=(
            "Generates images from CLIP image embeddings produced by a diffusion prior, and "
            "interpolates between them with spherical interpolation."
        ),
    ),
    # -- 06 Compute ----------------------------------------------------------------------------
    Unit(
        number="6.1",
        slug="data-parallel",
        title="Data-parallel training",
        papers=(
            Paper(
                authors="S. Li, Y. Zhao, R. Varma et al.",
                year=2020,
                title="PyTorch Distributed: Experiences on Accelerating Data Parallel Training",
                url="https://arxiv.org/abs/2006.15704",
                venue="Proceedings of the VLDB Endowment 13(12)",
            ),
        ),
        constraints=("compute",),
        summary=(
            "All-reduces gradients across processes with torch.distributed so that training on "
            "shards equals single-process training on the full batch."
        ),
    ),
    Unit(
        number="6.2",
        slug="flash-attention",
        title="FlashAttention",
        papers=(
            Paper(
                authors="T. Dao, D. Y. Fu, S. Ermon, A. Rudra and C. Ré",
                year=2022,
                title=(
                    "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness"
                ),
                url="https://arxiv.org/abs/2205.14135",
                venue="NeurIPS 2022",
            ),
        ),
        constraints=("efficiency",),
        summary=(
            "Computes exact attention tile by tile with an online softmax, never materializing "
            "the full L×L score matrix."
        ),
    ),
)
