// The outbox (the jobs agora-worker runs): the counts per topic, and the
// dead rows, which wait for an admin to retry them.

import { api, get } from '../api.js';
import { clear, field, h, onSubmit, pager, say, select, when } from '../dom.js';
import { action, head, query, table } from './nav.js';

// Seconds as people say them: "45 s", "12 min", "3 h 5 min", "2 d 4 h".
function age(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export async function outbox(main, ctx) {
  head(main, ctx, 'Outbox', '/admin/outbox');
  const topic = ctx.query.get('topic') || '';
  const content = h('div');
  main.append(content);

  // Drawn again after a retry: the counts change with it.
  async function draw() {
    const stats = await get('/outbox/stats', { signal: ctx.signal });
    const n = (v) => h('td', { class: 'num' }, String(v));
    const statsTable = stats.data.length
      ? table('Per topic', ['Topic', ['Pending', 'num'], ['Running', 'num'], ['Dead', 'num'], ['Oldest due waits', 'num']],
        h('tbody', {}, stats.data.map((t) => h('tr', {},
          h('td', {}, t.topic), n(t.pending), n(t.running), n(t.dead),
          h('td', { class: 'num' }, t.oldest_due_age_seconds ? age(t.oldest_due_age_seconds) : '—')))))
      : h('p', { class: 'empty' }, 'The outbox is empty: every job is done.');

    const topics = stats.data.map((t) => t.topic);
    if (topic && !topics.includes(topic)) topics.push(topic);
    const form = h('form', { class: 'filters row' },
      field('Topic', select('topic', [['', 'Any'], ...topics.map((t) => [t, t])], topic)),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));
    // The topic lives in the address, so that a reload keeps it.
    onSubmit(form, async (v) => ctx.navigate(`/admin/outbox${v.topic ? `?${query({ topic: v.topic })}` : ''}`));

    const alert = h('div', { class: 'alert', role: 'alert' });
    const body = h('tbody');
    const row = (r) => h('tr', {},
      h('td', {}, r.id),
      h('td', {}, r.topic),
      h('td', {}, r.aggregate_id),
      h('td', { class: 'num' }, `${r.attempts} of ${r.max_attempts}`),
      h('td', {}, r.last_error || ''),
      h('td', {}, when(r.created_at)),
      h('td', {}, action(h('button', { type: 'button', class: 'secondary' }, `Retry row ${r.id}`), async () => {
        await api('POST', `/outbox/${r.id}/retry`);
        await draw();
        say(`Row ${r.id} is due again`);
        main.querySelector('h1').focus();
      }, alert)));
    const { wrap, load } = pager(body,
      (cursor) => get(`/outbox?${query({ state: 'dead', topic, limit: 50, cursor })}`, { signal: ctx.signal }),
      row, topic ? `No dead rows of ${topic}.` : 'No dead rows.');
    await load();
    clear(content,
      h('h2', {}, 'Per topic'), statsTable,
      h('p', { class: 'hint' }, `Pending and running rows are counted up to ${stats.counted_up_to} a topic.`),
      h('h2', {}, 'Dead rows'),
      h('p', {}, 'Jobs that failed for good or too often; a retry makes one due now, and never charges a payment twice.'),
      form, alert,
      table('Dead rows', ['Id', 'Topic', 'About', ['Attempts', 'num'], 'Last error', 'Created', 'Action'], body),
      wrap);
  }

  await draw();
}
