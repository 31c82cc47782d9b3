"""The network, its metadata, and the loaded bundle the service predicts with.

The artifact is two files in one folder: `model.pt` (a state dict, loaded with `weights_only=True`, so no
pickled code runs) and `model.json` (feature spec, window, data range, metrics, version, and the weights' sha256,
checked at load so a mismatched pair never serves).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from ml_service.features import input_dim, volatility_of, window_features

DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
WEIGHTS_FILE = "model.pt"
METADATA_FILE = "model.json"


class DirectionNet(nn.Module):
    """A small MLP: standardised window features -> (logit of next-candle-up, next return in volatility units)."""

    def __init__(self, features: int, hidden: tuple[int, ...] = (32, 16), dropout: float = 0.1) -> None:
        super().__init__()
        # Standardisation fitted on the training split; buffers, so they travel inside the state dict.
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        layers: list[nn.Module] = []
        width = features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 2))
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean, std = self.feature_mean, self.feature_std
        assert isinstance(mean, torch.Tensor)
        assert isinstance(std, torch.Tensor)
        out: torch.Tensor = self.body((features - mean) / std)
        return out


class Metrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int
    accuracy: float
    always_up_accuracy: float
    previous_direction_accuracy: float
    reversal_accuracy: float  # predicts the opposite of the previous candle's direction
    up_fraction: float
    per_symbol_accuracy: dict[str, float]


class ModelMetadata(BaseModel):
    """Everything needed to serve and to judge the weights (written by `python -m ml_service.train`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    name: str
    version: str
    interval: str
    window: int
    feature_names: list[str]
    hidden: list[int]
    dropout: float
    symbols: list[str]
    data_start: str
    data_end: str
    split_time: str
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    torch_version: str
    weights_sha256: str
    buy_above: float
    sell_below: float
    train: Metrics
    test: Metrics
    notes: str


@dataclass(frozen=True, slots=True)
class Prediction:
    prob_up: float
    expected_return: float  # log return of the next candle


class ModelBundle:
    """The loaded network on its device plus its metadata. Inference only; safe to call from several threads."""

    def __init__(self, net: DirectionNet, metadata: ModelMetadata, device: torch.device) -> None:
        self.net = net.to(device).eval()
        self.metadata = metadata
        self.device = device

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def candles_needed(self) -> int:
        return self.metadata.window + 1

    def predict(self, windows: torch.Tensor) -> list[Prediction]:
        """All assets in one batched forward pass: [A, W + 1, 5] float64 candles -> A predictions."""
        with torch.inference_mode():
            features = window_features(windows).to(self.device)
            out = self.net(features).to("cpu", torch.float64)
            prob_up = torch.sigmoid(out[:, 0])
            expected = out[:, 1] * volatility_of(windows)
        return [Prediction(float(p), float(r)) for p, r in zip(prob_up.tolist(), expected.tolist(), strict=True)]


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N`, `mps` or `auto` (the first accelerator present, else cpu). Fails fast when a named
    accelerator is absent, rather than silently serving from another device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"MlService__Device is {name!r} but no CUDA device is available (use cpu or auto)")
    return device


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of the tensors themselves (names, dtypes, shapes, bytes): `torch.save` files embed a random
    serialization id, so the file's own hash would change on every save of the same weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def load_bundle(directory: Path = DEFAULT_ARTIFACT_DIR, *, device: str = "cpu") -> ModelBundle:
    metadata_path, weights_path = directory / METADATA_FILE, directory / WEIGHTS_FILE
    if not metadata_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"no trained model in {directory}: run `python -m ml_service.train`")
    metadata = ModelMetadata.model_validate_json(metadata_path.read_text(encoding="utf-8"))
    target = resolve_device(device)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    digest = weights_digest(state)
    if digest != metadata.weights_sha256:
        raise ValueError(f"{weights_path} does not match {METADATA_FILE} (sha256 {digest[:12]}...): retrain")
    net = DirectionNet(input_dim(metadata.window), tuple(metadata.hidden), metadata.dropout)
    net.load_state_dict(state)
    return ModelBundle(net, metadata, target)


def save_artifact(directory: Path, net: DirectionNet, metadata_without_digest: dict[str, object]) -> ModelMetadata:
    """Write `model.pt` then `model.json` with the weights' digest and a version that includes it."""
    directory.mkdir(parents=True, exist_ok=True)
    state = net.state_dict()
    torch.save(state, directory / WEIGHTS_FILE)
    digest = weights_digest(state)
    version = f"{metadata_without_digest['name']}-{str(metadata_without_digest['data_end'])[:10]}-{digest[:8]}"
    metadata = ModelMetadata.model_validate({**metadata_without_digest, "weights_sha256": digest, "version": version})
    (directory / METADATA_FILE).write_text(json.dumps(metadata.model_dump(), indent=2) + "\n", encoding="utf-8")
    return metadata
