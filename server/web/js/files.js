// The report's file table: search and filters run on the server
// (GET /api/v1/reports/{id}/files with q, flagged, deleted, mime; cursor
// paging), so it stays fast with 100 000 files. Reviewers also get "seen
// before" (GET /api/v1/files?sha256=) and the evidence preview and download.

import { api } from './api.js';
import { clear, formatBytes, formatCount, h, pathEl, reviewLabel, severityBadge, shortHash, timeEl, verdictBadge } from './dom.js';
import { severities } from './facts.js';

const PAGE = 100;
// The server refuses a q longer than 1024 bytes (UTF-8) or holding a control character.
const MAX_Q_BYTES = 1024;

// The longest end of `text` the server accepts as q: at most MAX_Q_BYTES bytes
// of UTF-8, whole characters, nothing before a control character. An end of a
// path still finds that path ("path contains").
export function searchableTail(text) {
  const encoder = new TextEncoder();
  const chars = Array.from(String(text));
  let bytes = 0;
  let start = chars.length;
  while (start > 0) {
    const c = chars[start - 1];
    const code = c.codePointAt(0);
    if (code < 0x20 || code === 0x7f) {
      break;
    }
    const size = encoder.encode(c).length;
    if (bytes + size > MAX_Q_BYTES) {
      break;
    }
    bytes += size;
    start -= 1;
  }
  return chars.slice(start).join('');
}

function worstSeverity(findings) {
  let worst = null;
  for (const f of findings || []) {
    if (worst === null || severities.indexOf(f.severity) < severities.indexOf(worst)) {
      worst = f.severity;
    }
  }
  return worst;
}

function baseName(path) {
  const last = String(path).split('!').pop();
  return last.split('/').filter(Boolean).pop() || 'file';
}

export function fileTable(ctx, reportId, mimeTypes) {
  const state = { q: '', flagged: false, deleted: '', mime: '' };
  let cursors = [null];  // cursor of each page shown so far; the last is the current page's
  let nextCursor = null;
  let generation = 0;

  const section = h('section', { class: 'files', 'aria-labelledby': 'files-title', id: 'files' });
  const search = h('input', { id: 'file-search', type: 'search', placeholder: 'part of a path, e.g. eicar or .zip!', autocomplete: 'off' });
  const flagged = h('input', { id: 'file-flagged', type: 'checkbox' });
  const deleted = h('select', { id: 'file-deleted' },
    h('option', { value: '', text: 'Any' }), h('option', { value: 'true', text: 'Deleted only' }), h('option', { value: 'false', text: 'Not deleted' }));
  const mime = h('select', { id: 'file-mime' }, h('option', { value: '', text: 'Any type' }),
    (mimeTypes || []).map((t) => h('option', { value: t.mime, text: `${t.mime} (${formatCount(t.files)})` })));
  const form = h('form', { class: 'filters file-filters', role: 'search', 'aria-label': 'Search the files' },
    h('div', { class: 'field grow' }, h('label', { for: 'file-search', text: 'Path contains' }), search),
    h('div', { class: 'field check' }, flagged, h('label', { for: 'file-flagged', text: 'Flagged only' })),
    h('div', { class: 'field' }, h('label', { for: 'file-deleted', text: 'Deleted' }), deleted),
    h('div', { class: 'field' }, h('label', { for: 'file-mime', text: 'Type' }), mime),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', text: 'Search' })));
  const status = h('p', { class: 'list-status', role: 'status', 'aria-live': 'polite' });
  const body = h('div', { class: 'table-scroll' });
  const prev = h('button', { type: 'button', class: 'secondary', text: 'Previous page', disabled: true });
  const next = h('button', { type: 'button', class: 'secondary', text: 'Next page', disabled: true });
  const pager = h('div', { class: 'pager' }, prev, next);
  const panel = h('section', { class: 'panel', id: 'file-panel', hidden: true, 'aria-labelledby': 'file-panel-title', tabindex: '-1' });
  section.append(h('h2', { id: 'files-title', text: 'Files' }), form, status, body, pager, panel);

  const showPanel = (title, ...content) => {
    clear(panel);
    panel.hidden = false;
    panel.append(
      h('div', { class: 'panel-head' },
        h('h3', { id: 'file-panel-title', text: title }),
        h('button', { type: 'button', class: 'secondary', text: 'Close', on: { click: () => { panel.hidden = true; } } })),
      ...content);
    panel.focus();
  };

  const seenBefore = async (file) => {
    showPanel(`Seen before: ${baseName(file.path)}`, h('p', { role: 'status', text: 'Searching…' }));
    try {
      const page = await api.seenBefore(file.sha256, { limit: 50 });
      const others = page.items;
      showPanel(`Seen before: ${baseName(file.path)}`,
        h('p', null, 'Content SHA-256 ', h('code', { class: 'hash', text: file.sha256 })),
        others.length === 0
          ? h('p', { text: 'Never seen.' })
          : h('table', { class: 'compact seen-before' },
            h('caption', { text: `${others.length}${page.next_cursor ? '+' : ''} sightings, newest first` }),
            h('thead', null, h('tr', null, ['Submitted', 'Station', 'Case', 'Verdict', 'Review', 'Path'].map((l) => h('th', { scope: 'col', text: l })))),
            h('tbody', null, others.map((s) => h('tr', { class: s.scan.id === reportId ? 'this-report' : null },
              h('td', null, h('a', { href: `/reports/${s.scan.id}`, 'data-nav': true }, timeEl(s.scan.submitted_at)),
                s.scan.id === reportId ? h('span', { class: 'muted small', text: ' (this report)' }) : null),
              h('td', { text: s.scan.station || '–' }),
              h('td', { text: s.scan.case_ref || '–' }),
              h('td', null, verdictBadge(s.scan.derived_verdict || s.scan.verdict)),
              h('td', { text: reviewLabel(s.scan.review) }),
              h('td', null, pathEl(s.file.path), s.file.deleted ? h('span', { class: 'badge deleted', text: 'deleted' }) : null))))));
    } catch (error) {
      showPanel('Seen before', h('p', { class: 'error', role: 'alert', text: error.message }));
    }
  };

  const preview = async (file, view) => {
    const title = `${view === 'hex' ? 'Hex' : 'Text'} preview: ${baseName(file.path)}`;
    showPanel(title, h('p', { role: 'status', text: 'Loading…' }));
    try {
      const p = await api.preview(reportId, file.index, view);
      const content = view === 'hex'
        ? h('pre', { class: 'hex-view' }, (p.lines || []).map((l) =>
          `${l.offset.toString(16).padStart(8, '0')}  ${l.hex.padEnd(47, ' ')}  ${l.text}\n`))
        : h('pre', { class: 'text-view', text: p.text || '' });
      showPanel(title,
        h('p', null, pathEl(p.path), ` · ${formatBytes(p.size)}; first ${formatCount(p.shown_bytes)} bytes shown${p.truncated ? ' (truncated)' : ''}`),
        content);
    } catch (error) {
      showPanel(title, h('p', { class: 'error', role: 'alert', text: error.message }));
    }
  };

  const download = async (file, button) => {
    button.disabled = true;
    try {
      const response = await api.evidenceZip(reportId, file.index);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `${baseName(file.path)}.zip` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      ctx.announce(`Evidence of ${baseName(file.path)} downloaded as a zip; the password is "infected".`);
    } catch (error) {
      showPanel('Evidence download', h('p', { class: 'error', role: 'alert', text: error.message }));
    } finally {
      button.disabled = false;
    }
  };

  const actions = (file) => {
    const out = [];
    if (ctx.can('seenBefore') && file.sha256) {
      out.push(h('button', { type: 'button', class: 'small-button', text: 'Seen before?',
        'aria-label': `Seen before: ${file.path}`, on: { click: () => seenBefore(file) } }));
    }
    if (ctx.can('evidence') && file.evidence) {
      if (file.evidence.kept) {
        out.push(
          h('button', { type: 'button', class: 'small-button', text: 'Hex', 'aria-label': `Hex preview of ${file.path}`, on: { click: () => preview(file, 'hex') } }),
          h('button', { type: 'button', class: 'small-button', text: 'Text', 'aria-label': `Text preview of ${file.path}`, on: { click: () => preview(file, 'text') } }));
        const dl = h('button', { type: 'button', class: 'small-button', text: 'Download zip', title: 'AES-256 zip, password: infected', 'aria-label': `Download the evidence of ${file.path} as a zip (password infected)` });
        dl.addEventListener('click', () => download(file, dl));
        out.push(dl);
      } else {
        out.push(h('span', { class: 'muted small', text: `no evidence copy: ${file.evidence.reason || 'not kept'}` }));
      }
    }
    return out;
  };

  const render = (items) => {
    clear(body);
    if (items.length === 0) {
      return;
    }
    body.append(h('table', { class: 'file-table' },
      h('caption', { class: 'visually-hidden', text: 'Files of this report' }),
      h('thead', null, h('tr', null, ['#', 'Path', 'Size', 'Type', 'Findings', 'SHA-256', 'Actions'].map((l) => h('th', { scope: 'col', text: l })))),
      h('tbody', null, items.map((f) => {
        const worst = worstSeverity(f.findings);
        return h('tr', { class: [f.deleted ? 'deleted' : null, worst ? 'has-findings' : null], dataset: { index: String(f.index), path: f.path } },
          h('td', { class: 'num', text: String(f.index) }),
          h('td', { class: 'path-cell' }, pathEl(f.path),
            f.deleted ? h('span', { class: 'badge deleted', text: 'deleted' }) : null,
            f.extension_mismatch ? h('span', { class: 'badge mismatch', text: 'extension mismatch' }) : null,
            f.type && f.type !== 'regular' ? h('span', { class: 'muted small', text: ` ${f.type}` }) : null),
          h('td', { class: 'num', text: f.size === null || f.size === undefined ? '–' : formatBytes(f.size) }),
          h('td', { title: f.description || '' }, f.mime ? h('code', { text: f.mime }) : '–'),
          h('td', null, worst ? [severityBadge(worst), ` ${(f.findings || []).map((x) => x.rule).join(', ')}`] : ''),
          h('td', null, f.sha256 ? h('code', { title: f.sha256, text: shortHash(f.sha256) }) : '–'),
          h('td', { class: 'actions' }, actions(f)));
      }))));
  };

  const load = async () => {
    const mine = ++generation;
    status.textContent = 'Loading files…';
    prev.disabled = true;
    next.disabled = true;
    try {
      const page = await api.files(reportId, {
        q: state.q || undefined,
        flagged: state.flagged ? 'true' : undefined,
        deleted: state.deleted || undefined,
        mime: state.mime || undefined,
        limit: PAGE,
        cursor: cursors[cursors.length - 1] || undefined,
      }, { signal: ctx.signal });
      if (mine !== generation) {
        return;
      }
      render(page.items);
      nextCursor = page.next_cursor;
      const first = (cursors.length - 1) * PAGE;
      status.textContent = page.items.length === 0
        ? 'No files match.'
        : `Files ${formatCount(first + 1)}–${formatCount(first + page.items.length)}${nextCursor ? ' (more on the next page)' : ''}.`;
      prev.disabled = cursors.length <= 1;
      next.disabled = !nextCursor;
    } catch (error) {
      if (mine === generation) {
        status.textContent = `Could not load the files: ${error.message}`;
      }
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    state.q = searchableTail(search.value.trim());
    state.flagged = flagged.checked;
    state.deleted = deleted.value;
    state.mime = mime.value;
    cursors = [null];
    load();
  });
  // Checkboxes and selects apply at once; the search box on Enter or the button.
  for (const el of [flagged, deleted, mime]) {
    el.addEventListener('change', () => form.requestSubmit());
  }
  next.addEventListener('click', () => {
    if (nextCursor) {
      cursors.push(nextCursor);
      load();
    }
  });
  prev.addEventListener('click', () => {
    if (cursors.length > 1) {
      cursors.pop();
      load();
    }
  });

  return {
    section,
    load,
    // Shows one file (from a finding's "show file" button): a very long path
    // is searched by its end, which the server accepts.
    showPath: (path) => {
      search.value = searchableTail(path);
      flagged.checked = false;
      deleted.value = '';
      mime.value = '';
      form.requestSubmit();
      section.scrollIntoView({ block: 'start' });
      search.focus({ preventScroll: true });
    },
    // Lists every flagged file (when the findings list was capped).
    showFlagged: () => {
      search.value = '';
      flagged.checked = true;
      deleted.value = '';
      mime.value = '';
      form.requestSubmit();
      section.scrollIntoView({ block: 'start' });
      flagged.focus({ preventScroll: true });
    },
  };
}
