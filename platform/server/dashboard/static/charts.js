// Line charts drawn as SVG by hand: a time axis, a value axis from zero, one path per series
// with gaps where there is no data, and a cursor that reads the values under the pointer.
// Each chart redraws at its own width (ResizeObserver), so text stays legible on a phone.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 170;
const PAD = { left: 52, right: 12, top: 10, bottom: 24 };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  for (const child of children) if (child) el.append(child);
  return el;
}

function text(x, y, content, attrs = {}) {
  const el = s("text", { x, y, ...attrs });
  el.textContent = content;
  return el;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return values[i];
  return null;
}

// The top of the value axis: four round steps (1, 2, 2.5 or 5 times a power of ten) that
// reach `value`.
function niceTop(value) {
  if (!(value > 0)) return 1;
  const raw = value / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= raw) return 4 * step * magnitude;
  return 40 * magnitude;
}

function minutesBefore(times, i) {
  const minutes = Math.round((times[times.length - 1] - times[i]) / 60);
  return minutes === 0 ? "now" : `−${minutes} min`;
}

// lines: [{label, values, cls}], format: value -> text, fixedMax: a value axis top (1 for %)
export function lineChart({ id, title, times, lines, format, fixedMax }) {
  const legend = h("span", { class: "legend" });
  const svg = s("svg", { class: "plot", role: "img", height: HEIGHT });
  svg.setAttribute("aria-label", title);
  const first = lastValue(lines[0].values);
  const peak = Math.max(0, ...lines[0].values.filter((v) => v !== null));
  const figure = h("figure", {
    class: "chart",
    dataset: { chart: id, last: first === null ? "" : String(first), peak: String(peak) },
  }, h("figcaption", {}, h("span", { class: "chart-title" }, title), legend), svg);

  for (const line of lines) {
    const last = lastValue(line.values);
    legend.append(h("span", { class: `key ${line.cls}` }, h("i", {}),
      `${line.label} ${last === null ? "—" : format(last)}`));
  }

  const draw = () => {
    const width = Math.max(260, Math.floor(figure.clientWidth || 600));
    svg.replaceChildren();
    svg.setAttribute("width", width);
    svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const all = lines.flatMap((l) => l.values).filter((v) => v !== null);
    const peak = Math.max(0, ...all);
    const floor = fixedMax === undefined ? 0 : fixedMax;  // e.g. 1 % for an error rate
    const top = Math.max(floor, peak > 0 ? niceTop(peak) : floor || 1);
    const n = times.length;
    const x = (i) => PAD.left + (n <= 1 ? plotW : (i / (n - 1)) * plotW);
    const y = (v) => PAD.top + plotH - (v / top) * plotH;

    const grid = s("g", { class: "grid" });
    for (let k = 0; k <= 4; k += 1) {
      const value = (top * k) / 4;
      grid.append(s("line", { x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value) }));
      grid.append(text(PAD.left - 6, y(value) + 4, format(value), { class: "ylabel" }));
    }
    const ticks = width < 420 ? [0, 2, 4] : [0, 1, 2, 3, 4];
    for (const k of ticks) {
      const i = Math.round(((n - 1) * k) / 4);
      if (n > 0) grid.append(text(x(i), HEIGHT - 6, minutesBefore(times, i), { class: "xlabel" }));
    }
    svg.append(grid);

    for (const line of lines) {
      let d = "";
      let pen = false;
      const dots = s("g", { class: `dots ${line.cls}` });
      line.values.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        const alone = (i === 0 || line.values[i - 1] === null)
          && (i === n - 1 || line.values[i + 1] === null);
        if (alone) dots.append(s("circle", { cx: x(i), cy: y(v), r: 2.5 }));
        d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      svg.append(s("path", { d: d || "M0,0", class: `line ${line.cls}` }), dots);
    }

    // The cursor: the values nearest the pointer.
    const cursor = s("g", { class: "cursor", visibility: "hidden" });
    const rule = s("line", { y1: PAD.top, y2: PAD.top + plotH });
    const label = text(0, PAD.top + 12, "", { class: "cursor-label" });
    cursor.append(rule, label);
    svg.append(cursor);
    const move = (event) => {
      const box = svg.getBoundingClientRect();
      const px = event.clientX - box.left;
      if (n === 0 || px < PAD.left) { cursor.setAttribute("visibility", "hidden"); return; }
      const i = Math.max(0, Math.min(n - 1, Math.round(((px - PAD.left) / plotW) * (n - 1))));
      rule.setAttribute("x1", x(i));
      rule.setAttribute("x2", x(i));
      const parts = lines.map((l) => `${l.label} ${l.values[i] === null ? "—" : format(l.values[i])}`);
      label.textContent = `${new Date(times[i] * 1000).toLocaleTimeString()}  ${parts.join("  ")}`;
      const right = x(i) > width / 2;
      label.setAttribute("x", right ? x(i) - 6 : x(i) + 6);
      label.setAttribute("text-anchor", right ? "end" : "start");
      cursor.setAttribute("visibility", "visible");
    };
    svg.onpointermove = move;
    svg.onpointerleave = () => cursor.setAttribute("visibility", "hidden");
  };

  let width = 0;
  const observer = new ResizeObserver(() => {
    if (figure.clientWidth !== width) { width = figure.clientWidth; draw(); }
  });
  observer.observe(figure);
  draw();
  return figure;
}
