"""``python -m ecg_lightning.pretrained <run>/checkpoints/last.ckpt``: make the shipped model from a checkpoint."""

import sys

from ecg_lightning.pretrained import make

if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m ecg_lightning.pretrained <run>/checkpoints/<name>.ckpt")
    print(make(sys.argv[1]))
