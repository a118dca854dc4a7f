"""The Classify page, through Streamlit's AppTest: gallery, upload, model switch, test-set view."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import checkpoints, classify, data, paths
from core.images import sample_photo
from tests.factories import open_page, tiny_classifier

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def home_with_models(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    home = tmp_path_factory.mktemp("classify-home")
    tiny_classifier(home / "checkpoints", "tiny-a", width=8)
    tiny_classifier(home / "checkpoints", "tiny-b", width=12)
    return home


@pytest.fixture
def app(home_with_models: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_page(home_with_models, "pages/classify.py", monkeypatch)


def prediction(app: AppTest) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("Prediction:"))


def test_gallery_image_is_classified_with_bars_and_saliency(app: AppTest) -> None:
    # Test image #0 is a cat: the verdict names it, whether the tiny model got it right or not.
    assert prediction(app).startswith("Prediction: **")
    assert prediction(app).endswith("· wrong: it is a **cat**") or prediction(app).startswith("Prediction: **cat**")
    assert len(app.get("plotly_chart")) >= 1
    captions = " ".join(c.value for c in app.caption)
    assert "Prediction and saliency map in" in captions


def test_switching_models_and_class_filter(app: AppTest) -> None:
    model_box = next(s for s in app.selectbox if s.label == "Model")
    assert len(model_box.options) == 2
    model_box.set_value(model_box.options[1]).run()
    assert not app.exception
    assert "tiny-b" in str(next(s for s in app.selectbox if s.label == "Model").value)
    next(s for s in app.selectbox if s.label == "Class").set_value("ship").run()
    next(b for b in app.button if b.label == "Random image").click().run()
    verdict = prediction(app)
    assert verdict.endswith("it is a **ship**") or verdict.startswith("Prediction: **ship**")


def test_upload_is_classified_and_bad_files_get_a_message(app: AppTest) -> None:
    app.segmented_control[0].set_value("Upload").run()
    buffer = io.BytesIO()
    sample_photo("Chelsea the cat").save(buffer, format="JPEG")
    app.get("file_uploader")[0].set_value(("my cat.jpg", buffer.getvalue(), "image/jpeg")).run()
    assert not app.exception and prediction(app).startswith("Prediction: **")
    app.get("file_uploader")[0].set_value(("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")).run()
    assert not app.exception
    assert any("broken.png" in e.value and "damaged or incomplete" in e.value for e in app.error)
    app.get("file_uploader")[0].set_value(("notes.png", b"just some text", "image/png")).run()
    assert any("notes.png" in e.value and "not an image" in e.value for e in app.error)


def test_an_answer_the_model_is_unsure_of_says_so(home_with_models: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(home_with_models / "checkpoints" / f"tiny-a{suffix}", home / "checkpoints" / f"tiny-a{suffix}")
    trained = checkpoints.read_meta(home / "checkpoints" / "tiny-a.safetensors")["metrics"]
    assert "test_unsure_below" in trained  # measured by the training run
    # Thresholds no image reaches plainly, and every image passes with test-time augmentation.
    checkpoints.update_metadata(home / "checkpoints" / "tiny-a.safetensors",
                                metrics={"test_unsure_below": 1e9, "test_unsure_below_tta": -1e9})
    app = open_page(home, "pages/classify.py", monkeypatch)
    warning = " ".join(w.value for w in app.warning)
    assert "Unsure: the model responds to this picture more weakly than to 95% of its test images (CIFAR-10)" \
        in warning and "airplane, automobile" in warning
    next(t for t in app.toggle if t.label.startswith("Test-time augmentation")).set_value(True).run()
    assert not app.exception and not any("Unsure" in w.value for w in app.warning)


def test_test_set_view_matches_the_model(app: AppTest, home_with_models: Path) -> None:
    next(t for t in app.toggle if "confusion matrix" in t.label).set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    metrics = {m.label: m.value for m in app.metric}
    model, meta = checkpoints.load(home_with_models / "checkpoints" / "tiny-a.safetensors")
    expected = classify.evaluate_test_set(model, data.load_dataset("cifar10", "test")).accuracy
    assert metrics["Test accuracy"] == f"{expected:.2%}"
    assert metrics["Recorded in the checkpoint"] == f"{meta['metrics']['test_accuracy']:.2%}"
    share, sure, unsure = classify.evaluate_test_set(model, data.load_dataset("cifar10", "test")).sure_and_unsure(meta)
    assert metrics["Unsure answers"] == f"{share:.1%}" and metrics["Accuracy when sure"] == f"{sure:.2%}"
    assert metrics["Accuracy when unsure"] == f"{unsure:.2%}"
    assert any("images predicted as" in m.value or "correctly classified" in m.value for m in app.markdown)
    # A mistake, explained: its top 3 classes and its Grad-CAM.
    first = next(b for b in app.button if b.key and b.key.startswith("classify-explain-"))
    index = int(first.key.rsplit("-", 1)[1])
    first.click().run()
    assert not app.exception, [e.value for e in app.exception]
    explained = next(m.value for m in app.markdown if m.value.startswith(f"**Test image #{index}**"))
    assert explained.count("%") == 3
    assert len(app.get("plotly_chart")) == 3  # the image's bars, the confusion matrix, the mistake's top 3
    # The pair opens on the commonest confusion, and the two lists choose another.
    true_class, predicted = classify.evaluate_test_set(model, data.load_dataset("cifar10", "test")).most_confused()
    classes = data.load_dataset("cifar10", "test").classes
    assert (app.selectbox(key="classify-true-tiny-a").value, app.selectbox(key="classify-predicted-tiny-a").value) \
        == (classes[true_class], classes[predicted])
    app.selectbox(key="classify-true-tiny-a").set_value("bird").run()
    app.selectbox(key="classify-predicted-tiny-a").set_value("ship").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("bird images predicted as ship" in m.value for m in app.markdown)


def test_no_checkpoint_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path) -> None:
    monkeypatch.setenv("CIFAR_LAB_HOME", str(tmp_path))
    monkeypatch.setattr(paths, "SHIPPED_CHECKPOINTS", tmp_path / "none")
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("pages/classify.py").run()
    assert not app.exception
    assert any("No classification checkpoint is installed yet" in i.value for i in app.info)
