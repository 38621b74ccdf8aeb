"""The catdognet-v1 CNN of catdog's model package, in PyTorch 2.1.2, timed like main.go:
forward + backward + AdamW step on fixed random batches, median step time, one JSON line."""
import argparse, json, time
import torch
import torch.nn as nn


class CatDogNet(nn.Module):
    """Mirror of model/arch.go: stem conv3x3/2 + BN + ReLU + maxpool, stages conv3x3 + BN + ReLU
    (+ maxpool except the last), one more conv on the last stage, GAP, dropout, linear."""

    def __init__(self, widths=(32, 64, 128, 256), dropout=0.3, classes=2):
        super().__init__()
        layers = [nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(), nn.MaxPool2d(2)]
        last = len(widths) - 1
        for i in range(1, last + 1):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[i]), nn.ReLU()]
            if i < last:
                layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(widths[last], widths[last], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[last]), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(widths[last], classes)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.drop(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = CatDogNet().train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.arange(a.batch) % 2
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for s in range(a.warmup + a.steps):
        t = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if s >= a.warmup:
            times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"impl": "pytorch-" + torch.__version__, "batch": a.batch, "size": a.size,
                      "threads": torch.get_num_threads(), "median_step_s": med, "images_per_s": a.batch / med}))


if __name__ == "__main__":
    main()
