// The shop's front page: the category tree and the newest products.

import { get } from '../api.js';
import { h } from '../dom.js';
import { productCard } from './search.js';

// Categories as a nested list; each links to its products.
export function categoryTree(cats) {
  const kids = new Map();
  for (const c of cats) {
    const key = c.parent_id || '';
    if (!kids.has(key)) kids.set(key, []);
    kids.get(key).push(c);
  }
  const branch = (parent) => {
    const list = kids.get(parent);
    if (!list) return null;
    return h('ul', {}, list.map((c) => h('li', {},
      h('a', { href: `/categories/${c.id}` }, c.name), branch(c.id))));
  };
  const tree = branch('');
  if (tree) tree.className = 'tree';
  return tree;
}

export async function home(main, ctx) {
  ctx.title('Shop');
  const [cats, newest] = await Promise.all([
    get('/categories', { signal: ctx.signal }),
    get('/products?sort=newest&limit=12', { signal: ctx.signal }),
  ]);
  main.append(
    h('h1', {}, 'Welcome to the shop'),
    h('div', { class: 'layout with-filters' },
      h('section', { 'aria-labelledby': 'cat-h' },
        h('h2', { id: 'cat-h' }, 'Categories'),
        categoryTree(cats.data) || h('p', { class: 'empty' }, 'No categories yet.')),
      h('section', { 'aria-labelledby': 'new-h' },
        h('h2', { id: 'new-h' }, 'New in'),
        newest.data.length
          ? h('ul', { class: 'cards' }, newest.data.map((p) => productCard(p)))
          : h('p', { class: 'empty' }, 'No products yet.'),
        h('p', {}, h('a', { href: '/search' }, 'Browse every product')))),
  );
}
