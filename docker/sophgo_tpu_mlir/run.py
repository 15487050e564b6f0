"""TPU-MLIR runner: the artifact's bmodel in the cmodel simulator, as its check ran it (posepipe_predict does the rest)."""

from compile import NET, WORK, simulate
from posepipe_predict import ARTIFACT, PARAMS, predict


def main() -> None:
    WORK.mkdir()
    predict(lambda batches: [list(out.values()) for out in simulate(ARTIFACT / f"{NET}.bmodel", PARAMS["input"]["name"], batches)])


if __name__ == "__main__":
    main()
