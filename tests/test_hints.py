"""Colour hints: their encoding, the random hints training and the benchmark draw, the interpolation
baseline, and hint colorizers (grown from a plain one, trained, used on a photo)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core import checkpoints, color, colorize, data, hints, models
from core.train import TrainConfig, Trainer


def test_a_hint_is_encoded_at_its_pixel_with_its_chroma_and_a_mask() -> None:
    red = hints.Hint.from_hex(0.5, 0.25, "#ff0000")
    assert red.rgb == (1.0, 0.0, 0.0) and red.hex() == "#ff0000"
    channels = hints.encode([red], height=8, width=10)
    assert channels.shape == (3, 8, 10)
    assert channels[2].sum() == 1 and channels[2, 2, 5] == 1  # row 0.25 * 8, column 0.5 * 10
    expected = color.chroma(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).view(2)
    assert torch.allclose(channels[:2, 2, 5], expected)
    assert channels[:2].abs().sum() == pytest.approx(float(expected.abs().sum()))
    # The last hint on a pixel wins (blue: a high Cb); a point on the far edge stays inside.
    both = hints.encode([red, hints.Hint.from_hex(0.5, 0.25, "#0000ff"), hints.Hint(1.0, 1.0, (0, 1, 0))], 8, 10)
    assert both[0, 2, 5] > 0.3 and both[2, 7, 9] == 1 and both[2].sum() == 2
    with pytest.raises(ValueError, match="rrggbb"):
        hints.Hint.from_hex(0, 0, "red")


def test_revealed_hints_are_true_colours_at_exactly_the_asked_number_of_pixels() -> None:
    images = torch.rand(4, 3, 16, 16)
    counts = torch.tensor([0, 1, 5, 20])
    channels = hints.reveal(images, counts, torch.Generator().manual_seed(0))
    assert channels.shape == (4, 3, 16, 16)
    assert channels[:, 2].flatten(1).sum(1).tolist() == [0, 1, 5, 20]
    mask = channels[:, 2:3].bool().expand(-1, 2, -1, -1)
    assert torch.equal(channels[:, :2][mask], color.chroma(images)[mask])
    assert channels[:, :2][~mask].abs().max() == 0
    # The benchmark's draw is fixed by its seed, and differs for another.
    assert torch.equal(hints.fixed_hints(images, 10, seed=3), hints.fixed_hints(images, 10, seed=3))
    assert not torch.equal(hints.fixed_hints(images, 10, seed=3), hints.fixed_hints(images, 10, seed=4))


def test_training_draws_few_hints_often_and_none_sometimes() -> None:
    counts = hints.training_counts(20_000, torch.Generator().manual_seed(0))
    assert counts.min() == 0 and counts.max() <= hints.MAX_TRAINING_HINTS
    assert 0.1 < float((counts == 0).float().mean()) < 0.25
    assert float((counts <= 10).float().mean()) > 0.5  # log-uniform: most images get a handful


def test_a_run_can_cap_its_training_hints() -> None:
    counts = hints.training_counts(20_000, torch.Generator().manual_seed(0), most=24)
    assert counts.min() == 0 and counts.max() == 24
    assert 0.15 < float((counts == 0).float().mean()) < 0.3  # fewer counts to draw from: none comes up more often
    assert hints.training_counts(50, most=0).eq(0).all()


def test_interpolation_is_exact_at_hints_and_grey_without_them() -> None:
    images = torch.rand(2, 3, 12, 12)
    luma = color.luma(images)
    channels = hints.fixed_hints(images, 6, seed=0)
    channels[1] = 0  # the second image has no hints
    filled = hints.interpolate(luma, channels)
    mask = channels[0, 2].bool()
    assert torch.allclose(color.chroma(filled[:1])[0][:, mask], color.chroma(images[:1])[0][:, mask], atol=2e-3)
    assert color.chroma(filled[1:]).abs().max() < 2e-3
    assert torch.allclose(color.luma(filled[1:]), luma[1:], atol=2e-3)  # the true luma (clamped colours aside)


def test_sampled_photo_hints_carry_the_colour_of_their_pixel() -> None:
    original = torch.rand(3, 30, 40)
    chosen = hints.sample_hints(original, 5, seed=1)
    assert len({(hint.x, hint.y) for hint in chosen}) == 5
    for hint in chosen:
        row, col = hint.pixel(30, 40)
        assert hint.rgb == pytest.approx(original[:, row, col].tolist())


def test_a_grown_hint_model_starts_as_its_source_and_then_listens_to_hints() -> None:
    plain = models.build("unet_colorizer", width=8, depth=2, binned=True).eval()
    grown = models.build("unet_colorizer", width=8, depth=2, binned=True, hints=True).eval()
    assert models.transplant(plain, grown) == ["body.encoders.0.0.weight"]
    images = torch.rand(2, 3, 16, 16)
    luma = color.luma(images)
    with torch.no_grad():
        assert torch.equal(plain(luma), grown(luma))  # luma alone: no hints
        with_hints = torch.cat([luma, hints.fixed_hints(images, 8, seed=0)], dim=1)
        # The new inputs start at zero weight: the network's own chroma is the plain one's (the eval-time
        # correction towards the hints' colours then changes the output).
        assert torch.equal(plain._raw(luma), grown._raw(with_hints))
        assert not torch.equal(plain(luma), grown(with_hints))
    with pytest.raises(ValueError, match="does not fit"):
        models.transplant(plain, models.build("unet_colorizer", width=16, depth=2, binned=True, hints=True))


def test_a_hint_colorizer_fine_tunes_from_a_plain_one_and_uses_hints_on_a_photo(tmp_path, data_root) -> None:
    base = dict(task="colorization", arch="unet_colorizer", dataset="cifar10", epochs=1, batch_size=64,
                subset=256, val_size=64, optimizer="adam", lr=2e-3, schedule="constant", loss="chroma_ce",
                seed=1, out=str(tmp_path))
    plain = Trainer(TrainConfig(**base, arch_args={"width": 8, "depth": 2, "binned": True}, name="plain")).fit()
    assert plain.status == "finished", plain.message
    tuned = Trainer(TrainConfig(**base, arch_args={"binned": True, "hints": True}, init_from=plain.checkpoint,
                                name="hinted")).fit()
    assert tuned.status == "finished", tuned.message
    model, meta = checkpoints.load(tuned.checkpoint)
    assert model.takes_hints and meta["arch_args"]["width"] == 8 and meta["arch_args"]["hints"] is True

    luma = torch.rand(1, 48, 64)
    blue = [hints.Hint.from_hex(0.5, 0.5, "#8090b0")]  # mild: a saturated hint on random luma leaves the gamut
    plain_rgb = colorize.colorize(model, luma, working_side=32)
    hinted_rgb = colorize.colorize(model, luma, working_side=32, hints=blue)
    assert hinted_rgb.shape == (3, 48, 64)
    assert not torch.equal(plain_rgb, hinted_rgb)
    assert torch.allclose(color.luma(hinted_rgb[None])[0], luma, atol=2e-2)  # the luma is kept


def test_a_hint_refiner_keeps_the_faithful_colorizer_frozen_and_learns_only_its_correction(tmp_path, data_root,
                                                                                           monkeypatch) -> None:
    full = data.load_dataset

    def first_images(*args, **kwargs) -> data.ImageDataset:  # the run proves the design, not the colours
        loaded = full(*args, **kwargs)
        return dataclasses.replace(loaded, images=loaded.images[:160], labels=loaded.labels[:160])

    monkeypatch.setattr(data, "load_dataset", first_images)
    faithful, _ = checkpoints.load("unet-colorizer-faithful")
    fresh = models.build("hint_refiner", width=8, depth=2).eval()
    fresh.adopt(faithful)
    images = torch.rand(2, 3, 32, 32)
    luma = color.luma(images)
    with torch.no_grad():  # the correction starts at zero: without hints it is the faithful colorizer exactly
        # (averaged with its answer for the mirror image, as the refiner colours both views)
        mirrored = 0.5 * (faithful.predict_chroma(luma).float() + faithful.predict_chroma(luma.flip(-1)).float(
            ).flip(-1))
        assert torch.allclose(fresh.predict_chroma(luma), mirrored, atol=1e-6)
        # ...and with hints, its colours with the hints spread along the luma (the classical answer; one view, as
        # each view's spread is solved on its own, to the solver's tolerance)
        fresh.mirror_average = False
        placed = hints.fixed_hints(images, 4, seed=1)
        classical = hints.spread_residuals(faithful.predict_chroma(luma).float(), placed, luma)
        assert torch.allclose(fresh.predict_chroma(torch.cat([luma, placed], dim=1)), classical, atol=1e-5)

    config = TrainConfig(task="colorization", arch="hint_refiner", arch_args={"width": 8, "depth": 2},
                         dataset="cifar10", epochs=1, batch_size=32, subset=96, val_size=32, optimizer="adam",
                         lr=1e-2, schedule="constant", loss="mse", seed=0, out=str(tmp_path), name="refiner")
    result = Trainer(config).fit()
    assert result.status == "finished", result.message
    refiner, meta = checkpoints.load(result.checkpoint)
    assert refiner.takes_hints and meta["architecture"] == "hint_refiner"
    assert checkpoints.takes_hints(meta) and not checkpoints.takes_hints(checkpoints.read_meta(
        checkpoints.resolve("unet-colorizer-faithful")))  # the pages tell from the sidecar alone
    assert all(torch.equal(mine, theirs) for mine, theirs in  # the base took its weights and kept them
               zip(refiner.base.state_dict().values(), faithful.state_dict().values(), strict=True))
    with torch.no_grad():
        assert not torch.equal(refiner.predict_chroma(luma), faithful.predict_chroma(luma).float())  # it learned
        given = torch.cat([luma, hints.fixed_hints(images, 5, seed=0)], dim=1)
        chroma = refiner.predict_chroma(given)
    mask = given[:, 3:4] > 0  # each hint's colour holds at its pixel
    assert torch.allclose(chroma.masked_select(mask), given[:, 1:3].masked_select(mask), atol=1e-4)


def test_a_hint_refiner_without_its_base_checkpoint_fails_with_a_message(tmp_path, data_root, monkeypatch) -> None:
    monkeypatch.setattr(checkpoints, "checkpoint_dirs", lambda: [tmp_path / "none"])
    config = TrainConfig(task="colorization", arch="hint_refiner", arch_args={"width": 8}, dataset="cifar10",
                         epochs=1, batch_size=32, subset=64, val_size=0, loss="mse", out=str(tmp_path), name="orphan")
    with pytest.raises(ValueError, match="builds on the checkpoint 'unet-colorizer-faithful'"):
        Trainer(config).fit()


def test_a_hint_board_adds_new_clicks_only_and_undoes_clears_and_resets_per_image() -> None:
    board = hints.HintBoard()
    board.show("cat")
    click = {"x": 50, "y": 25, "width": 100, "height": 100, "unix_time": 1}
    assert board.click(click, (1.0, 0.0, 0.0)) == hints.Hint(0.5, 0.25, (1.0, 0.0, 0.0))
    assert board.click(click, (1.0, 0.0, 0.0)) is None  # the widget reports its last click again on a rerun
    # A colour can depend on where the click lands (the original's own colour there).
    board.click({"x": 100, "y": 0, "width": 100, "height": 50, "unix_time": 2}, lambda x, y: (x, y, 0.0))
    assert board.hints[1].rgb[1] == 0 and board.hints[1].rgb[0] == pytest.approx(1.0, abs=1e-4) and board.hints[1].x < 1
    for outside in ({"x": 120, "y": 5, "width": 100, "height": 100, "unix_time": 3},
                    {"x": 1, "y": 1, "width": 0, "height": 0, "unix_time": 4}, None):
        assert board.click(outside, (0.0, 0.0, 0.0)) is None
    assert len(board.hints) == 2
    board.undo()
    assert [h.rgb for h in board.hints] == [(1.0, 0.0, 0.0)]
    board.show("cat")  # the same image keeps its hints
    assert len(board.hints) == 1
    board.clear()
    board.undo()  # nothing left to undo: no error
    assert board.hints == []
    board.click({"x": 1, "y": 1, "width": 10, "height": 10, "unix_time": 5}, (0.0, 0.0, 1.0))
    board.show("dog")  # another image starts with none, and the old click is not replayed onto it
    assert board.hints == [] and board.click({"x": 1, "y": 1, "width": 10, "height": 10, "unix_time": 5},
                                             (0.0, 0.0, 1.0)) is None


def test_a_true_colour_is_the_originals_at_the_working_size_and_dots_show_the_hint_colours() -> None:
    original = torch.zeros(3, 64, 64)
    original[0, :, 32:] = 1.0  # right half red
    assert hints.true_colour(original, 0.9, 0.5, 32, 32) == (1.0, 0.0, 0.0)
    assert hints.true_colour(original, 0.1, 0.5, 32, 32) == (0.0, 0.0, 0.0)
    # Area-shrunk to 2 x 2 pixels each side stays pure; at 1 x 1 the two halves average.
    assert hints.true_colour(original, 0.1, 0.5, 1, 1) == pytest.approx((0.5, 0.0, 0.0))
    from PIL import Image

    grey = Image.new("L", (200, 100), 128)
    marked = hints.draw(grey, [hints.Hint.from_hex(0.25, 0.5, "#00ff00")])
    assert marked.mode == "RGB" and marked.size == (200, 100)
    assert marked.getpixel((50, 50)) == (0, 255, 0) and marked.getpixel((150, 50)) == (128, 128, 128)


def test_spread_residuals_hold_each_hint_and_stop_at_luma_edges() -> None:
    chroma = torch.zeros(1, 2, 32, 32)
    luma = torch.full((1, 1, 32, 32), 0.3)
    luma[..., 16:] = 0.8  # a bright right half: an edge down the middle
    channels = hints.encode([hints.Hint.from_hex(0.1, 0.5, "#ff0000")], 32, 32)[None]
    corrected = hints.spread_residuals(chroma, channels, luma)
    target = channels[0, :2, 16, 3]
    assert torch.allclose(corrected[0, :, 16, 3], target, atol=1e-6)
    # Across its own (dark) half the hint's colour holds nearly in full; past the edge almost nothing.
    assert corrected[0, 1, 2, 14].abs() > 0.8 * target[1].abs()
    assert corrected[0, 1, 16, 17].abs() < 0.05 * target[1].abs()
    # No hints: unchanged.
    assert torch.equal(hints.spread_residuals(chroma, torch.zeros(1, 3, 32, 32), luma), chroma)
    # A faint edge (a luma step of 0.15) stops the first spread but not the looser last one a refiner settles with.
    faint = torch.full((1, 1, 32, 32), 0.3)
    faint[..., 16:] = 0.45
    sharp = hints.spread_residuals(chroma, channels, faint)
    loose = hints.spread_residuals(chroma, channels, faint, edge_sigma=hints.SETTLE_EDGE_SIGMA)
    assert sharp[0, 1, 16, 17].abs() < 0.05 * target[1].abs() and loose[0, 1, 16, 17].abs() > 0.8 * target[1].abs()
    assert models.build("hint_refiner", width=8, depth=2).settle_edge_sigma == hints.SETTLE_EDGE_SIGMA


def test_a_hint_refiner_trains_through_its_settling_spread() -> None:
    # In training, too, each hint's colour holds at its pixel, and the loss reaches the correction through the
    # spread's solver; a plain hint colorizer trains on its raw colours.
    refiner = models.build("hint_refiner", width=8, depth=1).train()
    torch.nn.init.normal_(refiner.body.head.weight, std=0.1)  # a correction that is not zero yet
    images = torch.rand(2, 3, 32, 32)
    given = torch.cat([color.luma(images), hints.fixed_hints(images, 3, seed=0)], dim=1)
    chroma = refiner.predict_chroma(given)
    mask = given[:, 3:4] > 0
    assert torch.allclose(chroma.masked_select(mask), given[:, 1:3].masked_select(mask), atol=1e-4)
    chroma.square().mean().backward()
    assert refiner.body.head.weight.grad.abs().sum() > 0
    plain = models.build("unet_colorizer", width=8, depth=1, hints=True).train()
    assert not plain.settles_in_training
    raw = plain.predict_chroma(given)
    assert not torch.allclose(raw.masked_select(mask), given[:, 1:3].masked_select(mask), atol=1e-2)


def test_a_hint_refiner_answers_a_mirrored_image_with_its_mirrored_colours() -> None:
    # Evaluation averages the image's and its mirror image's corrections before the last spread, so the answer is
    # exactly mirror-symmetric and each hint still holds; training sees one view only.
    refiner = models.build("hint_refiner", width=8, depth=1).eval()
    torch.nn.init.normal_(refiner.body.head.weight, std=0.1)
    images = torch.rand(2, 3, 32, 32)
    given = torch.cat([color.luma(images), hints.fixed_hints(images, 3, seed=0)], dim=1)
    with torch.no_grad():
        chroma = refiner.predict_chroma(given)
        assert torch.allclose(refiner.predict_chroma(given.flip(-1)), chroma.flip(-1), atol=1e-4)
        mask = given[:, 3:4] > 0
        assert torch.allclose(chroma.masked_select(mask), given[:, 1:3].masked_select(mask), atol=1e-4)
        refiner.mirror_average = False
        one_view = refiner.predict_chroma(given)
        assert not torch.allclose(refiner.predict_chroma(given.flip(-1)), one_view.flip(-1), atol=1e-3)
        refiner.mirror_average = True
        assert torch.equal(refiner.train()._raw(given), refiner._corrected(given))


def test_propagate_solves_its_linear_system() -> None:
    # Checked against a dense solve of the same system on a small random image.
    generator = torch.Generator().manual_seed(0)
    luma = torch.rand(1, 1, 6, 7, generator=generator)
    mask = torch.zeros(1, 1, 6, 7)
    mask[0, 0, 1, 2] = mask[0, 0, 4, 5] = 1.0
    values = torch.randn(1, 1, 6, 7, generator=generator) * mask
    field = hints.propagate(values, mask, luma, steps=200).double()
    size = 6 * 7
    matrix = torch.eye(size, dtype=torch.float64) * hints.DECAY
    flat = luma.flatten().double()
    for row in range(6):
        for col in range(7):
            for dy, dx, base in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.5), (1, -1, 0.5)):
                r, c = row + dy, col + dx
                if 0 <= r < 6 and 0 <= c < 7:
                    i, j = row * 7 + col, r * 7 + c
                    w = base * torch.exp(-(flat[i] - flat[j]) ** 2 / (2 * hints.EDGE_SIGMA ** 2))
                    matrix[i, i] += w
                    matrix[j, j] += w
                    matrix[i, j] -= w
                    matrix[j, i] -= w
    known = mask.flatten().bool()
    free = ~known
    expected = values.flatten().double().clone()
    expected[free] = torch.linalg.solve(matrix[free][:, free], -matrix[free][:, known] @ expected[known])
    assert torch.allclose(field.flatten(), expected, atol=1e-5)
