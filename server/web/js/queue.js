// The queue: finished reports newest first, those waiting for review on top,
// with filters kept in the URL (so a filtered queue can be bookmarked) and
// cursor paging; it refreshes itself when a scan finishes (GET /api/v1/events).

import { api } from './api.js';
import { followEvents } from './sse.js';
import { clear, formatCount, h, pathEl, reviewLabel, timeEl, verdictBadge, verdictLabel } from './dom.js';

const PAGE = 50;
const verdicts = ['flagged', 'incomplete', 'error', 'clean', 'cleared_false_positive'];
const reviews = ['pending', 'reviewed', 'not_required', 'unreviewed', 'cleared', 'confirmed', 'escalated'];
const filterKeys = ['verdict', 'review', 'station', 'case_ref', 'since', 'until'];

function filtersFromUrl() {
  const params = new URLSearchParams(location.search);
  const f = {};
  for (const key of filterKeys) {
    const value = params.get(key);
    if (value) {
      f[key] = value;
    }
  }
  return f;
}

function select(id, label, options, value, labelOf) {
  const el = h('select', { id, name: id },
    h('option', { value: '', text: 'Any' }),
    options.map((o) => h('option', { value: o, text: labelOf(o) })));
  el.value = value || '';
  return [h('label', { for: id, text: label }), el];
}

function field(id, label, type, value, extra = {}) {
  const el = h('input', { id, name: id, type, ...extra });
  el.value = value || '';
  return [h('label', { for: id, text: label }), el];
}

function filterForm(ctx, filters) {
  const form = h('form', { class: 'filters', 'aria-label': 'Filter reports' },
    h('div', { class: 'field' }, select('verdict', 'Verdict', verdicts, filters.verdict, verdictLabel)),
    h('div', { class: 'field' }, select('review', 'Review', reviews, filters.review, reviewLabel)),
    ctx.can('allStations') ? h('div', { class: 'field' }, field('station', 'Station', 'text', filters.station, { maxlength: 64 })) : null,
    h('div', { class: 'field' }, field('case_ref', 'Case', 'text', filters.case_ref, { maxlength: 256 })),
    h('div', { class: 'field' }, field('since', 'From (UTC)', 'date', filters.since)),
    h('div', { class: 'field' }, field('until', 'Until (UTC, excl.)', 'date', filters.until)),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit', text: 'Apply filters' }),
      h('button', { type: 'reset', class: 'secondary', text: 'Clear' })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const key of filterKeys) {
      const input = form.elements.namedItem(key);
      if (input && input.value.trim()) {
        params.set(key, input.value.trim());
      }
    }
    const qs = params.toString();
    ctx.navigate(qs ? `/?${qs}` : '/');
  });
  form.addEventListener('reset', (event) => {
    event.preventDefault();
    ctx.navigate('/');
  });
  return form;
}

function findingsCell(item) {
  const top = item.top_findings || [];
  if (top.length === 0) {
    return h('span', { class: 'muted', text: 'none' });
  }
  return h('ul', { class: 'top-findings' }, top.map((f) =>
    h('li', null, h('span', { class: ['sev-dot', `severity-${f.severity}`], title: f.severity, 'aria-label': `${f.severity}:` }),
      ' ', h('strong', { text: f.rule }), ' ', pathEl(f.path))));
}

function verdictCell(item) {
  const derived = item.derived_verdict || item.verdict;
  const cell = [verdictBadge(derived)];
  if (item.verdict && derived !== item.verdict) {
    cell.push(h('span', { class: 'muted small', text: ` signed: ${verdictLabel(item.verdict)}` }));
  }
  if (typeof item.score === 'number') {
    cell.push(h('span', { class: 'score', text: ` score ${item.score}` }));
  }
  return cell;
}

function reportTable(items, caption) {
  return h('table', { class: 'reports' },
    h('caption', { class: 'visually-hidden', text: caption }),
    h('thead', null, h('tr', null,
      ['Submitted', 'Image', 'Station', 'Case', 'Verdict', 'Findings', 'Review', 'Files'].map((label) =>
        h('th', { scope: 'col', text: label })))),
    h('tbody', null, items.map((item) => h('tr', { dataset: { id: item.id, review: item.review || '', verdict: item.derived_verdict || item.verdict || '' } },
      h('td', null, timeEl(item.submitted_at)),
      h('td', null, h('a', { href: `/reports/${item.id}`, 'data-nav': true, class: 'report-link', text: item.filename || item.label || item.id }),
        item.label && item.filename ? h('div', { class: 'muted small', text: item.label }) : null),
      h('td', { text: item.station || '–' }),
      h('td', { text: item.case_ref || '–' }),
      h('td', null, verdictCell(item)),
      h('td', null, findingsCell(item)),
      h('td', null, h('span', { class: ['review', `review-${item.review}`], text: reviewLabel(item.review) }),
        item.review_state && item.review_state !== 'unreviewed' ? h('div', { class: 'muted small', text: reviewLabel(item.review_state) }) : null),
      h('td', null, formatCount(item.files), item.flagged_files ? h('div', { class: 'small', text: `${formatCount(item.flagged_files)} flagged` }) : null)))));
}

// One paged list of reports; `keep` drops items another section already shows.
function reportList({ title, id, query, keep = () => true, empty }) {
  const section = h('section', { class: 'report-list', 'aria-labelledby': `${id}-title`, id });
  const heading = h('h2', { id: `${id}-title`, text: title });
  const body = h('div', { class: 'list-body' });
  const status = h('p', { class: 'list-status', role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, text: 'Show more' });
  section.append(heading, body, status, more);
  let cursor = null;
  let shown = 0;
  let generation = 0;

  const load = async (reset) => {
    const mine = reset ? ++generation : generation;
    if (reset) {
      cursor = null;
      shown = 0;
    }
    status.textContent = 'Loading…';
    more.disabled = true;
    try {
      const page = await api.reports({ ...query, limit: PAGE, cursor: cursor || undefined });
      if (mine !== generation) {
        return;  // a newer reload replaced this one
      }
      const items = page.items.filter(keep);
      if (reset) {
        clear(body);
      }
      if (items.length > 0) {
        body.append(reportTable(items, title));
      }
      shown += items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      more.disabled = false;
      status.textContent = shown === 0 ? empty : `${shown} shown${cursor ? '; more below' : ''}.`;
      heading.textContent = `${title} (${shown}${cursor ? '+' : ''})`;
    } catch (error) {
      if (mine === generation) {
        status.textContent = `Could not load the reports: ${error.message}`;
        status.classList.add('error');
        more.disabled = false;
      }
    }
  };
  more.addEventListener('click', () => load(false));
  return { section, reload: () => load(true), count: () => shown };
}

export async function renderQueue(ctx) {
  document.title = 'Reports · Borderscan';
  const filters = filtersFromUrl();
  const { main } = ctx;
  const live = h('section', { class: 'live', 'aria-labelledby': 'live-title' },
    h('h2', { id: 'live-title', text: 'Scans in progress' }));
  const liveList = h('ul', { class: 'live-list' });
  const liveState = h('p', { class: 'muted small', id: 'live-state', text: 'Connecting to live updates…' });
  live.append(liveState, liveList);

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Reports' }),
      ctx.can('upload') ? h('a', { class: 'button', href: '/upload', 'data-nav': true, text: 'Upload an image' }) : null),
    filterForm(ctx, filters),
    live);

  // Pending on top unless the user picked a review state themselves.
  const lists = [];
  if (!filters.review) {
    lists.push(reportList({
      title: ctx.can('review') ? 'Waiting for review' : 'Waiting for an inspector',
      id: 'pending',
      query: { ...filters, review: 'pending' },
      empty: 'Nothing is waiting for review.',
    }));
    lists.push(reportList({
      title: 'All other reports',
      id: 'others',
      query: filters,
      keep: (item) => item.review !== 'pending',
      empty: 'No other reports match.',
    }));
  } else {
    lists.push(reportList({ title: 'Matching reports', id: 'matching', query: filters, empty: 'No reports match these filters.' }));
  }
  for (const list of lists) {
    main.append(list.section);
  }
  await Promise.all(lists.map((l) => l.reload()));

  // Live updates: scans started since the page opened are listed; a finished
  // one reloads the lists (debounced: a burst of scans costs one reload).
  const running = new Map();
  let reloadTimer = null;
  const renderLive = () => {
    clear(liveList);
    for (const scan of running.values()) {
      const p = scan.progress || {};
      liveList.append(h('li', null,
        h('strong', { text: scan.filename || scan.label || scan.id }), ' ',
        h('span', { class: 'muted', text: `${scan.station || ''} · ${scan.status}` }),
        scan.status === 'running' && p.files_found ? ` · ${formatCount(p.files_done)} of ${formatCount(p.files_found)} files` : ''));
    }
    if (running.size === 0) {
      liveList.append(h('li', { class: 'muted', text: 'None right now.' }));
    }
  };
  renderLive();
  if (!liveState.isConnected) {
    return;  // the user left while the lists loaded
  }
  const stream = followEvents('/api/v1/events', {
    onEvent: (event) => {
      if (event.type !== 'scan') {
        return true;
      }
      let scan;
      try {
        scan = JSON.parse(event.data);
      } catch {
        return true;
      }
      if (scan.status === 'queued' || scan.status === 'running') {
        running.set(scan.id, scan);
      } else {
        running.delete(scan.id);
        if (scan.status === 'done') {
          ctx.announce(`Scan of ${scan.filename || scan.label || scan.id} finished: ${verdictLabel(scan.verdict)}.`);
          clearTimeout(reloadTimer);
          reloadTimer = setTimeout(() => lists.forEach((l) => l.reload()), 300);
        }
      }
      renderLive();
      return true;
    },
    onState: (state) => {
      liveState.textContent = {
        open: 'Live: the lists update when a scan finishes.',
        reconnecting: 'Live updates interrupted; reconnecting…',
        closed: 'Live updates stopped.',
      }[state] || state;
      liveState.dataset.state = state;
    },
    onError: (error) => {
      liveState.textContent = `Live updates unavailable: ${error.message}`;
    },
  });
  ctx.onCleanup(() => {
    stream.stop();
    clearTimeout(reloadTimer);
  });
}
