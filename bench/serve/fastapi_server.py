"""FastAPI + uvicorn + PyTorch 2.1.2 peer of `catdog serve`, for the side-by-side benchmark.

The service the catdog project replaces, written the usual way: one uvicorn process, an async
POST /predict taking a multipart "file", PIL decode -> RGB -> 224x224 bilinear resize ->
ImageNet normalisation -> torch forward under no_grad -> softmax (averaged with the mirrored
image when the catdog model uses test-time augmentation), JSON answer.

The network is the same architecture as catdog's `catdognet-v1` (model/arch.go) with the widths
of params.yaml, built with torch.nn. Its weights are RANDOM (initialised with a fixed seed): the
benchmark measures serving cost, which does not depend on the weight values.

Usage: python fastapi_server.py --port 8081 --threads 2 [--widths 32,64,128,256] [--size 224] [--tta true]
"""
import argparse
import io
import time

T0 = time.monotonic()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, File, HTTPException, UploadFile  # noqa: E402
from PIL import Image  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
CLASSES = ["cat", "dog"]


def conv_bn(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CatdogNet(nn.Module):
    """catdognet-v1: strided conv stem, one conv per stage with 2x2 max-pooling between stages,
    a second conv on the last stage, global average pooling, dropout, linear head."""

    def __init__(self, widths, classes=2, dropout=0.3):
        super().__init__()
        layers = [conv_bn(3, widths[0], 2)]
        last = len(widths) - 1
        for i in range(1, last + 1):
            layers.append(conv_bn(widths[i - 1], widths[i], 1))
            if i < last:
                layers.append(nn.MaxPool2d(2, 2))
        layers.append(conv_bn(widths[last], widths[last], 1))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[last], classes)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(self.dropout(x))


def build_app(model, size, tta):
    app = FastAPI()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)):
        start = time.perf_counter()
        data = await file.read()
        try:
            img = Image.open(io.BytesIO(data)).convert("RGB")
        except Exception as e:  # noqa: BLE001
            raise HTTPException(status_code=400, detail=f"invalid image: {e}")
        img = img.resize((size, size), Image.BILINEAR)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        x = x.view(size, size, 3).permute(2, 0, 1).float().div(255)
        x = ((x - MEAN) / STD).unsqueeze(0)
        with torch.no_grad():
            p = F.softmax(model(x), dim=1)
            if tta:
                p = (p + F.softmax(model(torch.flip(x, dims=[3])), dim=1)) / 2
        probs = p[0].tolist()
        best = max(range(len(CLASSES)), key=lambda i: probs[i])
        return {
            "label": CLASSES[best],
            "probabilities": dict(zip(CLASSES, probs)),
            "model_version": "random-weights",
            "latency_ms": (time.perf_counter() - start) * 1000,
        }

    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--widths", default="32,64,128,256")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--tta", default="true", help="average with the mirrored image (catdog model.json tta)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = CatdogNet([int(w) for w in a.widths.split(",")]).eval()
    with torch.no_grad():  # warm-up, as catdog serve does before reporting ready
        model(torch.zeros(1, 3, a.size, a.size))
    print(f"model ready after {time.monotonic() - T0:.2f}s, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    uvicorn.run(build_app(model, a.size, a.tta.lower() == "true"), host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
