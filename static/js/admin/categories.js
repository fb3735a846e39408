// The category tree, and a form that adds a category at the top or
// under another.  The API has no way to rename, move or delete one.

import { api, get } from '../api.js';
import { clear, field, h, input, onSubmit, say, select } from '../dom.js';
import { categoryPaths, head, invalid } from './nav.js';

// Nested lists from the flat list (each names its parent_id).
function treeOf(list) {
  const kids = new Map();
  for (const c of list) {
    const key = c.parent_id || '';
    if (!kids.has(key)) kids.set(key, []);
    kids.get(key).push(c);
  }
  const branch = (parent) => h('ul', { class: 'tree' }, (kids.get(parent) || []).map((c) => h('li', {},
    h('a', { href: `/categories/${c.id}` }, c.name), ' ', h('span', { class: 'muted' }, `(${c.slug})`),
    kids.has(c.id) ? branch(c.id) : null)));
  return branch('');
}

export async function tree(main, ctx) {
  head(main, ctx, 'Categories', '/admin/categories');
  let list = (await get('/categories', { signal: ctx.signal })).data;
  const shown = h('div');
  const parent = h('div');

  function draw() {
    clear(shown, list.length ? treeOf(list) : h('p', { class: 'empty' }, 'No categories yet.'));
    clear(parent, field('Parent', select('parent_id', [['', 'None at the top'], ...categoryPaths(list)], '')));
  }

  const form = h('form', { class: 'stack', 'aria-labelledby': 'cat-add' },
    h('h2', { id: 'cat-add' }, 'Add a category'),
    field('Name', input('name', { required: true, maxlength: 100 })),
    field('Slug', input('slug', {
      required: true, maxlength: 100, pattern: '[a-z0-9]+(-[a-z0-9]+)*', autocomplete: 'off',
    }), 'Lower-case letters and digits in groups joined by "-", e.g. garden-tools; unique.'),
    parent,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add category')));
  onSubmit(form, async (v) => {
    const b = { name: v.name, slug: v.slug };
    if (v.parent_id) b.parent_id = v.parent_id;
    let c;
    try {
      c = await api('POST', '/categories', b);
    } catch (err) {
      throw err.code === 'slug_taken' ? invalid('slug', err.message) : err;
    }
    list = (await get('/categories')).data;
    draw();
    form.reset();
    say(`Category ${c.name} added`);
  });

  draw();
  main.append(h('h2', {}, 'Tree'), shown, form);
}
