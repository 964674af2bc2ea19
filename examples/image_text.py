"""Image-caption matching fed from a Hugging Face dataset of image URLs, loaded in memory once.

1. Render photos (``loadwise.testing.make_photo_folder``: one look per class) and serve them
   from a local HTTP server on 127.0.0.1 with 20 ms of latency per request; every 16th URL
   is broken (404, 500, a server that never answers, bytes that are not an image).
2. Build a ``datasets.Dataset`` of ``image_url`` + ``caption`` and load it with
   ``InMemoryImageTextDataset`` (concurrent fetch, decode once, fallback placeholders marked
   ``valid=False``), then print its failure report.
3. Train a tiny CLIP-style model (image and caption encoders, contrastive loss, invalid
   samples masked) for a few epochs through ``loadwise.loader``: one uint8 tensor a batch.
4. The documents' way on the same data: a row-by-row download loop into a list of PIL images,
   ``DataLoader(..., collate_fn=collate_in_memory_images)``, PIL to tensors in each step.
5. Print epoch times (epoch 1 with the load, later epochs, the documents' way; and an epoch
   of data alone, without the model, both ways), the image-to-caption class accuracy, and
   a second load of the same dataset (what a second run of this script does): opened from
   the cache, with no request to the server.

``--quick`` (run by the test suite) uses 64 images and 3 epochs.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise import InMemoryImageTextDataset, collate_in_memory_images
from loadwise.sources import FetchOptions
from loadwise.testing import make_photo_folder
from loadwise.testing.server import MediaServer

SIZE = (64, 64)
BATCH = 32
ADJECTIVES = ("a photo of", "a picture showing", "an image of", "a snapshot of")
FETCH = FetchOptions(deadline=1.0, read_timeout=0.5, retries=1, backoff=0.1)


def make_data(root: Path, count: int) -> tuple[dict[str, bytes], list[str], list[int], list[str]]:
    """Photo files to serve, their names, class labels and captions."""
    folder = make_photo_folder(root / "photos", classes=4, per_class=count // 4, size=96, seed=3)
    files, names, labels, captions = {}, [], [], []
    rng = np.random.default_rng(0)
    for label, name in enumerate(folder.classes):
        for path in sorted((folder.root / name).glob("*.jpg")):
            key = f"{name}-{path.name}"
            files[key] = path.read_bytes()
            names.append(key)
            labels.append(label)
            words = name.split("_", 1)[-1].replace("_", " ")
            captions.append(f"{ADJECTIVES[int(rng.integers(4))]} {words}")
    order = rng.permutation(len(names))
    return (
        files,
        [names[i] for i in order],
        [labels[i] for i in order],
        [captions[i] for i in order],
    )


def broken_urls(server: MediaServer, urls: list[str]) -> list[str]:
    """Every 16th URL broken, in turn in each of four ways."""
    kinds = ("status/404", "status/500", "hang", "bytes/3000")
    return [server.url(kinds[(i // 16) % 4]) if i % 16 == 7 else u for i, u in enumerate(urls)]


class TinyClip(nn.Module):
    """A small conv image encoder and a bag-of-words caption encoder into one 32-d space."""

    def __init__(self, vocabulary: int = 512) -> None:
        super().__init__()
        self.vocabulary = vocabulary
        self.image = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 32),
        )  # fmt: skip
        self.text = nn.EmbeddingBag(vocabulary, 32)
        self.scale = nn.Parameter(torch.tensor(2.0))

    def tokens(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [
            [zlib.crc32(w.encode()) % self.vocabulary for w in c.split()] or [0] for c in captions
        ]
        offsets = torch.tensor([0, *np.cumsum([len(i) for i in ids])[:-1]])
        return torch.tensor([t for i in ids for t in i]), offsets

    def forward(self, images: torch.Tensor, captions: list[str]) -> torch.Tensor:
        image = F.normalize(self.image(images.float() / 255), dim=1)
        text = F.normalize(self.text(*self.tokens(captions)), dim=1)
        return self.scale.exp() * image @ text.T


def step(
    model: TinyClip,
    opt: torch.optim.Optimizer,
    images: torch.Tensor,
    captions: list[str],
    valid: torch.Tensor,
) -> float:
    """One contrastive step over the batch's valid samples."""
    keep = valid.nonzero().flatten()
    if len(keep) < 2:
        return 0.0
    logits = model(images[keep], [captions[i] for i in keep.tolist()])
    target = torch.arange(len(keep))
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


class DocumentsDataset(Dataset):
    """The documents' way: every row downloaded one after another into a list of PIL images
    (a black image where a download fails)."""

    def __init__(self, rows: Any, image_size: tuple[int, int]) -> None:
        self.images: list[Image.Image] = []
        self.captions: list[str] = []
        for row in rows:
            try:
                data = urllib.request.urlopen(row["image_url"], timeout=FETCH.deadline).read()
                image = Image.open(io.BytesIO(data)).convert("RGB").resize(image_size[::-1])
            except Exception:
                image = Image.new("RGB", image_size[::-1])
            self.images.append(image)
            self.captions.append(row["caption"])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "caption": self.captions[i]}


def as_tensor(images: list[Image.Image]) -> torch.Tensor:
    """What a training step must do with the documents' batch: PIL images to one tensor."""
    return torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in images])


def data_only(loader: Any, convert: Any = None) -> float:
    """Seconds for one epoch of batches as a training step gets them, with no training."""
    started = time.perf_counter()
    for batch in loader:
        if convert is not None:
            convert(batch["images"])
    return time.perf_counter() - started


def class_accuracy(model: TinyClip, dataset: InMemoryImageTextDataset, labels: list[int]) -> float:
    """Image-to-caption retrieval over all valid samples, right when the caption's class is."""
    batch = dataset.get_batch(np.arange(len(dataset)))
    keep = batch["valid"].nonzero().flatten()
    with torch.no_grad():
        logits = model(batch["image"][keep], [batch["caption"][i] for i in keep.tolist()])
    chosen = logits.argmax(dim=1).tolist()
    classes = [labels[i] for i in keep.tolist()]
    return float(np.mean([classes[c] == classes[i] for i, c in enumerate(chosen)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 images, 3 epochs")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    count, epochs = (64, 3) if args.quick else (args.images, args.epochs)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LOADWISE_CACHE"] = str(Path(tmp) / "cache")  # a cache of this run only
        files, names, labels, captions = make_data(Path(tmp), count)
        with MediaServer(files, latency=0.02) as server:
            urls = broken_urls(server, [server.file_url(n) for n in names])
            import datasets

            rows = datasets.Dataset.from_dict({"image_url": urls, "caption": captions})
            run(rows, server, labels, epochs)


def run(rows: Any, server: MediaServer, labels: list[int], epochs: int) -> None:
    started = time.perf_counter()
    dataset = InMemoryImageTextDataset(rows, max_samples=len(rows), image_size=SIZE, fetch=FETCH)
    load = time.perf_counter() - started
    print(f"loaded {len(rows)} rows from {server.url('')} in {load:.2f} s:")
    print(dataset.report.text())
    model = TinyClip()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = loadwise.loader(dataset, BATCH, shuffle=True, seed=0)
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        losses = [step(model, opt, b["image"], b["caption"], b["valid"]) for b in loader]
        times.append(time.perf_counter() - started)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, {times[-1]:.3f} s")
    accuracy = class_accuracy(model, dataset, labels)

    started = time.perf_counter()
    documents = DocumentsDataset(rows, SIZE)
    docs_load = time.perf_counter() - started
    docs_loader = DataLoader(documents, BATCH, shuffle=True, collate_fn=collate_in_memory_images)
    valid = torch.ones(BATCH, dtype=torch.bool)
    started = time.perf_counter()
    for batch in docs_loader:
        step(
            model, opt, as_tensor(batch["images"]), batch["captions"], valid[: len(batch["images"])]
        )
    docs_epoch = time.perf_counter() - started
    ours_data, docs_data = data_only(loader), data_only(docs_loader, as_tensor)

    before = server.requests
    started = time.perf_counter()
    again = InMemoryImageTextDataset(rows, max_samples=len(rows), image_size=SIZE, fetch=FETCH)
    reopen = time.perf_counter() - started
    later = np.mean(times[1:]) if len(times) > 1 else float("nan")
    print(f"\n{'':34s}{'seconds':>9s}")
    print(f"{'epoch 1 (load + first pass)':34s}{load + times[0]:9.3f}")
    print(f"{'later epochs (mean)':34s}{later:9.3f}")
    print(f"{'documents: row-by-row load':34s}{docs_load:9.3f}")
    print(f"{'documents: an epoch':34s}{docs_epoch:9.3f}")
    print(f"{'an epoch of data alone: loadwise':34s}{ours_data:9.4f}")
    print(f"{'an epoch of data alone: documents':34s}{docs_data:9.4f}")
    asked = server.requests - before
    print(f"{'second load (cache)':34s}{reopen:9.3f}   requests to the server: {asked}")
    print(f"\nimage-to-caption class accuracy {accuracy:.0%} (chance 25%); "
          f"from cache: {again.report.from_cache}")  # fmt: skip


if __name__ == "__main__":
    main()
