"""Train: start a short training in the browser, watch it learn live, stop it, use the model at once."""

import json
import uuid

import pandas as pd
import streamlit as st

from core import checkpoints, classify, data, images, models, noise, own_data
from core.charts import training_figure
from core.display import format_headline, headline_metric, metric_name, run_progress, run_row, run_summary
from core.own_data import MAX_CLASSES, MIN_CLASSES, MIN_PER_CLASS
from core.train import ConfigError, TrainConfig
from core.train import panel as watched
from core.train.config import (
    LOSSES,
    OPTIMIZER_LABELS,
    OWN_IMAGES,
    OWN_IMAGES_NOTE,
    PRESET_NOTES,
    PRESETS,
    SCHEDULE_LABELS,
    SCHEDULES,
    TASK_DATASETS,
    ServerLimits,
    for_architecture,
    form_lr,
    optimizers_for,
    own_images_preset,
    torchrun_form,
)
from core.train.jobs import JOBS, NotOwner, TrainerBusy
from core.train.runs import RunStore, batch_csv, history_csv
from pages import ensure_routed
from pages.shared import UPLOAD_TYPES, links

ensure_routed()

YOUR_IMAGES = "your images"  # a classifier fine-tuned on classes the visitor brings
try:
    LIMITS = ServerLimits.from_env()
except ValueError as error:
    st.error(f"Training is switched off: this server's limits are misconfigured ({error})", icon=":material/block:")
    st.stop()

st.title("Train")
st.markdown(
    "Train any model of CIFAR Lab from the browser, with the same engine that trained the shipped "
    "checkpoints (`python -m core.train`), in a process of its own that the server watches: close the tab "
    "and come back, it is still there. One run at a time per server, and only the tab that started it can "
    "stop it; when it finishes, its checkpoint is listed on the other pages at once."
)

# Who this browser session is: a run belongs to the session that started it.
visitor = st.session_state.setdefault("visitor", uuid.uuid4().hex)
job = JOBS.current()
busy = job is not None and job.running



def own_images_form() -> None:
    """The "Your images" run: name 2 to 10 classes, give each its pictures (or one zip), fine-tune a classifier."""
    st.caption(OWN_IMAGES_NOTE + f" At least {MIN_PER_CLASS} images per class; they are deleted from this server "
               "when the run ends, and the checkpoint keeps your class names.")
    left, right = st.columns(2)
    how = left.segmented_control("Add images as", ["Files per class", "One zip"], default="Files per class",
                                 required=True, key="own-how")
    count = right.number_input("Classes", MIN_CLASSES, MAX_CLASSES, 2, key="own-count",
                               disabled=how == "One zip", help="A zip brings its own classes: one folder per class.")
    starts = [m for m in checkpoints.best_first(checkpoints.list_checkpoints("classification"), "cifar10")
              if classify.InputFormat.of(m) == classify.InputFormat()]
    with st.form("own-form", border=False):
        uploads: list[tuple] = []
        if how == "One zip":
            archive = st.file_uploader("A zip with one folder per class (class/image.jpg)", type=["zip"],
                                       key="own-zip")
        else:
            columns = st.columns(2)
            for index in range(int(count)):
                with columns[index % 2].container(border=True):
                    name = st.text_input(f"Class {index + 1}", placeholder="its name", key=f"own-name-{index}")
                    files = st.file_uploader(f"Images of class {index + 1}", type=UPLOAD_TYPES,
                                             accept_multiple_files=True, key=f"own-files-{index}",
                                             label_visibility="collapsed")
                    uploads.append((name, files or []))
        row = st.columns(4)
        start_from = row[0].selectbox("Start from", [m["name"] for m in starts], key="own-start",
                                      help="A trained classifier whose features the run keeps; its head is replaced.")
        epochs = row[1].number_input("Epochs", 1, 200, OWN_IMAGES["epochs"], key="own-epochs")
        head_epochs = row[2].number_input("New head alone for (epochs)", 0, 200, OWN_IMAGES["head_epochs"],
                                          key="own-head", help="Then the whole net learns; as many as the epochs: "
                                                               "the trained features stay as they are.")
        val_share = row[3].slider("Held out for validation", 0.1, 0.5, 0.2, 0.05, key="own-val",
                                  help="This share of every class is not trained on: it scores the model.")
        submitted = st.form_submit_button("Start training", type="primary", disabled=busy,
                                          help="A run is in progress" if busy else None)
    if not submitted:
        return
    limits = LIMITS.upload_limits()
    if how == "One zip":
        if archive is None:
            st.error("Choose a zip file first.")
            return
        payload = archive.getvalue()
        write = lambda folder: own_data.extract_zip(payload, folder, limits)  # noqa: E731
    else:
        classes = [(name, [(f.name, f.getvalue()) for f in files]) for name, files in uploads]
        write = lambda folder: own_data.write_classes(folder, classes, limits)  # noqa: E731
    meta = next(m for m in starts if m["name"] == start_from)
    config = own_images_preset(dataset=".", arch=meta["architecture"], init_from=start_from, epochs=int(epochs),
                               head_epochs=int(head_epochs), val_share=float(val_share))
    try:
        with st.spinner("Checking your images..."):
            JOBS.start(config, limits=LIMITS, owner=visitor, own_images=write)
        st.session_state["watching"] = True
        st.rerun()
    except own_data.OwnDataError as error:
        st.error(f"These images cannot be trained on: {error}", icon=":material/image_not_supported:")
    except ConfigError as error:
        st.error("This run cannot start:\n\n" + "\n".join(f"- {p}" for p in error.problems))
    except TrainerBusy as error:
        st.warning(str(error))


def standard_form(task: str, top: list) -> None:
    """A run of one of the app's own tasks on one of its datasets, from a preset."""
    preset_label = top[1].selectbox("Preset", list(PRESETS[task]), key=f"preset-{task}")
    preset = TrainConfig(task=task, **PRESETS[task][preset_label])
    st.caption(PRESET_NOTES[task][preset_label])
    if LIMITS.active:
        st.info(LIMITS.describe(), icon=":material/speed:")
    architectures = models.list_architectures(task)
    arch = top[2].selectbox(
        "Architecture", architectures, index=architectures.index(preset.arch) if preset.arch in architectures else 0,
        format_func=lambda name: models.get_architecture(name).title, key=f"arch-{task}-{preset_label}")
    scope = f"{task}-{preset_label}-{arch}"  # new widget keys when these change, so the preset's values show
    if arch != preset.arch:
        preset = for_architecture(preset, arch)
        st.caption(f"Optimisation settings for {arch}: the recipe of its shipped checkpoint (or a standard one).")

    if note := st.session_state.pop("train-lr-note", None):
        st.info(note, icon=":material/tune:")
    with st.form("train-form", border=False):
        arch_args = {}
        options = models.get_architecture(arch).options
        if options:
            columns = st.columns(len(options))
            for column, option in zip(columns, options, strict=True):
                default = preset.arch_args.get(option.name, option.default) if arch == preset.arch else option.default
                key = f"opt-{option.name}-{scope}"
                if option.choices:
                    arch_args[option.name] = column.selectbox(option.name, option.choices, help=option.help, key=key,
                                                              index=list(option.choices).index(default))
                elif isinstance(option.default, bool):
                    arch_args[option.name] = column.checkbox(option.name, value=default, help=option.help, key=key)
                elif isinstance(option.default, int):
                    arch_args[option.name] = column.number_input(
                        option.name, int(option.minimum), int(option.maximum), int(default), help=option.help, key=key)
                else:
                    arch_args[option.name] = column.number_input(
                        option.name, float(option.minimum), float(option.maximum), float(default), help=option.help,
                        key=key)

        row = st.columns(4)
        datasets = TASK_DATASETS[task]
        dataset = row[0].selectbox("Dataset", datasets, index=datasets.index(preset.dataset),
                                   format_func=lambda n: data.DATASETS[n].title, key=f"dataset-{scope}")
        epochs = row[1].number_input("Epochs", 1, 1000, preset.epochs, key=f"epochs-{scope}")
        batch_size = row[2].number_input("Batch size", 1, 8192, preset.batch_size, key=f"batch-{scope}")
        subset = row[3].number_input("Training images (0 = all)", 0, 1_000_000, preset.subset or 0, step=1000,
                                     help="Train on the first N images of the training split only, for quick runs.",
                                     key=f"subset-{scope}")
        row = st.columns(4)
        offered = optimizers_for(arch)
        optimizer = row[0].selectbox("Optimizer", offered, format_func=OPTIMIZER_LABELS.get, key=f"optimizer-{scope}",
                                     index=offered.index(preset.optimizer if preset.optimizer in offered else "sgd"))
        # No widget bounds here: the trainer's own validation refuses bad values, with its message.
        lr = row[1].number_input(
            "Learning rate", value=preset.lr, format="%.5f", key=f"lr-{scope}",
            help=f"Tuned for batch {preset.batch_size}. Change the batch size and leave this as it is, and the run "
                 "scales it for you: in proportion for SGD and Muon, by the square root for Adam (as timm does).")
        schedule = row[2].selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(preset.schedule),
                                    format_func=lambda s: SCHEDULE_LABELS[s], key=f"schedule-{scope}")
        weight_decay = row[3].number_input("Weight decay", value=preset.weight_decay, format="%.5f",
                                           key=f"wd-{scope}")
        row = st.columns(4)
        augment = row[0].checkbox("Augmentation (flips, 2-pixel shifts)", preset.augment, key=f"augment-{scope}")
        seed = row[1].number_input("Seed", 0, 2**31 - 1, preset.seed, key=f"seed-{scope}")
        val_size = row[2].number_input("Validation images", 0, 20_000, preset.val_size, step=500,
                                       help="Held out of the training split; drives the live validation curve.",
                                       key=f"val-{scope}")
        extra = {}
        if task == "classification":
            extra["label_smoothing"] = row[3].number_input("Label smoothing", 0.0, 0.5, preset.label_smoothing,
                                                           key=f"ls-{scope}")
        else:
            extra["loss"] = row[3].selectbox("Loss", list(LOSSES), index=list(LOSSES).index(preset.loss),
                                             key=f"loss-{scope}", format_func=LOSSES.get)
        if task == "denoising":
            row = st.columns(3, vertical_alignment="bottom")
            extra["grey"] = row[2].checkbox(
                "Grey images (one channel)", preset.grey, key=f"grey-{scope}",
                help="Train and test on the images' BT.601 grey: a denoiser for black-and-white photos, which the "
                     "Denoise page then offers for grey uploads. Digits and clothes are grey already.")
            kinds = (*noise.KINDS, *noise.MIXES)
            extra["noise"] = row[0].selectbox("Noise", kinds, index=kinds.index(preset.noise), key=f"noise-{scope}",
                                              format_func=noise.TITLES.get)
            if extra["noise"] in noise.MIXES:
                row[1].caption("Each image draws a kind and a strength: " + ", ".join(
                    f"{noise.TITLES[kind]} up to {high:g}" for kind, (_, high) in noise.MIXES[extra["noise"]].items()))
            else:
                low, high, _ = noise.RANGES[extra["noise"]]
                extra["noise_level"] = row[1].number_input(
                    "Noise strength", float(low), float(high), min(max(float(preset.noise_level), low), high),
                    help="Gaussian: sigma on the 0-255 scale; salt & pepper: fraction of pixels (or of channel "
                         "values); Poisson: photons at white; speckle: relative sigma.", key=f"level-{scope}")
        submitted = st.form_submit_button("Start training", type="primary", disabled=busy,
                                          help="A run is in progress" if busy else None)

    if submitted:
        lr, lr_note = form_lr(float(lr), preset, int(batch_size), optimizer)
        # Settings without a widget (momentum, warm-up, lookahead, ...) come from the preset.
        settings = preset.to_dict() | dict(
            task=task, arch=arch, arch_args=arch_args, dataset=dataset, epochs=int(epochs),
            batch_size=int(batch_size), subset=int(subset) or None, val_size=int(val_size), optimizer=optimizer,
            lr=lr, schedule=schedule, weight_decay=float(weight_decay), augment=augment, seed=int(seed),
            **extra)
        try:
            JOBS.start(TrainConfig(**settings), limits=LIMITS, owner=visitor)
            st.session_state["watching"] = True
            st.session_state["train-lr-note"] = lr_note  # said above the form once the run is on, not if refused
            st.rerun()  # draw the page again with the form disabled while the run is on
        except ConfigError as error:
            st.error("This run cannot start:\n\n" + "\n".join(f"- {p}" for p in error.problems))
        except TrainerBusy as error:
            st.warning(str(error))


# ---- the form -------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("New run")
    top = st.columns(3)
    links.restore("task", "task", allowed=[*models.TASKS, YOUR_IMAGES])
    task = top[0].selectbox("Task", [*models.TASKS, YOUR_IMAGES], format_func=str.capitalize, key="task")
    links.record(task=task)
    if task == YOUR_IMAGES:
        own_images_form()
    else:
        standard_form(task, top)

# ---- the live run -------------------------------------------------------------------------------------
store = RunStore()


def stop_run() -> None:
    try:
        JOBS.stop(visitor, LIMITS)
    except NotOwner as error:
        st.toast(str(error), icon=":material/block:")


def runs_of(task_filter: str) -> list[dict]:
    """Past runs, newest first, of one task ("all tasks": every run): the rows of the table below."""
    return store.runs(task=None if task_filter == "all tasks" else task_filter)


def overlay_runs() -> list[dict]:
    """The past runs selected in the table below (it is drawn later, so its selection is read from its state)."""
    rows = st.session_state.get("runs-table", {}).get("selection", {}).get("rows", [])
    if not rows:
        return []
    listed = runs_of(st.session_state.get("runs-task", "all tasks"))
    return [listed[i] for i in rows if i < len(listed) and listed[i]["epochs"]]


def curves_chart(snap: dict | None, overlays: list[dict]) -> None:
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="smoothing",
                          help="As TensorBoard's: an exponential moving average of each curve (0: raw).")
    st.plotly_chart(training_figure(snap, overlays, smoothing), key="live-chart", config={"displaylogo": False})


def prediction_panel(panel: dict | None, epochs: list[dict], key: str, live: bool) -> None:
    """The watched validation images with the model's guesses: the latest epoch's during a run, any epoch after."""
    if not panel:
        return
    predicted = [e for e in epochs if e.get("panel")]
    st.markdown("**Watching it learn**: the same validation images after every epoch, with the model's guess "
                "and its probability.")
    if not predicted:
        st.caption("The first guesses appear when the first epoch ends.")
        shown = None
    elif live or len(predicted) == 1:
        shown = predicted[-1]
    else:
        epoch = st.select_slider("Replay the epochs", [e["epoch"] for e in predicted], predicted[-1]["epoch"],
                                 key=key, help="The run keeps every epoch's guesses: drag to see them change.")
        shown = next(e for e in predicted if e["epoch"] == epoch)
    if shown is not None:
        st.caption(f"After epoch {shown['epoch']}: {watched.right_count(panel, shown['panel'])} of "
                   f"{len(panel['labels'])} right")
    with st.container(horizontal=True):  # wraps on a narrow screen, where columns would stack
        for row in watched.rows(panel, shown and shown["panel"]):
            with st.container(width=96, gap=None):  # eight fit one row of a desktop's page
                st.image(images.enlarged(row["image"], 96), width="stretch")
                if "predicted" in row:
                    colour = "green" if row["correct"] else "red"
                    st.markdown(f":{colour}[{row['predicted']} {row['probability']:.0%}]  \n"
                                f":gray[true: {row['truth']}]")
                else:
                    st.markdown(f":gray[true: {row['truth']}]")


@st.fragment(run_every=1.0 if busy else None)
def live_run() -> None:
    current = JOBS.current()
    if current is None:
        st.info("No run has been started on this server yet. Pick a preset above and press **Start training**.")
        if overlays := overlay_runs():
            curves_chart(None, overlays)
        return
    snap = current.snapshot()
    config = snap["config"]
    status_icon = {"running": ":material/autorenew:", "starting": ":material/hourglass_top:",
                   "finished": ":material/check_circle:", "stopped": ":material/stop_circle:",
                   "diverged": ":material/error:", "failed": ":material/error:"}.get(snap["status"], "")
    st.subheader("Current run" if snap["running"] else "Last run")
    st.markdown(f"{status_icon} **{snap['status'].capitalize()}**: {snap['message']}  \n{run_summary(snap)}")
    fraction, progress_text = run_progress(snap)
    st.progress(fraction, text=progress_text)
    cols = st.columns(4)
    cols[0].metric("Images / s", f"{snap['images_per_second']:.0f}")
    cols[1].metric("Epochs done", len(snap["history"]))
    metric = headline_metric(config["task"])
    last_val = snap["history"][-1]["val_metrics"].get(metric) if snap["history"] else None
    name = metric_name(metric)
    cols[2].metric(f"Validation {name}", format_headline(metric, last_val))
    cols[3].metric(f"Test {name}", format_headline(metric, snap["test_metrics"].get(f"test_{metric}")))
    if snap["running"] and JOBS.may_stop(visitor, LIMITS):
        st.button("Stop", icon=":material/stop:", on_click=stop_run, key="stop")
    elif snap["running"]:
        st.info("Someone else's run is using the server: you can watch it here, read-only. Only the visitor "
                "who started it can stop it; it ends by itself within this server's limits.",
                icon=":material/visibility:")
    curves_chart(snap, [r for r in overlay_runs() if r["id"] != snap["run_id"]])
    prediction_panel(snap.get("panel"), snap["history"], "live-panel", live=snap["running"])
    if snap["batch_losses"] and not snap["running"]:
        st.download_button("Per-batch losses (CSV)", batch_csv(snap["batch_losses"]), icon=":material/download:",
                           file_name=f"run-{snap['run_id']}-batches.csv", mime="text/csv", on_click="ignore",
                           key="batch-csv")
    if snap["status"] == "finished" and snap["checkpoint"]:
        st.success(f"Saved as **{snap['checkpoint'].rsplit('/', 1)[-1].removesuffix('.safetensors')}**; it is "
                   "listed in the model selectors of the other pages now.")
    if not snap["running"] and st.session_state.get("watching"):
        st.session_state["watching"] = False
        st.rerun()  # the run ended: refresh the whole page (form enabled, run history updated)
    if snap["running"]:
        st.session_state["watching"] = True


live_run()

# ---- past runs ------------------------------------------------------------------------------------------
st.subheader("Past runs")
links.restore("runs-task", "runs", allowed=["all tasks", *models.TASKS])
task_filter = st.columns(2)[0].selectbox("Show runs of", ["all tasks", *models.TASKS], key="runs-task")
links.record(runs=task_filter)
listed = runs_of(task_filter)
if not listed:
    st.caption("No runs recorded yet." if task_filter == "all tasks" else f"No {task_filter} runs yet.")
else:
    table = pd.DataFrame([run_row(r) for r in listed])
    st.caption("Click a column's header to sort; select rows to overlay their validation curves on the chart above.")
    st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs-table")
    links.restore("runs-inspect", "run", int, allowed=[r["id"] for r in listed])
    chosen = st.selectbox("Run to inspect", [r["id"] for r in listed], key="runs-inspect",
                          format_func=lambda i: next(f"run {r['id']}: {r['name']} ({r['status']})"
                                                     for r in listed if r["id"] == i))
    run = next(r for r in listed if r["id"] == chosen)
    links.record(run=chosen)
    st.markdown("Reproduce it from the command line (the copy button is at the code's top right):")
    st.code(run["command"] or "(not recorded for this run)", language="bash", wrap_lines=True)
    if run["command"].startswith("python -m core.train"):
        st.markdown("The same run on several GPUs of one machine (DistributedDataParallel; the batch size stays "
                    "the global one):")
        st.code(torchrun_form(run["command"], 2), language="bash", wrap_lines=True)
    current = JOBS.current()
    if current is None or current.snapshot()["run_id"] != run["id"]:  # the current run's panel is above
        prediction_panel(run.get("panel"), run["epochs"], f"replay-{run['id']}", live=False)
    with st.expander("Its configuration (JSON)"):
        st.code(json.dumps(run["config"], indent=2, sort_keys=True), language="json")
    st.download_button("Per-epoch history (CSV)", history_csv(run), file_name=f"run-{run['id']}-history.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:", key="runs-csv",
                       disabled=not run["epochs"])
    links.share_link()
