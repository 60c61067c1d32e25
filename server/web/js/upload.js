// Upload an image (station, admin): the upload's progress from XMLHttpRequest
// upload events (fetch cannot report upload progress without streams that
// need HTTP/2), then the scan's progress from its event stream, then the
// verdict with a link to the report.

import { api, authHeaders, problemOf } from './api.js';
import { followEvents } from './sse.js';
import { formatBytes, formatCount, h, verdictBadge, verdictLabel } from './dom.js';

function uploadImage(file, query, onProgress) {
  const xhr = new XMLHttpRequest();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value) {
      params.set(key, value);
    }
  }
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', `/api/v1/scans?${params}`);
    for (const [key, value] of Object.entries(authHeaders({ Accept: 'application/json' }))) {
      xhr.setRequestHeader(key, value);
    }
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', async () => {
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') || '' },
      });
      if (xhr.status === 202) {
        resolve(await response.json());
      } else {
        reject(await problemOf(response));
      }
    });
    xhr.addEventListener('error', () => reject(new Error('the connection to the server failed during the upload')));
    xhr.addEventListener('abort', () => reject(Object.assign(new Error('upload cancelled'), { name: 'AbortError' })));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

function progressRow(id, label) {
  const bar = h('progress', { id, max: 100, value: 0 });
  const text = h('span', { class: 'progress-text', id: `${id}-text` });
  return { row: h('div', { class: 'progress-row' }, h('label', { for: id, text: label }), bar, text), bar, text };
}

export function renderUpload(ctx) {
  const { main } = ctx;
  document.title = 'Upload an image · Borderscan';
  const fileInput = h('input', { id: 'image-file', name: 'image', type: 'file', required: true, 'aria-describedby': 'image-help' });
  const label = h('input', { id: 'label', name: 'label', type: 'text', maxlength: 256, autocomplete: 'off' });
  const caseRef = h('input', { id: 'case-ref', name: 'case_ref', type: 'text', maxlength: 256, autocomplete: 'off' });
  const submit = h('button', { type: 'submit', text: 'Upload and scan' });
  const cancel = h('button', { type: 'button', class: 'secondary', text: 'Cancel', hidden: true });
  const form = h('form', { class: 'upload-form', 'aria-labelledby': 'upload-title' },
    h('div', { class: 'field' }, h('label', { for: 'image-file', text: 'Image file' }), fileInput,
      h('p', { id: 'image-help', class: 'help', text: 'The raw image of the device (.img, .dd, .raw, .E01, .vhd, .vmdk, .iso).' })),
    h('div', { class: 'field' }, h('label', { for: 'label', text: 'Label (optional, e.g. bag tag)' }), label),
    h('div', { class: 'field' }, h('label', { for: 'case-ref', text: 'Case reference (optional)' }), caseRef),
    h('div', { class: 'field buttons' }, submit, cancel));
  const up = progressRow('upload-progress', 'Upload');
  const scan = progressRow('scan-progress', 'Scan');
  const status = h('p', { id: 'upload-status', class: 'form-status', 'aria-live': 'polite', role: 'status' });
  const result = h('div', { id: 'upload-result', 'aria-live': 'polite' });
  const progress = h('section', { class: 'card', 'aria-labelledby': 'progress-title', hidden: true },
    h('h2', { id: 'progress-title', text: 'Progress' }), up.row, scan.row, status, result);
  main.append(h('h1', { id: 'upload-title', text: 'Upload an image' }), form, progress);

  let current = null;  // { abort } of the running upload or stream
  let scanId = null;
  ctx.onCleanup(() => {
    // Leaving the page stops following the scan; the scan itself goes on.
    // An upload still running is cut off (the server keeps nothing).
    if (current) {
      current.abort();
    }
  });

  cancel.addEventListener('click', async () => {
    if (scanId) {
      try {
        await api.cancelScan(scanId);
        status.textContent = 'Cancel requested.';
      } catch (error) {
        status.textContent = `Could not cancel: ${error.message}`;
      }
    } else if (current) {
      current.abort();
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = 'Choose an image file first.';
      fileInput.focus();
      return;
    }
    progress.hidden = false;
    result.replaceChildren();
    submit.disabled = true;
    cancel.hidden = false;
    scanId = null;
    up.bar.value = 0;
    scan.bar.value = 0;
    scan.bar.removeAttribute('value');  // indeterminate until the scan reports counts
    scan.text.textContent = 'waiting for the upload';
    status.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
    let lastAnnounced = -1;
    const started = Date.now();
    const upload = uploadImage(file, { filename: file.name.replace(/[/\\]/g, '_').slice(0, 256), label: label.value.trim(), case_ref: caseRef.value.trim() },
      (loaded, total) => {
        const pct = total ? Math.floor((100 * loaded) / total) : 0;
        up.bar.value = pct;
        const seconds = (Date.now() - started) / 1000;
        const rate = seconds > 0 ? loaded / seconds : 0;
        up.text.textContent = `${pct}% · ${formatBytes(loaded)} of ${formatBytes(total)}${rate ? ` · ${formatBytes(rate)}/s` : ''}`;
        // Announce in steps of a quarter, not every event.
        if (Math.floor(pct / 25) !== lastAnnounced) {
          lastAnnounced = Math.floor(pct / 25);
          status.textContent = `Uploading: ${pct}%`;
        }
      });
    current = upload;
    let accepted;
    try {
      accepted = await upload.promise;
    } catch (error) {
      status.textContent = error.name === 'AbortError' ? 'Upload cancelled; nothing was kept.' : `Upload failed: ${error.message}`;
      submit.disabled = false;
      cancel.hidden = true;
      current = null;
      return;
    }
    up.bar.value = 100;
    scanId = accepted.id;
    status.textContent = `Uploaded; SHA-256 ${accepted.image_sha256}. Scan queued.`;
    scan.text.textContent = 'queued';
    form.reset();

    const finish = (scanObject, kind) => {
      cancel.hidden = true;
      submit.disabled = false;
      current = null;
      result.replaceChildren();
      if (kind === 'done') {
        scan.bar.value = 100;
        scan.text.textContent = 'done';
        status.textContent = `Scan finished: ${verdictLabel(scanObject.verdict)}.`;
        result.append(
          h('p', { class: 'verdict-line' }, 'Verdict: ', verdictBadge(scanObject.verdict),
            typeof scanObject.score === 'number' ? h('span', { class: 'score-big', text: ` score ${scanObject.score}` }) : null),
          h('p', null, h('a', { class: 'button', href: `/reports/${scanObject.id}`, 'data-nav': true, text: 'Open the report' })));
      } else {
        scan.text.textContent = kind;
        status.textContent = kind === 'cancelled' ? 'The scan was cancelled.' : `The scan failed: ${scanObject.error || 'no reason given'}`;
        result.append(h('p', { class: 'error', role: 'alert', text: status.textContent }));
      }
    };

    const stream = followEvents(`/api/v1/scans/${scanId}/events`, {
      onEvent: (e) => {
        let s;
        try {
          s = JSON.parse(e.data);
        } catch {
          return true;
        }
        if (e.type === 'done' || e.type === 'failed' || e.type === 'cancelled') {
          finish(s, e.type);
          return false;
        }
        const p = s.progress || {};
        if (s.status === 'running') {
          if (p.bytes_total) {
            scan.bar.value = Math.min(99, Math.floor((100 * p.bytes_done) / p.bytes_total));
          }
          scan.text.textContent = `${formatCount(p.files_done)} of ${formatCount(p.files_found)} files · ${formatBytes(p.bytes_done)} of ${formatBytes(p.bytes_total)}`;
          if (e.type === 'status') {
            status.textContent = 'Scanning…';
          }
        } else {
          scan.text.textContent = s.status;
        }
        return true;
      },
      onState: (state) => {
        if (state === 'reconnecting') {
          scan.text.textContent = 'connection lost; reconnecting…';
        }
      },
      onError: (error) => {
        status.textContent = `Cannot follow the scan: ${error.message}`;
      },
    });
    current = { abort: () => stream.stop() };
  });
}
