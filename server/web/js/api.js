// The REST API of borderscand, called with the signed-in token. The token is
// kept in sessionStorage only: it dies with the tab, and sign-out forgets it.

const TOKEN_KEY = 'borderscan.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A failed call, carrying the RFC 9457 problem's detail when the server sent one.
export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem;
  }
}

// Called when the server no longer accepts the token (revoked, daemon's data
// dir changed): the app then shows the sign-in form again.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function authHeaders(extra = {}) {
  const headers = { ...extra };
  const t = token();
  if (t) {
    headers.Authorization = `Bearer ${t}`;
  }
  return headers;
}

export async function problemOf(response) {
  let detail = `${response.status} ${response.statusText}`;
  let problem = null;
  try {
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      problem = await response.json();
      if (problem && problem.detail) {
        detail = problem.detail;
      }
    }
  } catch {
    // A body that is not a problem document: the status line says enough.
  }
  return new ApiError(response.status, detail, problem);
}

export async function request(path, { method = 'GET', body, query, signal, raw = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        params.set(key, String(value));
      }
    }
    const qs = params.toString();
    if (qs) {
      url += `?${qs}`;
    }
  }
  const headers = authHeaders({ Accept: 'application/json' });
  const init = { method, headers, signal, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    const error = await problemOf(response);
    if (response.status === 401) {
      onUnauthorized(error);
    }
    throw error;
  }
  if (raw) {
    return response;
  }
  return response.status === 204 ? null : response.json();
}

export const api = {
  whoami: (opts) => request('/api/v1/whoami', opts),
  reports: (query, opts) => request('/api/v1/reports', { ...opts, query }),
  overview: (id, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/overview`, opts),
  verification: (id, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/verification`, opts),
  fileTypes: (id, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/file-types`, opts),
  files: (id, query, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/files`, { ...opts, query }),
  reviews: (id, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/reviews`, opts),
  addReview: (id, body) => request(`/api/v1/reports/${encodeURIComponent(id)}/reviews`, { method: 'POST', body }),
  dispositions: (id, opts) => request(`/api/v1/reports/${encodeURIComponent(id)}/dispositions`, opts),
  setDisposition: (id, finding, body) =>
    request(`/api/v1/reports/${encodeURIComponent(id)}/findings/${encodeURIComponent(finding)}/disposition`,
      { method: 'POST', body }),
  preview: (id, index, view, opts) =>
    request(`/api/v1/reports/${encodeURIComponent(id)}/files/${index}/content`, { ...opts, query: { view } }),
  evidenceZip: (id, index) =>
    request(`/api/v1/reports/${encodeURIComponent(id)}/files/${index}/content`, { raw: true }),
  seenBefore: (sha256, query, opts) => request('/api/v1/files', { ...opts, query: { sha256, ...query } }),
  activeScans: (opts) => request('/api/v1/scans', opts),
  scan: (id, opts) => request(`/api/v1/scans/${encodeURIComponent(id)}`, opts),
  cancelScan: (id) => request(`/api/v1/scans/${encodeURIComponent(id)}`, { method: 'DELETE' }),
};
