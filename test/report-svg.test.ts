/** The report's SVG charts: data maps into the plot frame, text is escaped, empty data says so. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lineChart, escapeHtml } from "../src/report/svg.js";

test("points map linearly into the frame and the legend names each series", () => {
  const svg = lineChart(
    [{ name: "train <loss>", points: [{ x: 0, y: 0 }, { x: 10, y: 1 }] }, { name: "chance", points: [{ x: 0, y: 1 }], dashed: true }],
    { title: "Loss & AUC", xLabel: "step", yLabel: "value", width: 200, height: 100, xRange: [0, 10], yRange: [0, 1] },
  );
  // Frame: left 56, right 200-16=184, top 28, bottom 100-44=56.
  assert.match(svg, /points="56\.0,56\.0 184\.0,28\.0"/);
  assert.match(svg, /stroke-dasharray/);
  assert.match(svg, /train &lt;loss&gt;/);
  assert.match(svg, /Loss &amp; AUC/);
  assert.doesNotMatch(svg, /<loss>/);
});

test("a chart without finite data says so instead of drawing NaN", () => {
  const html = lineChart([{ name: "a", points: [{ x: NaN, y: 1 }] }], { title: "t", xLabel: "x", yLabel: "y" });
  assert.match(html, /no data/);
  assert.doesNotMatch(html, /NaN/);
  assert.equal(escapeHtml(`"'&`), "&quot;&#39;&amp;");
});
