// The printable report for the case file: the same facts as the report page,
// laid out for A4 by css/print.css, with the report's SHA-256 and signature
// status. Only what the signed-in role may read is printed.

import { clear, formatBytes, formatCount, formatTime, h, pathEl, severityBadge, table, timeEl } from './dom.js';
import {
  describeFinding, dispositionHistory, errorsAndLimits, findingsBySeverity, findingsCount, imageFacts, reviewHistory,
  scoreReasons, summaryFacts, truncation, truncationText, verdictBlock, volumesTable,
} from './facts.js';
import { loadReport } from './report.js';

export async function renderPrint(ctx, id) {
  const { main } = ctx;
  document.title = 'Printable report · Borderscan';
  main.append(h('h1', { text: 'Printable report' }), h('p', { role: 'status', text: 'Loading the report…' }));
  const loaded = await loadReport(ctx, id);
  if (!loaded) {
    return;  // the user moved to another page meanwhile: leave it alone
  }
  const { ov, verification, types, reviews, dispositions } = loaded;
  const reviewer = ctx.can('review');
  const name = (ov.image && ov.image.name) || id;
  document.title = `${name} · Borderscan report`;
  document.body.classList.add('print-view');
  clear(main);

  const printButton = h('button', { type: 'button', text: 'Print', on: { click: () => window.print() } });
  const current = dispositions ? dispositions.current || {} : {};
  const findings = findingsBySeverity(ov.findings).flatMap(([, list]) => list);

  main.append(
    h('div', { class: 'print-actions no-print' },
      h('a', { href: `/reports/${id}`, 'data-nav': true, text: '‹ Back to the report' }), ' ', printButton),
    h('article', { class: 'printable' },
      h('header', { class: 'print-head' },
        h('h1', null, 'Borderscan scan report: ', h('span', { text: name })),
        h('p', { class: 'muted' }, 'Scan ', h('code', { text: id }), ` · printed ${formatTime(new Date().toISOString())} by ${ctx.identity.name} (${ctx.identity.role})`)),
      h('section', { class: 'print-section' }, h('h2', { text: 'Verdict' }),
        verdictBlock(ov, dispositions && dispositions.derived_verdict), scoreReasons(ov)),
      h('section', { class: 'print-section' }, h('h2', { text: 'Image and integrity' }), imageFacts(ov, verification)),
      h('section', { class: 'print-section' }, h('h2', { text: 'Summary' }), summaryFacts(ov)),
      h('section', { class: 'print-section' }, h('h2', { text: `Findings (${findingsCount(ov)})` }),
        truncation(ov) ? h('p', { class: 'notice', text: truncationText(truncation(ov)) }) : null,
        findings.length === 0 ? h('p', { text: 'No findings.' }) : table([
          { label: 'Severity', cell: (f) => severityBadge(f.severity) },
          { label: 'Rule', cell: (f) => [h('strong', { text: f.rule }), h('div', { class: 'small', text: describeFinding(f) })] },
          { label: 'File', cell: (f) => pathEl(f.path) },
          { label: 'Matched', cell: (f) => (f.matches || []).slice(0, 3).map((m) => h('div', null, h('code', { class: 'match-text', text: `${m.identifier} @${m.offset}: ${m.text}` }))) },
          reviewer ? { label: 'Mark', cell: (f) => (current[f.id] && current[f.id].false_positive ? `false positive (${current[f.id].reviewer.name})` : '') } : null,
        ].filter(Boolean), findings, { className: 'compact' })),
      h('section', { class: 'print-section' }, h('h2', { text: 'Volumes' }), volumesTable(ov)),
      h('section', { class: 'print-section' }, h('h2', { text: 'File types' }),
        types && types.items.length ? table([
          { label: 'Type', cell: (t) => h('code', { text: t.mime }) },
          { label: 'Files', class: 'num', cell: (t) => formatCount(t.files) },
          { label: 'Bytes', class: 'num', cell: (t) => formatBytes(t.bytes) },
        ], types.items.slice(0, 20), { className: 'compact', caption: types.items.length > 20 ? `The 20 commonest of ${types.items.length} types` : null })
          : h('p', { class: 'muted', text: types ? 'No typed files.' : 'File types unavailable.' })),
      h('section', { class: 'print-section' }, h('h2', { text: 'Errors and limits' }), errorsAndLimits(ov)),
      reviewer ? h('section', { class: 'print-section' }, h('h2', { text: 'Review history' }), reviewHistory(reviews),
        dispositionHistory(dispositions, new Map((ov.findings || []).map((f) => [f.id, f])))) : null,
      h('footer', { class: 'print-foot' },
        h('p', null, 'Report SHA-256: ', h('code', { class: 'hash', text: (verification && verification.report_sha256) || '–' })),
        h('p', null, 'Finished ', timeEl(ov.finished_at), ` · scanner ${ov.scanner_version || '–'}`))));
}
