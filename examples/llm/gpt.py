"""A small decoder-only transformer (GPT-style) and its byte-level tokenizer.

Shared by examples/llm/train.py, which trains it and writes this file into
the version's artifact beside the weights, and by the llm-torch runtime,
which imports it from the artifact: the artifact says how to run itself.

The model: token and position embeddings, n_layer blocks of causal
self-attention and an MLP, each after a layer norm, a final layer norm
and a head tied to the token embedding. forward() takes a key/value cache
(past) and a mask of the keys each row may see, so a server can decode
many sequences of different lengths in one batch, one token each per step.

The tokenizer: UTF-8 bytes are tokens 0-255; token 256 is <|endoftext|>,
which ends a document in training and a completion in serving.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.pt"


class Config:
    """The model's shape; saved as config.json."""

    def __init__(self, vocab_size=257, block_size=256, n_layer=4, n_head=4, n_embd=128, dropout=0.0):
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = int(n_layer), int(n_head), int(n_embd)
        self.dropout = float(dropout)
        if self.n_embd % self.n_head:
            raise ValueError("n_embd (%d) must be a multiple of n_head (%d)" % (self.n_embd, self.n_head))

    def to_dict(self):
        return {"vocab_size": self.vocab_size, "block_size": self.block_size, "n_layer": self.n_layer,
                "n_head": self.n_head, "n_embd": self.n_embd, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout") if k in d})


class ByteTokenizer:
    """UTF-8 bytes, plus <|endoftext|>."""

    EOT = 256
    EOT_TEXT = "<|endoftext|>"
    vocab_size = 257

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def to_dict(self):
        return {"type": "byte", "vocab_size": self.vocab_size, "eot_token": self.EOT, "eot_text": self.EOT_TEXT}

    @classmethod
    def from_dict(cls, d):
        if d.get("type") != "byte":
            raise ValueError("tokenizer type %r: only byte is known" % d.get("type"))
        return cls()


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, past, allowed):
        """x [B,T,C]; past (k, v) [B,H,P,D] or None; allowed [B,T,P+T] bool.
        Returns y [B,T,C] and (k, v) [B,H,P+T,D]."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        att = att.masked_fill(~allowed[:, None, :, :], float("-inf"))
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y), (k, v)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))

    def forward(self, x, past, allowed):
        a, present = self.attn(self.ln1(x), past, allowed)
        x = x + a
        return x + self.mlp(self.ln2(x)), present


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, pos=None, past=None, mask=None):
        """idx [B,T] token ids; pos [B,T] their positions (default 0..T-1,
        after the past); past: per layer (k, v) [B,H,P,D], or None; mask
        [B,P+T] bool, False for keys a row must not see (padding), or None.
        New tokens see the past and each other causally. Returns logits
        [B,T,V] and the present cache (past with the new tokens)."""
        b, t = idx.shape
        p = 0 if past is None else past[0][0].shape[2]
        if pos is None:
            pos = torch.arange(p, p + t, device=idx.device).expand(b, t)
        if int(pos.max()) >= self.cfg.block_size:
            raise ValueError("position %d is beyond the context of %d tokens" % (int(pos.max()), self.cfg.block_size))
        causal = torch.ones(t, p + t, dtype=torch.bool, device=idx.device).tril(diagonal=p)
        allowed = causal.expand(b, t, p + t)
        if mask is not None:
            allowed = allowed & mask[:, None, :]
        x = self.drop(self.tok(idx) + self.pos(pos))
        present = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, None if past is None else past[i], allowed)
            present.append(kv)
        return self.head(self.ln(x)), present


def save(model, out_dir):
    """The weights, the configuration, the tokenizer and this file."""
    torch.save(model.state_dict(), os.path.join(out_dir, WEIGHTS_FILE))
    with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
        json.dump(model.cfg.to_dict(), f, indent=2)
    with open(os.path.join(out_dir, TOKENIZER_FILE), "w") as f:
        json.dump(ByteTokenizer().to_dict(), f, indent=2)
    with open(__file__, "rb") as src, open(os.path.join(out_dir, "gpt.py"), "wb") as dst:
        dst.write(src.read())


def load(model_dir, device="cpu"):
    """A saved model (eval mode) and its tokenizer."""
    with open(os.path.join(model_dir, CONFIG_FILE)) as f:
        cfg = Config.from_dict(json.load(f))
    with open(os.path.join(model_dir, TOKENIZER_FILE)) as f:
        tok = ByteTokenizer.from_dict(json.load(f))
    model = GPT(cfg)
    model.load_state_dict(torch.load(os.path.join(model_dir, WEIGHTS_FILE), map_location=device))
    return model.to(device).eval(), tok
