// Building the page: elements made with h(), never from HTML strings, so
// that no text from the API can become markup; forms whose fields carry
// their labels and show the API's field errors beside them.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'for') el.htmlFor = v;
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Where the focus is inside box, said so that it can be found again in
// new children: by id, or by the control's kind and name within the
// nearest element that carries a data-key (a cart line: "Update" alone
// is every line's button).
// A handler that disables its button before it redraws takes the key
// first: a disabled control has lost the focus.
export function focusKey(box, el = document.activeElement) {
  if (!el || el === box || !box.contains(el)) return null;
  if (el.id) return { id: el.id };
  return { tag: el.tagName, name: el.getAttribute('aria-label') || el.name || el.textContent.trim(),
    scope: el.closest('[data-key]')?.dataset.key ?? null };
}

function findKey(box, key) {
  if (key.id) {
    const el = document.getElementById(key.id);
    return el && box.contains(el) ? el : null;
  }
  return [...box.getElementsByTagName(key.tag)].find((el) =>
    (el.getAttribute('aria-label') || el.name || el.textContent.trim()) === key.name
      && (el.closest('[data-key]')?.dataset.key ?? null) === key.scope) || null;
}

// Replace box's children without losing a keyboard user's place: the
// control that had the focus gets it back in the new children; when it
// is gone (a line removed), fallback gets it, or box itself.
export function redraw(box, children, fallback, key = focusKey(box)) {
  box.replaceChildren();
  append(box, children);
  if (!key) return;
  const el = findKey(box, key);
  if (el && !el.disabled) {
    el.focus({ preventScroll: true });
    return;
  }
  const to = fallback || box;
  if (!to.hasAttribute('tabindex')) to.setAttribute('tabindex', '-1');
  to.focus({ preventScroll: true });
}

// Minor units to a price in its currency, as the shopper's locale writes
// it: the currency's own number of decimals (none for JPY).
export function money(cents, currency) {
  try {
    const fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    return fmt.format(cents / 10 ** digits);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

// How many minor-unit digits a currency has (2 for USD, 0 for JPY);
// 2 for a code Intl does not know.
function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency })
      .resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

// A price the staff typed ("19.99") to minor units, or NaN.
export function toCents(text, currency) {
  const digits = fractionDigits(currency);
  const m = /^\s*(\d{1,13})(?:[.,](\d*))?\s*$/.exec(text);
  if (!m || (m[2] || '').length > digits) return NaN;
  return Number(m[1]) * 10 ** digits + Number((m[2] || '').padEnd(digits, '0') || 0);
}

export function centsText(cents, currency) {
  const digits = fractionDigits(currency);
  return digits ? (cents / 10 ** digits).toFixed(digits) : String(cents);
}

export function when(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

let seq = 0;
export const uid = (p) => `${p}-${++seq}`;

// A labelled control: the label's text is its accessible name.  The
// input gets the name the API uses, so that field errors find it.
export function field(label, input, hint) {
  input.id = input.id || uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('h') }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

export function input(name, attrs = {}) {
  return h('input', { name, type: 'text', ...attrs });
}

export function select(name, options, value, attrs = {}) {
  return h('select', { name, ...attrs },
    options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value) }, text)));
}

// The form's message area: errors are announced (role alert).
function alertBox(form) {
  let box = form.querySelector(':scope > .alert');
  if (!box) {
    box = h('div', { class: 'alert', role: 'alert' });
    form.prepend(box);
  }
  return box;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((i) => !i.startsWith('e-'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  const box = form.querySelector(':scope > .alert');
  if (box) box.replaceChildren();
}

// Show what went wrong where it belongs: each field error of a 422 beside
// its control (a name like "shipping_address.city" or "[0].quantity"
// matches the control's name), the rest at the top of the form.
export function showError(form, err, fieldName = (f) => f) {
  clearErrors(form);
  const rest = [];
  for (const fe of err.fields || []) {
    const ctl = form.querySelector(`[name="${CSS.escape(fieldName(fe.field))}"]`);
    if (!ctl) {
      rest.push(`${fe.field}: ${fe.message}`);
      continue;
    }
    const id = uid('e');
    ctl.setAttribute('aria-invalid', 'true');
    ctl.setAttribute('aria-describedby',
      `${ctl.getAttribute('aria-describedby') || ''} ${id}`.trim());
    ctl.closest('.field').append(h('p', { class: 'field-error', id }, fe.message));
  }
  append(alertBox(form), [h('p', {}, err.message || 'Something went wrong.'),
    rest.length ? h('ul', {}, rest.map((r) => h('li', {}, r))) : null]);
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

export function say(message) {
  const box = document.getElementById('toast');
  box.textContent = message;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { box.textContent = ''; }, 6000);
}

// A form's values by name, trimmed; checkboxes as booleans.
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else out[el.name] = el.tagName === 'TEXTAREA' ? el.value : el.value.trim();
  }
  return out;
}

// Run an async action from a form: its submit button is disabled
// meanwhile, and an error is shown on the form.
export function onSubmit(form, action) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = form.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    try {
      clearErrors(form);
      await action(values(form), ev.submitter);
    } catch (err) {
      if (err.name === 'AbortError') return;
      showError(form, err);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });
  return form;
}

export function statusBadge(status) {
  return h('span', { class: `badge st-${status}` }, status.replace('_', ' '));
}

export function stars(avg, count) {
  if (!count) return h('span', { class: 'muted' }, 'No reviews yet');
  return h('span', { class: 'rating' }, `${Number(avg).toFixed(1)} out of 5 (${count} review${count === 1 ? '' : 's'})`);
}

// "Load more" for keyset pages: fetch(cursor) → {data, has_more,
// next_cursor}; each page's rows go through row() into list.
export function pager(list, fetchPage, row, empty) {
  const more = h('button', { type: 'button', class: 'more' }, 'Load more');
  const wrap = h('div', { class: 'pager' });
  let cursor = null;
  async function load() {
    more.disabled = true;
    let page;
    try {
      page = await fetchPage(cursor);
    } finally {
      more.disabled = false;
    }
    for (const item of page.data) list.append(row(item));
    cursor = page.next_cursor;
    if (page.has_more) wrap.replaceChildren(more);
    else wrap.replaceChildren();
    if (!list.children.length && empty) wrap.replaceChildren(h('p', { class: 'empty' }, empty));
    return page;
  }
  more.addEventListener('click', () => load().catch((e) => say(e.message)));
  return { wrap, load };
}
