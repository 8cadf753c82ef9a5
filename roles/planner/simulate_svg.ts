// PCs imaged over time, one step line per mode, as a standalone SVG. Pure: results in, text out.
// Hand-written SVG because a chart library would be a large dependency for a dozen elements.
import { formatDuration } from "../../imagetools/kit/mod.ts";
import type { SimMode, SimulationResult } from "./simulate.ts";

export interface SvgOptions {
  title?: string;
  width?: number;
  height?: number;
}

const COLORS: Record<SimMode, string> = {
  unicast: "#7f7f7f",
  classic: "#1f77b4",
  relay: "#d62728",
};

const MARGIN = { left: 64, right: 24, top: 48, bottom: 52 };

/** A round step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`. */
function niceStep(span: number, target: number): number {
  const raw = span / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Coordinates with at most one decimal, so the text is stable and small. */
const n = (v: number) => String(Math.round(v * 10) / 10);

export function renderSvg(results: SimulationResult[], options: SvgOptions = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? 400;
  const title = options.title ?? "PCs imaged over time";
  const maxT = Math.max(1, ...results.map((r) => r.finish));
  const maxPcs = Math.max(1, ...results.map((r) => r.timeline[r.timeline.length - 1].imaged));
  // Minutes once the run is long enough for seconds to be unreadable.
  const [unit, unitName] = maxT >= 120 ? [60, "minutes"] : [1, "seconds"];
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + (t / maxT) * plotW;
  const y = (pcs: number) => MARGIN.top + plotH - (pcs / maxPcs) * plotH;
  const bottom = MARGIN.top + plotH;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  const xStep = niceStep(maxT / unit, 6);
  for (let v = 0; v * unit <= maxT * (1 + 1e-9); v += xStep) {
    const px = n(x(v * unit));
    out.push(
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${bottom}" stroke="#e5e5e5"/>`,
      `<text x="${px}" y="${bottom + 18}" text-anchor="middle">${+v.toFixed(6)}</text>`,
    );
  }
  const yStep = Math.max(1, niceStep(maxPcs, 5));
  for (let v = 0; v <= maxPcs; v += yStep) {
    const py = n(y(v));
    out.push(
      `<line x1="${MARGIN.left}" y1="${py}" x2="${
        width - MARGIN.right
      }" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${
        MARGIN.left - 8
      }" y="${py}" text-anchor="end" dominant-baseline="middle">${v}</text>`,
    );
  }
  out.push(
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${
      width - MARGIN.right
    }" y2="${bottom}" stroke="#000000"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="#000000"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${
      height - 10
    }" text-anchor="middle">time (${unitName})</text>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${
      MARGIN.top + plotH / 2
    })">PCs imaged</text>`,
  );
  for (const r of results) {
    // A step line: the count holds until the next PC finishes, then jumps.
    let d = `M${n(x(0))} ${n(y(0))}`;
    for (const p of r.timeline) d += ` H${n(x(p.t))} V${n(y(p.imaged))}`;
    d += ` H${n(x(maxT))}`;
    out.push(`<path d="${d}" fill="none" stroke="${COLORS[r.mode]}" stroke-width="2"/>`);
  }
  // The legend sits bottom right, where the rising lines rarely are, on a white box.
  const legendW = 250;
  const legendX = width - MARGIN.right - legendW - 8;
  const legendY = bottom - 12 - results.length * 18;
  out.push(
    `<rect x="${legendX}" y="${legendY - 4}" width="${legendW}" height="${
      results.length * 18 + 8
    }" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`,
  );
  results.forEach((r, i) => {
    const ly = legendY + 9 + i * 18;
    const lx = legendX + 8;
    const color = COLORS[r.mode];
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx + 26}" y="${ly}" dominant-baseline="middle">${r.mode}: all ${
        r.timeline[r.timeline.length - 1].imaged
      } PCs in ${formatDuration(r.finish)}</text>`,
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}
