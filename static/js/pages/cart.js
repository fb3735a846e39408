// The cart: quantities changed in place, lines removed, totals priced now.

import { api, get } from '../api.js';
import { focusKey, h, money, redraw as keep, say } from '../dom.js';
import { refreshCart } from '../app.js';

export function stockNote(item) {
  if (!item.available) return h('p', { class: 'field-error' }, 'No longer sold: remove it to check out.');
  if (item.stock_available < item.quantity) {
    return h('p', { class: 'field-error' },
      item.stock_available ? `Only ${item.stock_available} left.` : 'Out of stock.');
  }
  return null;
}

function line(item, redraw) {
  const qid = `q-${item.product_id}`;
  const qty = h('input', { id: qid, name: 'quantity', type: 'number', min: 0, max: 1000, value: item.quantity, size: 4 });
  const update = h('button', { type: 'submit', class: 'secondary' }, 'Update');
  const form = h('form', { class: 'actions' }, h('label', { for: qid }, `Quantity of ${item.name}`), qty, update);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const back = focusKey(form.closest('tbody'));
    update.disabled = true;
    try {
      await api('PUT', `/cart/items/${item.product_id}`, { quantity: Number(qty.value) });
      await redraw(`${item.name}: quantity ${qty.value}.`, back);
    } catch (err) {
      say(err.message);
      update.disabled = false;
    }
  });
  const remove = h('button', { type: 'button', class: 'secondary' }, `Remove ${item.name}`);
  remove.addEventListener('click', async () => {
    const back = focusKey(remove.closest('tbody'), remove);
    remove.disabled = true;
    try {
      await api('DELETE', `/cart/items/${item.product_id}`);
      await redraw(`${item.name} removed.`, back);
    } catch (err) {
      say(err.message);
      remove.disabled = false;
    }
  });
  return h('tr', { 'data-product': item.product_id, 'data-key': item.product_id },
    h('td', {}, h('a', { href: `/products/${item.product_id}` }, item.name), stockNote(item)),
    h('td', { class: 'num' }, money(item.unit_price_cents, item.currency)),
    h('td', {}, form),
    h('td', { class: 'num' }, money(item.line_total_cents, item.currency)),
    h('td', {}, remove));
}

export async function cart(main, ctx) {
  ctx.title('Your cart');
  const body = h('div', {});
  const title = h('h1', {}, 'Your cart');
  main.append(title, body);
  // back: where the focus was when the change was asked for; it returns
  // there, or to the heading when that line is gone.
  async function draw(message, back) {
    const c = await get('/cart', { signal: ctx.signal });
    if (message) {
      say(message);
      refreshCart();
    }
    if (!c.items.length) {
      keep(body, [h('p', { class: 'empty' }, 'Your cart is empty. '),
        h('p', {}, h('a', { href: '/search' }, 'Find something you like'))], title, back);
      return;
    }
    keep(body, [
      h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', { class: 'muted' }, `${c.item_count} item${c.item_count === 1 ? '' : 's'}`),
        h('thead', {}, h('tr', {}, ['Product', 'Price', 'Quantity', 'Total', ''].map((t, i) =>
          h('th', { scope: 'col', class: i === 1 || i === 3 ? 'num' : null }, t || h('span', { class: 'muted' }, 'Remove'))))),
        h('tbody', {}, c.items.map((i) => line(i, draw))),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Subtotal'),
          h('td', { class: 'num', id: 'cart-subtotal' }, money(c.subtotal_cents, c.currency)), h('td', {}))))),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '/checkout' }, 'Checkout'))], title, back);
  }
  await draw();
}
