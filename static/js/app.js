// The shell: routes real paths (/products/17, /admin/orders) to pages,
// loaded as modules when first needed, and keeps the header's links in
// step with the session.  The web server answers every such path with
// index.html (doc/web-ui.md), so a link or a reload works anywhere.

import { get, logout, onSession, restore, session } from './api.js';
import { clear, h, say } from './dom.js';

const ROUTES = [
  [/^\/$/, 'pages/home.js', 'home'],
  [/^\/search$/, 'pages/search.js', 'search'],
  [/^\/products\/([1-9][0-9]{0,18})$/, 'pages/product.js', 'product'],
  [/^\/categories\/([1-9][0-9]{0,18})$/, 'pages/search.js', 'category'],
  [/^\/cart$/, 'pages/cart.js', 'cart', 'user'],
  [/^\/checkout$/, 'pages/checkout.js', 'checkout', 'user'],
  [/^\/orders$/, 'pages/orders.js', 'list', 'user'],
  [/^\/orders\/([1-9][0-9]{0,18})$/, 'pages/orders.js', 'detail', 'user'],
  [/^\/notifications$/, 'pages/account.js', 'notifications', 'user'],
  [/^\/account$/, 'pages/account.js', 'profile', 'user'],
  [/^\/login$/, 'pages/account.js', 'login'],
  [/^\/register$/, 'pages/account.js', 'register'],
  [/^\/forgot-password$/, 'pages/account.js', 'forgotPassword'],
  [/^\/reset-password$/, 'pages/account.js', 'resetPassword'],
  [/^\/verify-email$/, 'pages/account.js', 'verifyEmail'],
  [/^\/admin$/, 'admin/dashboard.js', 'dashboard', 'admin'],
  [/^\/admin\/products$/, 'admin/products.js', 'list', 'admin'],
  [/^\/admin\/products\/new$/, 'admin/products.js', 'create', 'admin'],
  [/^\/admin\/products\/([1-9][0-9]{0,18})$/, 'admin/products.js', 'edit', 'admin'],
  [/^\/admin\/categories$/, 'admin/categories.js', 'tree', 'admin'],
  [/^\/admin\/orders$/, 'admin/orders.js', 'list', 'admin'],
  [/^\/admin\/orders\/([1-9][0-9]{0,18})$/, 'admin/orders.js', 'detail', 'admin'],
  [/^\/admin\/users$/, 'admin/users.js', 'list', 'admin'],
  [/^\/admin\/outbox$/, 'admin/outbox.js', 'outbox', 'admin'],
];

const main = document.getElementById('main');
let current = null; // the AbortController of the page on view

// Returns when the new page is drawn.
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  return render();
}

// What a page gets: where it draws, its path parameters and query, a
// signal that aborts when the shopper leaves (long polls stop), and
// the title setter.
function context(params, signal) {
  return {
    params,
    query: new URLSearchParams(location.search),
    signal,
    navigate,
    title(text) {
      document.title = `${text} · agora`;
    },
  };
}

function notFound() {
  document.title = 'Not found · agora';
  clear(main, h('h1', {}, 'Page not found'),
    h('p', {}, 'There is nothing at this address. ', h('a', { href: '/' }, 'Go to the shop'), '.'));
}

function forbidden() {
  document.title = 'Not allowed · agora';
  clear(main, h('h1', {}, 'Not allowed'),
    h('p', {}, 'This page is for the shop\'s staff. ', h('a', { href: '/' }, 'Go to the shop'), '.'));
}

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const { signal } = current;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const route = ROUTES.map((r) => [r, r[0].exec(path)]).find(([, m]) => m);
  markNav(path);
  if (!route) return notFound();
  const [[, file, view, need], match] = route;
  const who = session();
  if (need && !who) {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`,
      { replace: true });
    return undefined;
  }
  if (need === 'admin' && who.role !== 'admin') return forbidden();
  try {
    const mod = await import(`./${file}`);
    if (signal.aborted) return undefined;
    clear(main);
    await mod[view](main, context(match.slice(1), signal));
  } catch (err) {
    if (err.name === 'AbortError' || signal.aborted) return undefined;
    if (err.status === 404) return notFound();
    if (err.status === 403) return forbidden();
    if (err.status === 401) {
      // The session ended while the page was open (refresh refused).
      navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`,
        { replace: true });
      return undefined;
    }
    clear(main, h('h1', {}, 'Something went wrong'), h('p', { role: 'alert' }, err.message));
  }
  // After a move, the page's heading takes focus, so that a screen
  // reader starts there and Tab goes on from it.
  if (!signal.aborted && render.moved) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: false });
    }
  }
  render.moved = true;
  return undefined;
}

// --- the header ------------------------------------------------------------

const nav = document.getElementById('nav');
let cartCount = null;

function link(href, text, extra = {}) {
  return h('li', {}, h('a', { href, ...extra }, text));
}

function drawNav() {
  const who = session();
  const items = [];
  if (who) {
    items.push(link('/cart', cartCount === null ? 'Cart' : `Cart (${cartCount})`, { id: 'nav-cart' }));
    items.push(link('/orders', 'Orders'));
    items.push(link('/account', 'Account'));
    if (who.role === 'admin') items.push(link('/admin', 'Admin'));
    items.push(h('li', {}, h('button', { type: 'button', class: 'linkish', onclick: onLogout }, 'Log out')));
  } else {
    items.push(link('/login', 'Log in'));
    items.push(link('/register', 'Create account'));
  }
  clear(nav, items);
  markNav(location.pathname);
}

function markNav(path) {
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// The cart's count in the header; pages call it after changing the cart.
export async function refreshCart() {
  if (!session()) {
    cartCount = null;
  } else {
    try {
      cartCount = (await get('/cart')).item_count;
    } catch {
      cartCount = null;
    }
  }
  drawNav();
}

async function onLogout() {
  await logout();
  say('You are logged out.');
  navigate('/');
}

// Same-origin links move within the page; downloads, new tabs and the
// API's own URLs are left to the browser.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  ev.preventDefault();
  if (url.hash && url.pathname === location.pathname && url.search === location.search) {
    document.getElementById(url.hash.slice(1))?.focus();
    return;
  }
  navigate(url.pathname + url.search);
});

document.querySelector('form.search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = new FormData(ev.target).get('q').trim();
  navigate(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
});

window.addEventListener('popstate', render);

onSession(() => refreshCart());

(async () => {
  await restore();
  drawNav();
  await render();
  if (session()) refreshCart();
})();
