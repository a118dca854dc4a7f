"""Plotly figures shared by the pages (kept out of pages/ so tests can build them)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


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


def confusion_figure(matrix: np.ndarray, classes: list[str]) -> go.Figure:
    """A confusion matrix drawn as square markers, one per cell, so a click selects a cell.

    Streamlit reports point selections for scatter traces; heatmap cells are not selectable.
    Points are numbered row by row: point k is (true class k // n, predicted class k % n).
    """
    size = len(classes)
    true, predicted = np.divmod(np.arange(size * size), size)
    counts = matrix[true, predicted]
    row_share = counts / matrix.sum(axis=1).clip(min=1)[true]
    figure = go.Figure(go.Scatter(
        x=[classes[p] for p in predicted], y=[classes[t] for t in true], mode="markers+text",
        marker=dict(symbol="square", size=44, color=row_share, colorscale="Blues", cmin=0, cmax=1,
                    line=dict(width=1, color="white"), colorbar=dict(title="share of row", tickformat=".0%")),
        text=[str(c) for c in counts], textfont=dict(color=["white" if s > 0.5 else "#212529" for s in row_share]),
        customdata=np.stack([true, predicted], axis=1),
        hovertemplate="true %{y}, predicted %{x}: %{text} images<extra></extra>",
    ))
    figure.update_layout(height=560, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
                         xaxis=dict(title="predicted", side="top", categoryorder="array", categoryarray=classes),
                         yaxis=dict(title="true", autorange="reversed", categoryorder="array",
                                    categoryarray=classes))
    return figure
