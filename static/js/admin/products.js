// The catalog for the staff: a searchable list, a form that creates or
// changes a product (its attributes as name/value rows), archiving, and
// the product's stock.

import { api, get } from '../api.js';
import {
  centsText, clear, field, h, input, money, onSubmit, pager, say, select, toCents,
} from '../dom.js';
import { action, categoryPaths, head, invalid, query, table } from './nav.js';

export async function list(main, ctx) {
  head(main, ctx, 'Products', '/admin/products');
  const q = ctx.query.get('q') || '';
  const form = h('form', { class: 'row' },
    field('Search', input('q', { type: 'search', value: q, maxlength: 200 })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
  // The search is kept in the address, so that a reload or Back keeps it.
  onSubmit(form, async (v) => ctx.navigate(`/admin/products${v.q ? `?${query({ q: v.q })}` : ''}`));

  const body = h('tbody');
  const row = (p) => h('tr', {},
    h('td', {}, h('a', { href: `/admin/products/${p.id}` }, p.name)),
    h('td', {}, p.sku),
    h('td', { class: 'num' }, money(p.price_cents, p.currency)),
    h('td', { class: 'num' }, String(p.stock_available)));
  const { wrap, load } = pager(body,
    (cursor) => get(`/products?${query({ q, limit: 25, cursor })}`, { signal: ctx.signal }),
    row, q ? 'No products match.' : 'No products yet.');
  main.append(
    h('p', {}, h('a', { href: '/admin/products/new', class: 'button' }, 'New product')),
    form,
    table('Products', ['Name', 'SKU', ['Price', 'num'], ['Available', 'num']], body),
    wrap);
  await load();
}

// An attribute's value as typed: strings as they are, anything else
// (a number, a boolean, an object) as JSON.
const shown = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// The same object whatever the order of its keys.
const canon = (o) => JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));

// The attribute rows: each has its number in its labels, so that every
// control and Remove button has a name of its own.  The name inputs are
// named "attributes", so that the API's errors on attributes land there.
function attributeRows(initial) {
  const rows = h('div', { class: 'attrs' });
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add attribute');

  function renumber() {
    [...rows.children].forEach((row, i) => {
      const [nameLabel, valueLabel] = row.querySelectorAll('label');
      nameLabel.textContent = `Attribute ${i + 1} name`;
      valueLabel.textContent = `Attribute ${i + 1} value`;
      row.querySelector('button').textContent = `Remove attribute ${i + 1}`;
    });
  }
  function addRow(key = '', value = '') {
    const row = h('div', { class: 'row attr' },
      field('', input('attributes', { value: key, maxlength: 64 })),
      field('', input('attribute_value', { value })),
      h('div', { class: 'actions' }, h('button', {
        type: 'button',
        class: 'secondary',
        onclick() {
          row.remove();
          renumber();
          add.focus();
        },
      }, '')));
    rows.append(row);
    renumber();
    return row;
  }
  add.addEventListener('click', () => addRow().querySelector('input').focus());
  for (const [k, v] of Object.entries(initial)) addRow(k, shown(v));

  // The object the rows make: a value typed as it was shown keeps its
  // JSON type (a number stays a number); anything typed is a string.
  function read() {
    const out = {};
    [...rows.children].forEach((row, i) => {
      const [k, v] = [...row.querySelectorAll('input')].map((el) => el.value.trim());
      if (!k && !v) return;
      if (!k) throw invalid('attributes', `Attribute ${i + 1} has a value but no name.`);
      if (k in out) throw invalid('attributes', `The attribute name "${k}" is given twice.`);
      out[k] = k in initial && shown(initial[k]) === v ? initial[k] : v;
    });
    return out;
  }
  const set = h('fieldset', {}, h('legend', {}, 'Attributes'),
    h('p', { class: 'hint' }, 'Free-form details such as color or size; shoppers can filter on them.'),
    rows, h('div', { class: 'actions' }, add));
  return { set, read };
}

// The product's form; p is null for a new product.
function productForm(p, categories) {
  const isNew = !p;
  const cur = p ? p.currency : 'USD';
  const options = categoryPaths(categories);
  // The API cannot set category_id back to null: "None" only while unset.
  if (isNew || !p.category_id) options.unshift(['', 'None']);
  const attrs = attributeRows(p ? p.attributes : {});
  const form = h('form', { class: 'stack' },
    field('SKU', input('sku', { value: p ? p.sku : '', required: true, maxlength: 64, autocomplete: 'off' }),
      'Unique among every product, archived ones included.'),
    field('Name', input('name', { value: p ? p.name : '', required: true, maxlength: 200 })),
    field('Description', h('textarea', { name: 'description', maxlength: 10000, value: p ? p.description : '' })),
    h('div', { class: 'row' },
      field('Price', input('price_cents', {
        value: p ? centsText(p.price_cents, cur) : '', required: true, inputmode: 'decimal', autocomplete: 'off',
      }), 'In the currency, e.g. 19.99.'),
      field('Currency', input('currency', {
        value: cur, required: true, minlength: 3, maxlength: 3, autocapitalize: 'characters',
      }), 'Three letters, e.g. USD.')),
    field('Category', select('category_id', options, p ? p.category_id || '' : ''),
      isNew || !p.category_id ? null : 'A category can be changed but not removed.'),
    isNew ? field('Stock', input('stock', { type: 'number', min: 0, max: 1000000000, step: 1, value: '0' }),
      'Units on hand to start with.') : null,
    attrs.set,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, isNew ? 'Create product' : 'Save product')));

  // The request body from the form; throws for a value the API would
  // refuse in a less helpful way.
  function body(v) {
    const currency = v.currency.toUpperCase();
    const price = toCents(v.price_cents, currency);
    if (Number.isNaN(price)) throw invalid('price_cents', `Type a price such as ${centsText(1999, currency)}.`);
    const out = {
      sku: v.sku, name: v.name, description: v.description, price_cents: price, currency,
      attributes: attrs.read(),
    };
    if (v.category_id) out.category_id = v.category_id;
    if (isNew) out.stock = v.stock === '' ? 0 : Number(v.stock);
    return out;
  }
  return { form, body };
}

// 409 sku_taken names no field, but it is the SKU's problem.
async function save(method, path, b) {
  try {
    return await api(method, path, b);
  } catch (err) {
    throw err.code === 'sku_taken' ? invalid('sku', err.message) : err;
  }
}

export async function create(main, ctx) {
  const categories = (await get('/categories', { signal: ctx.signal })).data;
  head(main, ctx, 'New product', '/admin/products');
  const { form, body } = productForm(null, categories);
  onSubmit(form, async (v) => {
    const p = await save('POST', '/products', body(v));
    say('Product created');
    ctx.navigate(`/admin/products/${p.id}`);
  });
  main.append(form);
}

function inventory(id, inv) {
  const counts = h('dl', { class: 'facts' });
  const draw = () => clear(counts,
    h('dt', {}, 'On hand'), h('dd', {}, String(inv.on_hand)),
    h('dt', {}, 'Reserved'), h('dd', {}, String(inv.reserved)),
    h('dt', {}, 'Available'), h('dd', {}, String(inv.available)));
  draw();
  const form = h('form', { class: 'stack', 'aria-labelledby': 'stock-set' },
    h('h3', { id: 'stock-set' }, 'Set stock on hand'),
    field('On hand', input('on_hand', {
      type: 'number', min: 0, max: 1000000000, step: 1, required: true, value: String(inv.on_hand),
    }), 'Cannot fall under the units reserved by orders.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save stock')));
  // Sent with the count the page showed: units that shipped meanwhile
  // (or a colleague's count) are not overwritten unseen.
  onSubmit(form, async (v) => {
    try {
      inv = await api('PUT', `/inventory/${id}`, { on_hand: Number(v.on_hand), expected_on_hand: inv.on_hand });
    } catch (err) {
      if (err.code === 'on_hand_changed') {
        inv = await get(`/inventory/${id}`);
        draw();
        throw invalid('on_hand', `On hand changed meanwhile to ${inv.on_hand}: check your count, then save again.`);
      }
      throw err.code === 'stock_below_reserved' ? invalid('on_hand', err.message) : err;
    }
    draw();
    say('Stock saved');
  });
  return h('section', { 'aria-labelledby': 'stock-h' }, h('h2', { id: 'stock-h' }, 'Inventory'), counts, form);
}

export async function edit(main, ctx) {
  const id = ctx.params[0];
  const opts = { signal: ctx.signal };
  let [p, categories, inv] = await Promise.all([
    get(`/products/${id}`, opts), get('/categories', opts).then((r) => r.data), get(`/inventory/${id}`, opts)]);
  head(main, ctx, `Edit ${p.name}`, '/admin/products');
  const heading = main.querySelector('h1');
  const { form, body } = productForm(p, categories);
  onSubmit(form, async (v) => {
    const b = body(v);
    // Only what changed: a merge patch replaces what it is given.
    const patch = {};
    for (const [k, val] of Object.entries(b)) {
      const same = k === 'attributes' ? canon(val) === canon(p.attributes) : val === p[k];
      if (!same) patch[k] = val;
    }
    if (!Object.keys(patch).length) {
      say('Nothing to save: no field changed');
      return;
    }
    p = await save('PATCH', `/products/${id}`, patch);
    heading.textContent = `Edit ${p.name}`;
    ctx.title(`Edit ${p.name}`);
    say('Product saved');
  });

  const archiveAlert = h('div', { class: 'alert', role: 'alert' });
  const archive = action(h('button', { type: 'button', class: 'danger' }, 'Archive product'), async () => {
    if (!window.confirm(`Archive "${p.name}"? It leaves the shop for good; orders keep it.`)) return;
    await api('DELETE', `/products/${id}`);
    say('Product archived');
    ctx.navigate('/admin/products');
  }, archiveAlert);

  main.append(
    h('p', {}, h('a', { href: `/products/${id}` }, 'See it in the shop')),
    form,
    inventory(id, inv),
    h('section', { 'aria-labelledby': 'archive-h' }, h('h2', { id: 'archive-h' }, 'Archive'),
      h('p', {}, 'An archived product leaves the shop and cannot come back; its SKU stays taken.'),
      archiveAlert, h('div', { class: 'actions' }, archive)));
}
