// Report facts shared by the report page and its printable page, so that the
// case file shows exactly what the screen shows.

import { dl, formatBytes, formatCount, h, pathEl, reviewLabel, severityBadge, table, timeEl, verdictBadge, verdictLabel } from './dom.js';

export const severities = ['critical', 'high', 'medium', 'low', 'info'];

export function signatureText(v) {
  if (!v) {
    return 'unknown (the verification could not be read)';
  }
  if (!v.stored_digest_ok) {
    return 'the stored report does not match its recorded SHA-256: it was changed after the scan';
  }
  if (!v.signed) {
    return 'not signed';
  }
  const sig = v.signature ? `${v.signature.alg}, key ${v.signature.key_id}` : 'signed';
  if (v.signature_valid === true) {
    return `valid signature (${sig})${v.key_is_current ? '' : '; signed with an earlier key'}`;
  }
  if (v.signature_valid === false) {
    return `INVALID signature (${sig})`;
  }
  return `signed (${sig}); not checked`;
}

export function signatureClass(v) {
  if (!v || !v.stored_digest_ok || v.signature_valid === false) {
    return 'sig-bad';
  }
  return v.signed && v.signature_valid ? 'sig-ok' : 'sig-none';
}

export function imageFacts(ov, verification) {
  const img = ov.image || {};
  return dl([
    ['Image name', img.name || '–'],
    ['Size', `${formatBytes(img.size)} (${formatCount(img.size)} bytes)`],
    ['Format', img.format || '–'],
    img.segments && img.segments.length > 1 ? ['Segments', String(img.segments.length)] : null,
    ['Image SHA-256', h('code', { class: 'hash', text: img.sha256 || '–' })],
    ['Scan id', h('code', { text: ov.scan_id || '–' })],
    ['Station', ov.station || '–'],
    ['Scan started', timeEl(ov.started_at)],
    ['Scan finished', timeEl(ov.finished_at)],
    ['Scanner', ov.scanner_version || '–'],
    ['Rule set', h('code', { class: 'hash', text: (ov.ruleset && ov.ruleset.digest) || '–' })],
    ['Report SHA-256', h('code', { class: 'hash', text: (verification && verification.report_sha256) || '–' })],
    ['Signature', h('span', { class: ['sig', signatureClass(verification)], text: signatureText(verification) })],
  ]);
}

export function summaryFacts(ov) {
  const s = ov.summary || {};
  return dl([
    ['Files', formatCount(s.files)],
    ['Directories', formatCount(s.directories)],
    ['Deleted entries', formatCount(s.deleted)],
    ['Bytes', formatBytes(s.bytes)],
    ['Flagged files', formatCount(s.flagged_files)],
    ['Findings', formatCount(s.findings)],
    ['Errors', formatCount(s.errors)],
    ['Limits hit', formatCount(s.limits_hit)],
  ]);
}

export function verdictBlock(ov, derived) {
  return h('div', { class: 'verdict-block' },
    h('p', { class: 'verdict-line' }, verdictBadge(derived || ov.verdict),
      derived && derived !== ov.verdict ? h('span', { class: 'muted', text: ` (signed verdict: ${verdictLabel(ov.verdict)})` }) : null,
      h('span', { class: 'score-big', text: ` Score ${ov.score ?? '–'} / 100` })),
    ov.verdict_reason ? h('p', { class: 'verdict-reason', text: ov.verdict_reason }) : null);
}

export function scoreReasons(ov) {
  const reasons = ov.score_reasons || [];
  if (reasons.length === 0) {
    return h('p', { class: 'muted', text: 'No finding added to the score.' });
  }
  return table([
    { label: 'Points', class: 'num', cell: (r) => String(r.points) },
    { label: 'Severity', cell: (r) => severityBadge(r.severity) },
    { label: 'Rule', cell: (r) => h('strong', { text: r.rule }) },
    { label: 'Source', cell: (r) => r.source },
    { label: 'Path', cell: (r) => pathEl(r.path) },
  ], reasons, { caption: 'Why this score', className: 'compact' });
}

// A volume's `encryption` in one line: what it is and what the header said without a key.
function encryptionText(e) {
  const parts = [`Encrypted (${e.type}, ${e.detected_by})`];
  if (e.cipher) parts.push(`cipher ${e.cipher}`);
  const ids = Object.entries(e.identifiers || {}).map(([k, val]) => `${k} ${val}`);
  if (ids.length) parts.push(ids.join(', '));
  if ((e.key_protectors || []).length) parts.push(`key protectors: ${e.key_protectors.join(', ')}`);
  return parts.concat(e.notes || []).join('; ');
}

export function volumesTable(ov) {
  const vols = ov.volumes || [];
  if (vols.length === 0) {
    return h('p', { class: 'muted', text: 'No volumes.' });
  }
  return table([
    { label: '#', class: 'num', cell: (v) => String(v.index) },
    { label: 'Scheme', cell: (v) => v.scheme || '–' },
    { label: 'File system', cell: (v) => v.filesystem || 'none' },
    { label: 'Label', cell: (v) => v.label || '–' },
    { label: 'Offset', class: 'num', cell: (v) => formatCount(v.offset) },
    { label: 'Length', class: 'num', cell: (v) => formatBytes(v.length) },
    { label: 'Files', class: 'num', cell: (v) => formatCount(v.files) },
    { label: 'Description', cell: (v) => [v.description || '', v.error ? h('div', { class: 'error', text: v.error }) : null,
      v.encryption ? h('div', { class: 'error', text: encryptionText(v.encryption) }) : null,
      (v.notes || []).map((n) => h('div', { class: 'muted small', text: typeof n === 'string' ? n : JSON.stringify(n) }))] },
  ], vols, { caption: 'Volumes', className: 'compact' });
}

export function describeFinding(f) {
  const meta = f.meta || {};
  return meta.description || meta.desc || '';
}

export function matchesTable(f) {
  const matches = f.matches || [];
  if (matches.length === 0) {
    return null;
  }
  const more = (f.match_count || matches.length) - matches.length;
  return h('div', { class: 'matches' },
    table([
      { label: 'String', cell: (m) => h('code', { text: m.identifier }) },
      { label: 'Offset', class: 'num', cell: (m) => formatCount(m.offset) },
      { label: 'Length', class: 'num', cell: (m) => formatCount(m.length) },
      { label: 'Matched text', cell: (m) => h('code', { class: 'match-text', text: m.text }) },
      { label: 'Hex', cell: (m) => h('code', { class: 'match-hex', text: m.hex }) },
    ], matches, { caption: `Matched strings (${f.match_count || matches.length})`, className: 'compact' }),
    more > 0 ? h('p', { class: 'muted small', text: `${more} more matches not listed.` }) : null);
}

export function findingsBySeverity(findings) {
  const groups = new Map(severities.map((s) => [s, []]));
  for (const f of findings || []) {
    if (!groups.has(f.severity)) {
      groups.set(f.severity, []);
    }
    groups.get(f.severity).push(f);
  }
  return [...groups.entries()].filter(([, list]) => list.length > 0);
}

// The overview's findings_truncated ({ shown, total }): for a report with very
// many findings the server sends only the weightiest; null when it sent all.
export function truncation(ov) {
  const t = ov && ov.findings_truncated;
  if (!t || typeof t !== 'object') {
    return null;
  }
  return {
    shown: Number.isFinite(t.shown) ? t.shown : (ov.findings || []).length,
    total: Number.isFinite(t.total) ? t.total : null,
  };
}

export function truncationText(t) {
  const total = t.total === null ? 'more' : formatCount(t.total);
  return `Showing the first ${formatCount(t.shown)} of ${total} findings, weightiest first; ` +
    'the file table filtered by flagged lists every flagged file.';
}

// "3", or "100 of 25,000" when the server capped the list.
export function findingsCount(ov) {
  const t = truncation(ov);
  const shown = (ov.findings || []).length;
  return t && t.total !== null ? `${formatCount(shown)} of ${formatCount(t.total)}` : formatCount(shown);
}

export function metaList(f) {
  const meta = f.meta || {};
  const keys = Object.keys(meta).filter((k) => k !== 'description');
  if (keys.length === 0) {
    return null;
  }
  return h('dl', { class: 'meta' }, keys.map((k) => [h('dt', { text: k }),
    h('dd', { text: Array.isArray(meta[k]) ? meta[k].join(', ') : String(meta[k]) })]));
}

export function errorsAndLimits(ov) {
  const errors = ov.errors || [];
  const limits = ov.limits_hit || [];
  const warnings = ov.warnings || [];
  const parts = [];
  if (errors.length === 0 && limits.length === 0 && warnings.length === 0) {
    parts.push(h('p', { class: 'muted', text: 'No errors, warnings or limits hit: every part of the image was read.' }));
  }
  if (limits.length > 0) {
    parts.push(table([
      { label: 'Limit', cell: (l) => h('code', { text: l.limit }) },
      { label: 'Value', cell: (l) => String(l.value ?? '') },
      { label: 'Where', cell: (l) => pathEl(l.path) },
    ], limits, { caption: `Limits hit (${limits.length})`, className: 'compact' }));
  }
  if (errors.length > 0) {
    parts.push(table([
      { label: 'Where', cell: (e) => pathEl(e.path) },
      { label: 'Stage', cell: (e) => e.stage },
      { label: 'Code', cell: (e) => h('code', { text: e.code }) },
      { label: 'Message', cell: (e) => e.message },
      { label: 'Affects verdict', cell: (e) => (e.affects_verdict === false ? 'no' : 'yes') },
    ], errors, { caption: `Errors (${errors.length})`, className: 'compact' }));
  }
  if (warnings.length > 0) {
    parts.push(h('h3', { text: `Warnings (${warnings.length})` }),
      h('ul', null, warnings.map((w) => h('li', { text: typeof w === 'string' ? w : (w.message || JSON.stringify(w)) }))));
  }
  return parts;
}

export function reviewHistory(reviews) {
  const items = (reviews && reviews.items) || [];
  if (items.length === 0) {
    return h('p', { class: 'muted', id: 'no-reviews', text: 'No review recorded yet.' });
  }
  return h('ol', { class: 'history' }, items.map((r) => h('li', { class: 'history-item' },
    h('span', { class: ['badge', `decision-${r.decision}`], text: reviewLabel(r.decision) }), ' ',
    h('span', { text: `by ${r.reviewer ? r.reviewer.name : '?'}` }),
    r.reviewer && r.reviewer.role ? h('span', { class: 'muted', text: ` (${r.reviewer.role})` }) : null, ', ',
    timeEl(r.at),
    r.note ? h('blockquote', { class: 'note', text: r.note }) : null)));
}

export function dispositionHistory(dispositions, findingsById) {
  const items = (dispositions && dispositions.items) || [];
  if (items.length === 0) {
    return null;
  }
  return h('ol', { class: 'history' }, items.map((d) => {
    const f = findingsById.get(d.finding);
    return h('li', { class: 'history-item' },
      h('span', { class: 'badge decision-fp', text: d.false_positive ? 'False positive' : 'Mark taken back' }), ' ',
      f ? [h('strong', { text: f.rule }), ' on ', pathEl(f.path)] : h('code', { text: d.finding }),
      ` by ${d.reviewer ? d.reviewer.name : '?'}, `, timeEl(d.at),
      d.note ? h('blockquote', { class: 'note', text: d.note }) : null);
  }));
}
