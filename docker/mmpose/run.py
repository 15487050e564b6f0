"""Runner of the export itself: its TorchScript model.pt in PyTorch on the CPU, the FP32 reference that
`posepipe evaluate` scores every target beside (posepipe_predict does the rest)."""

from posepipe_predict import ARTIFACT, predict


def main() -> None:
    import torch

    model = torch.jit.load(str(ARTIFACT / "model.pt")).eval()

    def run(batches):
        with torch.no_grad():
            for x in batches:
                out = model(torch.from_numpy(x))
                yield [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]

    predict(run)


if __name__ == "__main__":
    main()
