// Sign-ins per day as an SVG bar chart drawn with DOM calls: succeeded and failed stacked per day,
// with a text alternative (the same numbers as a table) for screen readers and small screens.
import { h, svg } from './dom.js';

const WIDTH = 720;
const HEIGHT = 240;
const PLOT = { left: 44, right: 8, top: 12, bottom: 28 };

/** A round axis maximum: 1, 2 or 5 times a power of ten, at least the largest value. @param {number} value */
function niceMax(value) {
  if (value <= 4) return 4;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** "28 Nov" from "2026-11-28", read as a UTC day. @param {string} date */
function shortDate(date) {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

/** @param {{ date: string, succeeded: number, failed: number }[]} days */
export function signInChart(days) {
  const max = niceMax(Math.max(0, ...days.map((day) => day.succeeded + day.failed)));
  const plotWidth = WIDTH - PLOT.left - PLOT.right;
  const plotHeight = HEIGHT - PLOT.top - PLOT.bottom;
  const slot = plotWidth / days.length;
  const barWidth = Math.max(2, slot * 0.7);
  const y = (/** @type {number} */ value) => PLOT.top + plotHeight - (value / max) * plotHeight;

  const grid = [0, max / 2, max].map((value) =>
    svg(
      'g',
      { class: 'chart-grid' },
      svg('line', { x1: PLOT.left, x2: WIDTH - PLOT.right, y1: y(value), y2: y(value) }),
      svg('text', { x: PLOT.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, String(value)),
    ),
  );
  const bars = days.map((day, i) => {
    const x = PLOT.left + i * slot + (slot - barWidth) / 2;
    const okTop = y(day.succeeded);
    const failTop = y(day.succeeded + day.failed);
    return svg(
      'g',
      { class: 'chart-day', 'data-date': day.date },
      svg('title', null, `${day.date}: ${day.succeeded} succeeded, ${day.failed} failed`),
      day.succeeded > 0 ? svg('rect', { class: 'bar-succeeded', x, width: barWidth, y: okTop, height: y(0) - okTop }) : null,
      day.failed > 0 ? svg('rect', { class: 'bar-failed', x, width: barWidth, y: failTop, height: okTop - failTop }) : null,
    );
  });
  const labelEvery = Math.ceil(days.length / 6);
  const labels = days.map((day, i) =>
    (i % labelEvery === 0 && days.length - 1 - i >= labelEvery / 2) || i === days.length - 1
      ? svg(
          'text',
          // The last label ends at the right edge instead of being cut off by it.
          i === days.length - 1
            ? { class: 'chart-label', x: WIDTH - PLOT.right, y: HEIGHT - 8, 'text-anchor': 'end' }
            : { class: 'chart-label', x: PLOT.left + i * slot + slot / 2, y: HEIGHT - 8, 'text-anchor': 'middle' },
          shortDate(day.date),
        )
      : null,
  );
  const total = days.reduce((sum, day) => sum + day.succeeded, 0);
  const failed = days.reduce((sum, day) => sum + day.failed, 0);
  const chart = svg(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-label': `Sign-ins per day over the last ${days.length} days: ${total} succeeded, ${failed} failed in all.`,
    },
    ...grid,
    ...bars,
    ...labels,
  );
  const table = h(
    'details',
    { class: 'chart-table' },
    h('summary', null, 'Show the numbers as a table'),
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h('tr', null, h('th', { scope: 'col' }, 'Day (UTC)'), h('th', { scope: 'col' }, 'Succeeded'), h('th', { scope: 'col' }, 'Failed')),
      ),
      h(
        'tbody',
        null,
        ...days.map((day) => h('tr', null, h('th', { scope: 'row' }, day.date), h('td', null, day.succeeded), h('td', null, day.failed))),
      ),
    ),
  );
  const legend = h(
    'p',
    { class: 'chart-legend' },
    h('span', { class: 'swatch swatch-succeeded' }),
    ' succeeded ',
    h('span', { class: 'swatch swatch-failed' }),
    ' failed',
  );
  return h('figure', { class: 'chart-figure' }, chart, h('figcaption', null, legend), table);
}
