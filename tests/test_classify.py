"""core.classify and the classification models: model input, TTA, saliency, test-set views, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoints, classify, data, models
from core.charts import confusion_cell, confusion_figure, probability_bars
from core.images import SAMPLE_PHOTOS, sample_photo
from core.models.summary import layer_table


def test_model_input_is_a_centre_crop_resized_to_32() -> None:
    wide = Image.new("RGB", (300, 100), (255, 0, 0))
    wide.paste((0, 0, 255), (100, 0, 200, 100))  # blue centre square
    seen = classify.model_input(wide)
    assert seen.size == (32, 32) and seen.getpixel((16, 16)) == (0, 0, 255)
    assert seen.getpixel((0, 16))[2] > 200  # the red sides were cropped away


def test_tta_of_an_invariant_input_equals_plain() -> None:
    class MeanColour(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3)) @ torch.eye(3, 10)

    images = torch.rand(4, 3, 1, 1).expand(4, 3, 32, 32).contiguous()  # flat colours: every view is the same
    plain = MeanColour()(images)
    assert torch.allclose(classify.predict_tta(MeanColour(), images), plain, atol=1e-6)


def test_tta_averages_the_six_views() -> None:
    class FirstPixel(torch.nn.Module):  # sees only pixel (0, 0): every view shows it a different pixel
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, 0, 0] @ torch.eye(3, 10)

    images = torch.rand(1, 3, 8, 8)
    expected = sum(w * data.augment(images, torch.tensor([[dy, dx]]), torch.tensor([flip]))[:, :, 0, 0]
                   for (flip, dy, dx), w in zip(classify.TTA_VIEWS, classify.TTA_WEIGHTS, strict=True))
    assert torch.allclose(classify.predict_tta(FirstPixel(), images)[:, :3], expected, atol=1e-6)


def test_probabilities_saliency_and_overlay() -> None:
    model = models.build("staged_cnn", variant="advanced", width=8).eval()
    photo = sample_photo("Chelsea the cat")
    probabilities = classify.probabilities(model, photo)
    assert probabilities.shape == (10,) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    heat = classify.saliency(model, photo, target=3)
    assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
    shown = classify.overlay(photo, heat)
    assert shown.size == (256, 256) and shown.mode == "RGB"


def test_familiarity_is_the_log_sum_exp_of_the_logits_and_ignores_which_class_wins() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0], [5.0, 5.0, 5.0]])
    found = classify.familiarity(logits)
    assert found[0] == pytest.approx(found[1]) and found[2] == pytest.approx(5 + np.log(3), abs=1e-5)


def test_evaluation_measures_the_threshold_below_which_the_weakest_share_of_images_fall() -> None:
    from core.train.config import TrainConfig
    from core.train.engine import evaluate
    from core.train.tasks import Classification

    class Brightness(torch.nn.Module):  # responds as strongly as the image is bright, to every class alike
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(1, 2, 3))[:, None].expand(-1, 10) * 10

    levels = torch.arange(1000) % 250  # flat images, each brightness four times
    test_images = levels.view(-1, 1, 1, 1).expand(-1, 3, 8, 8).to(torch.uint8)
    _, found = evaluate(Brightness(), Classification(TrainConfig()), test_images, torch.zeros(1000, dtype=torch.long),
                        batch_size=300, tta=True, unsure=True)
    scores = classify.familiarity(Brightness()(test_images.float() / 255))
    assert (scores < found["unsure_below"]).float().mean() == pytest.approx(classify.UNSURE_SHARE, abs=0.005)
    assert found["unsure_below_tta"] == pytest.approx(found["unsure_below"], abs=1e-3)  # flat images: views alike
    meta = {"metrics": {"test_unsure_below": found["unsure_below"]}}
    assert classify.is_unsure(found["unsure_below"] - 0.01, meta, tta=False)
    assert classify.is_unsure(found["unsure_below"] - 0.01, meta, tta=True)  # the plain threshold stands in
    assert not classify.is_unsure(found["unsure_below"] + 0.01, meta, tta=True)
    assert not classify.is_unsure(-100.0, {"metrics": {}}, tta=False)  # no measurement, no warning


def test_a_prediction_says_whether_it_is_right_when_the_class_is_known() -> None:
    probabilities, classes = np.array([0.1, 0.854, 0.046]), ["cat", "dog", "frog"]
    assert classify.prediction_text(probabilities, classes) == "**dog**, 85.4%"  # an upload: no answer to check
    assert classify.prediction_text(probabilities, classes, 1) == "**dog**, 85.4% · correct"
    assert classify.prediction_text(probabilities, classes, 0) == "**dog**, 85.4% · wrong: it is a **cat**"


def test_the_shipped_fast_net_is_unsure_of_a_blank_picture_and_sure_of_a_cat(data_root: Path) -> None:
    model, meta = checkpoints.load("fastnet-cifar10")
    blank = Image.new("RGB", (200, 120), (128, 128, 128))
    cat = data.load_dataset("cifar10", "test").images[0]  # a cat the model names with 95%
    _, blank_score = classify.probabilities_and_familiarity(model, blank)
    _, cat_score = classify.probabilities_and_familiarity(model, Image.fromarray(cat.permute(1, 2, 0).numpy()))
    assert classify.is_unsure(blank_score, meta, tta=False) and not classify.is_unsure(cat_score, meta, tta=False)
    pictures = [torch.full((3, 32, 32), 0.5), cat.float() / 255]
    said = classify.verdicts(model, pictures, checkpoints.class_names(meta), meta=meta)
    assert [unsure for _, _, unsure in said] == [True, False] and said[1][0] == "cat"
    assert classify.verdict_text(*said[0]).endswith(" (unsure)") and "unsure" not in classify.verdict_text(*said[1])
    assert not any(unsure for _, _, unsure in classify.verdicts(model, pictures, checkpoints.class_names(meta)))
    note = classify.unsure_note(checkpoints.class_names(meta), "CIFAR-10")
    assert "95% of its test images (CIFAR-10)" in note and "airplane" in note and "truck" in note


def test_a_grey_model_sees_photos_in_grey_at_its_own_size() -> None:
    """A classifier trained on MNIST is fed one channel at 28 x 28 (it was fed three and failed)."""
    meta = {"dataset": "mnist", "arch_args": {"in_channels": 1, "num_classes": 10}}
    fmt = classify.InputFormat.of(meta)
    assert fmt == classify.InputFormat(channels=1, size=28)
    photo = sample_photo("Chelsea the cat")
    seen = classify.model_input(photo, fmt)
    assert seen.mode == "L" and seen.size == (28, 28)
    red = classify.model_input(Image.new("RGB", (40, 40), (255, 0, 0)), fmt)
    assert red.getpixel((14, 14)) == 76  # BT.601 luma of pure red: 0.299 x 255
    model = models.build("staged_cnn", variant="advanced", width=8, in_channels=1).eval()
    assert classify.InputFormat.of_model(model).channels == 1  # without a sidecar, the model's own channels
    for tta in (False, True):
        assert classify.probabilities(model, photo, tta=tta, fmt=fmt).sum() == pytest.approx(1.0, abs=1e-5)
    heat = classify.saliency(model, photo, target=3, fmt=fmt)
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() <= 1
    shown = classify.overlay(photo, heat, fmt=fmt)
    assert shown.size == (256, 256) and shown.mode == "RGB"


def test_only_models_unlike_cifar10_get_a_note() -> None:
    assert classify.input_note({"dataset": "cifar10", "arch_args": {}}) is None
    note = classify.input_note({"dataset": "fashion_mnist", "arch_args": {"in_channels": 1}})
    assert note.startswith("Trained on Fashion-MNIST: the image is shown to it in grey at 28 x 28")


@pytest.mark.parametrize("name", models.list_architectures("classification"))
def test_saliency_layer_keeps_some_resolution(name: str) -> None:
    model = models.build(name)
    layer = classify.saliency_layer(model)
    sizes = []
    handle = layer.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    handle.remove()
    assert sizes and sizes[0] >= 6


def test_test_set_result_confusion_and_indices() -> None:
    result = classify.TestSetResult(np.array([0, 1, 1, 2, 0]), np.array([0, 1, 2, 2, 1]), ["a", "b", "c"])
    assert result.accuracy == pytest.approx(0.6)
    assert result.confusion().tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert result.per_class_accuracy().tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert result.indices(2, 1).tolist() == [2]
    assert result.errors == 2
    assert result.most_confused() in {(1, 0), (2, 1)}  # each mistake made once
    commonest = classify.TestSetResult(np.array([2, 2, 0, 1]), np.array([0, 0, 1, 1]), ["a", "b", "c"])
    assert commonest.most_confused() == (0, 2)  # two a's taken for c: the page opens on that pair


def test_the_best_classifier_judges_a_dataset_and_none_is_made_up(app_home) -> None:
    from core import checkpoints
    assert checkpoints.best_classifier_of("cifar10")["name"] == "fastnet-cifar10"  # the most accurate shipped
    assert checkpoints.best_classifier_of("mnist") is None  # none ships: no judge rather than a CIFAR-10 one


def test_test_set_result_splits_accuracy_by_the_unsure_rule() -> None:
    result = classify.TestSetResult(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]), ["a", "b"],
                                    np.array([3.0, 3.0, 1.0, 1.0]))
    # The two weakly answered images are the unsure half, both wrong; the two others are right.
    assert result.sure_and_unsure({"metrics": {"test_unsure_below": 2.0}}) == (0.5, 1.0, 0.0)
    assert result.sure_and_unsure({"metrics": {}}) is None


def test_confusion_figure_points_map_to_cells() -> None:
    matrix = np.arange(9).reshape(3, 3)
    figure = confusion_figure(matrix, ["a", "b", "c"])
    heatmap, cells = figure.data
    assert heatmap.text.tolist() == matrix.tolist()
    assert np.allclose(heatmap.z[1], [3 / 12, 4 / 12, 5 / 12])  # shaded by the share of the true class's row
    assert [int(t) for t in cells.text] == list(range(9))
    assert cells.customdata[5][:2].tolist() == [1, 2]  # row-major: point 5 is true b, predicted c
    # A click as Streamlit reports it: custom data keyed by position, so the cell comes from the point's index.
    clicked = {"curve_number": 1, "point_index": 5, "x": "c", "y": "b", "customdata": {"0": 1, "1": 2, "2": 0.4}}
    assert confusion_cell(clicked, 3) == (1, 2)
    assert confusion_cell({**clicked, "point_index": 0}, 3) == (0, 0)
    bars = probability_bars(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"])
    assert list(bars.data[0].y) == ["a", "c", "b"]


def test_layer_table_lists_leaf_layers_with_shapes() -> None:
    model = models.build("fastnet", width=8)
    rows = layer_table(model, torch.zeros(1, 3, 32, 32))
    assert [r["layer"] for r in rows[:2]] == ["normalize", "whiten"] and rows[1]["output shape"] == "24 x 31 x 31"
    assert rows[-1]["layer"] == "head" and rows[-1]["output shape"] == "10"
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.parameters())


def test_fastnet_whitening_decorrelates_patches() -> None:
    model = models.build("fastnet", width=8)
    images = torch.rand(64, 3, 32, 32)
    images = (images + images.roll(1, dims=3)) / 2  # neighbouring pixels correlated, like photos
    model.init_from_data(images)
    with torch.no_grad():
        out = model.whiten(model.normalize(images))[:, :12]  # the positive half
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    covariance = torch.cov(flat)
    assert torch.allclose(covariance, torch.eye(12), atol=0.05)
    assert not model.whiten.weight.requires_grad


def test_intermediate_block_mixes_paths_with_weights_from_channel_means() -> None:
    model = models.build("intermediate_block_net", width=8, paths=3, blocks=2).eval()
    block = model.blocks[0]
    torch.nn.init.normal_(block.mixer.weight)  # image-dependent weights, not the initial even blend
    raw = torch.rand(2, 3, 32, 32)
    x = block.norm(raw)
    weights = block.mixing_weights(x)
    assert weights.shape == (2, 3)
    assert torch.allclose(weights, block.mixer(x.mean(dim=(2, 3))))
    assert not torch.allclose(weights[0], weights[1])
    paths = block.path_outputs(x).view(2, 3, 8, 16, 16)  # the first block pools
    expected = sum(weights[:, i, None, None, None] * paths[:, i] for i in range(3))
    assert torch.allclose(block(raw), expected, atol=1e-5)


def test_sample_photos_are_not_cifar_sized() -> None:
    for name in SAMPLE_PHOTOS:
        photo = sample_photo(name)
        assert photo.mode == "RGB" and min(photo.size) > 100


SHIPPED = [m for m in checkpoints.list_checkpoints("classification")
           if Path(m["path"]).parent == checkpoints.paths.SHIPPED_CHECKPOINTS]


@pytest.mark.parametrize("meta", SHIPPED, ids=[m["name"] for m in SHIPPED])
def test_shipped_checkpoint_accuracy_on_a_fixed_slice_matches_its_metadata(meta: dict, data_root: Path) -> None:
    model, meta = checkpoints.load(meta["path"])
    result = classify.evaluate_test_set(model, data.load_dataset(meta["dataset"], "test"), limit=1000)
    # 1,000 images: the slice's accuracy lies within about 3 standard errors of the full test set's.
    assert result.accuracy == pytest.approx(meta["metrics"]["test_accuracy"], abs=0.03)


def test_saliency_and_layer_tables_are_safe_when_sessions_share_a_model() -> None:
    """Streamlit caches one model for every visitor: hooks on it must not mix their forward passes."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = models.build("fastnet", width=8).eval()
    pictures = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8))
                for i in range(6)]
    alone = [classify.saliency(model, picture, 3) for picture in pictures]
    table = layer_table(model, torch.zeros(1, 3, 32, 32))

    def busy(index: int):
        picture = pictures[index % len(pictures)]
        classify.probabilities(model, picture)
        return classify.saliency(model, picture, 3), layer_table(model, torch.zeros(1, 3, 32, 32))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(busy, range(24)))
    for index, (heat, rows) in enumerate(results):
        assert np.allclose(heat, alone[index % len(pictures)], atol=1e-5)
        assert rows == table
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())
