"""Plotly figures shared by the pages (kept out of pages/ so tests can build them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.display import METRIC_LABELS, headline_metric, metric_title


def probability_bars(probabilities: np.ndarray, classes: list[str]) -> go.Figure:
    """Horizontal bars of class probabilities, the most likely on top and highlighted."""
    order = np.argsort(probabilities)
    best = int(order[-1])
    figure = go.Figure(go.Bar(
        x=probabilities[order], y=[classes[i] for i in order], orientation="h",
        marker_color=["#3b5bdb" if i == best else "#adb5bd" for i in order],
        text=[f"{p:.1%}" for p in probabilities[order]], textposition="outside", cliponaxis=False,
    ))
    figure.update_layout(height=320, margin=dict(l=10, r=40, t=10, b=10), xaxis=dict(range=[0, 1.1],
                         tickformat=".0%", title="probability"))
    return figure


def probe_figure(accuracy: dict[str, float], chance: float) -> go.Figure:
    """Linear-probe accuracy per block, input to output, with the chance level for reference."""
    blocks = list(accuracy)
    figure = go.Figure(go.Scatter(x=blocks, y=[accuracy[b] for b in blocks], mode="lines+markers+text",
                                  text=[f"{accuracy[b]:.0%}" for b in blocks], textposition="top center",
                                  line_color="#3b5bdb", name="linear probe"))
    figure.add_hline(y=chance, line_dash="dot", line_color="#868e96", annotation_text="chance",
                     annotation_position="bottom right")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10), showlegend=False,
                         yaxis=dict(range=[0, 1.08], tickformat=".0%", title="test accuracy"),
                         xaxis=dict(title="block (input side first)"))
    return figure


def robustness_figure(points: list[dict[str, Any]], level_title: str, current: float | None = None) -> go.Figure:
    """Accuracy against noise strength: on the noisy images, and after the denoiser named in each point;
    ``current`` marks the strength of the noise put on the image on screen."""
    levels = [p["level"] for p in points]
    figure = go.Figure([
        go.Scatter(x=levels, y=[p["noisy"] for p in points], mode="lines+markers", name="noisy",
                   line_color="#e8590c"),
        go.Scatter(x=levels, y=[p["denoised"] for p in points], mode="lines+markers", line_dash="dash",
                   name=f"denoised ({points[-1]['denoiser']})", line_color="#3b5bdb"),
    ])
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=1.12),
                         yaxis=dict(range=[0, 1.02], tickformat=".0%", title="test accuracy"),
                         xaxis=dict(title=level_title))
    if current is not None:
        figure.add_vline(x=current, line_dash="dot", line_color="#495057", annotation_text="this image",
                         annotation_position="bottom right")  # "top" sat under the legend
    return figure


def confusion_figure(matrix: np.ndarray, classes: list[str]) -> go.Figure:
    """A confusion matrix whose cells a click selects: a heatmap for the eye, shaded by each cell's share of
    its row and labelled with its count, under invisible square markers for the click.

    Streamlit reports point selections for scatter traces; heatmap cells are not selectable. The heatmap's
    cells scale with the chart, where markers keep their size in pixels and overlap on a phone's screen.
    The markers (the second trace) are numbered row by row: point k is (true class k // n, predicted k % n).
    """
    size = len(classes)
    true, predicted = np.divmod(np.arange(size * size), size)
    counts = matrix[true, predicted]
    row_share = counts / matrix.sum(axis=1).clip(min=1)[true]
    figure = go.Figure(go.Heatmap(
        x=classes, y=classes, z=row_share.reshape(size, size), zmin=0, zmax=1, colorscale="Blues", showscale=False,
        text=matrix.astype(int), texttemplate="%{text}", xgap=1, ygap=1, hoverinfo="skip",
    ))
    figure.add_trace(go.Scatter(
        x=[classes[p] for p in predicted], y=[classes[t] for t in true], mode="markers",
        marker=dict(symbol="square", size=28, opacity=0), text=[str(c) for c in counts],
        customdata=np.stack([true, predicted, row_share], axis=1),
        hovertemplate="true %{y}, predicted %{x}: %{text} images (%{customdata[2]:.0%} of the row)<extra></extra>",
    ))
    figure.update_layout(height=560, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
                         showlegend=False, plot_bgcolor="white",
                         xaxis=dict(title="predicted", side="top", categoryorder="array", categoryarray=classes,
                                    showgrid=False),
                         yaxis=dict(title="true", autorange="reversed", categoryorder="array",
                                    categoryarray=classes, showgrid=False))
    return figure


def confusion_cell(point: dict, size: int) -> tuple[int, int]:
    """The (true, predicted) class of the cell a selection point of ``confusion_figure`` marks.

    Read from the point's index, as its custom data arrives from the browser keyed by position
    ({"0": 2, "1": 3, ...}), which reads as (0, 1) whatever the cell when iterated.
    """
    true, predicted = divmod(int(point["point_index"]), size)
    return true, predicted


def ema_smooth(values: list[float | None], weight: float) -> list[float | None]:
    """TensorBoard's smoothing: an exponential moving average with its start-up bias removed.

    ``weight`` 0 leaves the values as they are; 0.99 is nearly flat. Missing values stay missing
    and do not disturb the average.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"Smoothing must be in [0, 1), not {weight}.")
    smoothed: list[float | None] = []
    last, count = 0.0, 0
    for value in values:
        if value is None or not np.isfinite(value):
            smoothed.append(None)
            continue
        last, count = last * weight + (1 - weight) * value, count + 1
        smoothed.append(last / (1 - weight**count))
    return smoothed


def outlier_free_range(values: list[float | None]) -> tuple[float, float] | None:
    """A y range that leaves out spikes, as TensorBoard's "ignore outliers in chart scaling"; None if none.

    A value is a spike when it lies further above the 95th percentile than the curve's own spread between
    its 5th and 95th percentiles: one diverging batch (a loss of 800 in a run at 2) would otherwise flatten
    the whole curve against the axis. A loss falling from 2.3 to 0.4 keeps its start.
    """
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if finite.size < 10:
        return None
    low, high = np.quantile(finite, [0.05, 0.95])
    ceiling = high + max(high - low, abs(high) * 0.1, 1e-8)
    if finite.max() <= ceiling:
        return None
    bottom = float(finite.min())
    top = float(max(finite[finite <= ceiling].max(), bottom))
    margin = (top - bottom) * 0.05 or 1e-3
    return (bottom - margin, top + margin) if finite.max() > top + margin else None


def training_figure(live: dict[str, Any] | None, overlays: list[dict[str, Any]] = (),
                    smoothing: float = 0.0) -> go.Figure:
    """Loss (per batch and per epoch) and the task's metric (train and validation) side by side.

    ``live`` is a job snapshot (core.train.jobs.Job.snapshot) or None; ``overlays`` are
    past runs from the run store, drawn as dotted validation curves. ``smoothing`` is
    TensorBoard's (``ema_smooth``); the raw batch losses stay behind the smoothed ones, faint.
    """

    def smooth(values: list[float | None]) -> list[float | None]:
        return ema_smooth(list(values), smoothing) if smoothing else list(values)

    task = (live or {}).get("config", {}).get("task") or (overlays[0]["task"] if overlays else "classification")
    metric = headline_metric(task)
    label = METRIC_LABELS[metric]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", metric_title(metric)))
    if live:
        steps_per_epoch = max(live["total_steps"] / max(live["config"]["epochs"], 1), 1)
        if live["batch_losses"]:
            steps, losses = zip(*live["batch_losses"], strict=True)
            batch_x = [s / steps_per_epoch for s in steps]
            if smoothing:
                figure.add_trace(go.Scatter(x=batch_x, y=losses, mode="lines", name="train loss (batch, raw)",
                                            line=dict(color="#dbe4ff", width=1), showlegend=False), 1, 1)
            figure.add_trace(go.Scatter(x=batch_x, y=smooth(losses), mode="lines",
                                        name="train loss (batch)", line=dict(color="#a5b4fc", width=1)), 1, 1)
        epochs = [h["epoch"] for h in live["history"]]
        figure.add_trace(go.Scatter(x=epochs, y=smooth(h["train_loss"] for h in live["history"]),
                                    mode="lines+markers", name="train loss (epoch)", line=dict(color="#3b5bdb")), 1, 1)
        figure.add_trace(go.Scatter(x=epochs, y=smooth(h["val_loss"] for h in live["history"]), mode="lines+markers",
                                    name="validation loss", line=dict(color="#e8590c")), 1, 1)
        figure.add_trace(go.Scatter(x=epochs, y=smooth(h["train_metrics"].get(metric) for h in live["history"]),
                                    mode="lines+markers", name=f"train {label}", line=dict(color="#3b5bdb")), 1, 2)
        figure.add_trace(go.Scatter(x=epochs, y=smooth(h["val_metrics"].get(metric) for h in live["history"]),
                                    mode="lines+markers", name=f"validation {label}",
                                    line=dict(color="#e8590c")), 1, 2)
    losses = [y for trace in figure.data if trace.xaxis in (None, "x") for y in (trace.y or ())]
    if (shown := outlier_free_range(losses)) is not None:
        spikes = [y for y in losses if y is not None and np.isfinite(y) and y > shown[1]]
        figure.update_yaxes(range=list(shown), row=1, col=1)
        figure.add_annotation(text=f"{len(spikes)} spike{'s' * (len(spikes) > 1)} above, up to {max(spikes):.3g}",
                              xref="x domain", yref="y domain", x=1, y=1, xanchor="right", yanchor="top",
                              showarrow=False, font=dict(size=11, color="#868e96"))
    for run in overlays:
        figure.add_trace(go.Scatter(
            x=[e["epoch"] for e in run["epochs"]], y=smooth(e["val_metrics"].get(metric) for e in run["epochs"]),
            mode="lines+markers", line=dict(dash="dot"), name=f"run {run['id']}: {run['name']}"), 1, 2)
    if not any(y is not None for trace in figure.data if trace.xaxis == "x2" for y in (trace.y or ())):
        # Metrics come at the end of each epoch: say so rather than leave an empty axis from -1 to 4.
        figure.add_annotation(text="measured at the end of each epoch", xref="x2 domain", yref="y2 domain",
                              x=0.5, y=0.5, showarrow=False, font=dict(size=13, color="#868e96"))
        figure.update_xaxes(showticklabels=False, row=1, col=2)
        figure.update_yaxes(showticklabels=False, row=1, col=2)
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25),
                         uirevision="training")  # keep the user's zoom across refreshes
    return figure
