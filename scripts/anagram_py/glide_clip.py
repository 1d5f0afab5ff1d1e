"""GLIDE's noise-aware CLIP (image and text encoders) and its BPE tokenizer, written anew.

Ref: github openai/glide-text2im, glide_text2im/clip/{encoders,attention,utils,
model_creation}.py, config.yaml, and glide_text2im/tokenizer/simple_tokenizer.py (MIT).
Parameter names and shapes follow GLIDE's modules, so the released checkpoints
`clip_image_enc.pt` / `clip_text_enc.pt` (plain state_dicts) load with strict=True into
`ImageEncoder` / `TextEncoder`. The math is GLIDE's; two things are written differently
with the same result:
  * GLIDE pads the context to a multiple of its 32-token attention block (257 -> 288 image
    tokens, 77 -> 96 text tokens) and masks the pad keys with a -1e10 bias; exp() of that
    is exactly 0 in float32, so attending over the real tokens only gives the same numbers.
  * The text encoder's causal mask is a buffer here (GLIDE keeps it on an info object).

Architecture (GLIDE config: n_embd 512, image 12 blocks x 12 heads x 64 (width 768), text 12 blocks x
8 heads x 64 (width 512), patch 4, 1000 timesteps, 77 text tokens, vocabulary table 65536 rows):
  image: x -> (x - CLIP channel mean) / std -> 4x4 patch conv (no bias) -> 256 tokens;
         a first token w_t[t] (the timestep's learned embedding) -> + w_pos -> LayerNorm
         -> blocks -> LayerNorm(token 0) -> linear (no bias) -> n_embd.
  text:  w_voc[tokens] + w_pos -> causal blocks -> pick the state at index length-1 (the
         end token) -> LayerNorm -> linear (no bias) -> n_embd.
  block: pre-LN residual attention (q, v with bias, k without; q and k each scaled by
         head_dim^-1/4; output projection f_c) then pre-LN residual MLP (4x, exact GELU).
  All LayerNorms use eps 1e-5 and run in float32.
GLIDE's CLIPModel.image_embeddings(x, t) feeds the encoder (x + 1) * 127.5 (x nominally in
[-1, 1]) and divides the result by (norm + 1e-12); text_embeddings divides likewise.
`ImageEmbedder` / `TextEmbedder` below are exactly those two functions.
"""
import gzip
import html
import math
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .torchscript import saved_as

# The committed bundles' CLIP files were traced when these modules lived in scripts/clip_model.py.
_SAVED_MODULE = "clip_model"

# GLIDE's clip/config.yaml, verbatim values.
GLIDE_CLIP_CONFIG = dict(
    logit_scale=100.0, beta_schedule="squaredcos_cap_v2", n_timesteps=1000,
    image_size=64, patch_size=4, n_vocab=65536, max_text_len=77, n_embd=512,
    n_head_state_text=64, n_head_text=8, n_xf_blocks_text=12,
    n_head_state_image=64, n_head_image=12, n_xf_blocks_image=12,
)

# Pixel statistics of the original CLIP, on a 0..255 scale (GLIDE encoders.py).
IMAGE_CHANNEL_MEANS = [122.77093945, 116.74601272, 104.09373519]
IMAGE_CHANNEL_STDS = [68.50053285, 66.63215831, 70.32316309]


# ----------------------------------------------------------------------------- layers
@saved_as(_SAVED_MODULE)
class LayerNorm(nn.Module):
    """Parameters g, b. Computes in float32 (GLIDE casts the input to float32); the result
    is cast back to the input dtype so a float16 export stays float16 between layers."""

    def __init__(self, n_state: int, eps: float = 1e-5):
        super().__init__()
        self.n_state, self.eps = n_state, eps
        self.g = nn.Parameter(torch.ones(n_state))
        self.b = nn.Parameter(torch.zeros(n_state))

    def forward(self, x):
        y = F.layer_norm(x.float(), (self.n_state,), self.g.float(), self.b.float(), self.eps)
        return y.to(x.dtype)


@saved_as(_SAVED_MODULE)
class Affine(nn.Module):
    """y = x w^T + b with parameters w (n_out, n_in) and optional b (GLIDE utils.Affine)."""

    def __init__(self, n_in: int, n_out: int, use_bias: bool = True):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_out, n_in).normal_(std=math.sqrt(2 / (n_in + n_out))))
        self.b = nn.Parameter(torch.zeros(n_out)) if use_bias else None

    def forward(self, x):
        return F.linear(x, self.w, self.b)


@saved_as(_SAVED_MODULE)
class AttentionResblock(nn.Module):
    """m + f_c(attention(ln(m))); `bias` (T, T) is added to the logits (0 or -1e10)."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head, self.n_head_state = n_head, n_state // n_head
        self.ln = LayerNorm(n_state)
        self.f_q = Affine(n_state, n_state, use_bias=True)
        self.f_k = Affine(n_state, n_state, use_bias=False)
        self.f_v = Affine(n_state, n_state, use_bias=True)
        self.f_c = Affine(n_state, n_state, use_bias=True)

    def forward(self, m, bias=None):
        b, n, c = m.shape
        r = self.ln(m)
        # (B, heads, T, head_state); GLIDE scales q and k by sqrt(1/sqrt(head_state)) each.
        scale = math.sqrt(1.0 / math.sqrt(self.n_head_state))
        q = (self.f_q(r) * scale).view(b, n, self.n_head, self.n_head_state).transpose(1, 2)
        k = (self.f_k(r) * scale).view(b, n, self.n_head, self.n_head_state).transpose(1, 2)
        v = self.f_v(r).view(b, n, self.n_head, self.n_head_state).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2)).float()
        if bias is not None:
            w = w + bias
        w = torch.softmax(w, dim=-1).to(v.dtype)
        r = torch.matmul(w, v).transpose(1, 2).reshape(b, n, c)
        return m + self.f_c(r)


@saved_as(_SAVED_MODULE)
class FullyConnectedResblock(nn.Module):
    def __init__(self, n_state: int):
        super().__init__()
        self.ln = LayerNorm(n_state)
        self.f_1 = Affine(n_state, 4 * n_state)
        self.f_2 = Affine(4 * n_state, n_state)

    def forward(self, m):
        return m + self.f_2(F.gelu(self.f_1(self.ln(m))))


@saved_as(_SAVED_MODULE)
class TransformerBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.f_attn = AttentionResblock(n_state, n_head)
        self.f_mlp = FullyConnectedResblock(n_state)

    def forward(self, x, bias=None):
        return self.f_mlp(self.f_attn(x, bias))


# ----------------------------------------------------------------------------- image
@saved_as(_SAVED_MODULE)
class ImageEmbedding(nn.Module):
    """Patches + timestep token + positions, then LayerNorm. Input on a 0..255 scale."""

    def __init__(self, image_size: int, patch_size: int, n_state: int, n_timestep: int):
        super().__init__()
        if image_size % patch_size != 0 or n_timestep <= 0:
            raise ValueError("image_size must be a multiple of patch_size; n_timestep > 0")
        self.image_size, self.patch_size, self.n_state = image_size, patch_size, n_state
        n_patch = image_size // patch_size
        self.w_t = nn.Parameter(torch.randn(n_timestep, n_state) / math.sqrt(n_state))
        self.patch_proj = nn.Parameter(
            torch.randn(n_state, 3, patch_size, patch_size) * math.sqrt(2 / (n_state * patch_size ** 2)))
        self.w_pos = nn.Parameter(torch.randn(1 + n_patch ** 2, n_state) / math.sqrt(n_state))
        self.ln = LayerNorm(n_state)
        # Not part of GLIDE's state_dict (plain attributes there): non-persistent buffers.
        self.register_buffer("channel_means", torch.tensor(IMAGE_CHANNEL_MEANS).view(1, 3, 1, 1), False)
        self.register_buffer("channel_stds", torch.tensor(IMAGE_CHANNEL_STDS).view(1, 3, 1, 1), False)

    def forward(self, x, t):
        x = (x - self.channel_means.to(x.dtype)) / self.channel_stds.to(x.dtype)
        x = F.conv2d(x, self.patch_proj, stride=self.patch_size)          # (B, C, P, P)
        x = x.flatten(2).transpose(1, 2)                                    # (B, P*P, C)
        sot = F.embedding(t, self.w_t)[:, None]                             # (B, 1, C)
        return self.ln(torch.cat((sot, x), dim=1) + self.w_pos[None])


@saved_as(_SAVED_MODULE)
class ImageFeatureExtractor(nn.Module):
    def __init__(self, n_state: int, n_embd: int):
        super().__init__()
        self.ln = LayerNorm(n_state)
        self.f = Affine(n_state, n_embd, use_bias=False)

    def forward(self, h):
        return self.f(self.ln(h[:, 0]))


@saved_as(_SAVED_MODULE)
class ImageEncoder(nn.Module):
    """GLIDE ImageEncoder: forward(image (B,3,S,S) on a 0..255 scale, t (B,) int64) ->
    (B, n_embd), not normalised."""

    def __init__(self, image_size, patch_size, n_embd, n_head, n_xf_blocks, n_head_state, n_timestep):
        super().__init__()
        n_state = n_head * n_head_state
        self.image_size, self.n_embd, self.n_xf_blocks = image_size, n_embd, n_xf_blocks
        blocks = [("input", ImageEmbedding(image_size, patch_size, n_state, n_timestep))]
        blocks += [(f"block_{i}", TransformerBlock(n_state, n_head)) for i in range(n_xf_blocks)]
        blocks += [("output", ImageFeatureExtractor(n_state, n_embd))]
        self.blocks = nn.ModuleDict(blocks)

    @classmethod
    def from_config(cls, cfg: Dict):
        return cls(cfg["image_size"], cfg["patch_size"], cfg["n_embd"], cfg["n_head_image"],
                   cfg["n_xf_blocks_image"], cfg["n_head_state_image"], cfg["n_timesteps"])

    def forward(self, image, t):
        h = self.blocks["input"](image, t)
        for name, block in self.blocks.items():
            if name.startswith("block_"):
                h = block(h)
        return self.blocks["output"](h)


# ----------------------------------------------------------------------------- text
@saved_as(_SAVED_MODULE)
class TextEmbedding(nn.Module):
    def __init__(self, n_vocab: int, n_context: int, n_state: int):
        super().__init__()
        self.w_voc = nn.Parameter(torch.randn(n_vocab, n_state) * 0.02)
        self.w_pos = nn.Parameter(torch.randn(n_context, n_state) * 0.01)

    def forward(self, tokens):
        return F.embedding(tokens, self.w_voc) + self.w_pos[None]


@saved_as(_SAVED_MODULE)
class TextFeatureExtractor(nn.Module):
    def __init__(self, n_state: int, n_embd: int):
        super().__init__()
        self.ln = LayerNorm(n_state)
        self.f = Affine(n_state, n_embd, use_bias=False)

    def forward(self, h, lengths):
        index = (lengths - 1)[:, None, None].expand(-1, 1, h.shape[2])
        return self.f(self.ln(torch.gather(h, 1, index)[:, 0]))


@saved_as(_SAVED_MODULE)
class TextEncoder(nn.Module):
    """GLIDE TextEncoder: forward(tokens (B, max_text_len) int64, lengths (B,) int64) ->
    (B, n_embd), not normalised. Causal attention; the feature is the state at lengths-1."""

    def __init__(self, n_bpe_vocab, max_text_len, n_embd, n_head, n_xf_blocks, n_head_state):
        super().__init__()
        n_state = n_head * n_head_state
        self.max_text_len, self.n_embd, self.n_xf_blocks = max_text_len, n_embd, n_xf_blocks
        blocks = [("input", TextEmbedding(n_bpe_vocab, max_text_len, n_state))]
        blocks += [(f"block_{i}", TransformerBlock(n_state, n_head)) for i in range(n_xf_blocks)]
        blocks += [("output", TextFeatureExtractor(n_state, n_embd))]
        self.blocks = nn.ModuleDict(blocks)
        allowed = torch.ones(max_text_len, max_text_len).tril()
        self.register_buffer("causal_bias", (1 - allowed) * -1e10, False)   # GLIDE's bias

    @classmethod
    def from_config(cls, cfg: Dict):
        return cls(cfg["n_vocab"], cfg["max_text_len"], cfg["n_embd"], cfg["n_head_text"],
                   cfg["n_xf_blocks_text"], cfg["n_head_state_text"])

    def forward(self, tokens, lengths):
        h = self.blocks["input"](tokens)
        for name, block in self.blocks.items():
            if name.startswith("block_"):
                h = block(h, self.causal_bias)
        return self.blocks["output"](h, lengths)


# ----------------------------------------------------------------------------- wrappers
def _normalise(z):
    # GLIDE CLIPModel: z / (||z|| + 1e-12), computed in float32 here.
    z = z.float()
    return z / (torch.linalg.norm(z, dim=-1, keepdim=True) + 1e-12)


@saved_as(_SAVED_MODULE)
class ImageEmbedder(nn.Module):
    """GLIDE CLIPModel.image_embeddings: forward(image (B,3,S,S) float, nominally [-1,1];
    t (B,) int64 in [0, n_timesteps)) -> (B, n_embd) float32, unit norm. The encoder sees
    (image + 1) * 127.5. The input is cast to the encoder's dtype first."""

    def __init__(self, encoder: ImageEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image, t):
        dtype = self.encoder.blocks["input"].w_t.dtype
        return _normalise(self.encoder((image.to(dtype) + 1) * 127.5, t))


@saved_as(_SAVED_MODULE)
class TextEmbedder(nn.Module):
    """GLIDE CLIPModel.text_embeddings after tokenising: forward(tokens (B, L) int64,
    lengths (B,) int64) -> (B, n_embd) float32, unit norm."""

    def __init__(self, encoder: TextEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, tokens, lengths):
        return _normalise(self.encoder(tokens, lengths))


# ----------------------------------------------------------------------------- tokenizer
def _bytes_to_unicode() -> Dict[int, str]:
    """CLIP's reversible byte -> printable character table. Order matters (it is the order
    of the first 256 vocabulary ids): first the 188 printable Latin-1 bytes 33..126,
    161..172, 174..255, each mapped to itself; then the other 68 bytes in increasing
    order, mapped to chr(256), chr(257), ..."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table = {b: chr(b) for b in keep}
    for n, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + n)
    return table


class BPETokenizer:
    """GLIDE's (i.e. CLIP's) SimpleTokenizer, re-implemented.

    encode(text): ftfy.fix_text (if ftfy is installed; GLIDE always runs it), html.unescape
    twice, strip, collapse whitespace runs to one space, lower-case, split with
    PATTERN, map each piece's UTF-8 bytes through the byte table, apply BPE merges (the
    last symbol carries '</w>'), look up ids. padded(ids, ctx): [start] + ids[:ctx-2] +
    [end], length = that count, zero padding to ctx.
    """

    PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

    def __init__(self, bpe_path: str):
        import regex  # \p{L} classes; the `re` module lacks them
        lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
        self.byte_encoder = _bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.start_token = self.encoder["<|startoftext|>"]
        self.end_token = self.encoder["<|endoftext|>"]
        self.pat = regex.compile(self.PATTERN, regex.IGNORECASE)
        self.cache = {"<|startoftext|>": ["<|startoftext|>"], "<|endoftext|>": ["<|endoftext|>"]}

    def bpe(self, piece: str) -> List[str]:
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            pairs = set(zip(word[:-1], word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):   # merge every left-to-right occurrence of `best`
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    @staticmethod
    def clean(text: str) -> str:
        try:
            import ftfy
            text = ftfy.fix_text(text)
        except ImportError:
            pass
        import regex
        text = html.unescape(html.unescape(text)).strip()
        return regex.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> List[int]:
        ids = []
        for piece in self.pat.findall(self.clean(text)):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(piece))
        return ids

    def padded(self, ids: List[int], ctx: int) -> Tuple[List[int], int]:
        ids = [self.start_token] + ids[:ctx - 2] + [self.end_token]
        return ids + [0] * (ctx - len(ids)), len(ids)

    def tokens_and_lengths(self, prompts: List[str], ctx: int):
        rows = [self.padded(self.encode(p), ctx) for p in prompts]
        return (torch.tensor([r[0] for r in rows], dtype=torch.long),
                torch.tensor([r[1] for r in rows], dtype=torch.long))
