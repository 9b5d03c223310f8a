// A line plot drawn as SVG elements (no library: a few dozen lines cover what the dashboard needs).
const NS = "http://www.w3.org/2000/svg";
const W = 320, H = 120, LEFT = 34, RIGHT = 6, TOP = 8, BOTTOM = 18;

function node(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function label(v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, "") || "0";
}

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// points: [[t (seconds), value], ...] in time order.
export function linePlot(svg, points) {
  svg.replaceChildren();
  svg.append(node("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM }));
  svg.append(node("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
  if (points.length < 2) {
    svg.append(node("text", { x: LEFT + 8, y: H / 2 }, "collecting samples…"));
    return;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const top = Math.max(1, ...points.map((p) => p[1]));
  const x = (t) => LEFT + ((t - t0) / (t1 - t0 || 1)) * (W - LEFT - RIGHT);
  const y = (v) => H - BOTTOM - (v / top) * (H - TOP - BOTTOM);
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
  svg.append(node("path", { class: "line", d: path }));
  svg.append(node("text", { x: LEFT - 4, y: TOP + 8, "text-anchor": "end" }, label(top)));
  svg.append(node("text", { x: LEFT - 4, y: H - BOTTOM, "text-anchor": "end" }, "0"));
  svg.append(node("text", { x: LEFT, y: H - 4 }, clock(t0)));
  svg.append(node("text", { x: W - RIGHT, y: H - 4, "text-anchor": "end" }, clock(t1)));
}
