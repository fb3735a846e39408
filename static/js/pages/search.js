// Search and browse: the full-text box, category, price range, stock and
// attribute filters, the sorts, and keyset pages ("Load more").  The
// filters live in the URL, so a search can be linked and reloaded.

import { ApiError, get } from '../api.js';
import { field, h, input, money, say, select, stars, toCents, centsText } from '../dom.js';

const SORTS = [['', 'Best match'], ['newest', 'Newest'], ['price', 'Price: low to high'],
  ['-price', 'Price: high to low'], ['rating', 'Rating']];
const PAGE = 20;

export function productCard(p) {
  return h('li', { class: 'card' },
    h('h3', {}, h('a', { href: `/products/${p.id}` }, p.name)),
    h('span', { class: 'price' }, money(p.price_cents, p.currency)),
    h('span', {}, p.stock_available > 0 ? `In stock (${p.stock_available})` : 'Out of stock'),
    stars(p.rating_avg, p.rating_count));
}

// The API's query from the page's: prices are typed in the shop's
// currency as decimals and sent in minor units.
function apiQuery(q, category) {
  const out = new URLSearchParams();
  for (const k of ['q', 'sort', 'in_stock']) if (q.get(k)) out.set(k, q.get(k));
  if (category) out.set('category', category);
  for (const k of ['min_price', 'max_price']) {
    const cents = q.get(k) ? toCents(q.get(k), 'USD') : NaN;
    if (Number.isFinite(cents)) out.set(k, String(cents));
  }
  const name = (q.get('attr') || '').trim();
  if (name && q.get('attr_value')) out.set(`attr.${name}`, q.get('attr_value'));
  out.set('limit', String(PAGE));
  return out;
}

function filters(q, cats, category, ctx) {
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    field('Words', input('q', { type: 'search', value: q.get('q') || '', maxlength: 200 })),
    field('Category', select('category', [['', 'Any category'], ...cats.map((c) => [c.id, c.name])],
      category || '')),
    h('div', { class: 'row' },
      field('Lowest price', input('min_price', { inputmode: 'decimal', value: q.get('min_price') || '', size: 6 })),
      field('Highest price', input('max_price', { inputmode: 'decimal', value: q.get('max_price') || '', size: 6 }))),
    h('div', { class: 'field inline' },
      h('input', { type: 'checkbox', id: 'f-stock', name: 'in_stock', checked: q.get('in_stock') === 'true' }),
      h('label', { for: 'f-stock' }, 'In stock only')),
    field('Attribute', input('attr', { value: q.get('attr') || '', placeholder: 'color', maxlength: 64 })),
    field('Attribute value', input('attr_value', { value: q.get('attr_value') || '', placeholder: 'green', maxlength: 200 })),
    field('Sort by', select('sort', SORTS, q.get('sort') || '')),
    h('button', { type: 'submit' }, 'Apply filters'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      const val = String(v).trim();
      if (val) next.set(k, k === 'in_stock' ? 'true' : val);
    }
    for (const k of ['min_price', 'max_price']) {
      if (next.get(k) && !Number.isFinite(toCents(next.get(k), 'USD'))) {
        say(`${k === 'min_price' ? 'Lowest' : 'Highest'} price must be an amount like 12.50.`);
        return;
      }
    }
    ctx.navigate(`/search?${next}`);
  });
  return form;
}

async function showResults(box, query, ctx) {
  const list = h('ul', { class: 'cards' });
  const count = h('p', { id: 'result-count', role: 'status' });
  const more = h('button', { type: 'button', class: 'more' }, 'Load more');
  const foot = h('div', { class: 'pager' });
  let cursor = null;
  let shown = 0;
  async function load() {
    more.disabled = true;
    if (cursor) query.set('cursor', cursor);
    try {
      const page = await get(`/products?${query}`, { signal: ctx.signal });
      for (const p of page.data) list.append(productCard(p));
      shown += page.data.length;
      cursor = page.next_cursor;
      count.textContent = shown === 0 ? 'No products match.'
        : `${shown} product${shown === 1 ? '' : 's'} shown${page.has_more ? ', more below' : ''}.`;
      foot.replaceChildren(...(page.has_more ? [more] : []));
    } finally {
      // A failed page can be asked for again.
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => load().catch((e) => say(e.message)));
  box.append(count, list, foot);
  await load();
}

async function page(main, ctx, category) {
  const q = ctx.query;
  const cats = (await get('/categories', { signal: ctx.signal })).data;
  const cat = cats.find((c) => c.id === (category || q.get('category')));
  // A category path that names none is a 404, not every product.
  if (category && !cat) throw new ApiError(404, { title: 'No such category' });
  const words = q.get('q');
  const title = cat ? cat.name : words ? `Results for “${words}”` : 'All products';
  ctx.title(title);
  const results = h('section', { 'aria-labelledby': 'res-h' }, h('h2', { id: 'res-h' }, 'Products'));
  main.append(h('h1', {}, title),
    h('div', { class: 'layout with-filters' }, filters(q, cats, cat && cat.id, ctx), results));
  const query = apiQuery(q, cat && cat.id);
  if (q.get('min_price') || q.get('max_price')) {
    const lo = query.get('min_price');
    const hi = query.get('max_price');
    results.append(h('p', { class: 'muted' }, `Prices ${lo ? `from ${centsText(Number(lo), 'USD')}` : ''} ${hi ? `up to ${centsText(Number(hi), 'USD')}` : ''}`.trim()));
  }
  await showResults(results, query, ctx);
}

export const search = (main, ctx) => page(main, ctx, null);
export const category = (main, ctx) => page(main, ctx, ctx.params[0]);
