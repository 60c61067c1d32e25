// The review console: sign-in, role, and a small router on location.pathname
// (the daemon serves index.html for every app path, so links and reloads work).

import { api, forgetToken, setToken, setUnauthorizedHandler, token } from './api.js';
import { clear, h } from './dom.js';
import { renderQueue } from './queue.js';
import { renderReport } from './report.js';
import { renderPrint } from './print.js';
import { renderUpload } from './upload.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const whoName = document.getElementById('who-name');
const announcer = document.getElementById('announcer');

// The signed-in identity: { name, role } from GET /api/v1/whoami.
let identity = null;
// The view on screen: its number (route() counts up), an AbortController its
// requests carry (aborted when it is left) and its own teardown.
let navigation = 0;
let view = null;
// pathname + search of the view on screen: a popstate that changes only the
// hash (a same-page link such as the report's table of contents or the skip
// link, or Back after one) keeps the page as it is.
let shownLocation = null;

export function announce(message) {
  // Cleared first so that the same message twice is announced twice.
  announcer.textContent = '';
  setTimeout(() => {
    announcer.textContent = message;
  }, 50);
}

export function can(what) {
  const role = identity && identity.role;
  const rights = {
    upload: ['station', 'admin'],
    review: ['reviewer', 'admin'],
    evidence: ['reviewer', 'admin'],
    seenBefore: ['reviewer', 'admin'],
    allStations: ['reviewer', 'admin'],
  };
  return Boolean(role && rights[what] && rights[what].includes(role));
}

export function navigate(path, { replace = false } = {}) {
  if (replace) {
    history.replaceState(null, '', path);
  } else {
    history.pushState(null, '', path);
  }
  route();
}

function routes() {
  return [
    { pattern: /^\/$/, view: (ctx) => renderQueue(ctx), name: 'queue' },
    { pattern: /^\/upload\/?$/, view: (ctx) => renderUpload(ctx), name: 'upload', allowed: () => can('upload') },
    { pattern: /^\/reports\/([0-9a-f]{32})\/print\/?$/, view: (ctx, m) => renderPrint(ctx, m[1]), name: 'print' },
    { pattern: /^\/reports\/([0-9a-f]{32})\/?$/, view: (ctx, m) => renderReport(ctx, m[1]), name: 'report' },
  ];
}

function showError(container, title, message) {
  clear(container);
  container.append(
    h('h1', { tabindex: '-1', text: title }),
    h('p', { class: 'error', role: 'alert', text: message }),
    h('p', null, h('a', { href: '/', 'data-nav': true, text: 'Back to the reports' })));
}

// Leaves the view on screen: its requests are aborted and a view still
// loading sees that it is no longer current (it must not touch the page).
function leaveView() {
  navigation += 1;
  const old = view;
  view = null;
  if (!old) {
    return;
  }
  old.controller.abort();
  if (old.cleanup) {
    try {
      old.cleanup();
    } catch {
      // A view's teardown failing must not stop the next view.
    }
  }
}

async function route() {
  leaveView();
  const mine = navigation;
  shownLocation = location.pathname + location.search;
  clear(main);
  document.body.classList.remove('print-view');
  if (!token() || !identity) {
    renderSignIn();
    return;
  }
  const path = location.pathname;
  for (const link of nav.querySelectorAll('a[data-route]')) {
    const current = (link.dataset.route === 'queue' && path === '/') ||
      (link.dataset.route !== 'queue' && path.startsWith(`/${link.dataset.route}`));
    if (current) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
  const entry = routes().map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!entry) {
    document.title = 'Not found · Borderscan';
    showError(main, 'Page not found', `There is no page at ${path}.`);
    return;
  }
  if (entry.r.allowed && !entry.r.allowed()) {
    document.title = 'Not allowed · Borderscan';
    showError(main, 'Not available', `A ${identity.role} token cannot use this page.`);
    return;
  }
  const current = { controller: new AbortController(), cleanup: null };
  view = current;
  const isCurrent = () => navigation === mine;
  // A view checks isCurrent() after every await before it touches main, and
  // passes signal to its requests; onCleanup registers its teardown.
  const ctx = {
    main, identity, can, navigate, announce, isCurrent, signal: current.controller.signal,
    onCleanup: (fn) => {
      if (isCurrent()) {
        current.cleanup = fn;
      } else {
        fn();  // left before it finished loading
      }
    },
  };
  try {
    await entry.r.view(ctx, entry.m);
  } catch (error) {
    if (!isCurrent()) {
      return;  // the user has moved on: the error belongs to a page no longer shown
    }
    if (error.status === 401) {
      return;  // the sign-in form is already showing
    }
    showError(main, 'Something went wrong', error.message || String(error));
  }
  if (!isCurrent()) {
    return;
  }
  // Move focus to the new page's heading so keyboard and screen-reader users
  // start reading there, as after a full page load.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

function showIdentity() {
  const signedIn = Boolean(identity);
  nav.hidden = !signedIn;
  who.hidden = !signedIn;
  whoName.textContent = signedIn ? `${identity.name} (${identity.role})` : '';
  for (const item of nav.querySelectorAll('[data-roles]')) {
    item.hidden = !signedIn || !item.dataset.roles.split(' ').includes(identity.role);
  }
}

function signOut(message) {
  forgetToken();
  identity = null;
  showIdentity();
  leaveView();
  shownLocation = location.pathname + location.search;
  renderSignIn(message);
}

function renderSignIn(message) {
  document.title = 'Sign in · Borderscan';
  clear(main);
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help',
  });
  const status = h('p', { id: 'sign-in-status', class: 'error', role: 'alert' });
  if (message) {
    status.textContent = message;
  }
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', text: 'Sign in' }),
    h('label', { for: 'token', text: 'Access token' }),
    input,
    h('p', { id: 'token-help', class: 'help', text: 'The bst_… token your administrator gave you. It is kept in this browser tab only and forgotten when you sign out or close the tab.' }),
    submit,
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      status.textContent = 'Enter a token.';
      input.focus();
      return;
    }
    submit.disabled = true;
    status.textContent = '';
    setToken(value);
    try {
      identity = await api.whoami();
      showIdentity();
      announce(`Signed in as ${identity.name}, ${identity.role}.`);
      await route();
    } catch (error) {
      forgetToken();
      identity = null;
      status.textContent = error.status === 401
        ? 'This token was not accepted. Check it and try again.'
        : `Could not sign in: ${error.message}`;
      submit.disabled = false;
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}

// Same-origin links marked data-nav change the view without a page load.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-nav]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) {
    return;
  }
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => {
  if (shownLocation !== null && location.pathname + location.search === shownLocation) {
    return;  // only the hash changed: the browser scrolls to it, the page stays
  }
  route();
});

document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  announce('Signed out.');
});

setUnauthorizedHandler(() => {
  if (identity) {
    signOut('The server no longer accepts this token. Sign in again.');
  }
});

async function start() {
  if (token()) {
    try {
      identity = await api.whoami();
    } catch (error) {
      identity = null;
      if (error.status === 401) {
        forgetToken();
      } else {
        showIdentity();
        renderSignIn(`The server could not be reached: ${error.message}`);
        return;
      }
    }
  }
  showIdentity();
  await route();
}

start();
