// One report: what was scanned, why it is flagged, and the reviewer's tools.
// It reads the overview (the report without its files, which can be huge) and
// pages the files from the server.

import { api } from './api.js';
import { fileTypeChart } from './chart.js';
import { clear, h, pathEl, reviewLabel, severityBadge } from './dom.js';
import {
  describeFinding, dispositionHistory, errorsAndLimits, findingsBySeverity, findingsCount, imageFacts, matchesTable, metaList,
  reviewHistory, scoreReasons, summaryFacts, truncation, truncationText, verdictBlock, volumesTable,
} from './facts.js';
import { fileTable } from './files.js';

function settled(result) {
  return result.status === 'fulfilled' ? result.value : null;
}

// What the report page and its printable page read, at once: the overview
// (required: its failure is thrown), and the verification, file types and,
// for reviewers, reviews and marks (null when one fails). Null when the user
// moved to another page meanwhile.
export async function loadReport(ctx, id) {
  const reviewer = ctx.can('review');
  const opts = { signal: ctx.signal };
  const [ovR, verR, typesR, reviewsR, dispR] = await Promise.allSettled([
    api.overview(id, opts),
    api.verification(id, opts),
    api.fileTypes(id, opts),
    reviewer ? api.reviews(id, opts) : Promise.resolve(null),
    reviewer ? api.dispositions(id, opts) : Promise.resolve(null),
  ]);
  if (!ctx.isCurrent()) {
    return null;
  }
  if (ovR.status === 'rejected') {
    throw ovR.reason;
  }
  return {
    ov: ovR.value,
    verification: settled(verR),
    types: settled(typesR),
    reviews: settled(reviewsR),
    dispositions: settled(dispR),
  };
}

function section(id, title, ...content) {
  return h('section', { class: 'card', id, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title`, text: title }), ...content);
}

export async function renderReport(ctx, id) {
  const { main } = ctx;
  document.title = 'Report · Borderscan';
  main.append(h('h1', { text: 'Report' }), h('p', { role: 'status', text: 'Loading the report…' }));
  const loaded = await loadReport(ctx, id);
  if (!loaded) {
    return;  // the user moved to another page meanwhile: leave it alone
  }
  const { ov, verification, types } = loaded;
  const reviewer = ctx.can('review');
  let { reviews, dispositions } = loaded;
  const findingsById = new Map((ov.findings || []).map((f) => [f.id, f]));
  const name = (ov.image && ov.image.name) || id;
  document.title = `${name} · Report · Borderscan`;
  clear(main);

  const reviewState = h('span', { class: 'review', id: 'review-state' });
  const verdictHolder = h('div', { id: 'verdict' });
  const showVerdict = () => {
    clear(verdictHolder);
    verdictHolder.append(verdictBlock(ov, dispositions && dispositions.derived_verdict));
    clear(reviewState);
    if (reviews) {
      const last = reviews.items.length ? reviews.items[reviews.items.length - 1].decision : null;
      reviewState.className = `review review-${reviews.review_state}`;
      reviewState.append(reviewLabel(reviews.review_state), last ? ` · last decision: ${reviewLabel(last)}` : '');
    }
  };
  showVerdict();

  const files = fileTable(ctx, id, types ? types.items : []);

  main.append(
    h('div', { class: 'page-head' },
      h('div', null,
        h('p', { class: 'crumbs' }, h('a', { href: '/', 'data-nav': true, text: 'Reports' }), ' › report'),
        h('h1', null, 'Report: ', h('span', { class: 'image-name', text: name })),
        h('p', { class: 'muted' }, `Station ${ov.station || '–'} · scan `, h('code', { text: id }), reviewer ? [' · ', reviewState] : null)),
      h('div', { class: 'head-actions' },
        h('a', { class: 'button secondary', href: `/reports/${id}/print`, 'data-nav': true, text: 'Printable page' }))),
    h('nav', { class: 'toc', 'aria-label': 'Sections of this report' }, h('ul', null,
      [['verdict-card', 'Verdict'], ['findings', 'Findings'], reviewer ? ['review', 'Review'] : null, ['image', 'Image'],
        ['volumes', 'Volumes'], ['types', 'File types'], ['files', 'Files'], ['problems', 'Errors and limits']]
        .filter(Boolean).map(([anchor, label]) => h('li', null, h('a', { href: `#${anchor}`, text: label }))))),
  );

  // Verdict, reasons and counts side by side, so the findings start on the first screen.
  main.append(section('verdict-card', 'Verdict and score',
    h('div', { class: 'verdict-grid' }, h('div', null, verdictHolder, scoreReasons(ov)), summaryFacts(ov))));

  // Findings, worst first, each with its rule's description, matched strings
  // and full path; reviewers mark false positives here.
  // For a report with very many findings the server sends the weightiest
  // ones only (findings_truncated); the file table still lists every flagged file.
  const truncated = truncation(ov);
  const findingsSection = section('findings', `Findings (${findingsCount(ov)})`);
  if (truncated) {
    findingsSection.append(h('p', { class: 'notice', id: 'findings-truncated' },
      truncationText(truncated), ' ',
      h('button', { type: 'button', class: 'small-button', text: 'List the flagged files', on: { click: () => files.showFlagged() } })));
  }
  const findingCards = new Map();
  const renderMark = (f) => {
    const holder = findingCards.get(f.id);
    if (!holder) {
      return;
    }
    const current = dispositions && dispositions.current ? dispositions.current[f.id] : null;
    const fp = Boolean(current && current.false_positive);
    holder.card.classList.toggle('false-positive', fp);
    clear(holder.mark);
    if (current) {
      holder.mark.append(
        fp ? h('span', { class: 'badge decision-fp', text: 'Marked false positive' }) : h('span', { class: 'badge', text: 'False-positive mark taken back' }),
        ` by ${current.reviewer ? current.reviewer.name : '?'}`,
        current.note ? h('span', { class: 'muted', text: `: ${current.note}` }) : null);
    }
    if (!reviewer) {
      return;
    }
    const note = h('input', { type: 'text', id: `fp-note-${f.id}`, maxlength: 4096, autocomplete: 'off' });
    const button = h('button', { type: 'submit', class: fp ? 'secondary' : null, text: fp ? 'Take back the false-positive mark' : 'Mark as false positive' });
    const form = h('form', { class: 'fp-form', 'aria-label': `False-positive mark for ${f.rule} on ${f.path}` },
      h('label', { for: `fp-note-${f.id}`, text: 'Note (optional)' }), note, button);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const body = { false_positive: !fp };
        if (note.value.trim()) {
          body.note = note.value.trim();
        }
        await api.setDisposition(id, f.id, body);
        dispositions = await api.dispositions(id);
        renderMark(f);
        showVerdict();
        renderDispositionHistory();
        ctx.announce(`${f.rule}: ${!fp ? 'marked false positive' : 'mark taken back'}. Verdict now ${dispositions.derived_verdict || ov.verdict}.`);
      } catch (error) {
        holder.mark.append(h('p', { class: 'error', role: 'alert', text: `Could not record the mark: ${error.message}` }));
        button.disabled = false;
      }
    });
    holder.mark.append(form);
  };
  const groups = findingsBySeverity(ov.findings);
  if (groups.length === 0) {
    findingsSection.append(h('p', { class: 'muted', text: 'No findings.' }));
  }
  for (const [severity, list] of groups) {
    const group = h('section', { class: ['severity-group', `group-${severity}`], 'aria-labelledby': `sev-${severity}` },
      h('h3', { id: `sev-${severity}` }, severityBadge(severity), ` ${list.length} ${list.length === 1 ? 'finding' : 'findings'}`));
    for (const f of list) {
      const mark = h('div', { class: 'mark' });
      const description = describeFinding(f);
      const card = h('article', { class: 'finding', dataset: { finding: f.id }, 'aria-label': `${f.rule} on ${f.path || 'the image'}` },
        h('h4', null, h('span', { class: 'rule', text: f.rule }), h('span', { class: 'muted small', text: ` ${f.source}${f.namespace ? ` · ${f.namespace}` : ''}` })),
        description ? h('p', { class: 'rule-description', text: description }) : null,
        h('p', { class: 'finding-path' }, h('span', { class: 'label', text: 'File: ' }), pathEl(f.path),
          f.volume !== null && f.volume !== undefined ? h('span', { class: 'muted small', text: ` (volume ${f.volume})` }) : null,
          f.path ? h('button', { type: 'button', class: 'small-button', text: 'Show in the file table', on: { click: () => files.showPath(f.path) } }) : null),
        (f.tags || []).length ? h('p', { class: 'tags' }, f.tags.map((t) => h('span', { class: 'tag', text: t }))) : null,
        matchesTable(f),
        metaList(f),
        mark);
      findingCards.set(f.id, { card, mark });
      group.append(card);
    }
    findingsSection.append(group);
  }
  main.append(findingsSection);
  for (const f of ov.findings || []) {
    renderMark(f);
  }

  // Review: history and the decision form (reviewers and admins only).
  const historyHolder = h('div', { id: 'review-history' });
  const dispHolder = h('div', { id: 'disposition-history' });
  const renderHistory = () => {
    clear(historyHolder);
    historyHolder.append(reviewHistory(reviews));
  };
  const renderDispositionHistory = () => {
    clear(dispHolder);
    const list = dispositionHistory(dispositions, findingsById);
    if (list) {
      dispHolder.append(h('h3', { text: 'False-positive marks' }), list);
    }
  };
  if (reviewer) {
    renderHistory();
    renderDispositionHistory();
    main.append(section('review', 'Review', h('h3', { text: 'History' }), historyHolder, dispHolder, reviewForm(ctx, id, async () => {
      reviews = await api.reviews(id);
      renderHistory();
      showVerdict();
    })));
  }

  main.append(
    section('image', 'Image', imageFacts(ov, verification)),
    section('volumes', 'Volumes', volumesTable(ov)),
    section('types', 'File types', types ? fileTypeChart(types.items) : h('p', { class: 'error', text: `The file types could not be read: ${typesR.reason && typesR.reason.message}` })),
    files.section,
    section('problems', 'Errors and limits', errorsAndLimits(ov)));
  await files.load();
}

function reviewForm(ctx, id, onRecorded) {
  const decisions = [
    ['cleared', 'Cleared', 'nothing to act on; the traveller may go'],
    ['confirmed', 'Confirmed', 'the finding is real; act on it'],
    ['escalated', 'Escalated', 'needs a specialist or the lab'],
  ];
  const note = h('textarea', { id: 'review-note', name: 'note', rows: 3, maxlength: 4096 });
  const status = h('p', { class: 'form-status', role: 'status' });
  const submit = h('button', { type: 'submit', text: 'Record review' });
  const form = h('form', { class: 'review-form', 'aria-labelledby': 'review-form-title' },
    h('h3', { id: 'review-form-title', text: 'Record a decision' }),
    h('fieldset', null, h('legend', { text: 'Decision' }),
      decisions.map(([value, label, help]) => h('div', { class: 'radio' },
        h('input', { type: 'radio', name: 'decision', id: `decision-${value}`, value, required: true }),
        h('label', { for: `decision-${value}` }, h('strong', { text: label }), h('span', { class: 'muted', text: ` — ${help}` }))))),
    h('label', { for: 'review-note', text: 'Note (optional, up to 4 096 characters)' }),
    note,
    submit,
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const choice = form.querySelector('input[name="decision"]:checked');
    if (!choice) {
      status.textContent = 'Choose a decision.';
      return;
    }
    submit.disabled = true;
    status.classList.remove('error');
    status.textContent = 'Recording…';
    try {
      const body = { decision: choice.value };
      if (note.value.trim()) {
        body.note = note.value.trim();
      }
      await api.addReview(id, body);
      form.reset();
      await onRecorded();
      status.textContent = `Recorded: ${reviewLabel(body.decision)}.`;
      ctx.announce(`Review recorded: ${reviewLabel(body.decision)}.`);
    } catch (error) {
      status.classList.add('error');
      status.textContent = `Could not record the review: ${error.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
