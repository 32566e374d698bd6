// The dashboard shell: sign-in, hash routing (#/fleet, #/devices/<id>, ...) and live refresh by
// polling the JSON API every few seconds without reloading the page.
import { api, ApiError, checkToken, session } from './api.js';
import { append, clear, h } from './dom.js';
import { fleetPage } from './pages/fleet.js';
import { patchesPage } from './pages/patches.js';
import { rolloutsPage } from './pages/rollouts.js';
import { devicesPage, devicePage } from './pages/devices.js';

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
let timer = null;
let renderSeq = 0;

function route() {
  const parts = (location.hash || '#/fleet').replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { page: parts[0] || 'fleet', arg: parts[1] || '' };
}

const pages = {
  fleet: () => fleetPage(),
  patches: () => patchesPage(),
  rollouts: (arg) => rolloutsPage(arg, { confirm: askConfirm, readOnly: session.demo && !session.token }),
  devices: (arg) => (arg ? devicePage(arg) : devicesPage()),
};

export function status(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function askConfirm(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

async function render({ quiet = false } = {}) {
  const seq = ++renderSeq;
  const { page, arg } = route();
  const build = pages[page] || pages.fleet;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    const content = await build(arg);
    if (seq !== renderSeq) return;  // a newer render started meanwhile
    const target = $('page');
    // A background refresh never replaces a form the operator is typing into or a search box.
    const active = document.activeElement;
    if (quiet && active && target.contains(active) && active.matches('input, select, textarea')) return;
    append(clear(target), [content]);
    status(`Updated ${new Date().toLocaleTimeString()}${session.demo && !session.token ? ' · read-only demo' : ''}`);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) {
      signOut('The server refused the token. Sign in again.');
      return;
    }
    status(e instanceof ApiError ? `Error: ${e.message}` : `Error: ${e}`, true);
  }
}

function showApp() {
  $('login').hidden = true;
  $('page').hidden = false;
  $('nav').hidden = false;
  $('session').hidden = false;
  $('mode').textContent = session.token ? 'signed in' : 'read-only demo';
  $('logout').textContent = session.token ? 'Sign out' : 'Sign in';
  render();
  clearInterval(timer);
  timer = setInterval(() => render({ quiet: true }), REFRESH_MS);
}

function signOut(message = '') {
  clearInterval(timer);
  session.token = '';
  session.demo = false;
  clear($('page'));
  $('page').hidden = true;
  $('nav').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').value = '';
  $('token').focus();
  status('');
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  session.token = token;
  try {
    await checkToken();
    $('token').value = '';
    $('login-error').textContent = '';
    showApp();
  } catch (e) {
    session.token = '';
    $('login-error').textContent = e instanceof ApiError && e.status === 401
      ? 'This token was refused by the server.'
      : `Cannot sign in: ${e.message}`;
    clear($('page'));
  }
}

async function start() {
  $('login-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => { if (!$('page').hidden) render(); });
  if (session.token) {
    try {
      await checkToken();
      showApp();
      return;
    } catch (e) {
      session.token = '';
    }
  }
  // A server started with --ui-demo answers the read-only views without a token.
  try {
    await api('/admin/builds');
    session.demo = true;
    showApp();
  } catch (e) {
    signOut();
  }
}

start();
export { h };
