// A product: price in its currency, stock, attributes, rating, reviews
// (paged), add to cart, and a review form for its buyers.

import { api, get, session, track } from '../api.js';
import { field, h, input, money, onSubmit, pager, say, select, stars, when } from '../dom.js';
import { refreshCart } from '../app.js';

function attributes(attrs) {
  const keys = Object.keys(attrs || {});
  if (!keys.length) return null;
  return h('section', { 'aria-labelledby': 'attr-h' },
    h('h2', { id: 'attr-h' }, 'Details'),
    h('dl', { class: 'facts' }, keys.map((k) => [h('dt', {}, k),
      h('dd', {}, typeof attrs[k] === 'string' ? attrs[k] : JSON.stringify(attrs[k]))])));
}

function buyForm(p, ctx) {
  const max = Math.min(1000, Math.max(1, p.stock_available));
  const form = h('form', { class: 'actions', 'aria-label': 'Buy' },
    field('Quantity', input('quantity', { type: 'number', min: 1, max, value: 1, required: true, size: 4 })),
    h('button', { type: 'submit', disabled: p.stock_available < 1 }, 'Add to cart'));
  onSubmit(form, async (v) => {
    if (!session()) {
      ctx.navigate(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    // The cart holds a quantity per product: adding adds to what is there.
    const cart = await get('/cart');
    const line = cart.items.find((i) => i.product_id === p.id);
    const quantity = Number(v.quantity) + (line ? line.quantity : 0);
    await api('PUT', `/cart/items/${p.id}`, { quantity });
    track('add_to_cart', p.id);
    await refreshCart();
    say(`${p.name} is in your cart (${quantity}).`);
  });
  return form;
}

function review(r) {
  return h('li', { class: 'card' },
    h('h3', {}, r.title),
    h('span', {}, `${r.rating} out of 5 · ${when(r.created_at)}`),
    r.body ? h('p', {}, r.body) : null);
}

function reviewForm(p, onDone) {
  const form = h('form', { class: 'stack', 'aria-labelledby': 'write-h' },
    h('h3', { id: 'write-h' }, 'Write a review'),
    field('Rating', select('rating', [[5, '5 (best)'], [4, '4'], [3, '3'], [2, '2'], [1, '1 (worst)']], 5)),
    field('Title', input('title', { required: true, maxlength: 200 })),
    field('Review', h('textarea', { name: 'body', maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Post review'));
  onSubmit(form, async (v) => {
    await api('POST', `/products/${p.id}/reviews`, { rating: Number(v.rating), title: v.title, body: v.body });
    form.reset();
    say('Thank you: your review is posted.');
    await onDone();
  });
  return form;
}

async function reviews(box, p, ctx) {
  const list = h('ul', { class: 'cards' });
  const paging = pager(list,
    (cursor) => get(`/products/${p.id}/reviews?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { signal: ctx.signal }),
    review, 'No reviews yet.');
  box.replaceChildren(h('h2', { id: 'rev-h' }, 'Reviews'), list, paging.wrap);
  await paging.load();
  if (session()) box.append(reviewForm(p, () => reviews(box, p, ctx)));
  else box.append(h('p', {}, h('a', { href: `/login?next=/products/${p.id}` }, 'Log in'), ' to write a review.'));
}

export async function product(main, ctx) {
  const p = await get(`/products/${ctx.params[0]}`, { signal: ctx.signal });
  ctx.title(p.name);
  track('product_view', p.id);
  const reviewBox = h('section', { 'aria-labelledby': 'rev-h' });
  main.append(
    h('h1', {}, p.name),
    h('p', { class: 'price' }, money(p.price_cents, p.currency)),
    h('p', {}, p.stock_available > 0 ? `In stock: ${p.stock_available} available` : 'Out of stock'),
    h('p', {}, stars(p.rating_avg, p.rating_count)),
    p.description ? h('p', {}, p.description) : null,
    buyForm(p, ctx),
    attributes(p.attributes),
    reviewBox);
  await reviews(reviewBox, p, ctx);
}
