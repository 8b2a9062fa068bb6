"""Vocabulary, tokenizer and the BiLSTM sentence encoder (Sec. 2.2)."""

import os
import re
from typing import List, Sequence

import torch
from torch import nn

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(expression: str) -> List[str]:
    """Lower-cased words of an expression (punctuation and extra spaces dropped)."""
    return _WORD.findall(expression.lower())


_MIRRORED = {"left": "right", "right": "left", "leftmost": "rightmost", "rightmost": "leftmost"}
_MIRRORED_WORD = re.compile(
    r"\b(" + "|".join(sorted(_MIRRORED, key=len, reverse=True)) + r")\b", re.I
)


def mirror_expression(expression: str) -> str:
    """The expression of the horizontally flipped sketch: "left" <-> "right", "leftmost" <->
    "rightmost" (whole words, any case; the first letter's case is kept)."""

    def swap(match):
        word = match.group(0)
        new = _MIRRORED[word.lower()]
        return new.capitalize() if word[0].isupper() else new

    return _MIRRORED_WORD.sub(swap, expression)


class Vocabulary:
    """Token <-> id map with ``<pad>`` = 0 and ``<unk>`` = 1 (the SketchyScene-Matching rule)."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            tokens = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def from_file(cls, path: str) -> "Vocabulary":
        """Reads one token a line (blank lines ignored)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vocabulary file {path} does not exist")
        with open(path, encoding="utf-8") as f:
            tokens = [line.strip() for line in f if line.strip()]
        if not tokens:
            raise ValueError(f"vocabulary file {path} is empty")
        return cls(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_words(self, expression: str) -> List[str]:
        """Words of ``expression`` that :meth:`encode` reads as ``<unk>``, each once, in order."""
        return list(dict.fromkeys(w for w in tokenize(expression) if w not in self.index))

    def encode(self, expression: str, max_length: int) -> torch.Tensor:
        """Expression -> (max_length,) long ids, truncated, padded with 0, unknown words -> 1."""
        ids = [self.index.get(w, 1) for w in tokenize(expression)][:max_length]
        out = torch.zeros(max_length, dtype=torch.long)
        out[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


POOLINGS = ("final_states", "last_token")


class LanguageEncoder(nn.Module):
    """Word embedding (+ optional MLP) + BiLSTM -> one sentence feature.

    Pooling ``"final_states"`` (default): the final hidden states of both directions (each has
    read the whole expression). ``"last_token"`` (the authors' code): the BiLSTM output at the
    last word, i.e. the forward state after the whole expression and the backward state after
    the last word only.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        embed_dim: int = 256,
        hidden_dim: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        mlp_dim: int = 0,
        pooling: str = "final_states",
    ):
        """
        Args:
            vocab_size: number of tokens (id 0 is padding).
            embed_dim: word-embedding size.
            hidden_dim: LSTM hidden size per direction.
            num_layers: stacked BiLSTM layers.
            dropout: dropout on the embeddings.
            mlp_dim: output size of a Linear + ReLU between embedding and BiLSTM (0: none).
            pooling: "final_states" or "last_token".
        """
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"MODEL.GRMNET.LANGUAGE.POOLING={pooling!r}: use one of {POOLINGS}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.mlp = (
            nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.ReLU(inplace=True)) if mlp_dim else None
        )
        self.lstm = nn.LSTM(
            mlp_dim or embed_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.pooling = pooling
        self.output_dim = 2 * hidden_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """
        Args:
            tokens: (N, T) long ids, 0-padded on the right.

        Returns:
            (N, 2 * hidden_dim) sentence features.
        """
        lengths = (tokens != 0).sum(1).clamp(min=1).cpu()
        embedded = self.dropout(self.embedding(tokens))
        if self.mlp is not None:
            embedded = self.mlp(embedded)
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, lengths, batch_first=True, enforce_sorted=False
        )
        outputs, (hidden, _) = self.lstm(packed)
        if self.pooling == "final_states":
            # hidden: (num_layers * 2, N, H); the last layer's forward and backward final states.
            return torch.cat([hidden[-2], hidden[-1]], dim=1)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        last = (lengths - 1).to(outputs.device)
        return outputs[torch.arange(outputs.shape[0], device=outputs.device), last]
