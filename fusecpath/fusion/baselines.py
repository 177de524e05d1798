"""The MIL baselines: torchmil's ABMIL, TransMIL, CLAM-SB and DSMIL on one patch FM or on several
concatenated, trained and scored exactly like the fused model.

Every baseline sees the same footing as FuseCPath: the same random bags of ``bag_size`` patches at
training AND at test time (``n_bags`` a slide, a slide's prediction being the mean of its bags' decoded
outputs), the same training-fold feature standardisation (with per-FM variance balancing), the same
input projection to the hidden size (Linear -> Dropout(0.25), or Linear -> ReLU -> Dropout(0.25) as the
fused model's ``arch proj`` says), and the same optimiser, schedule and epochs
(training/loop.py). torchmil's bag heads are binary (one logit); here each head is replaced by a linear
layer with the task's outputs, so the same models serve multi-class, regression and survival tasks.
docs/baselines.md gives each model's configuration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fusecpath.fusion.bags import make_bags
from fusecpath.fusion.methods import shuffled_pairs
from fusecpath.fusion.model import Standardise
from fusecpath.training.data import Cohort
from fusecpath.training.tasks import Task

MIL_MODELS = ("abmil", "transmil", "clam", "dsmil")
SCORE_CHUNK = 16  # bags scored at once at test time (memory)
CLAM_INSTANCE_WEIGHT = 0.3  # CLAM's total loss: 0.7 bag + 0.3 instance clustering (its paper's setting)
CLAM_K_SAMPLE = 8  # top / bottom attended patches a bag for CLAM's instance loss


def transmil_landmarks(hidden: int, bag_size: int | None) -> int:
    """Nyström landmarks of TransMIL's attention: torchmil's default (hidden / 2), but at most a quarter
    of the bag's tokens, so that short bags do not pay for a landmark matrix as large as the bag (its
    iterative pseudo-inverse dominated training: 64 landmarks on 65 tokens ran 10x slower than 16)."""
    default = hidden // 2
    return default if bag_size is None else max(1, min(default, bag_size // 4))


def random_bags(n_patches: int, n_bags: int, bag_size: int, seed: int, key: str) -> np.ndarray:
    """(n_bags, bag_size) patch indices: a slide's patches dealt at random into bags (disjoint while
    patches last, dealt again in a new order when a slide has fewer than n_bags x bag_size)."""
    return make_bags(np.zeros(n_patches, np.int64), 1, n_bags, bag_size, seed, key)[:, 0]


def random_regions(n_patches: int, n_regions: int, seed: int, key: str) -> np.ndarray:
    """(n_patches,) region labels: patches assigned to ``n_regions`` equal random groups (no clustering)."""
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(key.encode()), 7])
    return rng.permutation(np.arange(n_patches) % min(n_regions, n_patches)).astype(np.int64)


def _binary(task: Task) -> bool:
    return task.kind == "classification" and len(task.classes) == 2


class _InstanceCE(nn.Module):
    """Cross-entropy for CLAM's instance classifiers (CLAM's ``inst_loss='ce'``). torchmil's default,
    SmoothTop1SVM, fails with a shape error once some instance margins grow large (its hard branch
    gathers with the (k, 1) targets CLAM passes), which ordinary training reaches within epochs."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets.reshape(-1).long())


class MILNet(nn.Module):
    """Standardise -> Linear[/ReLU]/Dropout -> a torchmil MIL model whose bag head has ``n_outputs``."""

    def __init__(
        self,
        kind: str,
        dims: list[int],
        n_outputs: int,
        hidden: int = 512,
        attn_dim: int = 128,
        bag_size: int | None = None,
        proj: str = "linear",
    ) -> None:
        super().__init__()
        from torchmil import models

        if kind not in MIL_MODELS:
            raise ValueError(f"MIL model must be one of {', '.join(MIL_MODELS)}, not {kind!r}")
        self.kind = kind
        in_dim = sum(dims)
        self.norm = Standardise(in_dim, dims)
        act = nn.ReLU() if proj == "relu" else nn.Identity()  # as the fused model's arch proj
        self.proj = nn.Sequential(nn.Linear(in_dim, hidden), act, nn.Dropout(0.25))
        shape = (hidden,)
        if kind == "abmil":
            self.mil = models.ABMIL(in_shape=shape, att_dim=attn_dim, gated=True)
            self.mil.classifier = nn.Linear(hidden, n_outputs)
        elif kind == "transmil":
            heads = 8 if hidden % 8 == 0 else 4
            self.mil = models.TransMIL(
                in_shape=shape,
                att_dim=hidden,
                n_heads=heads,
                dropout=0.1,
                n_landmarks=transmil_landmarks(hidden, bag_size),
            )
            self.mil.classifier = nn.Linear(hidden, n_outputs)
        elif kind == "clam":
            self.mil = models.CLAM_SB(in_shape=shape, att_dim=attn_dim, gated=True, k_sample=CLAM_K_SAMPLE)
            self.mil.inst_loss_fn = _InstanceCE()
            self.mil.classifier = nn.Linear(hidden, n_outputs)
        else:
            self.mil = models.DSMIL(
                in_shape=shape, att_dim=attn_dim, nonlinear_q=True, nonlinear_v=True, dropout=0.25
            )
            self.mil.bag_classifier = nn.Linear(hidden, n_outputs)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """(B, T, D_in) bags -> (B, n_outputs) logits."""
        return self.mil(self.proj(self.norm(bags))).reshape(len(bags), -1)

    def loss(self, bags: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
        """The task loss of the bag logits, plus each model's own instance term on binary tasks: CLAM's
        instance clustering (smooth top-1 SVM on the most and least attended patches), DSMIL's
        max-instance loss (the critical patch's logit trained as the positive class's)."""
        x = self.proj(self.norm(bags))
        if self.kind == "clam" and _binary(task):
            logits, att, emb = self.mil(x, return_att=True, return_emb=True)
            inst = self.mil.compute_inst_loss(att, emb, y) / len(bags)
            bag = task.loss(logits.reshape(len(bags), -1), y)
            return (1 - CLAM_INSTANCE_WEIGHT) * bag + CLAM_INSTANCE_WEIGHT * inst
        if self.kind == "dsmil" and _binary(task):
            logits, instance = self.mil(x, return_inst_pred=True)
            bag = task.loss(logits.reshape(len(bags), -1), y)
            critical = nn.functional.binary_cross_entropy_with_logits(instance.amax(1), y.float())
            return 0.5 * bag + 0.5 * critical
        return task.loss(self.mil(x).reshape(len(bags), -1), y)


@dataclass
class MILMethod:
    """A torchmil baseline as a training-loop method: random fixed-size bags at training and test."""

    cohort: Cohort
    fms: list[str]
    model: str = "abmil"
    bag_size: int = 500
    n_bags: int = 50
    hidden: int = 512
    seed: int = 0
    name: str = "abmil"
    proj: str = "linear"  # "linear" or "relu": the fused model's arch proj, so both start alike

    def __post_init__(self) -> None:
        self._feats = {s: d.concat(self.fms) for s, d in self.cohort.items()}
        self._bags = {
            s: random_bags(len(f), self.n_bags, self.bag_size, self.seed, s) for s, f in self._feats.items()
        }

    def build(self, task: Task) -> MILNet:
        first = next(iter(self.cohort.values()))
        dims = [first.patch[fm].shape[1] for fm in self.fms]
        return MILNet(
            self.model, dims, task.n_outputs, hidden=self.hidden, bag_size=self.bag_size, proj=self.proj
        )

    def prepare(self, model: MILNet, slide_ids: Sequence[str]) -> None:
        model.norm.fit(torch.as_tensor(np.concatenate([self._feats[s] for s in slide_ids])))

    def _bag(self, slide_id: str, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self._feats[slide_id][rows])

    def batches(
        self, slide_ids: Sequence[str], epoch: int, batch_size: int, seed: int
    ) -> Iterator[tuple[Any, np.ndarray]]:
        for chunk in shuffled_pairs(len(slide_ids), self.n_bags, epoch, batch_size, seed):
            bags = [self._bag(slide_ids[i], self._bags[slide_ids[i]][b]) for i, b in chunk]
            yield torch.stack(bags), chunk[:, 0]

    def loss(self, model: MILNet, inputs: Any, y: torch.Tensor, task: Task) -> torch.Tensor:
        if isinstance(model, MILNet):
            return model.loss(inputs, y, task)
        return task.loss(model(inputs), y)  # under DDP: the bag loss through the wrapper

    @torch.no_grad()
    def score(self, model: MILNet, slide_id: str, device: str) -> np.ndarray:
        rows = self._bags[slide_id]
        return np.concatenate(
            [
                model(self._bag(slide_id, rows[i : i + SCORE_CHUNK]).to(device)).float().cpu().numpy()
                for i in range(0, len(rows), SCORE_CHUNK)
            ]
        )
