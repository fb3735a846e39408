// Accounts: log in, create an account, the profile (name and password),
// where the account is signed in, and the notifications the shop sent.

import { api, expectSession, get, login as logIn, logout, session } from '../api.js';
import { field, h, input, onSubmit, pager, say, when, statusBadge } from '../dom.js';

// Only a path of this site is a place to go back to after logging in.
function nextPath(ctx) {
  const next = ctx.query.get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

// What a sign-in with a provider that failed says (doc/sign-in.md): the
// callback sends the browser back with ?sign_in_error=CODE.
const SIGN_IN_ERRORS = {
  provider_denied: 'The sign-in was cancelled at the provider.',
  email_unverified: 'The provider has not confirmed your email address, so no account can be made with it.',
  account_exists: 'An account here has this email already. Log in with your password, then link the provider on your account page.',
  account_disabled: 'This account is disabled.',
  identity_taken: 'That account at the provider is linked to another account here.',
  provider_linked: 'This account is linked to another account at that provider already; unlink that one first.',
  account_unverified: 'Confirm your email address first (see the mail we sent), then link the provider.',
  link_expired: 'You were signed out while linking; link the provider again.',
  provider_unavailable: 'The provider cannot be reached now. Try again in a moment.',
};

function signInError(ctx) {
  const code = ctx.query.get('sign_in_error');
  if (!code) return null;
  return h('p', { class: 'alert', role: 'alert' },
    SIGN_IN_ERRORS[code] || 'The sign-in with the provider did not work. Try again.');
}

// The providers of agora.conf, for the sign-in buttons; none when the
// list cannot be had (the password form works without it).
async function providers(ctx) {
  try {
    return (await get('/auth/providers', { signal: ctx.signal, anonymous: true })).data;
  } catch {
    return [];
  }
}

export async function login(main, ctx) {
  ctx.title('Log in');
  const list = await providers(ctx);
  const back = encodeURIComponent(nextPath(ctx));
  const form = h('form', { class: 'stack' },
    field('Email', input('email', { type: 'email', required: true, autocomplete: 'username', maxlength: 254 })),
    field('Password', input('password', { type: 'password', required: true, autocomplete: 'current-password' })),
    h('button', { type: 'submit' }, 'Log in'));
  onSubmit(form, async (v) => {
    await logIn(v.email, v.password);
    say('You are logged in.');
    ctx.navigate(nextPath(ctx), { replace: true });
  });
  main.append(h('h1', {}, 'Log in'), signInError(ctx) || '', form,
    list.length ? h('section', { class: 'stack', 'aria-labelledby': 'with-h' },
      h('h2', { id: 'with-h' }, 'Or log in with'),
      h('ul', { class: 'providers' }, list.map((p) => h('li', {}, h('a', {
        class: 'button',
        href: `/api/v1/auth/providers/${encodeURIComponent(p.name)}/start?return_to=${back}`,
        onclick: expectSession,
      }, `Log in with ${p.display_name}`))))) : '',
    h('p', {}, h('a', { href: '/forgot-password' }, 'Forgot your password?')),
    h('p', {}, 'New here? ', h('a', { href: `/register${location.search}` }, 'Create an account'), '.'));
}

// The links that agora-worker mails (doc/web-ui.md): each carries its
// token in the fragment (#token=...), which browsers send to no server,
// so that it stays out of access logs and Referer headers; the page
// takes it, drops it from the address bar, and hands it to the API.
// Kept for the page it came with, should that page draw again.
const linked = { path: null, token: '' };
function linkToken() {
  if (location.hash) {
    linked.path = location.pathname;
    linked.token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
    history.replaceState(history.state, '', location.pathname + location.search);
  }
  return linked.path === location.pathname ? linked.token : '';
}

export async function forgotPassword(main, ctx) {
  ctx.title('Forgot your password?');
  const form = h('form', { class: 'stack' },
    field('Email', input('email', { type: 'email', required: true, autocomplete: 'username', maxlength: 254 })),
    h('button', { type: 'submit' }, 'Mail me a link'));
  onSubmit(form, async (v) => {
    await api('POST', '/auth/password/forgot', { email: v.email }, { anonymous: true });
    form.replaceWith(h('p', { role: 'status' },
      `If an account has the email ${v.email}, a mail with a link to set a new password is on its way.`));
  });
  main.append(h('h1', {}, 'Forgot your password?'),
    h('p', {}, 'We will mail you a link that sets a new one.'), form);
}

export async function resetPassword(main, ctx) {
  ctx.title('Choose a new password');
  const token = linkToken();
  if (!token) {
    main.append(h('h1', {}, 'Choose a new password'),
      h('p', {}, 'This page needs the link from the mail, as it came. ',
        h('a', { href: '/forgot-password' }, 'Mail me a new link'), '.'));
    return;
  }
  const form = h('form', { class: 'stack' },
    field('New password', input('password', { type: 'password', required: true, minlength: 10, autocomplete: 'new-password' }),
      'At least 10 characters. Every device signed in to your account is signed out.'),
    h('button', { type: 'submit' }, 'Set password'));
  onSubmit(form, async (v) => {
    try {
      await api('POST', '/auth/password/reset', { token, password: v.password }, { anonymous: true });
    } catch (err) {
      if (err.status === 422 && err.fields.some((f) => f.field === 'token')) {
        throw new Error('This link is used or expired. Ask for a new one below.');
      }
      throw err;
    }
    say('Your password is set: log in with it.');
    ctx.navigate('/login', { replace: true });
  });
  main.append(h('h1', {}, 'Choose a new password'), form,
    h('p', {}, h('a', { href: '/forgot-password' }, 'Mail me a new link')));
}

export async function verifyEmail(main, ctx) {
  ctx.title('Confirm your email address');
  const status = h('p', { role: 'status' }, 'Confirming…');
  main.append(h('h1', {}, 'Confirm your email address'), status);
  try {
    await api('POST', '/auth/verify', { token: linkToken() || '-' },
      { anonymous: true, signal: ctx.signal });
    status.textContent = 'Thank you: your email address is confirmed.';
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err.status !== 422) throw err;
    status.textContent = 'This link is used or expired.';
    if (session()) main.append(resendButton());
    else main.append(h('p', {}, h('a', { href: '/login?next=/account' }, 'Log in'), ' to ask for a new one.'));
  }
}

function resendButton() {
  const b = h('button', { type: 'button' }, 'Mail me a new link');
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await api('POST', '/auth/verify/resend');
      say('A new link is on its way.');
    } catch (e) {
      say(e.message);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export async function register(main, ctx) {
  ctx.title('Create an account');
  const form = h('form', { class: 'stack' },
    field('Name', input('name', { required: true, maxlength: 200, autocomplete: 'name' })),
    field('Email', input('email', { type: 'email', required: true, autocomplete: 'email', maxlength: 254 })),
    field('Password', input('password', { type: 'password', required: true, autocomplete: 'new-password', minlength: 10 }),
      'At least 10 characters.'),
    h('button', { type: 'submit' }, 'Create account'));
  onSubmit(form, async (v) => {
    await api('POST', '/auth/register', { name: v.name, email: v.email, password: v.password }, { anonymous: true });
    await logIn(v.email, v.password);
    say('Welcome: your account is ready.');
    ctx.navigate(nextPath(ctx), { replace: true });
  });
  main.append(h('h1', {}, 'Create an account'), form,
    h('p', {}, 'Have an account? ', h('a', { href: `/login${location.search}` }, 'Log in'), '.'));
}

export async function profile(main, ctx) {
  ctx.title('Your account');
  const me = await get('/users/me', { signal: ctx.signal });
  const nameForm = h('form', { class: 'stack', 'aria-labelledby': 'name-h' },
    h('h2', { id: 'name-h' }, 'Profile'),
    h('p', {}, `Email: ${me.email}`, session().role === 'admin' ? ' · staff' : ''),
    me.email_verified ? null : h('p', { class: 'notice' },
      'Your email address is not confirmed yet: we send no order mail until it is. ', resendButton()),
    field('Name', input('name', { required: true, maxlength: 200, value: me.name, autocomplete: 'name' })),
    h('button', { type: 'submit' }, 'Save name'));
  onSubmit(nameForm, async (v) => {
    await api('PATCH', '/users/me', { name: v.name });
    say('Your name is saved.');
  });
  const pwForm = h('form', { class: 'stack', 'aria-labelledby': 'pw-h' },
    h('h2', { id: 'pw-h' }, 'Change password'),
    field('Current password', input('current_password', { type: 'password', required: true, autocomplete: 'current-password' })),
    field('New password', input('password', { type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, 'Change password'));
  onSubmit(pwForm, async (v) => {
    await api('PATCH', '/users/me', { current_password: v.current_password, password: v.password });
    pwForm.reset();
    say('Your password is changed.');
  });
  const sessions = await sessionsSection(ctx);
  const linkedTo = await identitiesSection(ctx);
  main.append(h('h1', {}, 'Your account'), signInError(ctx) || '', nameForm, pwForm, linkedTo, sessions,
    h('p', {}, h('a', { href: '/notifications' }, 'Your notifications')));
}

// The providers the account signs in with: each configured one, linked
// (with a button to unlink it) or not (a button that goes to the
// provider to link it, and comes back here).
async function identitiesSection(ctx) {
  const list = await providers(ctx);
  if (!list.length) return '';
  const heading = h('h2', { id: 'ids-h', tabindex: '-1' }, 'Sign-in providers');
  let mine;
  try {
    mine = await get('/auth/identities', { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return h('section', { class: 'stack', 'aria-labelledby': 'ids-h' }, heading,
      h('p', { class: 'alert', role: 'alert' }, `Your sign-in providers cannot be shown now: ${e.message}`));
  }
  const linked = new Map(mine.data.map((i) => [i.provider, i]));
  const rows = list.map((p) => {
    const id = linked.get(p.name);
    const button = h('button', { type: 'button' }, id ? `Unlink ${p.display_name}` : `Link ${p.display_name}`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        if (!id) {
          const go = await api('POST', `/auth/identities/${encodeURIComponent(p.name)}`, { return_to: '/account' });
          location.assign(go.authorization_url);
          return;
        }
        if (!window.confirm(`Unlink ${p.display_name}? If you never set a password here, `
          + 'you will need "Forgot your password?" to log in again.')) {
          button.disabled = false;
          return;
        }
        await api('DELETE', `/auth/identities/${encodeURIComponent(p.name)}`);
        say(`${p.display_name} is unlinked.`);
        await ctx.navigate('/account', { replace: true });
        document.getElementById('ids-h')?.focus();
      } catch (e) {
        button.disabled = false;
        say(e.message);
      }
    });
    return h('tr', { 'data-provider': p.name },
      h('td', {}, p.display_name),
      h('td', {}, id ? `Linked${id.email ? ` (${id.email})` : ''}` : 'Not linked'),
      h('td', {}, button));
  });
  return h('section', { class: 'stack', 'aria-labelledby': 'ids-h' },
    heading,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Provider', 'State', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
}

// Where the account is signed in: each login, this one marked, with a
// button to end any other, and one to end them all.
async function sessionsSection(ctx) {
  const rows = h('tbody', {});
  const heading = h('h2', { id: 'sessions-h', tabindex: '-1' }, 'Where you are signed in');
  const paging = pager(rows,
    (c) => get(`/users/me/sessions?limit=20${c ? `&cursor=${encodeURIComponent(c)}` : ''}`, { signal: ctx.signal }),
    (s) => {
      const end = s.current ? h('span', { class: 'badge' }, 'This device')
        : h('button', { type: 'button', 'aria-label': `Sign out ${s.user_agent || 'unknown device'} from ${s.ip}` }, 'Sign out');
      const tr = h('tr', {},
        h('td', {}, s.user_agent || 'Unknown device'),
        h('td', {}, s.ip),
        h('td', {}, when(s.last_used_at)),
        h('td', {}, when(s.created_at)),
        h('td', {}, end));
      if (!s.current) {
        end.addEventListener('click', async () => {
          end.disabled = true;
          try {
            await api('DELETE', `/users/me/sessions/${encodeURIComponent(s.id)}`);
            // The button goes with its line: the focus goes on to a
            // neighbour's, or to the heading, not back to the page's top.
            const near = [tr.nextElementSibling, tr.previousElementSibling]
              .map((x) => x?.querySelector('button')).find(Boolean);
            tr.remove();
            (near || heading).focus();
            say('That device is signed out.');
          } catch (e) {
            end.disabled = false;
            say(e.message);
          }
        });
      }
      return tr;
    });
  const all = h('button', { type: 'button' }, 'Log out everywhere');
  all.addEventListener('click', async () => {
    all.disabled = true;
    try {
      await api('DELETE', '/users/me/sessions');
    } catch (e) {
      all.disabled = false;
      say(e.message);
      return;
    }
    await logout();
    say('You are logged out on every device.');
    ctx.navigate('/login', { replace: true });
  });
  await paging.load();
  return h('section', { class: 'stack', 'aria-labelledby': 'sessions-h' },
    heading,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Device', 'Address', 'Last active', 'Signed in', 'End'].map((t) => h('th', { scope: 'col' }, t)))),
      rows)),
    paging.wrap, all);
}

export async function notifications(main, ctx) {
  ctx.title('Notifications');
  const rows = h('tbody', {});
  const paging = pager(rows,
    (c) => get(`/notifications?limit=20${c ? `&cursor=${encodeURIComponent(c)}` : ''}`, { signal: ctx.signal }),
    (n) => h('tr', {},
      h('td', {}, when(n.created_at)),
      h('td', {}, n.subject),
      h('td', {}, h('a', { href: `/orders/${n.order_id}` }, `Order ${n.order_id}`)),
      h('td', {}, n.channel),
      h('td', {}, statusBadge(n.status))),
    'No notifications yet.');
  main.append(h('h1', {}, 'Notifications'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['When', 'Subject', 'Order', 'Sent by', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
      rows)),
    paging.wrap);
  await paging.load();
}
