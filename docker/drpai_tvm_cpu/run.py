"""DRP-AI CPU-only runner: the artifact's aarch64 deploy.so under qemu-aarch64, as its check ran it (posepipe_predict
does the rest). Minutes per photo for a ResNet-50: emulation, not the board's speed."""

from compile import run_emulated
from posepipe_predict import ARTIFACT, predict


def main() -> None:
    predict(lambda batches: (run_emulated(ARTIFACT, x)[0] for x in batches))


if __name__ == "__main__":
    main()
