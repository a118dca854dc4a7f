"""Inside the network: blocks, activations, filters and probes for every classifier in the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import images, inside, models
from core.classify import InputFormat
from tests.factories import open_page, tiny_classifier


def by_label(elements, label: str):
    return next(e for e in elements if e.label == label)


@pytest.mark.parametrize("arch", models.list_architectures("classification"))
@pytest.mark.parametrize("channels", [3, 1])
def test_every_classifier_shows_its_blocks_in_order_with_shrinking_maps(arch: str, channels: int) -> None:
    torch.manual_seed(0)
    model = models.build(arch, in_channels=channels, num_classes=10).eval()
    fmt = InputFormat(channels, 32 if channels == 3 else 28)
    views = inside.activations(model, images.sample_photo("Chelsea the cat"), fmt)
    assert len(views) >= 3 and [v.name for v in views] == [n for n, _ in inside.feature_blocks(model)]
    for view in views:
        assert view.maps.ndim == 3 and sorted(view.order) == list(range(view.shape[0]))
        means = view.maps.mean(dim=(1, 2))
        assert means[view.order[0]] >= means[view.order[-1]]
    assert views[-1].shape[1] < fmt.size  # the image shrinks on its way through
    table = inside.shape_table(model, views, fmt)
    assert table[0] == {"block": "input", "kind": "image", "channels": channels, "height": fmt.size,
                        "width": fmt.size} and len(table) == len(views) + 1
    filters = inside.first_filters(model)
    assert filters.shape[1] == channels and filters.min() >= 0 and filters.max() <= 1
    assert inside.filters_image(filters).mode == "RGB"
    grid = inside.maps_image(views[0], start=0, count=16)
    assert grid.size[0] > 0
    assert not any(module._forward_hooks for module in model.modules())  # hooks only ever on a private copy


def test_a_probe_separates_what_it_can_and_not_what_it_cannot() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4
    signal = torch.nn.functional.one_hot(labels, 4).float() * 3 + torch.randn(400, 4, generator=generator)
    noise_only = torch.randn(400, 8, generator=generator)
    for features, low, high in ((signal, 0.9, 1.0), (noise_only, 0.0, 0.45)):
        layer, mean, std = inside.fit_probe(features[:200], labels[:200], 4)
        accuracy = float((layer((features[200:] - mean) / std).argmax(1) == labels[200:]).float().mean())
        assert low <= accuracy <= high


def test_probes_on_real_images_rise_towards_the_output(tmp_path: Path, data_root: Path) -> None:
    from core import checkpoints, data

    model, _ = checkpoints.load(tiny_classifier(tmp_path, "tiny"))
    train, test = data.load_dataset("cifar10", "train"), data.load_dataset("cifar10", "test")
    accuracy = inside.probe_accuracies(model, train.images[:500], train.labels[:500], test.images[:300],
                                       test.labels[:300])
    assert list(accuracy) == [n for n, _ in inside.feature_blocks(model)]
    assert all(0.0 <= v <= 1.0 for v in accuracy.values()) and max(accuracy.values()) > 0.15


def test_the_classify_page_opens_the_inside_view_for_a_trained_checkpoint(tmp_path: Path, data_root: Path,
                                                                          monkeypatch) -> None:
    home = tmp_path / "home"
    tiny_classifier(home / "checkpoints", "tiny-a", width=24)  # 24 channels: more than one grid of 16
    app = open_page(home, "pages/classify.py", monkeypatch)
    by_label(app.toggle, "Inside the network: what every block makes of this image").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    shapes = next(d.value for d in app.dataframe if "block" in d.value.columns)
    assert shapes["block"].iloc[0] == "input" and len(shapes) >= 3
    assert any(m.value.startswith("**features.0**") for m in app.markdown)
    rank = next(s for s in app.slider if s.label == "From channel rank")
    rank.set_value(16).run()
    assert not app.exception and next(s for s in app.slider if s.label == "From channel rank").value == 16
    next(b for b in app.button if b.label.startswith("Measure which classes")).click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.get("plotly_chart")
