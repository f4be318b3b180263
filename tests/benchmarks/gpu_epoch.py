"""GPU measurement for docs/performance.md (issue 12): one CIFAR-10-sized epoch of cifar_resnet20.

Run from the repository root on a machine with a CUDA GPU (torch and timm installed; ticketbench need not be):

    python tests/benchmarks/gpu_epoch.py [--out results/bench/gpu_epoch.json]

It times, after a warm-up epoch, one epoch of 45k 32x32 uint8 images at batch 128 in bf16 + channels-last:
(a) through the training data path (``DeviceBatches``: gather, pad-4 crop, flip and normalise on the GPU) and
(b) the same steps on batches made beforehand on the GPU, so (a)/(b) is the data path's overhead. Both run with
``runtime.deterministic`` on and off, and the step loop runs under ``torch.cuda.set_sync_debug_mode("error")``,
which raises on any host synchronisation. Targets: (a) <= 2 s on an H100/H200-class GPU, (a)/(b) <= 1.15.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ticketbench.data import DatasetInfo, DeviceBatches  # noqa: E402
from ticketbench.data.inmemory import TensorIndexedDataset  # noqa: E402
from ticketbench.models import create_model  # noqa: E402
from ticketbench.runtime import make_deterministic  # noqa: E402
from ticketbench.train import autocast  # noqa: E402


def cifar_sized(n: int = 45_000) -> TensorIndexedDataset:
    info = DatasetInfo("cifar10-shaped", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return TensorIndexedDataset(info, images, torch.randint(0, 10, (n,), generator=gen), scale=1 / 255, pad=4,
                                flip=True, augment=True)


def epoch_seconds(batches, device: torch.device, *, check_syncs: bool) -> float:
    torch.manual_seed(0)
    model = create_model("cifar_resnet20", num_classes=10).to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_sum = torch.zeros((), device=device)

    def run_epoch():
        for x, y, _ in batches:
            with autocast(device, "bf16"):
                loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum.add_(loss.detach())

    run_epoch()  # warm-up: cuDNN plans, allocator
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    if check_syncs:
        torch.cuda.set_sync_debug_mode("error")
    try:
        run_epoch()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench/gpu_epoch.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    ds = cifar_sized()
    rows = []
    for deterministic in (True, False):
        make_deterministic(deterministic)
        data_path = DeviceBatches(ds, 128, shuffle=True, seed=0, device=device)
        premade = [(x.clone(), y.clone(), i.clone()) for x, y, i in data_path]
        a = epoch_seconds(data_path, device, check_syncs=True)
        b = epoch_seconds(premade, device, check_syncs=True)
        rows.append({"deterministic": deterministic, "epoch_s": a, "premade_epoch_s": b, "data_overhead": a / b - 1,
                     "images_per_s": len(ds) / a})
        print(json.dumps(rows[-1]))
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "images": len(ds), "batch": 128,
              "precision": "bf16", "layout": "channels_last", "rows": rows, "target_epoch_s": 2.0,
              "target_data_overhead": 0.15}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
