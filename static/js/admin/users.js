// The accounts: each one's role, and whether it is disabled.  Either
// change ends the user's tokens at once (PATCH /users/{id}), so the
// signed-in admin's own row offers neither: the API does not stop an
// admin from demoting or disabling themself, which would lock them out.

import { api, get, session } from '../api.js';
import { clear, field, h, pager, say, select, when } from '../dom.js';
import { action, head, query, table } from './nav.js';

const ROLES = [['customer', 'customer'], ['admin', 'admin']];

export async function list(main, ctx) {
  head(main, ctx, 'Users', '/admin/users');
  const me = session() && session().id;
  const alert = h('div', { class: 'alert', role: 'alert' });

  function row(u) {
    const tr = h('tr');
    // Drawn again after a change; the new buttons are returned so that
    // the focus can stay where it was.
    const draw = () => {
      let save = null;
      let toggle = null;
      const roleCell = h('td');
      const stateCell = h('td');
      if (u.id === me) {
        roleCell.append(u.role, ' ', h('span', { class: 'muted' }, '(you)'));
        stateCell.append(u.disabled ? 'disabled' : 'active');
      } else {
        const role = select('role', ROLES, u.role);
        save = action(h('button', { type: 'button', class: 'secondary' }, 'Save role'), async () => {
          if (role.value === u.role) return say(`${u.email} is already ${u.role}`);
          u = await api('PATCH', `/users/${u.id}`, { role: role.value });
          draw().save.focus();
          return say(`${u.email} is now ${u.role}; they log in again to get it`);
        }, alert);
        const f = field(`Role of ${u.email}`, role);
        f.classList.add('inline');
        roleCell.append(f, save);
        toggle = action(h('button', {
          type: 'button', class: u.disabled ? 'secondary' : 'danger',
        }, u.disabled ? 'Enable' : 'Disable'), async () => {
          u = await api('PATCH', `/users/${u.id}`, { disabled: !u.disabled });
          draw().toggle.focus();
          say(`${u.email} is ${u.disabled ? 'disabled: they are logged out and cannot log in' : 'enabled again'}`);
        }, alert);
        stateCell.append(u.disabled ? 'disabled ' : 'active ', toggle);
      }
      // The email heads its row, so that a screen reader names the row's
      // Disable or Save role button with it.
      clear(tr, h('th', { scope: 'row' }, u.email), h('td', {}, u.name), roleCell, stateCell, h('td', {}, when(u.created_at)));
      return { save, toggle };
    };
    draw();
    return tr;
  }

  const body = h('tbody');
  const { wrap, load } = pager(body,
    (cursor) => get(`/users?${query({ limit: 50, cursor })}`, { signal: ctx.signal }),
    row, 'No users yet.');
  main.append(
    h('p', { class: 'hint' }, 'A change of role or state logs the user out at once; the new role comes with their next log in.'),
    alert, table('Users', ['Email', 'Name', 'Role', 'State', 'Created'], body), wrap);
  await load();
}
