// Everyone's orders for the staff: a filtered list, and an order's page
// with its history and payments, where it is shipped, delivered,
// cancelled or refunded.

import { api, get } from '../api.js';
import {
  clear, field, h, input, money, onSubmit, pager, say, select, showError, statusBadge, when,
} from '../dom.js';
import { action, head, invalid, query, table } from './nav.js';

// Order.status, in the order an order goes through them.
const STATUSES = ['pending', 'paid', 'completed', 'shipped', 'delivered', 'payment_failed', 'cancelled'];
const word = (s) => s.replace('_', ' ');

export async function list(main, ctx) {
  head(main, ctx, 'Orders', '/admin/orders');
  const status = STATUSES.includes(ctx.query.get('status')) ? ctx.query.get('status') : '';
  const userId = ctx.query.get('user_id') || '';

  const form = h('form', { class: 'filters row' },
    field('Status', select('status', [['', 'Any'], ...STATUSES.map((s) => [s, word(s)])], status)),
    field('User id', input('user_id', {
      value: userId, inputmode: 'numeric', pattern: '[1-9][0-9]{0,18}', autocomplete: 'off',
    })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter')));
  // The filters live in the address, so that a reload or a link keeps them.
  onSubmit(form, async (v) => {
    const q = query({ status: v.status, user_id: v.user_id });
    ctx.navigate(`/admin/orders${q ? `?${q}` : ''}`);
  });

  const body = h('tbody');
  const row = (o) => h('tr', {},
    h('td', {}, h('a', { href: `/admin/orders/${o.id}` }, `Order ${o.id}`)),
    h('td', {}, h('a', { href: `/admin/orders?${query({ user_id: o.user_id })}` }, o.user_id)),
    h('td', {}, statusBadge(o.status)),
    h('td', { class: 'num' }, money(o.total_cents, o.currency)),
    h('td', {}, when(o.created_at)));
  const { wrap, load } = pager(body,
    (cursor) => get(`/orders?${query({ status, user_id: userId, limit: 25, cursor })}`, { signal: ctx.signal }),
    row, status || userId ? 'No orders match.' : 'No orders yet.');
  main.append(form,
    table('Orders', ['Order', 'User id', 'Status', ['Total', 'num'], 'Placed'], body), wrap);
  try {
    await load();
  } catch (err) {
    // A user id typed badly (400 bad_user_id) is the form's to show.
    if (err.code !== 'bad_user_id') throw err;
    showError(form, invalid('user_id', err.message));
  }
}

function items(o) {
  return table('Items', ['Product', 'SKU', ['Unit price', 'num'], ['Quantity', 'num'], ['Line total', 'num']], [
    h('tbody', {}, o.items.map((it) => h('tr', {},
      h('td', {}, h('a', { href: `/admin/products/${it.product_id}` }, it.name)),
      h('td', {}, it.sku),
      h('td', { class: 'num' }, money(it.unit_price_cents, o.currency)),
      h('td', { class: 'num' }, String(it.quantity)),
      h('td', { class: 'num' }, money(it.line_total_cents, o.currency))))),
    h('tfoot', {},
      h('tr', {}, h('th', { scope: 'row', colspan: 4 }, 'Subtotal'),
        h('td', { class: 'num' }, money(o.subtotal_cents, o.currency))),
      h('tr', {}, h('th', { scope: 'row', colspan: 4 }, 'Total'),
        h('td', { class: 'num price' }, money(o.total_cents, o.currency)))),
  ]);
}

function address(a) {
  if (!a) return h('p', { class: 'muted' }, 'No shipping address was given.');
  const lines = [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '), a.region, a.country, a.phone];
  return h('address', {}, lines.filter(Boolean).map((l, i) => [i ? h('br') : null, l]));
}

function history(events) {
  return h('ol', { class: 'timeline' }, events.map((e) => h('li', {},
    statusBadge(e.status), ' ', h('time', { datetime: e.at }, when(e.at)),
    e.detail ? ` · ${e.detail}` : null)));
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  head(main, ctx, `Order ${id}`, '/admin/orders');
  const content = h('div');
  main.append(content);

  // The order, its history and its payments, all drawn again after each
  // action, since one action changes all three.
  async function draw() {
    const opts = { signal: ctx.signal };
    const [o, events, payments] = await Promise.all([get(`/orders/${id}`, opts),
      get(`/orders/${id}/events`, opts), get(`/orders/${id}/payments`, opts)]);
    clear(content,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, statusBadge(o.status)),
        h('dt', {}, 'Payment'), h('dd', {}, statusBadge(o.payment_status)),
        h('dt', {}, 'Customer'), h('dd', {},
          h('a', { href: `/admin/orders?${query({ user_id: o.user_id })}` }, `User ${o.user_id}`)),
        h('dt', {}, 'Total'), h('dd', {}, money(o.total_cents, o.currency)),
        h('dt', {}, 'Placed'), h('dd', {}, when(o.created_at)),
        h('dt', {}, 'Last change'), h('dd', {}, when(o.updated_at)),
        h('dt', {}, 'Tracking number'), h('dd', {}, o.tracking_number || 'None yet')),
      actions(o),
      h('h2', {}, 'Items'), items(o),
      h('h2', {}, 'Shipping address'), address(o.shipping_address),
      h('h2', {}, 'History'), history(events.data),
      h('h2', {}, 'Payments'), paymentsTable(o, payments.data));
  }

  // After an action the buttons are drawn anew: the focus goes back to
  // the heading rather than be lost.
  async function done(message) {
    await draw();
    say(message);
    main.querySelector('h1').focus();
  }

  function actions(o) {
    const alert = h('div', { class: 'alert', role: 'alert' });
    const out = [];
    if (o.status === 'completed') {
      const form = h('form', { class: 'row' },
        field('Tracking number', input('tracking_number', { maxlength: 100, autocomplete: 'off' })),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Ship order')));
      onSubmit(form, async (v) => {
        const b = { status: 'shipped' };
        if (v.tracking_number) b.tracking_number = v.tracking_number;
        await api('PUT', `/orders/${id}/status`, b);
        await done('Order shipped');
      });
      out.push(form);
    }
    if (o.status === 'shipped') {
      out.push(action(h('button', { type: 'button' }, 'Mark delivered'), async () => {
        await api('PUT', `/orders/${id}/status`, { status: 'delivered' });
        await done('Order marked delivered');
      }, alert));
    }
    if (o.status === 'pending' || o.status === 'paid') {
      out.push(action(h('button', { type: 'button', class: 'danger' }, 'Cancel order'), async () => {
        const refund = o.status === 'paid' ? ' Its payment will be refunded.' : '';
        if (!window.confirm(`Cancel order ${id}?${refund}`)) return;
        await api('PUT', `/orders/${id}/cancel`);
        await done('Order cancelled');
      }, alert));
    }
    if (!out.length) return null;
    return h('section', { 'aria-labelledby': 'order-act' }, h('h2', { id: 'order-act' }, 'Actions'),
      alert, h('div', { class: 'actions' }, out));
  }

  function paymentsTable(o, payments) {
    if (!payments.length) return h('p', { class: 'empty' }, 'No payment yet.');
    const alert = h('div', { class: 'alert', role: 'alert' });
    // A refund may be asked for a succeeded payment with no refund
    // pending or done (a failed one may be asked for again).
    const refundable = (p) => p.status === 'succeeded' && p.refund_status !== 'pending' && p.refund_status !== 'succeeded';
    return [alert, table('Payments', ['Payment', 'Status', ['Amount', 'num'], 'Refund', 'Failure', ['Attempts', 'num'], 'Created', 'Action'],
      h('tbody', {}, payments.map((p) => h('tr', {},
        h('td', {}, p.id),
        h('td', {}, statusBadge(p.status)),
        h('td', { class: 'num' }, money(p.amount_cents, p.currency)),
        h('td', {}, p.refund_status ? statusBadge(p.refund_status) : 'None'),
        h('td', {}, p.failure_code || ''),
        h('td', { class: 'num' }, String(p.attempts)),
        h('td', {}, when(p.created_at)),
        h('td', {}, refundable(p) ? action(h('button', { type: 'button', class: 'secondary' }, `Refund payment ${p.id}`), async () => {
          if (!window.confirm(`Refund ${money(p.amount_cents, p.currency)} of payment ${p.id}?`)) return;
          await api('POST', `/payments/${p.id}/refund`);
          await done(`Refund of payment ${p.id} asked for; the worker makes it next`);
        }, alert) : '')))))];
  }

  await draw();
}
