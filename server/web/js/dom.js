// Small DOM helpers. Everything the server sends (file names, matched strings,
// notes) is untrusted: it only ever reaches the page as text nodes, never as
// HTML, so a hostile file name cannot inject markup or script.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) {
        continue;
      }
      if (key === 'class') {
        el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
      } else if (key === 'text') {
        el.textContent = String(value);
      } else if (key === 'on') {
        for (const [event, handler] of Object.entries(value)) {
          el.addEventListener(event, handler);
        }
      } else if (key === 'dataset') {
        Object.assign(el.dataset, value);
      } else if (key in el && typeof value !== 'string') {
        el[key] = value;  // properties such as checked, disabled, value
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) {
      continue;
    }
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(el) {
  while (el.firstChild) {
    el.firstChild.remove();
  }
  return el;
}

// SVG elements need their namespace; attributes only (no inline style: CSP).
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) {
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return el;
}

const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n) {
  if (n === null || n === undefined) {
    return '–';
  }
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatCount(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-GB');
}

// Times are shown in UTC, as the server and the audit log write them, so a
// printed report and the log never disagree by a time zone.
export function formatTime(value) {
  if (!value) {
    return '–';
  }
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) {
    return String(value);
  }
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, ' UTC');
}

export function timeEl(value) {
  return value ? h('time', { datetime: value, text: formatTime(value) }) : '–';
}

// An object path with its container levels (`a.zip!b/c.com`) shown apart, so
// a reviewer sees at a glance which part is inside an archive.
export function pathEl(path) {
  const code = h('code', { class: 'path' });
  if (!path) {
    code.textContent = '(the image as a whole)';
    return code;
  }
  const parts = String(path).split('!');
  parts.forEach((part, i) => {
    if (i > 0) {
      code.append(h('span', { class: 'bang', title: 'inside the archive before it', text: '!' }));
    }
    code.append(document.createTextNode(part));
  });
  return code;
}

const verdictLabels = {
  clean: 'Clean',
  flagged: 'Flagged',
  incomplete: 'Incomplete',
  error: 'Error',
  cleared_false_positive: 'Cleared (false positive)',
};

export function verdictLabel(v) {
  return verdictLabels[v] || (v ? String(v) : 'No verdict');
}

export function verdictBadge(v) {
  return h('span', { class: ['badge', `verdict-${v || 'none'}`], text: verdictLabel(v) });
}

const reviewLabels = {
  pending: 'Pending review',
  reviewed: 'Reviewed',
  not_required: 'No review needed',
  unreviewed: 'Not reviewed',
  cleared: 'Cleared',
  confirmed: 'Confirmed',
  escalated: 'Escalated',
};

export function reviewLabel(v) {
  return reviewLabels[v] || (v ? String(v) : '–');
}

export function severityBadge(s) {
  return h('span', { class: ['badge', `severity-${s}`], text: s });
}

export function shortHash(hex) {
  return hex ? `${hex.slice(0, 12)}…` : '–';
}

// A table from column definitions: [{ label, cell(row) -> node|string, class }].
export function table(columns, rows, { caption, className } = {}) {
  return h('table', { class: className },
    caption ? h('caption', { text: caption }) : null,
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label })))),
    h('tbody', null, rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.class }, c.cell(row)))))));
}

export function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', { text: term }), h('dd', null, value)]));
}
