// The shop's figures over a range of days (GET /analytics/summary): the
// key numbers, the top products, the funnel and a daily chart.  The
// range is kept in the address (?from=&to=), so a reload keeps it.

import { get } from '../api.js';
import { field, h, input, money, onSubmit, uid } from '../dom.js';
import { head, table } from './nav.js';

const SVG = 'http://www.w3.org/2000/svg';

// YYYY-MM-DD of a UTC day: the summary's days are UTC days.
const day = (d) => d.toISOString().slice(0, 10);

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

// Bars of revenue per day (orders when no order was paid, so that there
// is no currency).  The svg is one image named by its title; the table
// below it carries the same rows for those who cannot see it.
function chart(s) {
  const byRevenue = s.currency !== null;
  const what = byRevenue ? `Revenue per day in ${s.currency}` : 'Paid orders per day';
  const value = (d) => (byRevenue ? d.revenue_cents : d.orders);
  const W = 600;
  const H = 150;
  const top = 14; // room for the maximum's label
  const peak = Math.max(...s.daily.map(value));
  const max = Math.max(1, peak); // the scale: all-zero days draw no bars
  const step = W / s.daily.length;
  const titleId = uid('chart');
  const label = (n) => (byRevenue ? money(n, s.currency) : String(n));
  const bars = s.daily.map((d, i) => {
    const bh = Math.round(((H - top) * value(d)) / max);
    return svg('rect', {
      x: (i * step + step * 0.1).toFixed(1), y: H - bh,
      width: (step * 0.8).toFixed(1), height: bh,
    }, svg('title', {}, `${d.date}: ${label(value(d))}`));
  });
  return h('figure', {},
    svg('svg', {
      class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': titleId,
    },
    svg('title', { id: titleId },
      `${what}, ${s.from} to ${s.to}; the highest day is ${label(peak)}. The table Every day below lists each day.`),
    svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, stroke: 'currentColor' }),
    svg('text', { x: 2, y: 10 }, `highest ${label(peak)}`),
    ...bars),
    h('figcaption', {}, `${what}, ${s.from} to ${s.to}.`));
}

function kpis(s) {
  const avg = s.average_order_cents === null ? '—' : money(s.average_order_cents, s.currency);
  const rate = s.conversion_rate === null ? '—' : `${(s.conversion_rate * 100).toFixed(2)} %`;
  const kpi = (dt, dd) => h('div', {}, h('dt', {}, dt), h('dd', {}, dd));
  return h('dl', { class: 'kpis' },
    kpi('Paid orders', String(s.orders)),
    s.revenue_by_currency.length
      ? s.revenue_by_currency.map((r) => kpi(`Revenue (${r.currency})`, money(r.revenue_cents, r.currency)))
      : kpi('Revenue', 'None'),
    kpi(s.currency ? `Average order (${s.currency})` : 'Average order', avg),
    kpi('Visits', String(s.visits)),
    kpi('Conversion rate', rate));
}

function topProducts(s) {
  if (!s.top_products.length) return h('p', { class: 'empty' }, 'No product was sold in this range.');
  return table('Top products', ['Product', ['Units', 'num'], ['Revenue', 'num']],
    h('tbody', {}, s.top_products.map((p) => h('tr', {},
      h('td', {}, h('a', { href: `/admin/products/${p.product_id}` }, p.name || `Product ${p.product_id}`)),
      h('td', { class: 'num' }, String(p.units)),
      h('td', { class: 'num' }, money(p.revenue_cents, p.currency))))));
}

function funnel(s) {
  const steps = [['Viewed a product', s.funnel.product_view], ['Added to the cart', s.funnel.add_to_cart],
    ['Checked out', s.funnel.checkout], ['Paid', s.funnel.paid]];
  return table('Funnel', ['Step', ['Visits or orders', 'num']],
    h('tbody', {}, steps.map(([step, n]) => h('tr', {},
      h('td', {}, step), h('td', { class: 'num' }, String(n))))));
}

function daily(s) {
  return table('Every day', ['Day', ['Visits', 'num'], ['Events', 'num'], ['Orders', 'num'],
    [s.currency ? `Revenue (${s.currency})` : 'Revenue', 'num']],
  h('tbody', {}, s.daily.map((d) => h('tr', {},
    h('td', {}, d.date),
    h('td', { class: 'num' }, String(d.visits)),
    h('td', { class: 'num' }, String(d.events)),
    h('td', { class: 'num' }, String(d.orders)),
    h('td', { class: 'num' }, s.currency ? money(d.revenue_cents, s.currency) : '—')))));
}

export async function dashboard(main, ctx) {
  head(main, ctx, 'Dashboard', '/admin');
  const today = new Date();
  const to = ctx.query.get('to') || day(today);
  const from = ctx.query.get('from') || day(new Date(today.getTime() - 29 * 86400e3));

  const form = h('form', { class: 'filters row' },
    field('From', input('from', { type: 'date', value: from, required: true })),
    field('To', input('to', { type: 'date', value: to, required: true })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));
  onSubmit(form, async (v) => {
    ctx.navigate(`/admin?${new URLSearchParams({ from: v.from, to: v.to })}`);
  });
  const out = h('div', { class: 'alert', role: 'alert' });
  main.append(form, out);

  let s;
  try {
    s = await get(`/analytics/summary?${new URLSearchParams({ from, to })}`, { signal: ctx.signal });
  } catch (err) {
    // A bad range (400 bad_date, bad_range) is the form's business.
    if (err.status !== 400) throw err;
    out.append(h('p', {}, err.message));
    return;
  }
  main.append(
    h('h2', {}, `From ${s.from} to ${s.to} (UTC days)`), kpis(s),
    h('h2', {}, 'Daily'), chart(s),
    h('h2', {}, 'Top products'), topProducts(s),
    h('h2', {}, 'Funnel'), h('p', { class: 'hint' }, 'Visits that reached each step; paid counts orders.'), funnel(s),
    h('h2', {}, 'Every day'), daily(s));
}
