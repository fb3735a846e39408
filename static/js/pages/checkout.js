// Checkout: the cart's lines, a shipping address and a card, then one
// POST /cart/checkout.  A shortage is shown on the line it concerns.

import { api, get, track } from '../api.js';
import { field, h, input, money, onSubmit, showError } from '../dom.js';
import { refreshCart } from '../app.js';
import { stockNote } from './cart.js';

// The simulated payment provider's cards (doc/web-ui.md): what a shop
// on `payment_provider = simulated` can be paid with.  The cart says
// which provider takes the card (payment_test_mode); a real gateway
// would only decline these, so they are offered in test mode alone.
const CARDS = [['tok_visa', 'Test card: succeeds (tok_visa)'],
  ['tok_chargeDeclined', 'Test card: declined (tok_chargeDeclined)'],
  ['tok_flaky', 'Test card: fails twice, then succeeds (tok_flaky)']];

export function cardField(testMode, name = 'token') {
  const attrs = { required: true, maxlength: 255, autocomplete: 'off' };
  if (!testMode) return field('Card', input(name, attrs), 'The card token from the payment provider.');
  const list = h('datalist', { id: 'test-cards' }, CARDS.map(([v, t]) => h('option', { value: v }, t)));
  return [field('Card', input(name, { ...attrs, list: 'test-cards', value: 'tok_visa' }),
    'The card token from the payment provider; the test cards are listed.'), list];
}

function address() {
  const f = (label, name, attrs = {}) => field(label, input(`shipping_address.${name}`, attrs));
  return h('fieldset', {}, h('legend', {}, 'Shipping address'),
    f('Full name', 'name', { required: true, maxlength: 200, autocomplete: 'name' }),
    f('Address', 'line1', { required: true, maxlength: 200, autocomplete: 'address-line1' }),
    f('Address line 2', 'line2', { maxlength: 200, autocomplete: 'address-line2' }),
    h('div', { class: 'row' },
      f('City', 'city', { required: true, maxlength: 100, autocomplete: 'address-level2' }),
      f('Region', 'region', { maxlength: 100, autocomplete: 'address-level1' }),
      f('Postal code', 'postal_code', { maxlength: 20, autocomplete: 'postal-code' })),
    h('div', { class: 'row' },
      f('Country', 'country', { required: true, minlength: 2, maxlength: 2, size: 3, autocomplete: 'country', value: 'US' }),
      f('Phone', 'phone', { type: 'tel', maxlength: 32, autocomplete: 'tel' })));
}

function summary(c, short) {
  const need = new Map((short || []).map((s) => [s.product_id, s]));
  return h('table', {},
    h('caption', {}, 'Your order'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col', class: 'num' }, 'Quantity'),
      h('th', { scope: 'col', class: 'num' }, 'Total'))),
    h('tbody', {}, c.items.map((i) => {
      const s = need.get(i.product_id);
      return h('tr', { 'data-product': i.product_id },
        h('td', {}, i.name, s
          ? h('p', { class: 'field-error', role: 'alert' }, `Not enough in stock: you asked for ${s.requested}, ${s.available} available.`)
          : stockNote(i)),
        h('td', { class: 'num' }, String(i.quantity)),
        h('td', { class: 'num' }, money(i.line_total_cents, i.currency)));
    })),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 2 }, 'Subtotal'),
      h('td', { class: 'num' }, money(c.subtotal_cents, c.currency)))));
}

function body(values) {
  const shipping = {};
  for (const [k, v] of Object.entries(values)) {
    if (k.startsWith('shipping_address.') && v !== '') shipping[k.slice(17)] = v;
  }
  return { payment: { method: 'card', token: values.token }, shipping_address: shipping };
}

export async function checkout(main, ctx) {
  ctx.title('Checkout');
  const c = await get('/cart', { signal: ctx.signal });
  main.append(h('h1', {}, 'Checkout'));
  if (!c.items.length) {
    main.append(h('p', { class: 'empty' }, 'Your cart is empty.'), h('p', {}, h('a', { href: '/search' }, 'Go shopping')));
    return;
  }
  track('checkout');
  const lines = h('div', { class: 'table-wrap' }, summary(c));
  // One key for this page's order: a second click, or a retry after a
  // lost answer, gets the same order back instead of a second one.
  // An answer that came (even a refusal) ends the key's use.
  let key = crypto.randomUUID();
  const form = h('form', { class: 'stack' }, address(),
    h('fieldset', {}, h('legend', {}, 'Payment'), cardField(c.payment_test_mode)),
    h('button', { type: 'submit' }, 'Place order'));
  onSubmit(form, async (values) => {
    try {
      const order = await api('POST', '/cart/checkout', body(values), { headers: { 'Idempotency-Key': key } });
      await refreshCart();
      ctx.navigate(`/orders/${order.id}`);
    } catch (err) {
      if (err.status) key = crypto.randomUUID();
      if (err.code === 'insufficient_stock') {
        lines.replaceChildren(summary(await get('/cart'), err.problem.products));
        showError(form, err);
        lines.querySelector('[role="alert"]')?.scrollIntoView({ block: 'center' });
        return;
      }
      throw err;
    }
  });
  main.append(lines, form);
}

