// The queue: finished reports newest first, those waiting for review on top,
// with filters kept in the URL (so a filtered queue can be bookmarked) and
// cursor paging; above them the scans queued or running now (GET /api/v1/scans)
// with their progress. It refreshes itself when a scan finishes (GET /api/v1/events).

import { api } from './api.js';
import { followEvents } from './sse.js';
import { clear, formatBytes, formatCount, h, pathEl, reviewLabel, timeEl, verdictBadge, verdictLabel } from './dom.js';

const PAGE = 50;
// How often the progress of the scans in progress is re-read while any is listed.
const ACTIVE_POLL_MS = 2000;
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
        h('th', { scope: 'col', class: `col-${label.toLowerCase()}`, text: label })))),
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

// One scan in the "Scans in progress" strip: its name, station, status and a
// progress bar (bytes and percent once the scan has counted its bytes).
function liveItem(scan, position) {
  const p = scan.progress || {};
  const name = scan.filename || scan.label || scan.id;
  const nameId = `live-name-${scan.id}`;
  const bar = h('progress', { max: 100, 'aria-labelledby': nameId });
  let figures;
  if (scan.status === 'queued') {
    figures = position > 1 ? `Waiting in the queue (${position - 1} ahead)` : 'Waiting in the queue';
    bar.value = 0;  // not started (an indeterminate bar would look busy)
    bar.setAttribute('aria-valuetext', figures);
  } else if (p.bytes_total > 0) {
    const done = Math.min(p.bytes_done || 0, p.bytes_total);
    const pct = Math.floor((done * 100) / p.bytes_total);
    bar.value = pct;
    figures = `${formatBytes(done)} of ${formatBytes(p.bytes_total)} · ${pct} %`;
    if (p.files_found) {
      figures += ` · ${formatCount(p.files_done)} of ${formatCount(p.files_found)} files`;
    }
    bar.setAttribute('aria-valuetext', `${pct} %, ${formatBytes(done)} of ${formatBytes(p.bytes_total)}`);
  } else {
    figures = 'Starting: counting files and bytes…';
    bar.setAttribute('aria-valuetext', 'starting');
  }
  const status = scan.status === 'running' ? 'Running' : scan.status === 'queued' ? 'Queued' : scan.status;
  return h('li', { class: 'live-scan', dataset: { id: scan.id, status: scan.status } },
    h('span', { class: 'live-name' },
      h('strong', { id: nameId, text: name }),
      scan.label && scan.filename ? h('span', { class: 'muted small', text: ` ${scan.label}` }) : null),
    h('span', { class: 'live-meta' },
      h('span', { class: 'live-station', text: scan.station || '–' }), ' · ',
      h('span', { class: ['live-status', `live-${scan.status}`], text: status })),
    bar,
    h('span', { class: 'live-figures small', text: figures }));
}

export async function renderQueue(ctx) {
  document.title = 'Reports · Borderscan';
  const filters = filtersFromUrl();
  const { main } = ctx;
  const liveTitle = h('h2', { id: 'live-title', text: 'Scans in progress' });
  const live = h('section', { class: 'live', id: 'live', 'aria-labelledby': 'live-title' }, liveTitle);
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

  // The scans queued or running now, in queue order: loaded from
  // GET /api/v1/scans when the page opens (and once more when the event
  // stream is first open, with the lists), kept live by the event stream
  // (submitted adds, done/failed/cancelled removes and reloads the lists) and
  // re-read every few seconds while any is listed, for the running ones'
  // progress and for a queued one that starts (no event says so).
  const active = new Map();
  const finished = new Set();  // ids whose end the stream reported
  let left = false;
  let reloadTimer = null;
  let pollTimer = null;
  let polling = null;  // the GET /api/v1/scans in flight
  const addedDuringPoll = new Set();  // submitted while it was in flight: newer than its answer
  let activeError = '';

  const reloadLists = () => {
    clearTimeout(reloadTimer);
    // Debounced: a burst of finished scans costs one reload.
    reloadTimer = setTimeout(() => {
      if (!left) {
        lists.forEach((l) => l.reload());
      }
    }, 300);
  };

  const renderLive = () => {
    clear(liveList);
    let position = 0;
    for (const scan of active.values()) {
      position += 1;
      liveList.append(liveItem(scan, position));
    }
    if (active.size === 0) {
      liveList.append(h('li', { class: 'muted live-none', text: activeError || 'None right now.' }));
    }
    liveTitle.textContent = active.size ? `Scans in progress (${active.size})` : 'Scans in progress';
    live.classList.toggle('has-scans', active.size > 0);
  };

  const schedulePoll = () => {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (!left && active.size > 0) {
      pollTimer = setTimeout(refreshActive, ACTIVE_POLL_MS);
    }
  };

  async function refreshActive() {
    if (left) {
      return;
    }
    if (polling) {
      await polling;  // one request at a time; its answer is as fresh
      return;
    }
    clearTimeout(pollTimer);
    pollTimer = null;
    addedDuringPoll.clear();
    polling = api.activeScans().then((page) => {
      if (left) {
        return;
      }
      activeError = '';
      const next = new Map();
      for (const scan of page.items || []) {
        if (!finished.has(scan.id)) {
          next.set(scan.id, scan);
        }
      }
      // A scan that left the list without its end on the stream (e.g. while
      // the stream reconnects) has finished too: the lists may have changed.
      for (const id of active.keys()) {
        if (!next.has(id) && !finished.has(id) && !addedDuringPoll.has(id)) {
          reloadLists();
        }
      }
      for (const id of addedDuringPoll) {
        if (!next.has(id) && active.has(id) && !finished.has(id)) {
          next.set(id, active.get(id));
        }
      }
      active.clear();
      next.forEach((scan, id) => active.set(id, scan));
    }).catch((error) => {
      if (error.status === 401) {
        return;  // the sign-in form is showing
      }
      activeError = `Could not load the scans in progress: ${error.message}`;
    }).finally(() => {
      polling = null;
      if (!left) {
        renderLive();
        schedulePoll();
      }
    });
    await polling;
  }

  const onScanEvent = (scan) => {
    const change = scan.change || '';
    const ended = ['scan_done', 'scan_failed', 'scan_cancelled'].includes(change) ||
      (!change && ['done', 'failed', 'cancelled'].includes(scan.status));
    if (change === 'scan_submitted' || (!change && (scan.status === 'queued' || scan.status === 'running'))) {
      // The data is the scan as it is now: one that already ended is not added.
      if ((scan.status === 'queued' || scan.status === 'running') && !finished.has(scan.id)) {
        active.set(scan.id, scan);
        if (polling) {
          addedDuringPoll.add(scan.id);
        } else if (!pollTimer) {
          schedulePoll();
        }
      }
    } else if (ended) {
      finished.add(scan.id);
      active.delete(scan.id);
      if (active.size === 0) {
        clearTimeout(pollTimer);  // nothing left to follow
        pollTimer = null;
      }
      const name = scan.filename || scan.label || scan.id;
      if (scan.status === 'done') {
        ctx.announce(`Scan of ${name} finished: ${verdictLabel(scan.verdict)}.`);
      } else if (scan.status === 'failed') {
        ctx.announce(`Scan of ${name} failed.`);
      } else if (scan.status === 'cancelled') {
        ctx.announce(`Scan of ${name} was cancelled.`);
      }
      reloadLists();
    } else {
      reloadLists();  // a review or a false-positive mark: the lists' review column
    }
    renderLive();
  };

  renderLive();
  let opened = false;
  let reconnected = false;
  const stream = followEvents('/api/v1/events', {
    onEvent: (event) => {
      if (event.type !== 'scan' || left) {
        return true;
      }
      let scan;
      try {
        scan = JSON.parse(event.data);
      } catch {
        return true;
      }
      onScanEvent(scan);
      return true;
    },
    onState: (state) => {
      if (left) {
        return;
      }
      liveState.textContent = {
        open: 'Live: the lists update when a scan finishes.',
        reconnecting: 'Live updates interrupted; reconnecting…',
        closed: 'Live updates stopped.',
      }[state] || state;
      liveState.dataset.state = state;
      if (state === 'open' && !opened) {
        // The lists and the strip were read before the stream started: a scan
        // that finished (or was submitted) in between has no event on this
        // stream. Read them once more now that the stream follows the changes.
        opened = true;
        reloadLists();
        // After the read in flight, if any: it may have been answered before the stream began.
        (polling || Promise.resolve()).then(() => refreshActive());
      } else if (state === 'reconnecting') {
        reconnected = true;
      } else if (state === 'open' && reconnected) {
        // The stream resumes with Last-Event-ID; the progress may be stale.
        refreshActive();
        if (!stream.lastEventId) {
          // No event had come before the drop, so there was no id to resume
          // from and changes during the outage are lost: reload instead.
          reloadLists();
        }
      }
    },
    onError: (error) => {
      liveState.textContent = `Live updates unavailable: ${error.message}`;
    },
  });
  ctx.onCleanup(() => {
    left = true;
    stream.stop();
    clearTimeout(reloadTimer);
    clearTimeout(pollTimer);
  });

  await Promise.all([...lists.map((l) => l.reload()), refreshActive()]);
}
