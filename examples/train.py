"""Logistic regression with the Python standard library only.

Follows SageMaker's script-mode contract, so the same file runs unchanged on
SageMaker (any Python 3 framework image) and on Capstan's local runner:

- hyperparameters arrive as command-line flags (--epochs 20 --learning-rate 0.1);
- the training data is in the folder named by SM_CHANNEL_TRAIN (CSV files with a
  header row; the last column is the 0/1 label, the others are numbers);
- the model goes to SM_MODEL_DIR (here model.json, packed as model.tar.gz);
- metric lines such as "epoch=3 loss=0.412 accuracy=0.861" are printed so
  metric definitions can pick them up (regex "loss=([0-9.]+)").
"""

import argparse
import csv
import glob
import json
import math
import os
import random
import signal
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--seconds-per-epoch", type=float, default=0.0,
                   help="sleep between epochs (to watch a job run)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data"))
    return p.parse_args()


def load(folder):
    rows, header = [], None
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.csv"), recursive=True)):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            file_header = next(reader, None)
            header = header or file_header
            for r in reader:
                if r:
                    rows.append(([float(v) for v in r[:-1]], float(r[-1])))
    if not rows:
        sys.exit(f"no CSV rows found under {folder}")
    return header, rows


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-max(min(z, 35.0), -35.0)))


def main():
    args = parse_args()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    header, rows = load(args.train)
    n_features = len(rows[0][0])
    # standardise features so one learning rate suits every column
    means = [sum(x[i] for x, _ in rows) / len(rows) for i in range(n_features)]
    stds = [max(1e-9, math.sqrt(sum((x[i] - means[i]) ** 2 for x, _ in rows) / len(rows))) for i in range(n_features)]
    data = [([(v - m) / s for v, m, s in zip(x, means, stds)], y) for x, y in rows]
    random.Random(args.seed).shuffle(data)
    weights, bias = [0.0] * n_features, 0.0
    print(f"training on {len(data)} rows, {n_features} features, {args.epochs} epochs", flush=True)
    for epoch in range(1, args.epochs + 1):
        if stop["now"]:
            print("SIGTERM received: stopping early", flush=True)
            break
        loss, correct = 0.0, 0
        for x, y in data:
            p = sigmoid(sum(w * v for w, v in zip(weights, x)) + bias)
            loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
            correct += int((p >= 0.5) == (y >= 0.5))
            g = p - y
            weights = [w - args.learning_rate * g * v for w, v in zip(weights, x)]
            bias -= args.learning_rate * g
        print(f"epoch={epoch} loss={loss / len(data):.4f} accuracy={correct / len(data):.4f}", flush=True)
        if args.seconds_per_epoch:
            time.sleep(args.seconds_per_epoch)
    os.makedirs(args.model_dir, exist_ok=True)
    with open(os.path.join(args.model_dir, "model.json"), "w") as f:
        json.dump({"features": header[:-1] if header else None, "means": means, "stds": stds,
                   "weights": weights, "bias": bias}, f, indent=2)
    print(f"model written to {args.model_dir}/model.json", flush=True)


if __name__ == "__main__":
    main()
