// Bar and line charts drawn as inline SVG, with no library: the admin
// listener serves everything the page needs, and nothing is fetched from
// elsewhere at run time.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 480;
const HEIGHT = 226;
const MARGIN = { top: 12, right: 8, bottom: 34, left: 64 };
// Grid lines per leading digit of the axis maximum, so that each line
// falls on a round value: 0-10 in steps of 2, 0-20 in 5, 0-50 in 10.
const GRID_LINES = { 1: 5, 2: 4, 5: 5 };
const LABEL_EVERY_HOURS = 6;

// Return the smallest of 1, 2 or 5 times a power of ten that is >= value.
export function niceMaximum(value) {
  if (!(value > 0)) {
    return 1;
  }
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= value) {
      return step * magnitude;
    }
  }
  return 10 * magnitude;
}

function element(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  if (text !== null) {
    node.textContent = text;
  }
  return node;
}

// Draw series into container, replacing what was there.
// points: [{x: epoch seconds, y: number or null}], one per hour.
// options: {kind: "bars" | "line", format: y => text, label: x => text, title}
export function drawChart(container, points, options) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const values = points.map((point) => point.y).filter((y) => y !== null);
  // Counts get at least 0-5, so a quiet hour does not draw fractional lines.
  const maximum = niceMaximum(Math.max(options.minimum || 0, ...values));
  const gridLines = GRID_LINES[Number(String(maximum.toExponential()).charAt(0))] || 4;
  const slot = plotWidth / Math.max(1, points.length);
  const yOf = (value) => MARGIN.top + plotHeight - (value / maximum) * plotHeight;

  const svg = element("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": options.title,
    class: `chart-svg ${options.kind}`,
  });
  svg.append(element("title", {}, options.title));

  // Horizontal grid lines with their values, from 0 to the maximum.
  for (let line = 0; line <= gridLines; line += 1) {
    const value = (maximum * line) / gridLines;
    const y = yOf(value);
    svg.append(element("line", {
      x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y, y2: y, class: "grid",
    }));
    svg.append(element("text", {
      x: MARGIN.left - 6, y: y + 4, class: "axis", "text-anchor": "end",
    }, options.format(value)));
  }

  // Hour labels every few hours, under the middle of their slot.
  points.forEach((point, index) => {
    const hour = new Date(point.x * 1000).getHours();
    if (hour % LABEL_EVERY_HOURS === 0) {
      svg.append(element("text", {
        x: MARGIN.left + slot * (index + 0.5),
        y: HEIGHT - 8,
        class: "axis",
        "text-anchor": "middle",
      }, options.label(point.x)));
    }
  });

  if (options.kind === "bars") {
    drawBars(svg, points, slot, yOf, options);
  } else {
    drawLine(svg, points, slot, yOf, options);
  }
  container.replaceChildren(svg);
}

function drawBars(svg, points, slot, yOf, options) {
  const gap = Math.min(2, slot * 0.2);
  points.forEach((point, index) => {
    if (point.y === null || point.y <= 0) {
      return;
    }
    const top = yOf(point.y);
    const bar = element("rect", {
      x: MARGIN.left + slot * index + gap / 2,
      y: top,
      width: Math.max(1, slot - gap),
      height: yOf(0) - top,
      class: "mark",
    });
    bar.append(element("title", {}, `${options.label(point.x)}: ${options.format(point.y)}`));
    svg.append(bar);
  });
}

function drawLine(svg, points, slot, yOf, options) {
  // Hours without samples (null) break the line rather than reading as 0.
  let path = "";
  let drawing = false;
  points.forEach((point, index) => {
    if (point.y === null) {
      drawing = false;
      return;
    }
    const x = MARGIN.left + slot * (index + 0.5);
    path += `${drawing ? "L" : "M"}${x.toFixed(1)},${yOf(point.y).toFixed(1)} `;
    drawing = true;
    const dot = element("circle", { cx: x, cy: yOf(point.y), r: 2.5, class: "mark" });
    dot.append(element("title", {}, `${options.label(point.x)}: ${options.format(point.y)}`));
    svg.append(dot);
  });
  if (path) {
    svg.insertBefore(element("path", { d: path.trim(), class: "line" }), svg.querySelector(".mark"));
  }
}
