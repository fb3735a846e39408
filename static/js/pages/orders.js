// The shopper's orders: the list, and an order followed live through the
// long-poll events route (pending → paid → completed appears with no
// reload), with cancel, the invoice PDF, and another card after a decline.

import { api, get } from '../api.js';
import { focusKey, h, money, redraw, say, statusBadge, when, pager, onSubmit } from '../dom.js';
import { cardField } from './checkout.js';

const WAIT = 25; // seconds a poll waits; under the server's cap (30)

function orderRow(o) {
  return h('tr', {},
    h('td', {}, h('a', { href: `/orders/${o.id}` }, `Order ${o.id}`)),
    h('td', {}, when(o.created_at)),
    h('td', {}, statusBadge(o.status)),
    h('td', { class: 'num' }, money(o.total_cents, o.currency)));
}

export async function list(main, ctx) {
  ctx.title('Your orders');
  const rows = h('tbody', {});
  const paging = pager(rows,
    (c) => get(`/orders?limit=20${c ? `&cursor=${encodeURIComponent(c)}` : ''}`, { signal: ctx.signal }),
    orderRow, 'You have no orders yet.');
  main.append(h('h1', {}, 'Your orders'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Order', 'Placed', 'Status', 'Total'].map((t, i) =>
        h('th', { scope: 'col', class: i === 3 ? 'num' : null }, t)))), rows)),
    paging.wrap);
  await paging.load();
}

function items(o) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', { class: 'muted' }, 'Items'),
    h('thead', {}, h('tr', {}, ['Product', 'Price', 'Quantity', 'Total'].map((t, i) =>
      h('th', { scope: 'col', class: i ? 'num' : null }, t)))),
    h('tbody', {}, o.items.map((i) => h('tr', {},
      h('td', {}, h('a', { href: `/products/${i.product_id}` }, i.name)),
      h('td', { class: 'num' }, money(i.unit_price_cents, o.currency)),
      h('td', { class: 'num' }, String(i.quantity)),
      h('td', { class: 'num' }, money(i.line_total_cents, o.currency))))),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Total'),
      h('td', { class: 'num' }, money(o.total_cents, o.currency))))));
}

function timeline(events) {
  return h('ol', { class: 'timeline', id: 'order-history' }, events.map((e) => h('li', {},
    statusBadge(e.status), ' ', when(e.at), e.detail ? h('span', { class: 'muted' }, ` · ${e.detail}`) : null)));
}

// The invoice comes with the bearer token, so it is fetched and handed
// to the browser as a file rather than linked.
async function downloadInvoice(o) {
  const res = await api('GET', `/orders/${o.id}/invoice`, undefined,
    { raw: true, headers: { Accept: 'application/pdf' } });
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: `invoice-${o.id}.pdf` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function failedPayment(payments) {
  const p = payments.find((x) => x.status === 'failed');
  return p ? (p.failure_code || 'declined').replace(/_/g, ' ') : null;
}

// A declined order is final: the same lines are placed again as a new
// order with the card given.
function payAgain(o, ctx, testMode) {
  const form = h('form', { class: 'stack', 'aria-labelledby': 'again-h' },
    h('h2', { id: 'again-h' }, 'Pay with another card'), cardField(testMode),
    h('button', { type: 'submit' }, 'Place order again'));
  // As at checkout: one key until an answer comes, so a retry after a
  // lost answer gets the same order back, not a second one.
  let key = crypto.randomUUID();
  onSubmit(form, async (v) => {
    const body = { items: o.items.map((i) => ({ product_id: i.product_id, quantity: i.quantity })),
      payment: { method: 'card', token: v.token } };
    if (o.shipping_address) body.shipping_address = o.shipping_address;
    try {
      const next = await api('POST', '/orders', body, { headers: { 'Idempotency-Key': key } });
      ctx.navigate(`/orders/${next.id}`);
    } catch (err) {
      if (err.status) key = crypto.randomUUID();
      throw err;
    }
  });
  return form;
}

function actions(o, ctx, reload) {
  const box = h('div', { class: 'actions' });
  if (o.status === 'pending' || o.status === 'paid') {
    box.append(h('button', {
      type: 'button', class: 'danger',
      onclick: async (ev) => {
        if (!window.confirm(`Cancel order ${o.id}?`)) return;
        const back = focusKey(box, ev.target);
        ev.target.disabled = true;
        try {
          await api('PUT', `/orders/${o.id}/cancel`);
          say(`Order ${o.id} is cancelled.`);
          await reload(back);
        } catch (err) {
          say(err.message);
          ev.target.disabled = false;
        }
      },
    }, 'Cancel order'));
  }
  if (['completed', 'shipped', 'delivered'].includes(o.status)) {
    box.append(h('button', {
      type: 'button', class: 'secondary',
      onclick: () => downloadInvoice(o).catch((e) => say(e.message)),
    }, 'Download invoice (PDF)'));
  }
  return box;
}

function facts(o) {
  const a = o.shipping_address;
  return h('dl', { class: 'facts' },
    h('dt', {}, 'Placed'), h('dd', {}, when(o.created_at)),
    h('dt', {}, 'Payment'), h('dd', {}, (o.payment_status || 'none').replace(/_/g, ' ')),
    o.tracking_number ? [h('dt', {}, 'Tracking number'), h('dd', {}, o.tracking_number)] : null,
    a ? [h('dt', {}, 'Ship to'), h('dd', {}, [a.name, a.line1, a.line2, `${a.postal_code || ''} ${a.city}`.trim(), a.region, a.country]
      .filter(Boolean).join(', '))] : null);
}

export async function detail(main, ctx) {
  const id = ctx.params[0];
  const status = h('p', { id: 'order-status', role: 'status' });
  const box = h('div', {});
  let seq = 0;
  let events = [];
  // Events after the last seen, once each: the history and the loop
  // below may both ask for the same ones.
  function take(list) {
    const fresh = list.filter((e) => e.seq > seq);
    if (fresh.length) {
      events = events.concat(fresh);
      seq = fresh[fresh.length - 1].seq;
    }
    return fresh.length;
  }
  // Each new event draws the order again; a control that had the focus
  // keeps it, or the heading takes it when the control is gone (a
  // cancelled order has no Cancel button).
  async function draw(back) {
    const [o, pays] = await Promise.all([get(`/orders/${id}`, { signal: ctx.signal }),
      get(`/orders/${id}/payments`, { signal: ctx.signal })]);
    // Every change of status writes its event in the same transaction:
    // an order read after the events may be ahead of them, and the badge
    // must not say what the history does not yet.
    if (events.length && events[events.length - 1].status !== o.status) {
      take((await get(`/orders/${id}/events?after=${seq}&wait=0`, { signal: ctx.signal })).data);
    }
    ctx.title(`Order ${o.id}`);
    const declined = o.status === 'payment_failed' ? failedPayment(pays.data) : null;
    // The cart knows whether test cards pay here (checkout.js).
    const testMode = declined && (await get('/cart', { signal: ctx.signal })).payment_test_mode;
    status.replaceChildren('Status: ', statusBadge(o.status));
    // replaceChildren would write a null as the text "null".
    redraw(box, [
      declined ? h('p', { class: 'alert', role: 'alert' }, `The payment failed: ${declined}.`) : null,
      facts(o), actions(o, ctx, draw), items(o),
      h('h2', {}, 'History'), timeline(events),
      declined ? payAgain(o, ctx, testMode) : null], title, back);
  }
  // Follow the order until the page is left: each answer brings the
  // events after the last seen, or none when the wait ran out.
  async function follow() {
    while (!ctx.signal.aborted) {
      let page;
      const asked = Date.now();
      try {
        page = await get(`/orders/${id}/events?after=${seq}&wait=${seq ? WAIT : 0}`, { signal: ctx.signal });
      } catch (err) {
        if (ctx.signal.aborted) return;
        // A busy server (429) or a network fault: wait, then ask again.
        await new Promise((r) => setTimeout(r, 5000));
        continue;
      }
      if (take(page.data)) {
        await draw().catch(() => {});
      } else if (!page.data.length && Date.now() - asked < 1000) {
        // Nothing, at once: the server would not hold the wait (too many
        // waits open).  Pause rather than ask again at full speed.
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
  }
  const title = h('h1', {}, `Order ${id}`);
  main.append(title, status, box);
  const first = await get(`/orders/${id}/events?after=0&wait=0`, { signal: ctx.signal });
  events = first.data;
  seq = first.last_seq;
  await draw();
  follow();
}
