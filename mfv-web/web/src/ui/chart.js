// A small line chart of recent values as inline SVG: no library, a fixed size scaled by CSS.

import { h, svg } from "./dom.js";

const WIDTH = 300;
const HEIGHT = 80;

// A chart of `values` (oldest first, at most `slots` kept) between 0 and `max`, titled
// `title`, with the last value as `label(value)` beside the title.
export function lineChart({ title, values, slots, max, label }) {
  const peak = Math.max(max ?? 0, ...values, 1e-9);
  const step = WIDTH / Math.max(slots - 1, 1);
  const offset = slots - values.length;
  const points = values.map((value, index) => {
    const x = (offset + index) * step;
    const y = HEIGHT - (Math.min(value, peak) / peak) * (HEIGHT - 4) - 2;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const last = values.length ? label(values[values.length - 1]) : "–";
  const area = points.length > 1
    ? `M${points[0].split(",")[0]},${HEIGHT} L${points.join(" L")} L${points[points.length - 1].split(",")[0]},${HEIGHT} Z`
    : "";
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, h("span", {}, title), h("strong", {}, last)),
    svg(
      "svg",
      { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": `${title}: ${last}` },
      [0.25, 0.5, 0.75].map((share) =>
        svg("line", { class: "gridline", x1: 0, x2: WIDTH, y1: HEIGHT * share, y2: HEIGHT * share }),
      ),
      area ? svg("path", { class: "area", d: area }) : null,
      points.length > 1 ? svg("polyline", { class: "line", points: points.join(" ") }) : null,
    ),
  );
}
