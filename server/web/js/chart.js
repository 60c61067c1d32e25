// The file-type chart: two horizontal bar charts (files by count, by bytes)
// drawn as SVG, with the numbers in a table beside them for screen readers
// and for anyone who wants exact values. No chart library: closed networks.

import { formatBytes, formatCount, h, svg } from './dom.js';

const TOP = 10;

function topWithOther(items, key) {
  const sorted = [...items].sort((a, b) => (b[key] || 0) - (a[key] || 0));
  const top = sorted.slice(0, TOP);
  const rest = sorted.slice(TOP);
  if (rest.length > 0) {
    top.push({ mime: `other (${rest.length} types)`, [key]: rest.reduce((sum, x) => sum + (x[key] || 0), 0), other: true });
  }
  return top;
}

function bars(items, key, title, format) {
  const rows = topWithOther(items, key);
  const max = Math.max(1, ...rows.map((r) => r[key] || 0));
  const rowHeight = 24;
  const labelWidth = 230;
  const barWidth = 250;
  const valueWidth = 160;
  const width = labelWidth + barWidth + valueWidth;
  const height = rows.length * rowHeight + 8;
  const total = rows.reduce((sum, r) => sum + (r[key] || 0), 0);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'bar-chart', role: 'img',
    'aria-label': `${title}: ${rows.map((r) => `${r.mime} ${format(r[key])}`).join(', ')}`,
  });
  rows.forEach((r, i) => {
    const y = i * rowHeight + 4;
    const w = Math.max(r[key] > 0 ? 2 : 0, Math.round((barWidth * (r[key] || 0)) / max));
    const label = r.mime.length > 34 ? `${r.mime.slice(0, 33)}…` : r.mime;
    chart.append(
      svg('text', { x: labelWidth - 8, y: y + 15, 'text-anchor': 'end', class: 'chart-label' }, svg('title', {}, r.mime), label),
      svg('rect', { x: labelWidth, y: y + 3, width: w, height: rowHeight - 8, rx: 2, class: r.other ? 'bar bar-other' : `bar bar-${key}` }),
      svg('text', { x: labelWidth + w + 6, y: y + 15, class: 'chart-value' },
        `${format(r[key])}${total ? ` (${Math.round((100 * (r[key] || 0)) / total)}%)` : ''}`));
  });
  return h('figure', { class: 'chart' }, h('figcaption', { text: title }), chart);
}

export function fileTypeChart(items) {
  if (!items || items.length === 0) {
    return h('p', { class: 'muted', text: 'No files with a content type.' });
  }
  const table = h('table', { class: 'compact' },
    h('caption', { text: 'File types (exact figures)' }),
    h('thead', null, h('tr', null, h('th', { scope: 'col', text: 'Type' }), h('th', { scope: 'col', class: 'num', text: 'Files' }), h('th', { scope: 'col', class: 'num', text: 'Bytes' }))),
    h('tbody', null, items.map((it) => h('tr', null,
      h('td', null, h('code', { text: it.mime })),
      h('td', { class: 'num', text: formatCount(it.files) }),
      h('td', { class: 'num', text: formatBytes(it.bytes) })))));
  return h('div', { class: 'charts' },
    bars(items, 'files', 'Files by type (count)', formatCount),
    bars(items, 'bytes', 'Files by type (bytes)', formatBytes),
    h('details', { class: 'chart-table' }, h('summary', { text: 'Show the figures as a table' }), table));
}
