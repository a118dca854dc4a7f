"""Taking models out: ONNX export matches PyTorch on real test images, and the predict command works on files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoints, color, data, denoise, export, metrics, noise, predict
from core.images import load_image, to_tensor
from core.noise import NoiseSpec, add_noise

ort = pytest.importorskip("onnxruntime")


def _inputs(task: str, images: torch.Tensor) -> torch.Tensor:
    if task == "denoising":
        return add_noise(images, NoiseSpec("gaussian", 25.0), torch.Generator().manual_seed(0))
    if task == "colorization":
        return color.luma(images)
    return images


@pytest.mark.parametrize("name", ["fastnet-cifar10", "unet-gaussian-cifar10", "unet-colorizer-faithful"])
def test_onnx_export_matches_pytorch_on_100_test_images(name: str, tmp_path: Path, data_root: Path) -> None:
    model, meta = checkpoints.load(name)
    images = data.load_dataset("cifar10", "test").images[:100].float().div(255)
    given = _inputs(meta["task"], images)
    out = tmp_path / f"{name}.onnx"
    spec = export.export_onnx(name, out)
    assert (spec.channels, spec.height, spec.width) == (given.shape[1], 32, 32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    answer = session.run(None, {"images": given.numpy()})[0]
    with torch.no_grad():
        expected = model(given).numpy()
    assert answer.shape == expected.shape
    np.testing.assert_allclose(answer, expected, atol=1e-4, rtol=0)


def test_hint_colorizer_exports_at_a_chosen_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hint spread skips work when there are no hints; the exported graph must still apply real hints,
    # with the Gaussian spread it uses in place of the luma-guided solver.
    model, _ = checkpoints.load("unet-colorizer-hint-refiner")
    generator = torch.Generator().manual_seed(0)
    given = torch.rand(3, 4, 48, 64, generator=generator)
    mask = (torch.rand(3, 1, 48, 64, generator=generator) < 0.01).float()
    given[:, 1:3] = (given[:, 1:3] - 0.5) * 0.3 * mask
    given[:, 3:] = mask
    out = tmp_path / "hints.onnx"
    assert export.export_onnx("unet-colorizer-hint-refiner", out, height=48, width=64).channels == 4
    answer = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": given.numpy()})[0]
    with torch.no_grad():
        along_luma = model(given)
        monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
        np.testing.assert_allclose(answer, model(given).numpy(), atol=1e-4, rtol=0)
    assert not np.allclose(answer, along_luma.numpy(), atol=1e-3)  # the two spreads do differ


def test_export_refuses_what_it_cannot_do_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="32 x 32"):
        export.export_onnx("fastnet-cifar10", tmp_path / "x.onnx", height=64, width=64)
    with pytest.raises(export.ExportError, match="between 8 and 4096"):
        export.export_onnx("unet-gaussian-cifar10", tmp_path / "x.onnx", height=4, width=4)
    assert export.main(["no-such-model", "--out", str(tmp_path / "x.onnx")]) == 2
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind


def test_predict_classifies_files_as_the_classify_page_does(data_root: Path, tmp_path: Path, capsys) -> None:
    test_set = data_root / "cifar10" / "test"
    files = [sorted((test_set / name).glob("*.png"))[0] for name in ("cat", "ship", "truck")]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(blank)
    assert predict.main(["fastnet-cifar10", *map(str, files), str(blank)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    model, meta = checkpoints.load("fastnet-cifar10")
    for line, path in zip(lines, [*files, blank], strict=True):
        shown, name, probability, sure = line.split("\t")
        expected = predict.classify_file(model, meta, load_image(path.read_bytes()))
        assert (shown, name, sure) == (str(path), expected[0], expected[2])
        assert abs(float(probability) - expected[1]) < 1e-4
    assert lines[-1].endswith("\tunsure")  # a blank picture shows none of the ten classes


def test_predict_writes_denoised_and_colorized_images(tmp_path: Path, data_root: Path, capsys) -> None:
    photo = tmp_path / "photo.png"
    clean = load_image(next((data_root / "photos" / "set14").glob("*.png")).read_bytes()).convert("RGB")
    clean = clean.resize((clean.width // 4, clean.height // 4))
    clean.save(photo)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    args = ["unet-gaussian-cifar10", str(photo), "--noise", "gaussian", "--level", "25", "--out", str(out)]
    assert predict.main(args) == 0
    denoised = load_image((out / "photo-denoised.png").read_bytes())
    assert denoised.size == clean.size
    reference = to_tensor(clean)
    noisy = denoise.make_noisy(reference[0], noise.NoiseSpec("gaussian", 25.0), 0)[None]
    gain = metrics.psnr(to_tensor(denoised), reference) - metrics.psnr(noisy, reference)
    assert float(gain) > 3  # it really denoised the noise it added
    assert predict.main(["unet-colorizer-faithful", str(photo), str(tmp_path / "broken.png"), "--out", str(out)]) == 1
    colorized = load_image((out / "photo-colorized.png").read_bytes())
    assert colorized.size == clean.size and colorized.mode == "RGB"
    assert "broken.png\terror:" in capsys.readouterr().err
