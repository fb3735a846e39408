// The admin console's own navigation, shown under each admin page's
// heading, and the small pieces its pages share.

import { h, say } from '../dom.js';

const PAGES = [
  ['/admin', 'Dashboard'],
  ['/admin/products', 'Products'],
  ['/admin/categories', 'Categories'],
  ['/admin/orders', 'Orders'],
  ['/admin/users', 'Users'],
  ['/admin/outbox', 'Outbox'],
];

// current: the path of the page on view (or of its section, e.g.
// /admin/products for a product's edit page).
export function adminNav(current) {
  return h('nav', { 'aria-label': 'Admin', class: 'subnav' },
    h('ul', {}, PAGES.map(([href, text]) => h('li', {},
      h('a', { href, 'aria-current': href === current ? 'page' : null }, text)))));
}

// The start of every admin page: its title, its h1 and the navigation.
export function head(main, ctx, heading, section) {
  ctx.title(heading);
  main.append(h('h1', {}, heading), adminNav(section));
}

// A table with column headers; cols are the header texts, or
// [text, class] for numeric columns.  Its wrapper scrolls sideways on a
// narrow screen, so it is a named region the keyboard can reach (and
// scroll with the arrow keys).
export function table(name, cols, body) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': name, tabindex: '0' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map((c) => (Array.isArray(c)
      ? h('th', { scope: 'col', class: c[1] }, c[0])
      : h('th', { scope: 'col' }, c))))),
    body));
}

// A button's action: the button is disabled while it runs, and an
// ApiError's message is shown in the role=alert box given (announced at
// once), or else told by the toast.
export function action(button, run, alertBox) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    if (alertBox) alertBox.replaceChildren();
    try {
      await run();
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (alertBox) alertBox.append(h('p', {}, err.message));
      else say(err.message);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// The categories (GET /categories: a flat list naming parents) as
// options, each written as its path ("Home › Kitchen"), in path order.
export function categoryPaths(list) {
  const byId = new Map(list.map((c) => [c.id, c]));
  const path = (c, seen = new Set()) => {
    // A loop cannot come from the API, but must not hang the page.
    if (!c.parent_id || !byId.has(c.parent_id) || seen.has(c.id)) return c.name;
    seen.add(c.id);
    return `${path(byId.get(c.parent_id), seen)} › ${c.name}`;
  };
  return list.map((c) => [c.id, path(c)]).sort((a, b) => a[1].localeCompare(b[1]));
}

// An error for showError() (and so for onSubmit) that belongs beside the
// control named name: a value refused before it is sent, or a problem
// the API names no field for (409 sku_taken belongs beside the SKU).
export function invalid(name, message) {
  return Object.assign(new Error(message), { fields: [{ field: name, message }] });
}

// A query string of the parameters that have a value.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  return q.toString();
}
